"""An instructor uploads (and replaces) the exam from the resource's instructor page, in Chromium."""

import pytest

from exams.demo import demo_exam_zip
from tests.support import lms as test_lms
from tests.support.attempt_page import DEMO_SECRET
from tests.support.lms_page import iframe_launch_html, serve_html

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_instructor_uploads_and_replaces_the_exam_with_a_progress_bar(demo_server, page):
    params = test_lms.sign(
        test_lms.launch_params(user_id="uploader", roles="Instructor", resource_link_id="upload-test",
                               context_id="demo-course", resource_link_title="Quiz 3"),
        key="demo", secret=DEMO_SECRET, url=f"{demo_server.url}/lti/launch/",
    )
    html = iframe_launch_html(f"{demo_server.url}/lti/launch/", params).replace('target="tool"', "")
    with serve_html(html) as lms_url:
        page.goto(lms_url)
        page.get_by_test_id("instructor-page").wait_for(timeout=15000)
    assert "No exam yet" in page.get_by_test_id("current-exam").inner_text()

    page.set_input_files("#exam-package", {"name": "not-an-exam.zip", "mimeType": "application/zip",
                                           "buffer": b"this is not a zip"})
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_function("document.getElementById('exam-upload-status').dataset.state === 'error'")
    assert "not a zip file" in page.locator("#exam-upload-status").inner_text()

    page.set_input_files("#exam-package", {"name": "demo.zip", "mimeType": "application/zip", "buffer": demo_exam_zip()})
    with page.expect_navigation():  # the page reloads after a successful upload
        page.get_by_role("button", name="Upload", exact=True).click()
    current = page.get_by_test_id("current-exam").inner_text()
    assert "Demo exam" in current and "version 1" in current and "2 questions" in current
    assert page.locator("#exam-upload-progress").get_attribute("value") is not None

    page.set_input_files("#exam-package", {"name": "demo.zip", "mimeType": "application/zip", "buffer": demo_exam_zip()})
    with page.expect_navigation():
        page.get_by_role("button", name="Upload", exact=True).click()
    assert "version 2" in page.get_by_test_id("current-exam").inner_text()
    assert "Demo exam" in page.get_by_test_id("version-1").inner_text()  # the versions list (issue 15, point 5)
    assert page.get_by_test_id("version-2").get_by_test_id("version-current").count() == 1
