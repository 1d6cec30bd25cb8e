"""The queue is only a hint: with Redis flushed while grades are owed, a Huey worker still
finds and delivers them from the outbox table (its startup sweep and its periodic sweeper)."""

import os
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tests.support.attempt_client import Student, batch
from tests.support.attempt_page import DEMO_SECRET
from tests.support.lms_stub import LmsStub
from tests.support.live import start_live_server, stop_process

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"),
                                                   reason="needs Redis (scripts/test starts it)")]


def redis_db(number: int) -> str:
    parts = urlsplit(os.environ["TEST_REDIS_URL"])
    return urlunsplit(parts._replace(path=f"/{number}"))


def complete_attempt(student: Student, raw: int) -> None:
    attempt_id = student.start_attempt()
    config = student.open_attempt(attempt_id)
    changes = [("cmi.score.raw", str(raw)), ("cmi.score.max", "4"), ("cmi.completion_status", "completed"),
               ("cmi.exit", "normal")]
    response = student.post_batch(attempt_id, batch(config["token"], changes, 1, terminate=True))
    assert response.status_code == 200, response.text


def test_grades_owed_are_delivered_after_the_queue_is_flushed(tmp_path):
    url = redis_db(7)
    queue = redis.Redis.from_url(url)
    queue.flushdb()
    server = start_live_server(tmp_path, extra_env={"REDIS_URL": url})
    worker = None
    try:
        server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
        with LmsStub(consumers={"demo": DEMO_SECRET}) as stub:
            students = [
                Student(server.url, key="demo", secret=DEMO_SECRET, user_id=f"sweep-{i}",
                        launch_overrides={"lis_outcome_service_url": stub.url}).launch()
                for i in range(3)
            ]
            for i, student in enumerate(students):
                complete_attempt(student, raw=i + 1)
            pending = server.query("SELECT count(*) FROM grading_gradereport WHERE state = 'pending'")[0][0]
            assert pending == 3 and queue.dbsize() > 0  # owed, and a delivery run was queued
            queue.flushdb()  # Redis loses the queue (restart without persistence, failover, ...)
            assert stub.requests == []
            worker = server.start_worker(tmp_path / "huey.log")
            # The LMS answers before the worker records the delivery: wait for both.
            deadline = time.monotonic() + 30
            delivered = 0
            while time.monotonic() < deadline and (len(stub.grades) < 3 or delivered < 3):
                time.sleep(0.2)
                delivered = server.query("SELECT count(*) FROM grading_gradereport WHERE state = 'delivered'")[0][0]
            assert sorted(stub.grades.values()) == [0.25, 0.5, 0.75], (tmp_path / "huey.log").read_text()[-2000:]
            assert delivered == 3
    finally:
        stop_process(worker)
        server.stop()
        queue.flushdb()
