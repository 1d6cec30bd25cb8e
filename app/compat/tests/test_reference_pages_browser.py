"""In Chromium, at a desktop and a phone width: the pages that answer the reference's gone
addresses and its bookmarks of things not imported are readable and pass axe (WCAG 2 A/AA),
without horizontal scrolling."""

import pytest

from tests.support.live import start_live_server
from tests.test_accessibility import axe_problems

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = [
    ("/lti13/launch/teacher/", 410, "Open the activity again from your course"),
    ("/run_attempt/10/scorm_cmi", 410, "This exam page is out of date"),
    ("/resource/3/stats", 404, "This address points to something that is not here"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_live_server(tmp_path_factory.mktemp("refurls"))
    yield live
    live.stop()


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_the_reference_address_pages_are_readable_and_accessible(server, chromium, width, height):
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems = []
    try:
        for path, status, heading in PAGES:
            response = page.goto(server.url + path)
            assert response.status == status, path
            assert page.get_by_role("heading", level=1).inner_text() == heading
            assert page.evaluate("document.documentElement.scrollWidth") <= width, path
            problems += axe_problems(page, path)
    finally:
        context.close()
    assert not problems, "\n".join(problems)
