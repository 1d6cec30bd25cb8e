"""In Chromium: an exam version whose marking was wrong, students' attempts on it, then a
corrected version; the instructor re-marks every attempt from the "Re-mark all attempts" page.
The exam marks each attempt again in the instructor's browser (on the exam-content origin); the
preview shows old → new as the exam computed them, applying stores them, and the changed grade
reaches the LMS (a local stub that checks every signature), delivered by a real Huey worker.

With the real Numbas exam fixture present (../shared/fixtures/exams), one real attempt is
re-marked the same way and its new marks are those the Numbas exam object holds."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from exams.demo import DEMO_EXAM_DIR, demo_exam_zip
from tests.support.attempt_page import (
    DEMO_SECRET,
    answer,
    answer_and_end,
    attempt_id_of,
    database_values,
    launch_instructor,
    launch_student,
    start_attempt,
    wait_saved,
)
from tests.support.lms_stub import LmsStub
from tests.support.live import own_redis_env, start_live_server, stop_process
from tests.test_accessibility import axe_problems

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT_MS = 60000


def faulty_demo_exam(tmp_path) -> str:
    """The demo exam with a marking mistake: "What is 6 × 7?" expects 41."""
    source = (DEMO_EXAM_DIR / "exam.js").read_text()
    wrong = source.replace('prompt: "What is 6 × 7?", answer: "42"', 'prompt: "What is 6 × 7?", answer: "41"')
    assert wrong != source
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(demo_exam_zip())) as original, zipfile.ZipFile(buffer, "w") as copy:
        for name in original.namelist():
            copy.writestr(name, wrong if name == "exam.js" else original.read(name))
    path = tmp_path / "demo-faulty.zip"
    path.write_bytes(buffer.getvalue())
    return str(path)


def corrected_demo_exam(tmp_path) -> str:
    path = tmp_path / "demo-corrected.zip"
    path.write_bytes(demo_exam_zip())
    return str(path)


@pytest.fixture
def stack(tmp_path):
    server = start_live_server(tmp_path, extra_env=own_redis_env("remark"))
    server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
    worker = server.start_worker(tmp_path / "huey.log")
    try:
        with LmsStub(consumers={"demo": DEMO_SECRET}) as stub:
            yield server, stub
    finally:
        stop_process(worker)
        server.stop()


def upload(teacher, package: str):
    teacher.set_input_files("#exam-package", package)
    if teacher.locator("#confirm-replace").count():  # students have started the exam: confirm replacing it
        teacher.check("#confirm-replace")
    with teacher.expect_navigation(timeout=WAIT_MS):
        teacher.get_by_role("button", name="Upload", exact=True).click()


class Recorded:
    """What the page sends the server for each attempt: the marks the exam computed in the
    marking frame (read on their way, the request goes on unchanged)."""

    def __init__(self, page):
        self.marks: dict[int, dict] = {}
        page.route(re.compile(r".*/instructor/remark/\d+/attempts/\d+/(\?.*)?$"), self._route)

    def _route(self, route):
        attempt = int(route.request.url.split("?")[0].rstrip("/").rsplit("/", 1)[1])
        self.marks[attempt] = json.loads(route.request.post_data or "{}")
        route.continue_()


def remark_all(teacher, scope_label="All attempts"):
    teacher.goto(teacher.url.split("/instructor/")[0] + "/instructor/remark/")
    teacher.get_by_label(scope_label).check()
    teacher.get_by_test_id("start").click()
    teacher.get_by_test_id("preview").or_(teacher.get_by_test_id("no-changes")).wait_for(timeout=WAIT_MS)


def preview_rows(teacher) -> dict[int, dict]:
    rows = {}
    for row in teacher.locator("[data-testid=preview] tbody tr").all():
        total = row.get_by_test_id("total")
        rows[int(row.get_attribute("data-attempt"))] = {
            "old": total.get_attribute("data-old"), "new": total.get_attribute("data-new"),
            "changes": {c.get_attribute("data-id"): c.inner_text() for c in row.locator(".change").all()},
        }
    return rows


def number(text) -> float:
    return float(text)


def test_remark_all_after_a_corrected_version_changes_marks_as_the_exam_computes(stack, page, chromium, tmp_path):
    server, stub = stack
    teacher = chromium.new_context(viewport={"width": 1280, "height": 800}).new_page()
    launch_instructor(teacher, server.url, "remark-teacher")
    instructor_url = teacher.url
    upload(teacher, faulty_demo_exam(tmp_path))

    # Alice answers 6 × 7 = 42 (right, but marked wrong) and finishes: 1 of 4 goes to the LMS.
    alice = "remark-alice-sourcedid"
    launch_student(page, server.url, "remark-alice", lis_outcome_service_url=stub.url, lis_result_sourcedid=alice)
    exam = start_attempt(page)
    answer_and_end(page, exam, {"q0p0": "4", "q0p1": "42", "q1p0": "13"})
    alice_attempt = attempt_id_of(page)
    assert stub.wait_for_grade(alice, 0.25, timeout=30), stub.requests
    # Bob answers 41 (wrong, but marked right) and has not finished.
    bob_page = chromium.new_context().new_page()
    launch_student(bob_page, server.url, "remark-bob")
    bob_exam = start_attempt(bob_page)
    answer(bob_exam, "q0p1", "41")
    wait_saved(bob_page)
    bob_attempt = attempt_id_of(bob_page)
    bob_page.context.close()
    before = {a: database_values(server, a) for a in (alice_attempt, bob_attempt)}
    assert (before[alice_attempt]["cmi.score.raw"], before[bob_attempt]["cmi.score.raw"]) == ("1", "1")

    teacher.goto(instructor_url)
    upload(teacher, corrected_demo_exam(tmp_path))
    recorded = Recorded(teacher)
    teacher.goto(instructor_url)
    teacher.get_by_test_id("remark-all-link").click()
    assert teacher.get_by_test_id("start-form").is_visible()
    problems = axe_problems(teacher, "re-mark page")
    remark_all(teacher)

    # Nothing of the re-mark is in the attempts yet.
    assert {a: database_values(server, a) for a in before} == before
    assert set(recorded.marks) == {alice_attempt, bob_attempt}
    rows = preview_rows(teacher)
    for attempt, sent in recorded.marks.items():
        exam_total = sent["values"]["cmi.score.raw"]  # what the corrected exam wrote through SetValue
        assert number(rows[attempt]["new"]) == number(exam_total)
        assert number(rows[attempt]["old"]) == number(before[attempt]["cmi.score.raw"])
    assert number(rows[alice_attempt]["new"]) > number(rows[alice_attempt]["old"])
    assert number(rows[bob_attempt]["new"]) < number(rows[bob_attempt]["old"])
    assert set(rows[alice_attempt]["changes"]) == {"q0", "q0p1"}
    assert teacher.get_by_test_id("progress").get_attribute("value") == "2"
    problems += axe_problems(teacher, "re-mark preview")
    artefacts = Path(__file__).resolve().parents[1] / "test-artifacts"
    artefacts.mkdir(exist_ok=True)
    teacher.screenshot(path=str(artefacts / "remark-all-preview.png"), full_page=True)
    teacher.set_viewport_size({"width": 390, "height": 844})
    assert teacher.get_by_test_id("apply").is_visible()
    problems += axe_problems(teacher, "re-mark preview (phone)")
    teacher.set_viewport_size({"width": 1280, "height": 800})

    teacher.get_by_test_id("apply").click()
    assert "2 attempts changed" in teacher.get_by_test_id("message").inner_text()
    for attempt, sent in recorded.marks.items():
        stored = database_values(server, attempt)
        assert {k: stored[k] for k in sent["values"] if k in stored and k.startswith("cmi.score.raw")} == {
            "cmi.score.raw": sent["values"]["cmi.score.raw"]}
        [(score_raw, version)] = server.query(
            "SELECT a.score_raw, e.version FROM attempts_attempt a JOIN exams_exampackage e ON e.id = a.exam_id "
            "WHERE a.id = %s", (attempt,))
        assert (score_raw, version) == (number(sent["values"]["cmi.score.raw"]), 3)
        assert server.query("SELECT count(*) FROM attempts_attemptevent WHERE attempt_id = %s AND kind = 'remarked'",
                            (attempt,))[0][0] == 1
    new_alice = number(recorded.marks[alice_attempt]["values"]["cmi.score.raw"]) / 4
    assert stub.wait_for_grade(alice, new_alice, timeout=30), stub.requests
    assert stub.accepted_for(alice) == [0.25, new_alice]

    # Applying again (a second click, a resent form) changes nothing more.
    events = server.query("SELECT count(*) FROM attempts_attemptevent")[0][0]
    teacher.evaluate("""() => { const f = document.createElement("form"); f.method = "post";
        f.action = location.pathname + "%d/apply/"; const t = document.createElement("input"); t.name = "csrfmiddlewaretoken";
        t.value = document.querySelector("[name=csrfmiddlewaretoken]").value; f.append(t); document.body.append(f); f.submit(); }"""
                     % server.query("SELECT max(id) FROM remarking_remarkrun")[0][0])
    teacher.get_by_test_id("message").wait_for()
    assert server.query("SELECT count(*) FROM attempts_attemptevent")[0][0] == events
    assert problems == []


# --- a real Numbas exam (skipped when the shared fixture is absent) ------------------------------

from tests.test_real_exams_browser import (  # noqa: E402
    EXAMS,
    GAPS,
    QUESTION_1_JS,
    exam_frame,
    numbas_frame,
    package_of,
    wait_for_numbas,
    wait_stored,
)
from tests.test_real_exams_browser import EXAM_JS as NUMBAS_EXAM_JS  # noqa: E402

NUMBAS10 = next(exam for exam in EXAMS if exam.name == "numbas10")


def gcd_worth_two(original, tmp_path) -> str:
    """The real exam with question 1's "gcd" gap worth 2 marks instead of 1 (a corrected version
    whose marking differs), in every place the package holds the exam's definition."""
    buffer = io.BytesIO()
    changed = 0
    with zipfile.ZipFile(original) as package, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as copy:
        for name in package.namelist():
            data = package.read(name)
            if name in ("index.html", "source.exam"):
                text = data.decode()
                for old, new in (('"customName": "gcd", "marks": 1', '"customName": "gcd", "marks": 2'),
                                 ('\\"customName\\": \\"gcd\\", \\"marks\\": 1', '\\"customName\\": \\"gcd\\", \\"marks\\": 2')):
                    changed += text.count(old)
                    text = text.replace(old, new)
                data = text.encode()
            copy.writestr(name, data)
    assert changed >= 2
    path = tmp_path / "real-corrected.zip"
    path.write_bytes(buffer.getvalue())
    return str(path)


@pytest.mark.skipif(not package_of(NUMBAS10).is_file(), reason="the real exam fixture is absent (not in the repository)")
def test_remark_all_with_a_real_numbas_exam_takes_the_marks_numbas_computes(stack, page, chromium, tmp_path):
    server, stub = stack
    resource = "remark-real"
    teacher = chromium.new_context().new_page()
    launch_instructor(teacher, server.url, "remark-real-teacher", resource_link_id=resource)
    instructor_url = teacher.url
    upload(teacher, str(package_of(NUMBAS10)))

    # The student answers question 1's three gaps correctly (3 marks) and carries on later.
    launch_student(page, server.url, "remark-real-student", resource_link_id=resource)
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("start-attempt").click()
    page.wait_for_url(re.compile(r"/attempt/\d+/$"), timeout=WAIT_MS)
    attempt = attempt_id_of(page)
    exam = exam_frame(page)
    exam.get_by_role("button", name="Start").click(timeout=WAIT_MS)
    frame = numbas_frame(page)
    exam.locator("[data-part-path=p0g0] input").first.wait_for(timeout=WAIT_MS)
    wait_for_numbas(frame, f"{NUMBAS_EXAM_JS}.questionList[0].parts[0].gaps.length === 3")
    variables = frame.evaluate(QUESTION_1_JS)
    for gap, value in zip(GAPS, (variables["coef"][0], variables["coef"][1], variables["g"])):
        exam.locator(f"[data-part-path={gap}] input").first.fill(str(value))
    exam.get_by_role("button", name=NUMBAS10.submit).click()
    wait_stored(page, server, attempt, {"cmi.score.raw": "3"})
    wait_saved(page, timeout=WAIT_MS)
    page.goto("about:blank")  # the student's window closes
    before = database_values(server, attempt)

    teacher.goto(instructor_url)
    upload(teacher, gcd_worth_two(package_of(NUMBAS10), tmp_path))
    recorded = Recorded(teacher)
    remark_all(teacher)
    assert database_values(server, attempt) == before  # nothing saved into the attempt while marking

    sent = recorded.marks[attempt]
    numbas = sent["exam"]  # what the Numbas exam object holds after marking the answers again
    assert numbas is not None and numbas["marks"] > 10  # the corrected version is worth more
    gcd = numbas["questions"][0]["parts"][0]["gaps"][2]
    assert (gcd["score"], gcd["marks"]) == (2, 2)  # the right gcd now earns the gap's new marks
    assert numbas["score"] == sum(q["score"] for q in numbas["questions"])
    assert number(sent["values"]["cmi.score.raw"]) == numbas["score"] > 3
    row = preview_rows(teacher)[attempt]
    assert (number(row["old"]), number(row["new"])) == (3, numbas["score"])

    teacher.get_by_test_id("apply").click()
    assert "1 attempts changed" in teacher.get_by_test_id("message").inner_text()
    stored = database_values(server, attempt)
    assert number(stored["cmi.score.raw"]) == numbas["score"]
    assert stored["cmi.suspend_data"] == before["cmi.suspend_data"]
