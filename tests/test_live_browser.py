"""In Chromium: the instructor's live view changes by itself as a student starts and finishes
an attempt (pushed over its websocket, no reload)."""

import re
from pathlib import Path

import pytest

from tests.support.attempt_client import Student, batch
from tests.support.attempt_page import DEMO_SECRET, launch_instructor

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


def number(page, field):
    return int(page.get_by_test_id(f"live-{field}").inner_text())


def wait_for(page, field, value):
    page.wait_for_function(
        f"document.querySelector('[data-testid=live-{field}]').textContent === '{value}'", timeout=15000)


def test_the_live_view_follows_a_student(demo_server, page):
    server = demo_server
    launch_instructor(page, server.url, "live-teacher")
    page.get_by_test_id("live-link").click()
    page.wait_for_function("document.getElementById('live-connection').dataset.state === 'live'", timeout=15000)
    in_progress, completed = number(page, "in_progress"), number(page, "completed")

    student = Student(server.url, key="demo", secret=DEMO_SECRET, user_id="live-student").launch()
    attempt_id = student.start_attempt()
    wait_for(page, "in_progress", in_progress + 1)

    config = student.open_attempt(attempt_id)
    response = student.post_batch(attempt_id, batch(config["token"], [
        ("cmi.score.raw", "3"), ("cmi.score.max", "4"), ("cmi.completion_status", "completed"),
        ("cmi.exit", "normal")], 1, terminate=True))
    assert response.status_code == 200, response.text
    wait_for(page, "completed", completed + 1)
    wait_for(page, "in_progress", in_progress)
    assert re.search(r"\d", page.get_by_test_id("live-completed_last_hour").inner_text())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "live.png"), full_page=True)
