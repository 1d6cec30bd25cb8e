"""In Chromium, at 1280×800 and 390×844: on the Students page an instructor ticks students and
pastes a list, gives them all 50% more exam time; the result says who got it now and which
entries wait for a first launch (listed, removable); a student's open demo exam shows the longer
time at once, and then no time limit when the instructor switches it off for them; a person
from the pasted list gets the change when they first launch. axe-core finds nothing."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.attempt_page import exam_frame, launch_instructor, launch_student, start_attempt
from tests.support.widths import DESKTOP, fits_at_both_widths

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


def test_several_students_and_a_pasted_list_get_one_access_change(demo_server, chromium):
    server, width = demo_server, DESKTOP["width"]
    tag = f"al{width}"
    contexts = []

    def new_page():
        context = chromium.new_context(viewport=DESKTOP)
        contexts.append(context)
        return context.new_page()

    try:
        student = new_page()
        launch_student(student, server.url, f"{tag}-open", lis_person_name_full=f"Olga Open {tag}",
                       lis_person_contact_email_primary=f"olga.{tag}@example.edu")
        exam = start_attempt(student)
        expect(exam.locator("#duration")).to_have_text("30")
        launch_student(new_page(), server.url, f"{tag}-ticked", lis_person_name_full=f"Tom Ticked {tag}")

        teacher = new_page()
        launch_instructor(teacher, server.url, f"{tag}-teacher")
        teacher.get_by_test_id("students-link").click()
        teacher.get_by_test_id("access-list-form").wait_for()
        teacher.get_by_label("Search by name, e-mail or LMS user id").fill(tag)
        teacher.get_by_role("button", name="Search").click()
        assert teacher.get_by_test_id("student-row").count() == 2
        fits_at_both_widths(teacher, "students page with the access form", actions=("[data-testid=apply-access-list]",))

        teacher.get_by_label(f"Choose Olga Open {tag}").check()
        teacher.get_by_label(f"Choose Tom Ticked {tag}").check()
        form = teacher.get_by_test_id("access-list-form")
        form.get_by_label("Paste usernames, e-mail addresses or LMS user ids").fill(
            f"later.{tag}@example.edu\nnobody-{tag}, later.{tag}@example.edu")
        form.get_by_label(re.compile("Or extra exam time")).fill("50")
        form.get_by_label(re.compile("Reason")).fill("Learning support plans")
        teacher.get_by_test_id("apply-access-list").click()

        result = teacher.get_by_test_id("access-list-result")
        expect(result).to_contain_text("Applied to 2 students now.")
        assert f"Olga Open {tag}" in result.inner_text() and f"Tom Ticked {tag}" in result.inner_text()
        expect(teacher.get_by_test_id("access-list-pending")).to_contain_text("Pending for 2 entries")
        pending = teacher.get_by_test_id("pending-row")
        pending_texts = " ".join(pending.all_inner_texts())
        assert f"later.{tag}@example.edu" in pending_texts and f"nobody-{tag}" in pending_texts
        assert "50% more exam time" in pending_texts and "Learning support plans" in pending_texts
        fits_at_both_widths(teacher, "students page with the result")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        teacher.screenshot(path=str(SCREENSHOTS / f"access-list-{width}.png"), full_page=True)

        # The student's open exam, untouched, now allows 45 minutes (50% of 30 more).
        expect(exam_frame(student).locator("#duration")).to_have_text("45", timeout=10000)

        # Bad input: refused with a message, nothing changes.
        form = teacher.get_by_test_id("access-list-form")
        form.get_by_label("Paste usernames, e-mail addresses or LMS user ids").fill("x@example.edu")
        form.get_by_label(re.compile("Or extra exam time")).fill("-5")
        teacher.get_by_test_id("apply-access-list").click()
        expect(teacher.get_by_test_id("access-list-error").first).to_contain_text("greater than or equal to 0")
        assert teacher.get_by_test_id("pending-row").count() == 2
        fits_at_both_widths(teacher, "students page with an error")

        # Remove one pending change.
        teacher.get_by_test_id("pending-row").filter(has_text=f"nobody-{tag}").get_by_test_id("pending-remove").click()
        expect(teacher.get_by_test_id("message")).to_contain_text("Pending access change removed.")
        assert teacher.get_by_test_id("pending-row").filter(has_text=f"nobody-{tag}").count() == 0

        # Switch Olga's time limit off: her open exam says so at once.
        teacher.get_by_label("Search by name, e-mail or LMS user id").fill(f"olga.{tag}")
        teacher.get_by_role("button", name="Search").click()
        teacher.get_by_role("link", name=f"Olga Open {tag}").click()
        access = teacher.get_by_test_id("access-form")
        access.get_by_label(re.compile("Or extra exam time")).fill("0")
        access.get_by_label("No time limit for this student").check()
        teacher.get_by_test_id("save-access").click()
        expect(teacher.get_by_test_id("effective-access")).to_contain_text("no time limit")
        expect(teacher.get_by_test_id("access-change-by")).to_contain_text("Learning support plans")
        fits_at_both_widths(teacher, "student's page with no time limit")
        expect(exam_frame(student).locator("#duration")).to_have_text("no limit", timeout=10000)

        # The pasted e-mail address launches for the first time: the change is theirs.
        later = new_page()
        launch_student(later, server.url, f"{tag}-later", lis_person_name_full=f"Lea Later {tag}",
                       lis_person_contact_email_primary=f"later.{tag}@example.edu")
        later_exam = start_attempt(later)
        expect(later_exam.locator("#duration")).to_have_text("45", timeout=10000)
        teacher.goto(teacher.url.split("/instructor/")[0] + "/instructor/students/")
        assert teacher.get_by_test_id("pending-row").count() == 0
    finally:
        for context in contexts:
            context.close()
