"""Is this instance able to serve? Checks each backing service it is configured with."""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any failure to reach the database means "down"
        logger.warning("Health check: database unreachable", exc_info=True)
        connections["default"].close_if_unusable_or_obsolete()
        return False


def _redis_ok() -> bool:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        logger.warning("Health check: Redis unreachable", exc_info=True)
        return False


def health_check() -> dict:
    """{"status": "ok"|"error", "checks": {"database": "ok"|"error", ["redis": ...]}}"""
    checks = {"database": _database_ok()}
    if settings.REDIS_URL:
        checks["redis"] = _redis_ok()
    return {
        "status": "ok" if all(checks.values()) else "error",
        "checks": {name: "ok" if ok else "error" for name, ok in checks.items()},
    }
