"""Issue 16 in Chromium, the frame of the instructor pages: one activity header with tabs and
breadcrumbs (problem 3), checkboxes beside plain labels in grouped settings (4), a refused save
that survives a reload and errors tied to their fields (12), branded error pages and a favicon on
both origins (12, 15), upload messages that are styled, stay, and count questions right (13)."""

import json
import re

import pytest

from tests.support import lms as test_lms
from tests.support.attempt_page import DEMO_SECRET, launch_instructor
from tests.support.lms_page import iframe_launch_html, serve_html
from tests.support.packages import MANIFEST, make_zip, source_exam

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def teacher(demo_server, chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    launch_instructor(page, demo_server.url, "frame-teacher")
    overview = page.url.split("?", 1)[0]
    yield page, overview
    context.close()


def test_tabs_and_breadcrumbs_lead_through_the_instructor_pages(demo_server, teacher):
    page, overview = teacher
    header = page.get_by_test_id("activity-header")
    assert header.get_by_test_id("overview-link").get_attribute("aria-current") == "page"
    for tab, ready in (("students", "students"), ("grades", "grades"), ("reports", "reports-page"),
                       ("statistics", "statistics-filter"), ("live", "live"), ("overview", "instructor-page")):
        page.get_by_test_id("activity-tabs").get_by_test_id(f"{tab}-link").click()
        page.get_by_test_id(ready).wait_for()
        current = page.get_by_test_id("activity-tabs").locator("[aria-current=page]")
        assert current.count() == 1 and current.get_attribute("data-testid") == f"{tab}-link"
    # A sub-page: "Activity › Test runs", the overview tab marked as the section it is in.
    page.get_by_test_id("test-runs-link").click()
    crumbs = page.get_by_test_id("breadcrumbs").locator("li")
    assert crumbs.count() == 2 and crumbs.nth(1).get_attribute("aria-current") == "page"
    assert crumbs.nth(1).inner_text() == "Test runs"
    assert page.get_by_test_id("overview-link").get_attribute("aria-current") == "true"
    crumbs.nth(0).get_by_role("link").click()
    page.get_by_test_id("instructor-page").wait_for()
    # The old list of links under the settings is gone: the tabs replace it.
    assert page.get_by_role("link", name=re.compile("^Students, their attempts")).count() == 0


def test_checkboxes_sit_beside_plain_labels_in_named_groups(teacher):
    page, overview = teacher
    page.goto(overview)
    form = page.get_by_test_id("settings-form")
    legends = form.locator("fieldset > legend").all_inner_texts()
    assert "Attempts" in legends and "Grades to the LMS" in legends and "Availability" in legends
    boxes = form.locator("input[type=checkbox]")
    assert boxes.count() >= 5
    for i in range(boxes.count()):
        box = boxes.nth(i)
        label = form.locator(f"label[for='{box.get_attribute('id')}']")
        b, l = box.bounding_box(), label.bounding_box()
        assert l["x"] > b["x"] + b["width"] - 1, "the label is after the box, on its right"
        assert abs((l["y"] + min(l["height"], 30) / 2) - (b["y"] + b["height"] / 2)) < 16, "on the same line"
        assert not label.inner_text().strip().endswith(":")
        assert int(label.evaluate("e => getComputedStyle(e).fontWeight")) < 600


def test_a_refused_save_can_be_reloaded_and_its_errors_are_tied_to_the_fields(teacher):
    page, overview = teacher
    page.goto(overview)
    page.locator("#id_max_attempts").fill("-1")
    page.get_by_test_id("save-settings").click()
    page.get_by_test_id("settings-error").wait_for()
    field = page.locator("#id_max_attempts")
    assert field.get_attribute("aria-invalid") == "true"
    described = field.get_attribute("aria-describedby").split()
    messages = " ".join(page.locator(f"#{name}").inner_text() for name in described)
    assert "greater than or equal to 0" in messages
    # Opening again the address the browser shows (a reload, a bookmark) gives a page, not a 405.
    address = page.url.split("#", 1)[0]
    # The summary's link takes the keyboard to the field.
    page.get_by_test_id("settings-error").get_by_role("link", name="Attempts allowed").click()
    assert page.url.endswith("#id_max_attempts")
    response = page.goto(address)
    assert response.status == 200, address
    page.get_by_test_id("resource-settings").wait_for()


def test_error_pages_are_branded_on_both_origins(demo_server, teacher, chromium):
    page, overview = teacher
    for url, status in ((f"{demo_server.url}/no-such-page/", 404),
                        (overview + "grades/report-all/", 405),
                        (f"{demo_server.exam_origin}/no-such-file", 404)):
        response = page.goto(url)
        assert response.status == status, url
        assert page.locator("h1").count() == 1 and page.locator("h1").inner_text() not in ("", "Not Found")
        assert page.locator("main").count() == 1, url
    # The content origin's page has no cookie of the application's.
    assert not [c for c in page.context.cookies(demo_server.exam_origin)]


def test_both_origins_answer_the_favicon(demo_server, teacher):
    page, overview = teacher
    response = page.request.get(f"{demo_server.url}/favicon.ico")
    assert response.status == 200 and response.body()[:4] == b"\x00\x00\x01\x00"
    content = demo_server.content_get("/favicon.ico")  # Python does not resolve *.localhost
    assert content.status_code == 200 and content.content[:4] == b"\x00\x00\x01\x00" and not content.cookies
    page.goto(overview)
    icon = page.locator("link[rel=icon]").first.get_attribute("href")
    assert page.request.get(demo_server.url + icon).status == 200


def one_question_package() -> bytes:
    return make_zip({
        "imsmanifest.xml": MANIFEST.format(title="One question", href="index.html"),
        "index.html": "<!doctype html><title>exam</title>",
        "source.exam": source_exam(name="One question", questions=(("Q1", ["numberentry"]),)),
        "scripts/exam.js": "console.log('exam')",
    })


def test_upload_messages_are_styled_stay_and_count_questions(demo_server, chromium):
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        params = test_lms.sign(
            test_lms.launch_params(user_id="frame-uploader", roles="Instructor", resource_link_id="frame-upload",
                                   context_id="demo-course", resource_link_title="Upload here"),
            key="demo", secret=DEMO_SECRET, url=f"{demo_server.url}/lti/launch/")
        html = iframe_launch_html(f"{demo_server.url}/lti/launch/", params).replace('target="tool"', "")
        with serve_html(html) as lms_url:
            page.goto(lms_url)
            page.get_by_test_id("instructor-page").wait_for(timeout=15000)
        status = page.locator("#exam-upload-status")

        page.set_input_files("#exam-package", {"name": "broken.zip", "mimeType": "application/zip", "buffer": b"nope"})
        page.get_by_test_id("upload-exam").click()
        page.wait_for_function("document.getElementById('exam-upload-status').dataset.state === 'error'")
        styles = status.evaluate("e => { const s = getComputedStyle(e); return {color: s.color, border: s.borderLeftWidth,"
                                 " background: s.backgroundColor}; }")
        assert styles["color"] == "rgb(164, 22, 26)", styles  # --bad
        assert styles["border"] != "0px" and styles["background"] != "rgba(0, 0, 0, 0)", styles

        page.set_input_files("#exam-package", {"name": "one.zip", "mimeType": "application/zip",
                                               "buffer": one_question_package()})
        with page.expect_navigation():
            page.get_by_test_id("upload-exam").click()
        page.wait_for_load_state("load")
        # After the reload the message is still there, until the next action.
        status.wait_for(state="visible", timeout=5000)
        text = status.inner_text()
        assert "(1 question)" in text and "1 questions" not in text, text
        assert "notice" in status.get_attribute("class") and "ok" in status.get_attribute("class")
        assert "1 question" in page.get_by_test_id("current-exam").inner_text()
        assert "1 questions" not in page.content()
    finally:
        context.close()
