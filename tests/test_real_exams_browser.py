"""Real Numbas exams from the editor (../shared/fixtures/exams: Numbas 6.3 with MathJax 2.7.9,
Numbas 10 with MathJax 4) through the whole flow, on the split origins, in Chromium: an
instructor uploads the package, a student starts it, the maths is typeset by the MathJax copies
the content origin serves (no request leaves the machine), an answer reaches the database,
a reload resumes with the same random numbers, extra time reaches the open exam, the exam
ends completed, and student and instructor review it read-only.

The exams are not part of the repository, so the test skips without them.
Screenshots go to test-artifacts/screenshots/real-exam-<exam>-*.png."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.support.attempt_page import (
    assert_database_equals_exam,
    attempt_id_of,
    database_values,
    exam_frame,
    launch_instructor,
    launch_student,
    wait_saved,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHARED_EXAMS = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "exams"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
LOCAL_HOSTS = {"localhost", "exams.localhost", "127.0.0.1"}
WAIT_MS = 30000
EXTRA_MINUTES = 15

# The exam object: Numbas 6 keeps it in Numbas.exam; Numbas 10 on its <numbas-exam> element.
EXAM_JS = "((window.Numbas && Numbas.exam) || document.querySelector('numbas-exam').viewModel.exam().exam)"
QUESTION_1_JS = f"""() => {{
    const question = {EXAM_JS}.questionList[0];
    const value = (name) => Numbas.jme.unwrapValue(question.scope.getVariable(name));
    return {{a: value('a'), b: value('b'), coef: value('coef'), g: value('g')}};
}}"""
# Question 1 ("Bézout"): "Find the Bézout coefficients and the gcd of {a} and {b}:
# [[0]]$\times \var{a} +$ [[1]]$\times \var{b} =$ [[2]]", three number-entry gaps of 1 mark.
GAPS = ("p0g0", "p0g1", "p0g2")


@dataclass(frozen=True)
class RealExam:
    name: str
    mathjax_version: str  # MathJax.version starts with this
    typeset: str  # what MathJax puts in the page for each piece of maths
    submit: str  # the part's button
    question_1_in_review: tuple[str, str]  # the role and name that open question 1 from the results


EXAMS = [
    RealExam("numbas6", "2.7.9", ".MathJax", "Submit answer", ("button", "Review")),
    RealExam("numbas10", "4.", "mjx-container", "Save answer", ("link", "Question 1")),
]


def package_of(exam: RealExam) -> Path:
    return SHARED_EXAMS / f"advanced-number-theory-{exam.name}.zip"


# Skipped before any server or browser starts when the shared fixtures are absent (as in CI).
REAL_EXAMS = [
    pytest.param(exam, id=exam.name, marks=pytest.mark.skipif(
        not package_of(exam).is_file(), reason=f"{package_of(exam)} is absent (not part of the repository)"))
    for exam in EXAMS
]


class LocalOnly:
    """Every request a browser context makes, recorded; any that would leave 127.0.0.0/8 is
    aborted (and the test fails on it). Answers of 400 and more from the exam-content origin are
    kept too: a missing MathJax file shows there. (Routing also turns off the browser's HTTP
    cache, so every reload fetches MathJax again: slower than a student's browser, never faster.)"""

    def __init__(self, context, exam_origin: str):
        self.urls: list[str] = []
        self.outside: list[str] = []
        self.content_errors: list[str] = []
        self.failed: list[str] = []
        self.exam_origin = exam_origin
        context.route("**/*", self._route)
        context.on("request", lambda request: self.urls.append(request.url))
        context.on("response", self._response)
        context.on("requestfailed", lambda request: self.failed.append(f"{request.url} {request.failure}"))
        context.on("page", self._page)
        for page in context.pages:
            self._page(page)

    def _page(self, page):
        page.on("websocket", lambda socket: self.urls.append(socket.url))

    def _route(self, route):
        host = urlsplit(route.request.url).hostname
        if host is not None and host not in LOCAL_HOSTS:
            self.outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def _response(self, response):
        if response.status >= 400 and response.url.startswith(self.exam_origin):
            self.content_errors.append(f"{response.status} {response.url}")

    def assert_stayed_local(self):
        assert self.outside == []
        network = [url for url in self.urls if urlsplit(url).scheme in ("http", "https", "ws", "wss")]
        assert network and {urlsplit(url).hostname for url in network} <= LOCAL_HOSTS
        assert self.content_errors == []
        assert [failure for failure in self.failed if self.exam_origin in failure] == []


def eventually(page, read, good, timeout_ms=WAIT_MS):
    """read() once good(value) holds, or its last value after the timeout. Waits with Playwright,
    which meanwhile takes in the browser's events (frames attached, ...)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not good(value := read()) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    return value


def numbas_frame(page):
    """The exam's own Frame (content origin, inside the runtime frame), to run script in."""
    frames = eventually(page, lambda: [frame for frame in page.frames if "/exams/" in frame.url], bool)
    assert frames, f"no exam frame in {[frame.url for frame in page.frames]}"
    return frames[0]


def wait_for_numbas(frame, condition: str):
    frame.wait_for_function(f"() => {{ try {{ return Boolean({condition}); }} catch (e) {{ return false; }} }}",
                            timeout=WAIT_MS)


def wait_stored(page, server, attempt_id, expected: dict[str, str]):
    """Until the server's database holds these values (the attempt page saves in batches)."""
    stored = eventually(page, lambda: database_values(server, attempt_id),
                        lambda stored: all(stored.get(key) == value for key, value in expected.items()))
    assert {key: stored.get(key) for key in expected} == expected


def interaction_keys(stored: dict[str, str]) -> dict[str, str]:
    """Numbas part path (q0p0g1, ...) -> its cmi.interactions.N prefix."""
    return {value: key.removesuffix("id") for key, value in stored.items()
            if re.fullmatch(r"cmi\.interactions\.\d+\.id", key)}


def seconds(clock: str) -> int:
    hours, minutes, secs = re.search(r"(\d+):(\d\d):(\d\d)", clock).groups()
    return int(hours) * 3600 + int(minutes) * 60 + int(secs)


def time_remaining(exam) -> int:
    return seconds(exam.get_by_text("Time remaining").first.evaluate("(label) => label.parentElement.innerText"))


def screenshot(page, exam: RealExam, step: str):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"real-exam-{exam.name}-{step}.png"), full_page=True)


def assert_maths_typeset(exam_locator, frame, real: RealExam):
    """Question 1's prompt has its two pieces of maths ("× a +", "× b =") typeset by MathJax,
    which happens a moment after the question shows."""
    prompt = exam_locator.locator("[data-part-path=p0] .prompt").first
    try:
        prompt.locator(real.typeset).nth(1).wait_for(state="attached", timeout=WAIT_MS)
    except PlaywrightTimeoutError:
        pass  # the assertion below shows what is there instead
    text = prompt.inner_text()
    assert prompt.locator(real.typeset).count() >= 2, f"no typeset maths ({real.typeset}) in {text!r}"
    assert "gcd of" in text
    for raw in ("$", "\\times", "\\var{"):
        assert raw not in text, f"raw LaTeX {raw!r} is visible: {text!r}"
    assert frame.evaluate("() => MathJax.version").startswith(real.mathjax_version)


def assert_isolated(frame, server):
    """The exam runs on the content origin and cannot reach the application's page above it."""
    assert frame.url.startswith(f"{server.exam_origin}/exams/")
    assert frame.evaluate("() => { try { return top.document.title } catch (e) { return 'blocked' } }") == "blocked"
    assert frame.evaluate("() => { try { return parent.parent.location.href } catch (e) { return 'blocked' } }") == "blocked"


@pytest.mark.parametrize("real", REAL_EXAMS)
def test_a_real_exam_runs_end_to_end_on_the_content_origin(real, demo_server, chromium, page):
    package = package_of(real)
    server = demo_server
    resource = f"real-exam-{real.name}"
    student_name = f"Real Student {real.name}"
    # 2. Every request of the student's and the instructor's browser stays on this machine
    # (checked at the end; anything else is aborted at once).
    student = LocalOnly(page.context, server.exam_origin)
    page.on("dialog", lambda dialog: dialog.accept())  # "leave this page?" when reloading an open exam
    teacher = chromium.new_context().new_page()
    teacher_requests = LocalOnly(teacher.context, server.exam_origin)
    try:
        # 1. The instructor uploads the package into an activity of its own; the student starts it.
        launch_instructor(teacher, server.url, f"teacher-{real.name}", resource_link_id=resource)
        teacher.set_input_files("#exam-package", str(package))
        with teacher.expect_navigation(timeout=WAIT_MS):
            teacher.get_by_role("button", name="Upload", exact=True).click()
        current = teacher.get_by_test_id("current-exam").inner_text()
        assert "Advanced Number Theory" in current and "6 questions" in current and "1 hour long" in current

        launch_student(page, server.url, f"student-{real.name}", resource_link_id=resource,
                       lis_person_name_full=student_name)
        page.get_by_test_id("start-attempt").click()
        page.wait_for_url(re.compile(r"/attempt/\d+/$"), timeout=WAIT_MS)
        attempt_id = attempt_id_of(page)
        exam = exam_frame(page)
        exam.get_by_role("button", name="Start").click(timeout=WAIT_MS)
        frame = numbas_frame(page)
        assert_isolated(frame, server)
        # 9. The exam runs on the content origin and cannot reach the attempt page (see also 8).
        # Numbas called Initialize and reported the attempt under way (Numbas 10 without MathJax
        # never gets this far).
        wait_stored(page, server, attempt_id, {"cmi.completion_status": "incomplete"})

        # 3. The maths is typeset: no raw LaTeX left in question 1's prompt.
        exam.locator("[data-part-path=p0g0] input").first.wait_for(timeout=WAIT_MS)
        wait_for_numbas(frame, f"{EXAM_JS}.questionList[0].parts[0].gaps.length === 3")
        assert_maths_typeset(exam, frame, real)
        if real.mathjax_version.startswith("4"):
            # Characters outside MathJax 4's built-in font data come from the content origin's copy
            # of the font package, not from jsdelivr.
            frame.evaluate("() => MathJax.tex2svgPromise('\\\\mathbb{Z} \\\\mathfrak{g}')")
            fonts = [url for url in student.urls if "/mathjax/fonts/mathjax-newcm-font/svg/dynamic/" in url]
            assert fonts and all(url.startswith(server.exam_origin) for url in fonts)
        screenshot(page, real, "question")

        # 4. Answer question 1's three gaps correctly (from its random variables) and submit.
        variables = frame.evaluate(QUESTION_1_JS)
        answers = dict(zip(GAPS, (str(variables["coef"][0]), str(variables["coef"][1]), str(variables["g"]))))
        for gap, value in answers.items():
            exam.locator(f"[data-part-path={gap}] input").first.fill(value)
        exam.get_by_role("button", name=real.submit).click()
        wait_stored(page, server, attempt_id, {"cmi.score.raw": "3"})
        wait_saved(page, timeout=WAIT_MS)
        stored = database_values(server, attempt_id)
        parts = interaction_keys(stored)
        for gap, value in answers.items():
            assert stored[f"{parts[f'q0{gap}']}learner_response"] == value
            assert stored[f"{parts[f'q0{gap}']}result"] == "1"
        assert stored[f"{parts['q0p0']}result"] == "3"
        assert stored["cmi.score.max"] == "10" and stored["cmi.objectives.0.score.raw"] == "3"
        assert '"randomSeed"' in stored["cmi.suspend_data"]
        assert_database_equals_exam(page, server)
        prompt = exam.locator("[data-part-path=p0] .prompt").first.inner_text()
        assert f"gcd of {variables['a']} and {variables['b']}" in prompt

        # 5. Reload: Numbas offers to resume; the same numbers and answers come back.
        page.reload()
        exam.get_by_role("button", name="Resume").click(timeout=WAIT_MS)
        exam.locator("[data-part-path=p0g0] input").first.wait_for(timeout=WAIT_MS)
        frame = numbas_frame(page)
        wait_for_numbas(frame, f"{EXAM_JS}.entry === 'resume' && {EXAM_JS}.questionList.length === 6 "
                               f"&& {EXAM_JS}.questionList[0].scope")
        assert frame.evaluate(QUESTION_1_JS) == variables
        assert f"gcd of {variables['a']} and {variables['b']}" in exam.locator("[data-part-path=p0] .prompt").first.inner_text()
        assert [exam.locator(f"[data-part-path={gap}] input").first.input_value() for gap in GAPS] == list(answers.values())
        assert_maths_typeset(exam, frame, real)
        screenshot(page, real, "resumed")

        # 6. Extra time from the instructor reaches the open exam, without a reload.
        assert frame.evaluate(f"() => {EXAM_JS}.settings.duration") == 3600
        before = time_remaining(exam)
        assert 3000 < before <= 3600
        frame.evaluate("() => { window.stillTheSamePage = true; }")
        teacher.get_by_test_id("students-link").click()
        teacher.get_by_label("Search by name, e-mail or LMS user id").fill(student_name)
        teacher.get_by_role("button", name="Search").click()
        teacher.get_by_role("link", name=student_name).click()
        teacher.get_by_label("Extra exam time (minutes)").fill(str(EXTRA_MINUTES))
        teacher.get_by_label("Reason (for your records)").fill("Extra time arrangement")
        teacher.get_by_test_id("save-access").click()
        assert "applies now" in teacher.get_by_test_id("message").inner_text()
        wait_for_numbas(frame, f"{EXAM_JS}.settings.duration === {3600 + EXTRA_MINUTES * 60}")
        assert frame.evaluate("() => window.stillTheSamePage") is True
        after = eventually(page, lambda: time_remaining(exam), lambda shown: shown > 3600)
        assert before + EXTRA_MINUTES * 60 - 120 < after <= before + EXTRA_MINUTES * 60
        screenshot(page, real, "extra-time")

        # 7. End the exam: Numbas asks for confirmation, then terminates; the attempt is completed.
        exam.get_by_role("button", name="End Exam").click()
        exam.get_by_role("button", name="OK").click()
        page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Finished')",
                               timeout=WAIT_MS)
        wait_saved(page, timeout=WAIT_MS)
        [(ended, completion, score_raw, score_max)] = server.query(
            "SELECT ended_at IS NOT NULL, completion_status, score_raw, score_max FROM attempts_attempt WHERE id = %s",
            (attempt_id,),
        )
        assert (ended, completion, score_raw, score_max) == (True, "completed", 3.0, 10.0)
        assert database_values(server, attempt_id)["cmi.exit"] == "normal"
        changes_at_end = changes_stored(server, attempt_id)
        screenshot(page, real, "ended")

        # 8. The student reviews the attempt (allowed at once by default) ...
        page.get_by_role("link", name="← Back to the activity").click()
        assert page.get_by_test_id("attempt-1").get_by_test_id("attempt-score").inner_text() == "3 / 10"
        page.get_by_test_id("review").click()
        assert_review(page, real, answers, variables, server)
        screenshot(page, real, "review-student")

        # ... and so does the instructor, from the attempt's page on the dashboard.
        teacher.get_by_test_id("attempt-link-1").click()
        with teacher.context.expect_page() as opened:
            teacher.get_by_test_id("review-link").click()
        review = opened.value
        assert_review(review, real, answers, variables, server)
        screenshot(review, real, "review-instructor")
        assert changes_stored(server, attempt_id) == changes_at_end  # reviews write nothing

        student.assert_stayed_local()
        teacher_requests.assert_stayed_local()
        assert any(url.startswith(f"{server.exam_origin}/mathjax/") for url in student.urls)
    finally:
        teacher.context.close()


def changes_stored(server, attempt_id) -> int:
    return server.query("SELECT count(*) FROM attempts_elementchange WHERE attempt_id = %s", (attempt_id,))[0][0]


def assert_review(page, real: RealExam, answers: dict[str, str], variables: dict, server):
    """The attempt page in review mode: Numbas shows the results, then question 1 with the
    stored answers, which cannot be changed."""
    assert page.locator(".badge").inner_text() == "Review (read-only)"
    exam = exam_frame(page)
    frame = numbas_frame(page)
    assert_isolated(frame, server)
    wait_for_numbas(frame, f"{EXAM_JS}.entry === 'review' && {EXAM_JS}.questionList.length === 6 "
                           f"&& {EXAM_JS}.questionList[0].scope")
    assert frame.evaluate(QUESTION_1_JS) == variables
    role, name = real.question_1_in_review
    exam.get_by_role(role, name=name, exact=True).first.click(timeout=WAIT_MS)
    for gap, value in answers.items():
        field = exam.locator(f"[data-part-path={gap}] input").first
        field.wait_for(timeout=WAIT_MS)
        assert field.input_value() == value
        assert field.is_disabled()
    assert_maths_typeset(exam, frame, real)
