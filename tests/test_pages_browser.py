"""Every page students and instructors use, in Chromium at 1280×800 and on a 390×844 phone (issue 16):
the document is no wider than the window, each page's primary actions are visible and clickable (in
the viewport after scrolling to them, not covered by anything), and axe-core finds no serious
problem. The student's page, the students list, grades and settings are also checked at 360 px
(problem 1). One live server for the module; the pages are a table, parametrised by page and width."""

import re
from dataclasses import dataclass

import pytest

from tests.support.attempt_page import (DEMO_SECRET, answer, answer_and_end, launch_instructor, launch_student,
                                        start_attempt, wait_saved)
from tests.support.live import start_live_server
from tests.support.widths import action_problem, layout_problems, overflow

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "sweep-staff-pw-41e9"
WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


@dataclass(frozen=True)
class Page:
    name: str
    who: str  # whose browser: "running" (a student in an attempt), "done" (a student who ended one), "teacher", "staff"
    url: str  # a key of the site's urls
    ready: str  # a selector present once the page is there
    actions: tuple[str, ...] = ()  # its primary actions (selectors): visible and clickable
    status: int = 200


PAGES = [
    Page("student page", "running", "student", "[data-testid=student-page]", ("[data-testid=resume]",)),
    Page("student page after an attempt", "done", "student", "[data-testid=student-page]", ("[data-testid=review]",)),
    Page("attempt page", "running", "running_attempt", "#exam-frame", (".attempt-bar a",)),
    Page("review", "done", "review", "#exam-frame", (".attempt-bar a",)),
    Page("receipt check (student)", "done", "receipt_check", "[data-testid=receipt-check]", ("[data-testid=check-receipt]",)),
    Page("instructor overview", "teacher", "overview", "[data-testid=instructor-page]",
         ("[data-testid=upload-exam]", "[data-testid=save-settings]", "[data-testid=start-test-run]",
          "[data-testid=live-link]")),
    Page("students", "teacher", "students", "[data-testid=students]",
         ("[data-testid=student-row] a[href*='/students/'] >> nth=0",)),
    Page("a student", "teacher", "person", "[data-testid=person]", ("[data-testid=attempt-link-1]",)),
    Page("an attempt", "teacher", "attempt", "[data-testid=attempt-summary]", ("[data-testid=review-link]",)),
    Page("grades", "teacher", "grades", "[data-testid=grades]", ("[data-testid=report-all]",)),
    Page("reports", "teacher", "reports", "[data-testid=reports-page]", ("[data-testid=request-scores]",)),
    Page("statistics", "teacher", "statistics", "[data-testid=statistics-filter]", ("[data-testid=apply-filter]",)),
    Page("live", "teacher", "live", "[data-testid=live]", ("[data-testid=overview-link]",)),
    Page("re-mark all", "teacher", "remark", "[data-testid=breadcrumbs]", ("[data-testid=start]",)),
    Page("versions: move attempts", "teacher", "move", "[data-testid=breadcrumbs]", ("[data-testid=overview-link]",)),
    Page("test runs", "teacher", "test_runs", "[data-testid=test-runs]", ("[data-testid=start-test-run]",)),
    Page("receipt check (instructor)", "teacher", "receipt_check", "[data-testid=receipt-check]",
         ("[data-testid=check-receipt]",)),
    Page("staff dashboard", "staff", "staff", "[data-testid=health]", ("[data-testid=health]",)),
    Page("not found", "teacher", "not_found", "[data-testid=error-page]", (), status=404),
    Page("method not allowed", "teacher", "not_allowed", "[data-testid=error-page]", (), status=405),
    Page("not found on the exam origin", "teacher", "content_not_found", "h1", (), status=404),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory, chromium):
    server = start_live_server(tmp_path_factory.mktemp("sweep"))
    server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
    server.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                  f"get_user_model().objects.create_superuser('sweep-operator', 'ops@example.org', '{PASSWORD}')")
    states, urls = {}, {}
    contexts = []
    try:
        def new_page():
            context = chromium.new_context()
            contexts.append(context)
            return context.new_page()

        # A student who ended an attempt (the review), and one in the middle of one.
        done = new_page()
        launch_student(done, server.url, "sweep-done", lis_person_name_full="Dana Done")
        urls["student"] = done.url.split("?", 1)[0]
        answer_and_end(done, start_attempt(done))
        urls["review"] = done.url
        states["done"] = done.context.storage_state()

        running = new_page()
        launch_student(running, server.url, "sweep-running", lis_person_name_full="Riley Running")
        answer(start_attempt(running), "q0p0", "4")
        wait_saved(running)
        urls["running_attempt"] = running.url
        states["running"] = running.context.storage_state()
        running.context.close()  # the attempt page is opened again, in the sweep's own windows

        teacher = new_page()
        launch_instructor(teacher, server.url, "sweep-teacher")
        overview = teacher.url.split("?", 1)[0]
        resource = re.search(r"/resource/(\d+)/", overview).group(1)
        urls.update({
            "overview": overview, "students": overview + "students/", "grades": overview + "grades/",
            "reports": overview + "reports/", "statistics": overview + "statistics/", "live": overview + "live/",
            "remark": overview + "remark/", "move": overview + "exam/move/", "test_runs": f"{server.url}/resource/{resource}/test-runs/",
            "receipt_check": f"{server.url}/resource/{resource}/receipts/check/",
            "staff": f"{server.url}/staff/", "not_found": f"{server.url}/no-such-page/",
            "not_allowed": overview + "grades/report-all/",
            "content_not_found": f"{server.exam_origin}/no-such-file",
        })
        teacher.goto(urls["students"])
        teacher.get_by_test_id("student-row").filter(has_text="Dana Done").locator("a[href*='/students/']").first.click()
        teacher.get_by_test_id("person").wait_for()
        urls["person"] = teacher.url
        teacher.get_by_test_id("attempt-link-1").click()
        teacher.get_by_test_id("attempt-summary").wait_for()
        urls["attempt"] = teacher.url
        states["teacher"] = teacher.context.storage_state()

        staff = new_page()
        staff.goto(urls["staff"])
        staff.locator("#id_username").fill("sweep-operator")
        staff.locator("#id_password").fill(PASSWORD)
        staff.locator("input[type=submit]").click()
        staff.wait_for_url(urls["staff"])
        states["staff"] = staff.context.storage_state()
    finally:
        for context in contexts:
            context.close()
    yield server, urls, states
    server.stop()


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("spec", PAGES, ids=[p.name for p in PAGES])
def test_page_fits_its_actions_work_and_axe_is_clean(site, chromium, spec, width):
    server, urls, states = site
    w, h = WIDTHS[width]
    context = chromium.new_context(viewport={"width": w, "height": h}, storage_state=states[spec.who])
    page = context.new_page()
    try:
        response = page.goto(urls[spec.url])
        assert response.status == spec.status, f"{spec.name}: HTTP {response.status}"
        page.locator(spec.ready).first.wait_for(timeout=15000)
        problems = layout_problems(page, spec.name, spec.actions)
        assert not problems, f"{spec.name} at {w}×{h}:\n" + "\n".join(problems)
    finally:
        context.close()


NARROW = [p for p in PAGES if p.url in ("student", "students", "grades", "overview") and p.who in ("running", "teacher")]


@pytest.mark.parametrize("spec", NARROW, ids=[p.name for p in NARROW])
def test_phone_pages_fit_360_pixels(site, chromium, spec):
    """Problem 1: the student's page (its Resume button inside its panel), the students list, grades
    and the settings fit a 360 px phone."""
    server, urls, states = site
    context = chromium.new_context(viewport={"width": 360, "height": 740}, storage_state=states[spec.who])
    page = context.new_page()
    try:
        page.goto(urls[spec.url])
        page.locator(spec.ready).first.wait_for(timeout=15000)
        assert overflow(page) <= 0, f"{spec.name}: {overflow(page)}px too wide at 360 px"
        for selector in spec.actions:
            assert action_problem(page, selector) is None, action_problem(page, selector)
        if spec.url == "student":
            panel = page.get_by_test_id("student-page").bounding_box()
            resume = page.get_by_test_id("resume").bounding_box()
            assert resume["x"] + resume["width"] <= panel["x"] + panel["width"], "Resume sticks out of its panel"
        if spec.url == "overview":
            for field in page.get_by_test_id("settings-form").locator("input, select").all():
                box = field.bounding_box()
                if box:
                    assert box["x"] + box["width"] <= 360, field.get_attribute("id")
    finally:
        context.close()
