"""Writes for the staff dashboard: the worker's heartbeat.

The heartbeat lives in the "shared" cache, which every process sees: Redis in production
(shared by daphne and the Huey workers), a file cache under VAR_DIR in the development set-up
without Redis (scripts/dev runs daphne and the worker as two processes, so a per-process cache
would never show the worker's beat). Never in the database: a worker that can reach Redis but
not PostgreSQL still says it is alive, and the dashboard's database check tells the rest.
"""

from __future__ import annotations

import os
import socket

from django.core.cache import caches
from django.utils import timezone

HEARTBEAT_KEY = "staff:worker-heartbeat"
HEARTBEAT_CACHE = "shared"  # settings.CACHES: seen by every process
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
    heartbeat_cache().set(HEARTBEAT_KEY, beat, timeout=HEARTBEAT_KEEP_SECONDS)
    return beat


def heartbeat_cache():
    """The cache the heartbeat is written to and read from (every process sees it)."""
    return caches[HEARTBEAT_CACHE]
