"""In Chromium: a student completes the exam and sees their grade reach the LMS; the
instructor sees it with its history, discounts a question, and the changed grade is re-sent.
A real Huey worker delivers to a local LMS that verifies every signature."""

import time

import pytest

from tests.support.attempt_page import DEMO_SECRET, answer_and_end, launch_instructor, launch_student, start_attempt
from tests.support.lms_stub import LmsStub
from tests.support.live import own_redis_env, start_live_server, stop_process

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def stack(tmp_path):
    """A live server with its own Redis database, a Huey worker and an LMS stub."""
    server = start_live_server(tmp_path, extra_env=own_redis_env("grades"))
    server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
    worker = server.start_worker(tmp_path / "huey.log")
    try:
        with LmsStub(consumers={"demo": DEMO_SECRET}) as stub:
            yield server, stub
    finally:
        stop_process(worker)
        server.stop()


def reload_until(page, test_id, text, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in page.get_by_test_id(test_id).first.inner_text():
            return
        time.sleep(0.5)
        page.reload()
    raise AssertionError(f"{test_id} never showed {text!r}: {page.get_by_test_id(test_id).first.inner_text()!r}")


def test_grade_reaches_the_lms_and_a_discount_resends_it(stack, page, chromium):
    server, stub = stack
    sourcedid = "grade-browser-sourcedid"
    launch_student(page, server.url, "grader-1", lis_outcome_service_url=stub.url, lis_result_sourcedid=sourcedid)
    student_page = page.url
    exam = start_attempt(page)
    answer_and_end(page, exam)  # 2 of 4
    assert stub.wait_for_grade(sourcedid, 0.5, timeout=20), stub.requests
    page.goto(student_page)
    reload_until(page, "lms-grade", "It is in your course's gradebook")
    assert "50\u00a0%" in page.get_by_test_id("lms-grade").inner_text()

    instructor = chromium.new_context().new_page()
    launch_instructor(instructor, server.url, "grader-teacher")
    instructor.get_by_test_id("grades-link").click()
    row = instructor.locator("tr[data-testid^='grade-']").first
    assert "50\u00a0%" in row.get_by_test_id("grade-score").inner_text()
    assert "In the gradebook" in row.get_by_test_id("grade-state").inner_text()
    row.locator("summary").click()
    assert "Accepted by the LMS" in row.get_by_test_id("send").first.inner_text()

    # Full marks for everyone on question 2: 4 of 4.
    discount = instructor.get_by_test_id("discount-q1")
    discount.locator("select").select_option("full_marks")
    discount.get_by_role("button", name="Apply").click()
    assert "Discount saved" in instructor.get_by_test_id("message").inner_text()
    assert stub.wait_for_grade(sourcedid, 1.0, timeout=20), stub.requests
    reload_until(instructor, "grade-state", "100\u00a0% on")
    assert stub.accepted_for(sourcedid) == [0.5, 1.0]

    # Bad input is refused with a message and changes nothing.
    instructor.evaluate("""() => { const f = document.querySelector("[data-testid=discount-q0] form");
        f.querySelector("input[name=target]").value = "question one"; f.submit(); }""")
    instructor.get_by_test_id("discount-error").wait_for()
    assert "Choose a question" in instructor.get_by_test_id("discount-error").inner_text()
    assert server.query("SELECT count(*) FROM grading_discount")[0][0] == 1
