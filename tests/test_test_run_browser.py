"""Issue 15, points 7 and 8, in Chromium at 1280×800 and 390×844: an instructor starts a test run
from the instructor page, answers the demo exam, ends it, sees it labelled "Test run" (never
counted, never sent to the LMS) and removes it; a student checks their receipt code, and a
mistyped one is refused. Every page passes axe and fits the screen."""

import re

import pytest

from tests.support.attempt_page import (
    answer_and_end, attempt_id_of, exam_frame, launch_instructor, launch_student, start_attempt,
)
from tests.support.widths import DESKTOP, fits_at_both_widths

pytestmark = [pytest.mark.browser, pytest.mark.slow]

def test_an_instructor_test_run_from_start_to_removal(demo_server, chromium):
    server, width = demo_server, DESKTOP["width"]
    context = chromium.new_context(viewport=DESKTOP)
    teacher = context.new_page()
    try:
        launch_instructor(teacher, server.url, f"test-run-teacher-{width}")
        resource_id = int(re.search(r"/resource/(\d+)/", teacher.url).group(1))
        teacher.get_by_test_id("test-run-panel").get_by_test_id("start-test-run").click()
        exam = exam_frame(teacher)
        exam.locator("#answer-q0p0").wait_for(timeout=15000)
        label = teacher.locator(".attempt-bar").get_by_test_id("test-run-label")
        assert label.is_visible() and "Test run" in label.inner_text()
        fits_at_both_widths(teacher, "test run page")
        attempt_id = attempt_id_of(teacher)
        answer_and_end(teacher, exam)  # saved by the students' path: 1 + 1 + 0 of 4 marks

        owner, is_test_run, ended, raw = server.query(
            "SELECT user_id, is_test_run, ended_at IS NOT NULL, score_raw FROM attempts_attempt WHERE id = %s",
            (attempt_id,))[0]
        assert is_test_run and ended and raw == 2
        # Never in the grades, the outbox or the LMS's sends.
        assert server.query(
            "SELECT count(*) FROM grading_gradereport g JOIN lms_resourcemembership m ON m.id = g.membership_id "
            "WHERE m.user_id = %s", (owner,))[0][0] == 0
        assert server.query("SELECT count(*) FROM grading_attemptquestionscore WHERE attempt_id = %s",
                            (attempt_id,))[0][0] == 0

        teacher.get_by_role("link", name=re.compile("Back to your test runs")).click()
        row = teacher.get_by_test_id("test-run-list").locator("li").filter(has_text="Test run")
        row.first.wait_for()
        assert row.count() == 1
        assert "Finished" in row.get_by_test_id("test-run-status").inner_text()
        assert row.get_by_test_id("test-run-score").inner_text().startswith("2")
        fits_at_both_widths(teacher, "test runs page")

        # The students page does not count it.
        teacher.goto(f"{server.url}/resource/{resource_id}/instructor/students/")
        teacher.get_by_test_id("students").wait_for()
        assert server.query("SELECT count(*) FROM attempts_attempt WHERE resource_id = %s AND user_id = %s "
                            "AND NOT is_test_run", (resource_id, owner))[0][0] == 0

        teacher.goto(f"{server.url}/resource/{resource_id}/test-runs/")
        teacher.get_by_test_id("remove-test-run").first.click()
        teacher.get_by_test_id("message").filter(has_text="removed").wait_for()
        assert teacher.get_by_test_id("no-test-runs").is_visible()
        assert server.query("SELECT count(*) FROM attempts_attempt WHERE id = %s", (attempt_id,))[0][0] == 0
        assert server.query("SELECT count(*) FROM attempts_elementchange WHERE attempt_id = %s",
                            (attempt_id,))[0][0] == 0
        assert server.query("SELECT by_id FROM attempts_testrunremoval WHERE attempt_id = %s",
                            (attempt_id,))[0][0] == owner
        fits_at_both_widths(teacher, "test runs page after removal")
    finally:
        context.close()


CODE = ("from attempts.models import Attempt; from attempts.receipts import receipt_code; "
        "print(receipt_code(Attempt.objects.get(pk={id})))")


def test_a_student_checks_their_receipt(demo_server, chromium):
    server, width = demo_server, DESKTOP["width"]
    context = chromium.new_context(viewport=DESKTOP)
    student = context.new_page()
    try:
        launch_student(student, server.url, f"receipt-student-{width}")
        exam = start_attempt(student)
        attempt_id = attempt_id_of(student)
        answer_and_end(student, exam)
        code = server.manage("shell", "-c", CODE.format(id=attempt_id)).strip().splitlines()[-1]
        assert re.fullmatch(r"([A-Z2-7]{4}-){11}[A-Z2-7]{4}", code), code

        resource_id = server.query("SELECT resource_id FROM attempts_attempt WHERE id = %s", (attempt_id,))[0][0]
        student.goto(f"{server.url}/resource/{resource_id}/")
        student.get_by_test_id("receipt-check-link").click()
        student.get_by_label("Receipt code").fill(code)
        student.get_by_test_id("check-receipt").click()
        result = student.get_by_test_id("receipt-result")
        result.wait_for()
        assert "This receipt is genuine" in result.inner_text()
        assert student.get_by_test_id("receipt-attempt").inner_text() == "1"
        assert "has not changed" in student.get_by_test_id("receipt-verdict").inner_text()
        fits_at_both_widths(student, "receipt check with a result")

        mistyped = code[:-1] + ("A" if code[-1] != "A" else "B")
        student.get_by_label("Receipt code").fill(mistyped)
        student.get_by_test_id("check-receipt").click()
        error = student.get_by_test_id("receipt-error")
        error.wait_for()
        assert "does not check out" in error.inner_text()
        assert student.get_by_test_id("receipt-result").count() == 0
        fits_at_both_widths(student, "receipt check refusing a code")
    finally:
        context.close()
