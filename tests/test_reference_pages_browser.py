"""In Chromium, at a desktop and a phone width: the pages that answer the reference's gone
addresses and its bookmarks of things not imported are readable and pass axe (WCAG 2 A/AA),
without horizontal scrolling."""

import pytest

from tests.support.widths import DESKTOP, SIZES, layout_problems

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = [
    ("/lti13/launch/teacher/", 410, "Open the activity again from your course"),
    ("/run_attempt/10/scorm_cmi", 410, "This exam page is out of date"),
    ("/resource/987654/stats", 404, "This address points to something that is not here"),
]


def test_the_reference_address_pages_are_readable_and_accessible(daphne_server, chromium):
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    problems = []
    try:
        for path, status, heading in PAGES:
            response = page.goto(daphne_server.url + path)
            assert response.status == status, path
            assert page.get_by_role("heading", level=1).inner_text() == heading
            for size in SIZES:
                page.set_viewport_size(size)
                problems += layout_problems(page, path)
    finally:
        context.close()
    assert not problems, "\n".join(problems)
