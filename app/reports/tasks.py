"""Huey tasks for reports: thin wrappers over services."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from reports import services


@db_task()
def report_generate_task(report_id: str):
    services.report_generate(report_id=report_id)


@db_periodic_task(crontab(minute="7"))
def reports_cleanup_task():
    """Hourly: fail reports whose worker vanished, then remove expired files and rows."""
    services.reports_fail_abandoned()
    services.reports_remove_expired()
