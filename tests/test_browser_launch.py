"""Launches in real Chromium against a running daphne."""

import pytest

from tests.support import lms as test_lms
from tests.support.lms_page import iframe_launch_html, serve_html

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def lms_consumer(daphne_server):
    daphne_server.manage("create_lti_consumer", "--key", "browser-lms", "--secret", "browser-secret", "--name", "Browser LMS")
    return {"key": "browser-lms", "secret": "browser-secret"}


def signed_for(daphne_server, consumer, **params):
    return test_lms.sign(
        test_lms.launch_params(**params),
        key=consumer["key"],
        secret=consumer["secret"],
        url=f"{daphne_server.url}/lti/launch/",
    )


def test_blocked_iframe_cookie_offers_new_window_that_continues(daphne_server, lms_consumer, page):
    params = signed_for(daphne_server, lms_consumer, user_id="iframe-student", lis_person_name_full="Iris Frame")
    with serve_html(iframe_launch_html(f"{daphne_server.url}/lti/launch/", params)) as lms_url:
        page.goto(lms_url)
        tool = page.frame_locator("iframe[name=tool]")
        # cross-site iframe over plain HTTP: the browser keeps our session cookie out
        link = tool.get_by_test_id("handoff-link")
        link.wait_for(timeout=15000)
        with page.context.expect_page() as new_window:
            link.click()
        window = new_window.value
        window.wait_for_load_state()
        assert window.get_by_test_id("student-page").is_visible()
        assert window.get_by_test_id("user-name").inner_text() == "Iris Frame"
        assert window.get_by_test_id("role").inner_text() == "Student"
        # the link is used up
        window.goto(window.url.split("/resource/")[0] + link.get_attribute("href"))
        assert "This link has expired" in window.content()


def test_bad_launch_shows_what_went_wrong_and_what_to_check(daphne_server, lms_consumer, page):
    params = signed_for(daphne_server, lms_consumer)
    params["roles"] = "Instructor"  # tampered after signing
    with serve_html(iframe_launch_html(f"{daphne_server.url}/lti/launch/", params)) as lms_url:
        page.goto(lms_url)
        tool = page.frame_locator("iframe[name=tool]")
        heading = tool.locator("h1")
        heading.wait_for(timeout=15000)
        assert heading.inner_text() == "The launch's signature does not match"
        assert "For your LMS administrator" in tool.locator("main").inner_text()
        assert "shared secret" in tool.locator("main").inner_text()


def test_instructor_launch_top_level_lands_on_instructor_page(daphne_server, lms_consumer, page):
    params = signed_for(daphne_server, lms_consumer, user_id="teacher-1", roles="urn:lti:role:ims/lis/Instructor",
                        lis_person_name_full="Tess Teacher")
    html = iframe_launch_html(f"{daphne_server.url}/lti/launch/", params).replace('target="tool"', "")
    with serve_html(html) as lms_url:
        page.goto(lms_url)
        page.get_by_test_id("instructor-page").wait_for(timeout=15000)
        page.get_by_test_id("about-activity").locator("summary").click()  # the facts, one click away
        assert page.get_by_test_id("user-name").inner_text() == "Tess Teacher"
        assert page.get_by_test_id("role").inner_text() == "Instructor"
