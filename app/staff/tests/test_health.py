"""The worker's heartbeat (written by a periodic task, read by the dashboard) and the health
checks of the database and Redis."""

import os
from datetime import datetime, timedelta

import pytest
from huey.contrib.djhuey import HUEY

from staff import selectors, services, tasks
from staff.templatetags.staff_format import age, duration
from staff.tests.world import NOW
from tests.support.net import free_port


@pytest.fixture(autouse=True)
def _empty_cache():
    services.heartbeat_cache().delete(services.HEARTBEAT_KEY)
    yield
    services.heartbeat_cache().delete(services.HEARTBEAT_KEY)


def test_the_heartbeat_runs_every_minute_from_the_worker():
    beat = tasks.worker_heartbeat.task_class()
    assert all(beat.validate_datetime(datetime(2026, 3, 10, 3, m)) for m in range(60))
    assert tasks.worker_heartbeat.task_class in HUEY._registry._periodic_tasks


def test_the_task_records_when_where_and_which_process():
    tasks.worker_heartbeat.call_local()
    beat = services.heartbeat_cache().get(services.HEARTBEAT_KEY)
    assert beat["pid"] == os.getpid()
    assert isinstance(beat["hostname"], str) and beat["hostname"]
    assert abs(beat["at"] - datetime.now().timestamp()) < 5


def test_a_fresh_heartbeat_is_ok_and_says_how_long_ago():
    services.heartbeat_record(now=NOW - timedelta(seconds=42))
    item = selectors.worker_health(now=NOW)
    assert (item.status, item.ok, item.age_seconds, item.hint) == ("ok", True, 42.0, "")
    assert "42 seconds ago" in item.detail


def test_a_heartbeat_older_than_three_minutes_is_stale():
    services.heartbeat_record(now=NOW - timedelta(minutes=3))
    assert selectors.worker_health(now=NOW).ok  # exactly 3 minutes: not yet
    services.heartbeat_record(now=NOW - timedelta(minutes=3, seconds=1))
    item = selectors.worker_health(now=NOW)
    assert (item.status, item.ok, item.age_seconds) == ("problem", False, 181.0)
    assert "restart" in item.hint


def test_no_heartbeat_means_never_seen():
    item = selectors.worker_health(now=NOW)
    assert (item.status, item.age_seconds) == ("problem", None)
    assert "Never seen" in item.detail and "run_huey" in item.hint


def test_a_malformed_heartbeat_counts_as_never_seen():
    services.heartbeat_cache().set(services.HEARTBEAT_KEY, "garbage")
    assert "Never seen" in selectors.worker_health(now=NOW).detail


def test_an_unreachable_cache_is_a_problem_not_an_error(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to redis")

    monkeypatch.setattr(services.heartbeat_cache(), "get", down)
    item = selectors.worker_health(now=NOW)
    assert (item.status, item.ok) == ("problem", False)
    assert "cannot be reached" in item.detail


@pytest.mark.django_db
def test_the_database_answers_with_a_latency():
    item = selectors.database_health()
    assert (item.name, item.status) == ("database", "ok")
    assert item.latency_ms is not None and item.latency_ms >= 0


@pytest.mark.django_db
def test_the_database_down_is_a_problem_with_a_hint(monkeypatch):
    monkeypatch.setattr(selectors.core_health, "_database_ok", lambda: False)
    item = selectors.database_health()
    assert (item.status, item.ok) == ("problem", False)
    assert "PostgreSQL" in item.hint


def test_redis_not_configured_is_not_a_problem(settings):
    settings.REDIS_URL = ""
    item = selectors.redis_health()
    assert (item.status, item.ok, item.latency_ms) == ("not_configured", True, None)


def test_redis_is_pinged_when_configured(settings):
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("TEST_REDIS_URL not set (scripts/test starts Redis and sets it)")
    settings.REDIS_URL = redis_url
    item = selectors.redis_health()
    assert (item.status, item.ok) == ("ok", True) and item.latency_ms >= 0
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    item = selectors.redis_health()
    assert (item.status, item.ok) == ("problem", False)
    assert "REDIS_URL" in item.hint


@pytest.mark.parametrize("seconds, text", [
    (0, "0 s"), (59.9, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h 0 min"), (7260, "2 h 1 min"),
    (49 * 3600, "2 d 1 h"), (-5, "0 s"), (None, "—"), ("x", "—"),
])
def test_durations_are_short(seconds, text):
    assert duration(seconds) == text


def test_age_between_two_times():
    assert age(NOW, NOW - timedelta(minutes=5)) == "5 min"
    assert age(NOW, None) == "—"
