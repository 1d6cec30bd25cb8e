"""In Chromium: a student completes the demo exam; the instructor opens the statistics page from
the activity's page and sees the attempt in the right bin of the histogram and each question's
average, and a full-page screenshot is kept."""

from pathlib import Path

import pytest

from tests.support.attempt_page import DEMO_SECRET, answer_and_end, launch_instructor, launch_student, start_attempt
from tests.support.live import start_live_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


@pytest.fixture
def server(tmp_path):
    server = start_live_server(tmp_path)
    server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
    try:
        yield server
    finally:
        server.stop()


def test_the_instructor_sees_a_completed_attempt_in_the_statistics(server, page, chromium):
    launch_student(page, server.url, "stats-1")
    exam = start_attempt(page)
    answer_and_end(page, exam)  # 2 of 4

    instructor = chromium.new_context().new_page()
    launch_instructor(instructor, server.url, "stats-teacher")
    instructor.get_by_test_id("statistics-link").click()
    instructor.get_by_test_id("histogram-svg").wait_for()

    assert instructor.get_by_test_id("headline-2").inner_text() == "1"  # attempts started
    assert instructor.get_by_test_id("headline-3").inner_text() == "1"  # completed
    assert instructor.get_by_test_id("headline-4").inner_text() == "50.0%"  # mean
    bars = instructor.locator("[data-testid=histogram-svg] rect.bar")
    counts = {bars.nth(i).get_attribute("data-label"): bars.nth(i).get_attribute("data-value") for i in range(bars.count())}
    assert counts.pop("50–60%") == "1"
    assert set(counts.values()) == {"0"}
    assert instructor.get_by_test_id("histogram-svg").get_attribute("aria-label") == (
        "Score histogram of 1 completed attempt in bins of 10 percent: it scored 50–60%.")

    # Per question: 2 of 2 marks on question 1, 0 of 2 on question 2.
    instructor.get_by_test_id("questions").locator("summary").click()
    q0 = instructor.get_by_test_id("question-q0").inner_text()
    q1 = instructor.get_by_test_id("question-q1").inner_text()
    assert q0.split("\t")[:2] == ["Arithmetic", "100.0%"], q0
    assert q1.split("\t")[:2] == ["Primes", "0.0%"], q1
    assert instructor.locator("[data-testid=questions-svg] rect.bar").count() == 2

    # The filter is a labelled form that works from the keyboard.
    instructor.get_by_label("all attempts with a score").focus()
    instructor.keyboard.press("Space")
    instructor.get_by_test_id("apply-filter").press("Enter")
    instructor.wait_for_url("**?all=1")
    assert instructor.get_by_label("all attempts with a score").is_checked()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    instructor.screenshot(path=str(SCREENSHOTS / "statistics.png"), full_page=True)
