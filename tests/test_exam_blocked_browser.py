"""Issue 16, problems 10 and 15, in Chromium: a window whose attempt was taken over covers the
exam and takes no typing until "Continue here" makes it the writer again; an exam whose scripts
fail (it never calls Initialize) is noticed, and the page never says everything is saved."""

import pytest

from tests.support.attempt_page import (
    answer, attempt_id_of, database_values, exam_frame, launch_student, start_attempt, wait_saved, wait_stored,
)
from tests.support.widths import DESKTOP, fits_at_both_widths

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TAKEN_OVER = "This attempt is open in another window. Changes here are not saved."


def save_state(page):
    return page.locator("#save-status").get_attribute("data-state")


def test_a_taken_over_window_blocks_the_exam_until_continue_here(demo_server, chromium):
    server, width = demo_server, DESKTOP["width"]
    context = chromium.new_context(viewport=DESKTOP)
    first = context.new_page()
    try:
        launch_student(first, server.url, f"blocked-{width}")
        exam_a = start_attempt(first)
        answer(exam_a, "q0p0", "4")
        attempt_id = attempt_id_of(first)
        wait_stored(server, attempt_id, '"4"')
        exam_a.locator("#answer-q1p0").click()  # the student is typing in this window...

        second = context.new_page()  # ...when the attempt is opened in another one
        second.goto(f"{server.url}/attempt/{attempt_id}/")
        exam_b = exam_frame(second)
        exam_b.locator("#answer-q0p0").wait_for(timeout=15000)
        wait_saved(second)

        overlay = first.locator("#take-over")
        overlay.wait_for(timeout=15000)
        assert TAKEN_OVER in overlay.inner_text()
        assert first.evaluate("document.getElementById('exam-frame').inert") is True
        assert save_state(first) == "error" and "Not saving" in first.locator("#save-status").inner_text()
        # The notice covers the exam: a click where the exam's field is lands on the notice.
        box = first.locator("#exam-frame").bounding_box()
        hit = first.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('#take-over-cover') !== null",
                             [box["x"] + box["width"] / 2, box["y"] + min(box["height"] / 2, 200)])
        assert hit
        button = first.get_by_test_id("continue-here")
        assert button.inner_text() == "Continue here"
        fits_at_both_widths(first, "taken-over attempt", actions=("[data-testid=continue-here]",))

        # Typing goes nowhere: not into the exam, not into the database.
        first.keyboard.type("77")
        assert exam_a.locator("#answer-q1p0").input_value() == ""
        assert "77" not in first.evaluate("JSON.stringify(window.numbasLtiAttempt.recorded)")
        assert "77" not in database_values(server, attempt_id).values()

        # "Continue here": this window writes again, the other is blocked in turn.
        button.click()
        exam_a = exam_frame(first)
        exam_a.locator("#answer-q0p0").wait_for(timeout=15000)
        first.wait_for_function("!document.getElementById('exam-frame').inert", timeout=15000)
        assert first.locator("#take-over").is_hidden()
        assert exam_a.locator("#answer-q0p0").input_value() == "4"
        answer(exam_a, "q1p0", "13")
        wait_stored(server, attempt_id, '"13"')
        second.locator("#take-over > [data-reason='taken-over']").wait_for(timeout=15000)
        assert second.evaluate("document.getElementById('exam-frame').inert") is True
    finally:
        context.close()


def never_starting_exam() -> bytes:
    """The demo exam as if its scripts had failed: its page loads, but it never calls Initialize."""
    from tests.support.packages import demo_exam_variant

    return demo_exam_variant(title="Exam that never starts", replace={
        "exam.js": [('api.Initialize("");', 'return; // the scripts failed here')]})


@pytest.fixture(scope="module")
def broken_resource(demo_server, tmp_path_factory):
    """A resource of the demo course whose exam never calls Initialize."""
    from tests.support.attempt_client import Student
    from tests.support.attempt_page import DEMO_SECRET

    server = demo_server
    Student(server.url, key="demo", secret=DEMO_SECRET, user_id="broken-teacher", roles="Instructor",
            resource_link_id="never-starts").launch()
    package = tmp_path_factory.mktemp("broken") / "never-starts.zip"
    package.write_bytes(never_starting_exam())
    server.manage("shell", "-c", "import io; from exams.services import exam_package_upload; "
                  "from lms.models import Resource; "
                  f"data = open('{package}', 'rb').read(); "
                  "resource = Resource.objects.get(resource_link_id='never-starts'); "
                  "exam_package_upload(resource=resource, upload=io.BytesIO(data), size=len(data))")
    return "never-starts"


def test_an_exam_that_never_starts_is_noticed(demo_server, broken_resource, chromium):
    server, width = demo_server, DESKTOP["width"]
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        launch_student(page, server.url, f"never-starts-{width}", resource_link_id=broken_resource)
        page.get_by_test_id("start-attempt").click()
        page.wait_for_url("**/attempt/*/", timeout=15000)
        attempt_url = page.url
        page.goto(f"{attempt_url}?exam_start_seconds=2")
        # The exam's page loads, but it never starts.
        exam_frame(page).locator("h1").wait_for(state="attached", timeout=15000)
        assert save_state(page) != "saved"
        notice = page.get_by_test_id("exam-not-started")
        notice.wait_for(timeout=15000)
        assert "The exam did not start: its scripts failed to load." in notice.inner_text()
        assert save_state(page) == "error"
        assert "All changes saved" not in page.locator("#save-status").inner_text()
        fits_at_both_widths(page, "exam that never started", actions=("[data-testid=reload-exam]",))
        with page.expect_navigation():
            page.get_by_test_id("reload-exam").click()
    finally:
        context.close()


def test_an_exam_that_starts_is_not_reported(demo_server, page):
    launch_student(page, demo_server.url, "starts-fine")
    start_attempt(page)
    page.goto(f"{page.url}?exam_start_seconds=1")
    exam_frame(page).locator("#answer-q0p0").wait_for(timeout=15000)
    page.wait_for_function("window.numbasLtiAttempt.status().examStarted", timeout=15000)
    wait_saved(page)
    assert page.get_by_test_id("exam-not-started").is_hidden()
