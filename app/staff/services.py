"""Writes for the staff dashboard: the worker's heartbeat.

The heartbeat lives in the Django cache (Redis in production, shared by daphne and the Huey
workers), never in the database: a worker that can reach Redis but not PostgreSQL still says
it is alive, and the dashboard's database check tells the rest.
"""

from __future__ import annotations

import os
import socket

from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_KEY = "staff:worker-heartbeat"
# Kept long after it goes stale, so the dashboard can say "last seen 2 hours ago" rather than
# "never seen" after an outage; a cache flush (or no shared cache) still means "never".
HEARTBEAT_KEEP_SECONDS = 7 * 24 * 3600


def heartbeat_record(*, now=None) -> dict:
    """Record that a worker is alive now: when, on which host, in which process."""
    beat = {
        "at": (now or timezone.now()).timestamp(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }
    cache.set(HEARTBEAT_KEY, beat, timeout=HEARTBEAT_KEEP_SECONDS)
    return beat
