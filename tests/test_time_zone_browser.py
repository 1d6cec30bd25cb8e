"""In Chromium, at 1280×800 and 390×844 (issue 16, problem 7): the browser's time zone is picked
up once per session and every time is shown in it, named — an instructor in Berlin reads the
settings form's times in Europe/Berlin (not UTC) and a student's attempt in CET/CEST, a student
in New York reads their own attempt in EST/EDT — and a person can choose another zone from the
header. axe-core finds nothing on the preferences page; nothing overflows on a phone."""

import re

import pytest
from playwright.sync_api import expect

from tests.support.attempt_page import launch_instructor, launch_student, start_attempt
from tests.support.widths import DESKTOP, fits_at_both_widths

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BERLIN = re.compile(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d CES?T")
NEW_YORK = re.compile(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d E[SD]T")


def test_times_follow_the_browsers_zone_and_the_persons_choice(demo_server, chromium):
    server, width = demo_server, DESKTOP["width"]
    tag = f"tz{width}"
    contexts = []

    def new_page(zone):
        context = chromium.new_context(viewport=DESKTOP, timezone_id=zone,
                                       locale="en-GB")
        contexts.append(context)
        return context.new_page()

    try:
        student = new_page("America/New_York")
        launch_student(student, server.url, f"{tag}-student", lis_person_name_full=f"Nora York {tag}")
        student_page = student.url
        expect(student.get_by_test_id("preferences-link")).to_have_text("Times in America/New_York", timeout=15000)
        start_attempt(student)
        student.goto(student_page)
        expect(student.get_by_test_id("attempt-1").locator("time").first).to_have_text(NEW_YORK)

        teacher = new_page("Europe/Berlin")
        launch_instructor(teacher, server.url, f"{tag}-teacher")
        zone_line = teacher.get_by_test_id("settings-time-zone")
        expect(zone_line).to_contain_text("Times are in Europe/Berlin", timeout=15000)
        assert "UTC" not in zone_line.inner_text()
        teacher.get_by_test_id("students-link").click()
        teacher.get_by_label("Search by name, e-mail or LMS user id").fill(f"Nora York {tag}")
        teacher.get_by_role("button", name="Search").click()
        expect(teacher.get_by_test_id("student-row").locator("time").first).to_have_text(BERLIN)

        # A zone of one's own, from the header, wins over the browser's.
        teacher.get_by_test_id("preferences-link").click()
        expect(teacher.get_by_test_id("zone-in-use")).to_contain_text("Europe/Berlin, the time zone of your browser")
        fits_at_both_widths(teacher, "preferences page", actions=("[data-testid=save-preferences]",))
        teacher.get_by_label("Your time zone").select_option("Asia/Tokyo")
        teacher.get_by_test_id("save-preferences").click()
        expect(teacher.get_by_test_id("student-row").locator("time").first).to_have_text(
            re.compile(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d JST"))
        expect(teacher.get_by_test_id("preferences-link")).to_have_text("Times in Asia/Tokyo")
    finally:
        for context in contexts:
            context.close()
