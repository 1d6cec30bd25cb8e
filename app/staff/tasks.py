"""Huey tasks for the staff dashboard: thin wrappers over services."""

from huey import crontab
from huey.contrib.djhuey import periodic_task

from staff import services


@periodic_task(crontab(minute="*"))
def worker_heartbeat():
    """Every minute, from the worker's own clock: "a worker is alive and running periodic tasks".
    It touches only the cache, so it needs no database connection handling."""
    services.heartbeat_record()
