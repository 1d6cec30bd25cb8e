"""A student's attempt in Chromium, through a real daphne: launch, start, answer, reload,
end, review — and the database holds exactly what the exam set, also when the websocket
or the whole network drops out."""

from urllib.parse import urlsplit

import pytest

from tests.support.attempt_page import (
    exam_frame,
    runtime_frame,
    DEMO_SECRET,
    answer,
    assert_database_equals_exam,
    attempt_id_of,
    database_values,
    launch_student,
    start_attempt,
    wait_saved,
)
from tests.support.live import start_live_server
from tests.support.tcpproxy import TcpProxy

pytestmark = [pytest.mark.browser, pytest.mark.slow]
def test_attempt_answer_reload_end_review(demo_server, page):
    server = demo_server
    hosts = set()
    page.context.on("request", lambda request: hosts.add(urlsplit(request.url).hostname))
    launch_student(page, demo_server.url, "browser-1")
    exam = start_attempt(page)
    # The exam runs on the exam-content origin, inside the runtime frame of the attempt page.
    assert runtime_frame(page).url.startswith(f"{server.exam_origin}/runtime/frame.html")
    assert runtime_frame(page).child_frames[0].url.startswith(f"{server.exam_origin}/exams/")
    answer(exam, "q0p0", "4")
    answer(exam, "q1p0", "13")
    wait_saved(page)
    attempt_id = assert_database_equals_exam(page, server)
    stored = database_values(server, attempt_id)
    assert stored["cmi.interactions.0.learner_response"] == "4"
    assert stored["cmi.interactions.2.result"] == "0"  # the part's score, as Numbas writes it
    assert stored["cmi.score.raw"] == "1"
    assert '"q0p0":"4"' in stored["cmi.suspend_data"]

    page.reload()  # mid-attempt: resumes with the same state
    exam = exam_frame(page)
    exam.locator("#answer-q0p0").wait_for()
    assert exam.locator("#answer-q0p0").input_value() == "4"
    assert exam.locator("#answer-q1p0").input_value() == "13"
    answer(exam, "q0p1", "42")
    exam.locator("#end-exam").click()
    page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Finished')", timeout=15000)
    [(ended, completion, score_raw, score_max)] = server.query(
        "SELECT ended_at IS NOT NULL, completion_status, score_raw, score_max FROM attempts_attempt WHERE id = %s",
        (attempt_id,),
    )
    assert (ended, completion, score_raw, score_max) == (True, "completed", 2.0, 4.0)
    assert database_values(server, attempt_id)["cmi.exit"] == "normal"

    page.get_by_role("link", name="← Back to the activity").click()
    assert page.get_by_test_id("attempt-1").get_by_test_id("attempt-score").inner_text() == "2 / 4"
    page.get_by_test_id("review").click()
    exam = exam_frame(page)
    exam.locator("#mode-note").wait_for()
    assert exam.locator("#answer-q0p1").is_disabled()
    assert exam.locator("#answer-q0p1").input_value() == "42"
    assert page.locator(".badge").inner_text() == "Review (read-only)"
    assert hosts <= {"localhost", "exams.localhost", "127.0.0.1"}, hosts  # nothing leaves this machine
    assert "exams.localhost" in hosts


def test_websocket_down_changes_go_over_http(demo_server, page):
    server = demo_server
    page.route_web_socket("**/ws/attempt/**", lambda ws: ws.close())
    launch_student(page, demo_server.url, "browser-2")
    exam = start_attempt(page)
    for part, value in (("q0p0", "4"), ("q0p1", "41"), ("q1p0", "11")):
        answer(exam, part, value)
    wait_saved(page)
    attempt_id = assert_database_equals_exam(page, server)
    assert database_values(server, attempt_id)["cmi.interactions.1.learner_response"] == "41"


def test_network_down_changes_wait_in_the_browser_and_are_resent(tmp_path, page):
    # A daphne reached only through a proxy that the test can cut.
    server = start_live_server(tmp_path, host="localhost")
    try:
        server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
        port = int(server.url.rsplit(":", 1)[1])
        proxy = TcpProxy(port)
        base = f"http://localhost:{proxy.port}"
        launch_student(page, base, "browser-3")
        exam = start_attempt(page)
        answer(exam, "q0p0", "4")
        wait_saved(page)

        proxy.cut()
        answer(exam, "q0p1", "42")
        answer(exam, "q1p0", "11")
        page.wait_for_function("document.getElementById('save-status').dataset.state === 'unsaved'", timeout=20000)
        assert int(page.locator("#save-status").get_attribute("data-pending")) > 0
        stored_during = database_values(server, attempt_id_of(page))
        assert stored_during.get("cmi.interactions.1.learner_response") is None
        pending = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('nlti:pending:')).length")
        assert pending == 1

        proxy.restore()
        wait_saved(page, timeout=30000)
        assert_database_equals_exam(page, server)
        proxy.close()
    finally:
        server.stop()
