"""In Chromium at 1280×800 and 390×844: an activity the LMS gave no gradebook column (issue 16,
problem 2) as the student and the instructor see it, and the test-launch site's Gradebook page
(problem 14): no horizontal overflow, the main actions visible, axe-core clean."""

import re

import pytest

from tests.support.attempt_page import DEMO_SECRET, answer_and_end, launch_instructor, launch_student, start_attempt
from tests.support.live import start_live_server
from tests.support.widths import DESKTOP, fits_at_both_widths
from tests.test_accessibility import resource_id_of

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "gradebook-staff-pw-5e1a"
NO_OUTCOME = {"lis_outcome_service_url": None, "lis_result_sourcedid": None}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_live_server(tmp_path_factory.mktemp("gradebook"), extra_env={"TEST_LAUNCH_ENABLED": "1"})
    server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
    server.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                  f"get_user_model().objects.create_superuser('gb-operator', 'ops@example.org', '{PASSWORD}')")
    yield server
    server.stop()


def test_an_activity_without_a_gradebook_column_is_calm_for_student_and_instructor(server, chromium):
    width = DESKTOP["width"]
    student = chromium.new_context(viewport=DESKTOP).new_page()
    teacher = chromium.new_context(viewport=DESKTOP).new_page()
    try:
        launch_student(student, server.url, f"no-column-{width}", **NO_OUTCOME)
        activity = student.url
        answer_and_end(student, start_attempt(student))
        student.goto(activity)
        grade = student.get_by_test_id("lms-grade")
        assert "This activity does not send grades to your course's gradebook." in grade.inner_text()
        assert "could not be sent" not in grade.inner_text()
        fits_at_both_widths(student, "student page without a gradebook column", actions=("[data-testid=lms-grade]",))

        launch_instructor(teacher, server.url, f"teacher-{width}")
        teacher.goto(f"{server.url}/resource/{resource_id_of(teacher)}/instructor/grades/")
        note = teacher.get_by_test_id("no-gradebook")
        assert note.is_visible() and "did not offer a gradebook column" in note.inner_text()
        assert teacher.get_by_text("does not send grades to the LMS").count() == 1
        assert teacher.locator("[data-testid=grade-error]").count() == 0
        assert teacher.get_by_test_id("report-all").is_disabled()
        assert teacher.get_by_test_id("report-all-why").is_visible()
        note.locator("summary").click()
        assert teacher.get_by_text("Accept grades from the tool").is_visible()
        rows = teacher.get_by_test_id("grade-not-sent")
        assert rows.count() >= 1 and rows.first.is_visible()
        fits_at_both_widths(teacher, "grades page without a gradebook column",
                            actions=("[data-testid=grade-not-sent]",))
    finally:
        student.context.close()
        teacher.context.close()


def test_the_test_launch_gradebook_page(server, chromium):
    width = DESKTOP["width"]
    server.manage("shell", "-c", (
        "from lms.models import Resource; from testlaunch.services import outcome_result_ensure; "
        "from django.utils import timezone; r = Resource.objects.get(resource_link_id='demo-exam'); "
        f"c = outcome_result_ensure(resource=r, user_id='demo-student-{width}', full_name='Grace Hopper {width}'); "
        "c.score = 0.125; c.received_at = timezone.now(); c.save()"))
    page = chromium.new_context(viewport=DESKTOP).new_page()
    try:
        page.goto(f"{server.url}/admin/login/?next=/test-launch/")
        page.locator("#id_username").fill("gb-operator")
        page.locator("#id_password").fill(PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{server.url}/test-launch/")
        page.get_by_test_id("gradebook-link").click()
        page.wait_for_url(f"{server.url}/test-launch/gradebook")
        row = page.get_by_test_id("gradebook-row").filter(has_text=f"Grace Hopper {width}")
        assert row.get_by_test_id("gradebook-score").inner_text() == "12.5\u00a0%"
        # the demo activity, under the title the latest launch gave it
        assert re.match(r"(Demo exam|Week 1 quiz) \(", row.get_by_test_id("gradebook-activity").inner_text())
        fits_at_both_widths(page, "test-launch gradebook")
    finally:
        page.context.close()
