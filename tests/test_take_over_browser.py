"""Issue 12, point 5, in Chromium: opening the attempt page from another site (an image, a link)
takes nothing over; the student is asked, and "Continue in this window" moves the attempt between
windows with every answer kept."""

import pytest

from tests.support.attempt_page import (answer, attempt_id_of, exam_frame, launch_student, start_attempt, wait_saved,
                                        wait_stored)
from tests.support.lms_page import serve_html

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def writer_token(server, attempt_id):
    return server.query("SELECT writer_token FROM attempts_attempt WHERE id = %s", (attempt_id,))[0][0]


def test_another_site_cannot_take_an_attempt_over_and_the_student_can(demo_server, page):
    server = demo_server
    launch_student(page, server.url, "take-over-1")
    exam_a = start_attempt(page)
    answer(exam_a, "q0p0", "4")
    wait_saved(page)
    attempt_id = attempt_id_of(page)
    attempt_url = f"{server.url}/attempt/{attempt_id}/"
    held = writer_token(server, attempt_id)

    other = page.context.new_page()  # the same browser, so the same session cookie: on a phone
    other.set_viewport_size({"width": 390, "height": 844})
    html = (f'<!doctype html><title>Another site</title><img id="pixel" src="{attempt_url}" alt="">'
            f'<a id="go" href="{attempt_url}">Your exam</a>')
    with serve_html(html) as elsewhere:
        other.goto(elsewhere)
        other.wait_for_function("document.getElementById('pixel').complete")
        assert writer_token(server, attempt_id) == held  # the image changed nothing
        other.locator("#go").click()
        other.get_by_test_id("continue-here").wait_for()
    assert other.locator("#take-over > [data-reason='elsewhere']").is_visible()
    button = other.get_by_test_id("continue-here").bounding_box()
    assert button["x"] >= 0 and button["x"] + button["width"] <= 390  # within a phone's width
    assert other.evaluate("document.documentElement.scrollWidth") <= 390
    assert other.locator("#save-status").get_attribute("data-state") == "error"
    assert writer_token(server, attempt_id) == held  # opening the page changed nothing either
    answer(exam_a, "q0p1", "42")  # the first window still saves
    wait_stored(server, attempt_id, '"42"')

    other.get_by_test_id("continue-here").click()
    exam_b = exam_frame(other)
    exam_b.locator("#answer-q0p1").wait_for(timeout=15000)
    assert exam_b.locator("#answer-q0p0").input_value() == "4"
    assert exam_b.locator("#answer-q0p1").input_value() == "42"
    wait_saved(other)
    assert writer_token(server, attempt_id) != held
    page.locator("#take-over > [data-reason='taken-over']").wait_for(timeout=15000)
    assert page.locator("#exam-frame").is_hidden()  # nothing typed there could look saved

    answer(exam_b, "q1p0", "13")
    wait_stored(server, attempt_id, '"13"')
    page.get_by_test_id("continue-here").click()  # and back again, with the other window's answer
    exam_a = exam_frame(page)
    exam_a.locator("#answer-q1p0").wait_for(timeout=15000)
    assert exam_a.locator("#answer-q1p0").input_value() == "13"
    other.locator("#take-over > [data-reason='taken-over']").wait_for(timeout=15000)
    wait_saved(page)
    other.close()
