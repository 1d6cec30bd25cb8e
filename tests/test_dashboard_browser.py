"""In Chromium: an instructor finds a student on the students page while the student's exam is
open, gives them 15 minutes of extra time, and the open exam shows the longer duration at once
(the page passes the new numbas.* keys to the exam over the websocket, as Numbas expects).
Screenshots of the main pages are kept under test-artifacts/screenshots/."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.attempt_page import exam_frame, launch_instructor, launch_student, start_attempt

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


def test_extra_time_reaches_an_open_exam(demo_server, chromium, page):
    server = demo_server
    launch_student(page, server.url, "dash-student", lis_person_name_full="Dana Student",
                   lis_person_contact_email_primary="dana@example.edu")
    exam = start_attempt(page)
    duration = exam.locator("#duration")
    assert duration.inner_text() == "30"

    teacher = chromium.new_context().new_page()
    try:
        launch_instructor(teacher, server.url, "dash-teacher")
        teacher.get_by_test_id("students-link").click()
        teacher.get_by_test_id("students").wait_for()
        teacher.get_by_label("Search by name, e-mail or LMS user id").fill("dana@")
        teacher.get_by_role("button", name="Search").click()
        rows = teacher.get_by_test_id("student-row")
        assert rows.count() == 1
        assert "1 open" in rows.first.inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        teacher.screenshot(path=str(SCREENSHOTS / "students.png"), full_page=True)

        rows.first.get_by_role("link", name="Dana Student").click()
        teacher.get_by_test_id("access-form").wait_for()
        teacher.get_by_label("Extra exam time (minutes)").fill("15")
        teacher.get_by_label("Reason (for your records)").fill("Extra time arrangement")
        teacher.get_by_test_id("save-access").click()
        assert "applies now" in teacher.get_by_test_id("message").inner_text()
        assert "15 extra minutes" in teacher.get_by_test_id("effective-access").inner_text()
        teacher.screenshot(path=str(SCREENSHOTS / "student.png"), full_page=True)

        # The student's open exam, untouched, now allows 45 minutes.
        expect(exam_frame(page).locator("#duration")).to_have_text("45", timeout=10000)

        # A bad value is refused with a message, and nothing changes.
        teacher.get_by_label("Extra exam time (minutes)").fill("-5")
        teacher.get_by_test_id("save-access").click()
        assert "greater than or equal to 0" in teacher.get_by_test_id("access-error").first.inner_text()
        assert re.search(r"15 extra minutes", teacher.get_by_test_id("effective-access").inner_text())
        assert duration.inner_text() == "45"
    finally:
        teacher.context.close()


def test_instructor_remarks_a_part_and_reads_the_timeline(demo_server, chromium, page):
    from tests.support.attempt_page import answer_and_end

    server = demo_server
    launch_student(page, server.url, "remark-student", lis_person_name_full="Rhea Marked")
    student_page = page.url
    exam = start_attempt(page)
    answer_and_end(page, exam, {"q0p0": "4", "q0p1": "42", "q1p0": "12"})  # q1p0 wrong: 2 of 4

    teacher = chromium.new_context().new_page()
    try:
        launch_instructor(teacher, server.url, "remark-teacher")
        teacher.get_by_test_id("students-link").click()
        teacher.get_by_label("Search by name, e-mail or LMS user id").fill("Rhea")
        teacher.get_by_role("button", name="Search").click()
        teacher.get_by_role("link", name="Rhea Marked").click()
        teacher.get_by_test_id("attempt-link-1").click()
        assert "50\u00a0%" in teacher.get_by_test_id("attempt-score").inner_text()

        teacher.get_by_test_id("part-q1p0").locator("summary").click()
        mark = teacher.get_by_label("New mark for Question 2: Primes, part a (out of 2)")
        assert mark.input_value() == "0"  # the current mark, ready to change
        mark.fill("2")
        teacher.get_by_test_id("part-q1p0").get_by_label("Why this mark changes").fill("accepted 12 as a typo")
        teacher.get_by_test_id("remark-q1p0").click()
        assert "recomputed" in teacher.get_by_test_id("message").inner_text()
        assert "100\u00a0%" in teacher.get_by_test_id("attempt-score").inner_text()
        assert "accepted 12 as a typo" in teacher.get_by_test_id("story").inner_text()
        assert "re-marked" in teacher.get_by_test_id("part-q1p0").inner_text()

        # The timeline lists the answers; "the attempt at this moment" shows it as it was then.
        story = teacher.get_by_test_id("story")
        line = story.locator("li", has_text="Question 1: Arithmetic, part b: answered 42").first
        line.get_by_role("link", name="the attempt at this moment").click()
        state = teacher.get_by_test_id("as-at").inner_text()
        assert "42" in state and "Question 2: Primes" in state and "cmi." not in state
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        teacher.screenshot(path=str(SCREENSHOTS / "attempt.png"), full_page=True)

        # Delete it (asked first): it stops counting; restore it.
        teacher.get_by_label("Why it is deleted (note for instructors)").fill("test attempt")
        teacher.get_by_test_id("delete").click()
        teacher.get_by_test_id("confirm-button").click()
        assert "Deleted" in teacher.get_by_test_id("attempt-state").inner_text()
        teacher.get_by_test_id("restore").click()
        assert "Finished" in teacher.get_by_test_id("attempt-state").inner_text()
        # Reopen it: the student can carry on where they were.
        teacher.get_by_label("Why it is reopened (note for instructors)").fill("power cut")
        teacher.get_by_test_id("reopen").click()
        assert "In progress" in teacher.get_by_test_id("attempt-state").inner_text()
        assert "power cut" in teacher.get_by_test_id("story").inner_text()
        page.goto(student_page)
        page.get_by_test_id("resume").click()
        exam_frame(page).locator("#answer-q0p0").wait_for(timeout=15000)
        assert exam_frame(page).locator("#answer-q0p0").input_value() == "4"
    finally:
        teacher.context.close()


def test_instructor_changes_the_activitys_settings(demo_server, page):
    server = demo_server
    launch_instructor(page, server.url, "settings-teacher", resource_link_id="settings-activity")
    form = page.get_by_test_id("resource-settings")
    # A closing time before the opening time is refused, with the reason next to the field.
    form.get_by_label("Opens at").fill("2031-03-02T09:00")
    form.get_by_label("Closes at").fill("2031-03-01T09:00")
    page.get_by_test_id("save-settings").click()
    assert "after the opening time" in page.get_by_test_id("settings-field-error").first.inner_text()
    assert page.get_by_test_id("settings-error").is_visible()

    form = page.get_by_test_id("resource-settings")
    form.get_by_label("Closes at").fill("2031-03-09T17:00")
    form.get_by_label("Due at").fill("2031-03-08T17:00")
    form.get_by_label("Attempts allowed").fill("2")
    form.get_by_label("Show students their marks").select_option("never")
    form.get_by_label("Send grades to the LMS").select_option("manual")
    page.get_by_test_id("save-settings").click()
    assert "Settings saved" in page.get_by_test_id("message").inner_text()
    form = page.get_by_test_id("resource-settings")
    assert form.get_by_label("Attempts allowed").input_value() == "2"
    assert form.get_by_label("Closes at").input_value() == "2031-03-09T17:00"
    assert form.get_by_label("Show students their marks").input_value() == "never"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "resource.png"), full_page=True)
