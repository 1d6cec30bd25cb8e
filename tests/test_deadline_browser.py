"""Issue 15, point 1, in Chromium: when the server ends an open attempt at its closing time, the
attempt page stops saving and says so (the websocket's push, or the refusal of the next batch);
what was saved before is kept and nothing is shown as saved that was not."""

import pytest

from tests.support.attempt_page import answer, attempt_id_of, launch_student, start_attempt, wait_saved

pytestmark = [pytest.mark.browser, pytest.mark.slow]

END_NOW = (
    "from django.utils import timezone; from attempts.models import Attempt; from attempts import services; "
    "Attempt.objects.filter(pk={id}).update(deadline_at=timezone.now()); "
    "print(services.attempts_end_past_deadline())"
)


def test_the_page_says_the_exam_closed_and_keeps_what_was_saved(demo_server, page):
    server = demo_server
    launch_student(page, server.url, "deadline-1")
    exam = start_attempt(page)
    answer(exam, "q0p0", "4")
    wait_saved(page)
    attempt_id = attempt_id_of(page)

    # the closing time is now: the worker's task ends the attempt (moved in the database, not slept on)
    assert server.manage("shell", "-c", END_NOW.format(id=attempt_id)).strip().endswith("1")
    answer(exam, "q0p1", "42")  # after the closing time: refused if the push has not arrived first
    page.wait_for_function("document.getElementById('save-status').dataset.state === 'closed'", timeout=15000)
    status = page.locator("#save-status").inner_text()
    assert "This exam closed at" in status and "Everything saved before then is kept" in status

    ended, = server.query("SELECT ended_at IS NOT NULL FROM attempts_attempt WHERE id = %s", (attempt_id,))[0]
    assert ended
    saved = dict(server.query(
        "SELECT key, value FROM attempts_element WHERE attempt_id = %s AND key LIKE 'cmi.interactions.%%.learner_response'",
        (attempt_id,)))
    assert "4" in saved.values() and "42" not in saved.values()
