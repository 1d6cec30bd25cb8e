"""LTI 1.3 launches in real Chromium: an independent stand-in platform (tests/support/
lti13_platform.py) on 127.0.0.1 frames the tool, which daphne serves on localhost — another site,
over plain HTTP, so the browser keeps the tool's cookies out of the frame as it does with
third-party cookies blocked."""

from __future__ import annotations

import itertools
import warnings

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


def _explain(page, lms: Lti13Platform, server) -> str:
    """What the frame shows, what the platform saw and the end of the tool's log: which step of
    the login went wrong. Bounded: a frame stuck in a navigation must not hang the explanation."""
    frame = page.frame(name="tool")
    try:
        shown = f"{frame.url}\n{frame.inner_text('body', timeout=2000)[:800]}" if frame else "no frame"
    except Exception as error:
        shown = f"{frame.url}: {str(error).splitlines()[0]}"
    events = [(e.kind, getattr(e, "data", None), e.accepted) for e in lms.browser_events]
    log = server.log_path.read_text()[-2000:] if server.log_path.exists() else ""
    return (f"Frame: {shown}\nAuth requests: {[(a.accepted, a.redirect_uri) for a in lms.auth_requests]}\n"
            f"Events: {events}\nTool log:\n{log}")


def _open_course_page(chromium, lms: Lti13Platform, server, width: int, sub: str, name: str, *, storage: bool,
                      testid: str):
    """A new browser window on the platform's course page, once the tool's page in its frame shows
    `testid`. On a loaded machine Chromium has been seen to leave the frame stuck after the tool
    answered (the tool's log shows every response sent); then the window is given up, with a
    warning that explains it, and the course page opened once more in a new one, as a person
    would reload it. A second failure fails the test with the explanation."""
    for round_ in (1, 2):
        context = chromium.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.goto(_course_page(lms, f"{sub}-{round_}", name, storage=storage))
        target = page.frame_locator("iframe[name=tool]").get_by_test_id(testid)
        try:
            target.wait_for(timeout=20000)
            return context, page, target, f"{sub}-{round_}"
        except Exception:
            explanation = _explain(page, lms, server)
            context.close()
            if round_ == 2:
                pytest.fail(f"The tool's page never came in the frame.\n{explanation}")
            warnings.warn(f"The tool's page did not come in the frame; opening the course page again.\n{explanation}")
            lms.reset_records()


def _assert_fits(window, width: int) -> None:
    assert window.evaluate("document.documentElement.scrollWidth") <= width


def test_iframe_launch_with_platform_storage_reaches_the_exam(chromium, demo_server, platform):
    """On a desktop; the launch without platform storage below is on a phone."""
    width = 1280
    context, page, link, sub = _open_course_page(chromium, platform, demo_server, width, f"storage-student-{width}",
                                                 f"Stella Storage {width}", storage=True, testid="handoff-link")
    try:

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
    context, page, restart, _ = _open_course_page(chromium, platform, demo_server, 390, "window-student", "Wendy Window",
                                                  storage=False, testid="restart-link")
    try:
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
