"""LTI 1.3 launches in real Chromium: an independent stand-in platform (tests/support/
lti13_platform.py) on 127.0.0.1 frames the tool, which daphne serves on localhost — another site,
over plain HTTP, so the browser keeps the tool's cookies out of the frame as it does with
third-party cookies blocked."""

from __future__ import annotations

import itertools

import pytest

from tests.support.attempt_page import start_attempt
from tests.support.lti13_platform import ROLE_LEARNER, Lti13Platform

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_numbers = itertools.count(1)


@pytest.fixture
def platform(demo_server):
    """A platform registered with the tool (its courses are the demo consumer's, whose demo
    course holds the demo exam) and the tool registered with it."""
    number = next(_numbers)
    client_id, deployment_id = f"browser-tool-{number}", f"browser-deployment-{number}"
    with Lti13Platform(client_id=client_id, deployment_id=deployment_id) as lms:
        tool = demo_server.url
        demo_server.manage(
            "lti13_platform", "--issuer", lms.issuer, "--client-id", client_id, "--name", f"Browser LMS {number}",
            "--auth-login-url", lms.auth_url, "--token-url", lms.token_url, "--keyset-url", lms.jwks_url,
            "--deployment-id", deployment_id, "--consumer-key", "demo")
        lms.register_tool(login_url=f"{tool}/lti13/login/", redirect_uris=[f"{tool}/lti13/launch/"],
                          jwks_url=f"{tool}/lti13/jwks/")
        yield lms


def _course_page(lms: Lti13Platform, sub: str, name: str, *, storage: bool) -> str:
    launch = lms.prepare_launch(
        sub=sub, name=name, roles=[ROLE_LEARNER], ags=True,
        resource_link={"id": "demo-exam", "title": "Demo exam"},
        context={"id": "demo-course", "title": "Demo course", "label": "DEMO101"})
    return lms.add_course_page(f"course-{sub}", launch, storage_target="_parent" if storage else None)


def _wait_or_explain(locator, page, lms: Lti13Platform, server) -> None:
    """Wait for the tool's page in the frame; when it does not come, fail with what the frame
    shows, what the platform saw and the end of the tool's log, so that a failure on a loaded CI
    machine says which step of the login went wrong."""
    try:
        locator.wait_for(timeout=20000)
    except Exception:
        frame = page.frame(name="tool")
        shown = frame.url + "\n" + frame.inner_text("body")[:800] if frame else "no frame"
        events = [(e.kind, getattr(e, "data", None), e.accepted) for e in lms.browser_events]
        log = server.log_path.read_text()[-3000:] if server.log_path.exists() else ""
        pytest.fail(f"The tool's page never came.\nFrame: {shown}\nAuth requests: "
                    f"{[(a.accepted, a.redirect_uri) for a in lms.auth_requests]}\nEvents: {events}\n"
                    f"Tool log:\n{log}")


def _assert_fits(window, width: int) -> None:
    assert window.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("width", [1280, 390])
def test_iframe_launch_with_platform_storage_reaches_the_exam(chromium, demo_server, platform, width):
    context = chromium.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        sub = f"storage-student-{width}"
        page.goto(_course_page(platform, sub, f"Stella Storage {width}", storage=True))
        tool = page.frame_locator("iframe[name=tool]")
        link = tool.get_by_test_id("handoff-link")
        _wait_or_explain(link, page, platform, demo_server)

        # The login put a secret into the platform's storage, and the launch (whose state cookie
        # the browser kept out of the frame) read it back from there.
        put = platform.wait_for_browser_event("storage", "lti.put_data", timeout=5)
        got = platform.wait_for_browser_event("storage", "lti.get_data", timeout=5)
        assert put is not None and put.accepted and put.origin == demo_server.url
        assert got is not None and got.accepted and got.response["value"] == put.data["value"]
        [auth] = platform.auth_requests
        assert auth.accepted and auth.redirect_uri == f"{demo_server.url}/lti13/launch/"
        [(version, lineitem, scopes)] = demo_server.query(
            "SELECT m.lti_version, m.ags_lineitem_url, m.ags_scopes FROM lms_resourcemembership m "
            "JOIN lms_ltiidentity i ON i.user_id = m.user_id WHERE i.sub = %s", (sub,))
        assert version == "1.3" and lineitem.startswith(platform.base_url) and "scope/score" in scopes

        with context.expect_page() as new_window:
            link.click()
        window = new_window.value
        window.wait_for_load_state()
        window.get_by_test_id("student-page").wait_for(timeout=10000)
        assert window.get_by_test_id("user-name").inner_text() == f"Stella Storage {width}"
        assert window.get_by_test_id("role").inner_text() == "Student"
        _assert_fits(window, width)
        exam = start_attempt(window)
        assert exam.locator("#answer-q0p0").is_visible()
    finally:
        context.close()


def test_iframe_launch_without_platform_storage_continues_in_a_new_window(chromium, demo_server, platform):
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(_course_page(platform, "window-student", "Wendy Window", storage=False))
        tool = page.frame_locator("iframe[name=tool]")
        restart = tool.get_by_test_id("restart-link")
        _wait_or_explain(restart, page, platform, demo_server)
        assert "Open the activity in a new window" in restart.inner_text()
        with context.expect_page() as new_window:
            restart.click()
        window = new_window.value
        window.get_by_test_id("student-page").wait_for(timeout=15000)
        assert window.get_by_test_id("user-name").inner_text() == "Wendy Window"
        _assert_fits(window, 390)
        # The launch in the frame was refused, the one in the window accepted; nothing was
        # put into platform storage.
        assert [a.accepted for a in platform.auth_requests] == [True, True]
        assert not [e for e in platform.browser_events if e.kind == "storage"]
    finally:
        context.close()
