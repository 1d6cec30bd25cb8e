"""In Chromium: the students page with the course list from the LMS (NRPS) — students who have
not launched yet, the list's source and time, the refresh button — fits a 390 px phone as well
as a desktop, long e-mail addresses and all, and passes axe-core's checks."""

import re
from pathlib import Path

import pytest

from tests.support.attempt_page import DEMO_SECRET, launch_instructor, launch_student
from tests.support.live import start_live_server
from tests.support.widths import DESKTOP, fits_at_both_widths

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"

# The demo course's list as an LMS gave it: a student who has launched (linked by their 1.1 id),
# three who have not (one inactive, one with a very long address), and an instructor.
ROSTER = """
from django.utils import timezone
from lms.models import Context, LtiIdentity
from lti13.models import Platform, Roster, RosterMember
context = Context.objects.get(context_id="demo-course")
platform = Platform.objects.create(
    name="Campus LMS", consumer=context.consumer, issuer="https://lms.example.edu", client_id="numbas",
    auth_login_url="https://lms.example.edu/auth", auth_token_url="https://lms.example.edu/token",
    keyset_url="https://lms.example.edu/jwks")
context.nrps_url, context.nrps_platform = "https://lms.example.edu/nrps/demo-course", platform
context.save()
now = timezone.now()
long_email = "maximiliana.featherstonehaugh-wolfeschlegelsteinhausen@students.example-university.edu"
rows = [("roster-launched", "Lena Launched", "lena@example.edu", "Active", False),
        ("nrps-2", "Nina Notyet", "nina@example.edu", "Active", False),
        ("nrps-3", "Maximiliana Featherstonehaugh-Wolfeschlegelsteinhausen", long_email, "Active", False),
        ("nrps-4", "Ivo Inactive", "ivo@example.edu", "Inactive", False),
        ("nrps-5", "Tina Teacher", "tina@example.edu", "Active", True)]
RosterMember.objects.bulk_create([
    RosterMember(context=context, user_id=u, name=n, email=e, status=s, is_instructor=i, fetched_at=now,
                 roles="Instructor" if i else "Learner",
                 identity=LtiIdentity.objects.filter(consumer=context.consumer, lti_user_id=u).first())
    for u, n, e, s, i in rows])
Roster.objects.create(context=context, platform=platform, source_url=context.nrps_url, fetched_at=now,
                      member_count=len(rows))
"""


@pytest.fixture(scope="module")
def roster_server(tmp_path_factory, chromium):
    server = start_live_server(tmp_path_factory.mktemp("roster"))
    try:
        server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
        student = chromium.new_context().new_page()
        launch_student(student, server.url, "roster-launched", lis_person_name_full="Lena Launched")
        student.context.close()
        server.manage("shell", "-c", ROSTER)
        yield server
    finally:
        server.stop()


def test_students_page_with_the_course_list_fits_desktop_and_phone(roster_server, chromium):
    server, width = roster_server, DESKTOP["width"]
    context = chromium.new_context(viewport=DESKTOP)
    teacher = context.new_page()
    try:
        launch_instructor(teacher, server.url, f"roster-teacher-{width}")
        resource_id = int(re.search(r"/resource/(\d+)/", teacher.url).group(1))
        teacher.goto(f"{server.url}/resource/{resource_id}/instructor/students/")
        teacher.get_by_test_id("students").wait_for()

        roster = teacher.get_by_test_id("roster")
        assert "Read from Campus LMS" in roster.inner_text()
        assert "3 students have not opened this activity yet." in roster.inner_text()
        not_launched = teacher.locator("[data-roster-only]")
        assert not_launched.count() == 3
        assert "Tina Teacher" not in teacher.get_by_test_id("students").inner_text()
        lena = teacher.get_by_test_id("student-row").filter(has_text="Lena Launched")
        assert lena.count() == 1 and lena.get_by_role("link", name="Lena Launched").count() == 1
        ivo = not_launched.filter(has_text="Ivo Inactive")
        assert "not launched yet" in ivo.inner_text() and "inactive in the LMS" in ivo.inner_text()

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        teacher.screenshot(path=str(SCREENSHOTS / f"students-roster-{width}.png"), full_page=True)
        fits_at_both_widths(teacher, "students page with the course list", actions=(
            "[data-testid=students]", "[data-testid=roster]", "[data-testid=roster-refresh]"))

        # a student who has not launched yet: their page and its access form fit too, and save
        maxi = not_launched.filter(has_text="Maximiliana")
        maxi.get_by_role("link", name=re.compile("Change access")).click()
        teacher.get_by_role("heading", name=re.compile("Maximiliana")).wait_for()
        fits_at_both_widths(teacher, "course-list student's page")
        teacher.get_by_label(re.compile("Extra attempts")).fill("2")
        teacher.get_by_label(re.compile("Reason")).first.fill("Ill on the day")
        teacher.get_by_role("button", name=re.compile("Save")).click()
        teacher.get_by_text(re.compile("saved", re.I)).first.wait_for()
        fits_at_both_widths(teacher, "course-list student's page, saved", axe=False)
    finally:
        context.close()
