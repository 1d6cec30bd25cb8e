"""Issue 12: an instructor uploads an exam whose pages attack whoever opens them. Opened by an
administrator, by an instructor of another course and by a student taking it, in Chromium,
every attack fails — reading the admin, posting its forms with a fetched CSRF token, reading
cookies, reaching the attempt page above the exam, calling instructor URLs, reading or taking
over another student's attempt — and the database is exactly as it was."""

import json

import pytest

from tests.support import lms as test_lms
from tests.support.attempt_client import Student
from tests.support.attempt_page import DEMO_SECRET, exam_frame, launch_student, runtime_frame
from tests.support.hostile_exam import hostile_package
from tests.support.lms_page import iframe_launch_html, serve_html
from tests.support.live import start_live_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ADMIN_PASSWORD = "attacks-admin-pw-91c2"


def _launch_in_browser(page, server, *, user_id, roles, resource_link_id, context_id, landing):
    params = test_lms.sign(test_lms.launch_params(user_id=user_id, roles=roles, resource_link_id=resource_link_id,
                                                  context_id=context_id),
                           key="demo", secret=DEMO_SECRET, url=f"{server.url}/lti/launch/")
    with serve_html(iframe_launch_html(f"{server.url}/lti/launch/", params).replace('target="tool"', "")) as lms:
        page.goto(lms)
        page.get_by_test_id(landing).wait_for(timeout=15000)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attacks")
    server = start_live_server(tmp)
    try:
        server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
        server.manage("shell", "-c", "from django.contrib.auth import get_user_model; get_user_model().objects"
                      f".create_superuser('admin', 'admin@example.org', '{ADMIN_PASSWORD}')")
        # The victim: another student with an attempt open in the demo course.
        victim = Student(server.url, key="demo", secret=DEMO_SECRET, user_id="victim").launch()
        victim_attempt = victim.start_attempt()
        victim.open_attempt(victim_attempt)
        # Course B, whose instructor will open the package; course A, whose instructor uploads it.
        Student(server.url, key="demo", secret=DEMO_SECRET, user_id="teacher-b", roles="Instructor",
                resource_link_id="course-b-exam", context_id="course-b").launch()
        Student(server.url, key="demo", secret=DEMO_SECRET, user_id="attacker", roles="Instructor",
                resource_link_id="hostile-exam", context_id="course-a").launch()
        [(other_resource,)] = server.query("SELECT id FROM lms_resource WHERE resource_link_id = 'course-b-exam'")
        package = tmp / "hostile.zip"
        package.write_bytes(hostile_package(app=server.url, victim_attempt=victim_attempt, other_resource=other_resource))
        server.manage("shell", "-c", "import io; from exams.services import exam_package_upload; "
                      "from lms.models import Resource; from attempts.models import ResourceSettings; "
                      f"data = open('{package}', 'rb').read(); "
                      "resource = Resource.objects.get(resource_link_id='hostile-exam'); "
                      "exam_package_upload(resource=resource, upload=io.BytesIO(data), size=len(data)); "
                      "ResourceSettings.objects.update_or_create(resource=resource, defaults={'max_attempts': 0})")
        [(directory,)] = server.query("SELECT e.directory FROM exams_exampackage e JOIN lms_resource r "
                                      "ON r.id = e.resource_id WHERE r.resource_link_id = 'hostile-exam'")
        yield {"server": server, "victim_attempt": victim_attempt, "other_resource": other_resource,
               "hostile_url": f"{server.exam_origin}/exams/{directory}/hostile.html"}
    finally:
        server.stop()


def snapshot(world):
    server = world["server"]
    return {
        "consumers": server.query("SELECT key, secret, name, active FROM lms_consumer ORDER BY key"),
        "users": server.query("SELECT id, username, is_staff, is_superuser FROM auth_user ORDER BY id"),
        "settings": server.query("SELECT * FROM attempts_resourcesettings ORDER BY resource_id"),
        "victim": server.query("SELECT writer_token, ended_at, deleted_at FROM attempts_attempt WHERE id = %s",
                               (world["victim_attempt"],)),
        "victim's answers": server.query("SELECT count(*) FROM attempts_elementchange WHERE attempt_id = %s",
                                         (world["victim_attempt"],)),
        "memberships": server.query("SELECT user_id, resource_id, role FROM lms_resourcemembership ORDER BY id"),
        "forged values": server.query("SELECT count(*) FROM attempts_elementchange WHERE value LIKE 'HACKED%%'"),
    }


def assert_all_blocked(results):
    assert len(results) == 17, results
    leaked = {name: outcome for name, outcome in results.items() if outcome.startswith("LEAKED")}
    assert not leaked, json.dumps(leaked, indent=1)


def test_a_hostile_exam_opened_by_an_administrator(world, chromium):
    before = snapshot(world)
    page = chromium.new_context().new_page()
    server = world["server"]
    page.goto(f"{server.url}/admin/login/")
    page.locator("#id_username").fill("admin")
    page.locator("#id_password").fill(ADMIN_PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"{server.url}/admin/")
    page.goto(world["hostile_url"])  # e.g. a link in a support request
    page.locator("body[data-attacks-done='1']").wait_for(timeout=60000)
    assert_all_blocked(json.loads(page.locator("#attack-results").inner_text()))
    assert page.url == world["hostile_url"]
    assert snapshot(world) == before
    page.context.close()


def test_a_hostile_exam_opened_by_an_instructor_of_another_course(world, chromium):
    before = snapshot(world)
    page = chromium.new_context().new_page()
    _launch_in_browser(page, world["server"], user_id="teacher-b", roles="Instructor",
                       resource_link_id="course-b-exam", context_id="course-b", landing="instructor-page")
    page.goto(world["hostile_url"])
    page.locator("body[data-attacks-done='1']").wait_for(timeout=60000)
    assert_all_blocked(json.loads(page.locator("#attack-results").inner_text()))
    assert snapshot(world) == before
    page.context.close()


def test_a_hostile_exam_taken_by_a_student(world, chromium):
    page = chromium.new_context().new_page()
    server = world["server"]
    _launch_in_browser(page, server, user_id="taker", roles="Learner", resource_link_id="hostile-exam",
                       context_id="course-a", landing="student-page")
    before = snapshot(world)
    page.get_by_test_id("start-attempt").click()
    attempt_page = page.url
    exam = exam_frame(page)
    exam.locator("body[data-attacks-done='1']").wait_for(timeout=60000)
    results = json.loads(exam.locator("#attack-results").inner_text())
    assert_all_blocked(results)
    # Framed: the windows above exist but cannot be read, called or navigated.
    for name in ("read the top window", "read the attempt page", "call the attempt page's script",
                 "navigate the top window"):
        assert results[name].startswith("blocked: ") and results[name] != "blocked: not framed", results[name]
    assert page.url == attempt_page
    assert runtime_frame(page).url.startswith(f"{server.exam_origin}/runtime/frame.html")
    assert snapshot(world) == before
    page.context.close()


def test_the_application_serves_no_exam_files_and_the_content_origin_nothing_else(world):
    server = world["server"]
    directory = world["hostile_url"].split("/exams/")[1].split("/")[0]
    import requests

    assert requests.get(f"{server.url}/media/exams/{directory}/hostile.html", timeout=10).status_code == 404
    served = server.content_get(f"/exams/{directory}/hostile.html", timeout=10)
    assert served.status_code == 200 and "attacks.js" in served.text and "set-cookie" not in served.headers
    assert "connect-src 'self'" in served.headers["Content-Security-Policy"]
    for path in ("/admin/", "/admin/login/", "/lti/launch/", f"/attempt/{world['victim_attempt']}/state/", "/staff/",
                 "/health/", "/static/attempts/runtime.js"):
        answer = server.content_get(path, timeout=10)
        assert answer.status_code == 404 and "set-cookie" not in answer.headers, path
