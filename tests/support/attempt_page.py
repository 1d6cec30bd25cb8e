"""Driving the attempt page in Chromium: launch a student into the demo resource, start an
attempt, answer the demo exam, and compare the server's database with what the exam set."""

from tests.support import lms as test_lms
from tests.support.lms_page import iframe_launch_html, serve_html

DEMO_SECRET = "attempt-secret"


def _launch(page, base_url, landing_test_id, **params):
    """A top-level signed launch into the demo course from a page on another origin."""
    signed = test_lms.sign(
        test_lms.launch_params(**{"context_id": "demo-course", **params}),
        key="demo", secret=DEMO_SECRET, url=f"{base_url}/lti/launch/",
    )
    html = iframe_launch_html(f"{base_url}/lti/launch/", signed).replace('target="tool"', "")
    with serve_html(html) as lms_url:
        page.goto(lms_url)
        page.get_by_test_id(landing_test_id).wait_for(timeout=15000)


def launch_student(page, base_url, user_id, **overrides):
    _launch(page, base_url, "student-page", user_id=user_id,
            **{"resource_link_id": "demo-exam", "lis_person_name_full": f"Student {user_id}", **overrides})


def launch_instructor(page, base_url, user_id, *, resource_link_id="demo-exam", **overrides):
    _launch(page, base_url, "instructor-page", user_id=user_id, roles="Instructor",
            resource_link_id=resource_link_id, **overrides)


def exam_frame(page):
    """The exam: on the exam-content origin, inside the runtime frame of the attempt page."""
    return page.frame_locator("#exam-frame").frame_locator("#exam")


def runtime_frame(page):
    """The exam runtime's frame (content origin), where the exam finds API_1484_11."""
    return next(frame for frame in page.frames if "/runtime/frame.html" in frame.url)


def start_attempt(page):
    page.get_by_test_id("start-attempt").click()
    exam = exam_frame(page)
    exam.locator("#answer-q0p0").wait_for(timeout=15000)
    return exam


def answer(exam, part, value):
    field = exam.locator(f"#answer-{part}")
    field.fill(value)
    field.dispatch_event("change")


def wait_saved(page, timeout=15000):
    page.wait_for_function(
        "document.getElementById('save-status').dataset.state === 'saved'", timeout=timeout
    )


def wait_stored(server, attempt_id, value: str, timeout: float = 15) -> None:
    """Wait until the attempt's stored suspend data (what the exam restores from when the attempt
    is opened again) holds `value`, a piece of its text (the demo exam's JSON: '"42"').
    wait_saved alone can pass before an answer just typed reaches the page's saver (the exam posts
    it from its frame, value by value, the suspend data last), so a test that then hands the
    attempt to another window waits for the database instead."""
    import time

    deadline = time.monotonic() + timeout
    while value not in database_values(server, attempt_id).get("cmi.suspend_data", ""):
        assert time.monotonic() < deadline, f"{value!r} never reached the stored suspend data"
        time.sleep(0.1)


HALF_MARKS = {"q0p0": "4", "q0p1": "42", "q1p0": "13"}  # the demo exam: 1 + 1 + 0 of 2 marks = 50 %


def answer_and_end(page, exam, answers=HALF_MARKS):
    """Answer the demo exam's parts, wait until everything is saved, end the exam and wait again."""
    for part, value in answers.items():
        answer(exam, part, value)
    wait_saved(page)
    exam.locator("#end-exam").click()
    exam.locator("#ended").wait_for()
    wait_saved(page)


def database_values(server, attempt_id):
    rows = server.query("SELECT key, value FROM attempts_element WHERE attempt_id = %s", (attempt_id,))
    return dict(rows)


def attempt_id_of(page):
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def assert_database_equals_exam(page, server):
    attempt_id = attempt_id_of(page)
    recorded = page.evaluate("window.numbasLtiAttempt.recorded")
    stored = database_values(server, attempt_id)
    assert {k: stored.get(k) for k in recorded} == recorded
    history = server.query(
        "SELECT count(*), count(DISTINCT sequence) FROM attempts_elementchange WHERE attempt_id = %s",
        (attempt_id,),
    )[0]
    assert history[0] == history[1], "a change was stored twice"
    return attempt_id


