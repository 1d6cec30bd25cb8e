"""Issue 15, point 5, in Chromium at 1280×800 and 390×844: an instructor replaces the demo exam
while a student has it open — the upload form warns with the count, and the server refuses the
upload until the instructor confirms — then lists the versions, downloads one (the zip uploaded,
as an attachment), and moves the student's attempt to the corrected version. The student's open
exam reloads onto the new version by itself, with their answers, saves into it, and the next
open runs it too. Every instructor page on the way passes axe-core's checks.

With ../shared/fixtures/exams/advanced-number-theory-numbas10.zip (skipped without it), the same
move with the real Numbas 10 exam: the student's answers and random numbers come back on the new
version."""

from __future__ import annotations

import re
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from exams.demo import demo_exam_zip
from tests.support.attempt_page import (
    answer,
    attempt_id_of,
    database_values,
    exam_frame,
    launch_instructor,
    launch_student,
    start_attempt,
    wait_saved,
)
from tests.support.packages import demo_exam_variant
from tests.support.widths import DESKTOP, fits_at_both_widths

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
WAIT_MS = 30000
CORRECTED = demo_exam_variant(replace={
    "exam.js": [("What is 6 × 7?", "What is 7 × 6?")],
    "index.html": [("<h1>Demo exam</h1>", "<h1>Demo exam (corrected)</h1>")],
})


def exam_version_of(server, attempt_id) -> int:
    [(version,)] = server.query("SELECT e.version FROM attempts_attempt a JOIN exams_exampackage e "
                                "ON e.id = a.exam_id WHERE a.id = %s", (attempt_id,))
    return version


def upload(teacher, name: str, data: bytes):
    teacher.set_input_files("#exam-package", {"name": name, "mimeType": "application/zip", "buffer": data})


def test_an_instructor_moves_an_open_attempt_to_a_corrected_version(demo_server, chromium):
    server, viewport = demo_server, DESKTOP
    width = viewport["width"]
    resource = f"versions-{width}"
    teacher_context = chromium.new_context(viewport=viewport, accept_downloads=True)
    student_context = chromium.new_context(viewport=viewport)
    teacher, student = teacher_context.new_page(), student_context.new_page()
    student.on("dialog", lambda dialog: dialog.accept())
    try:
        # The instructor uploads version 1; nobody has started it, so there is no warning.
        launch_instructor(teacher, server.url, f"versions-teacher-{width}", resource_link_id=resource)
        assert teacher.get_by_test_id("replace-warning").count() == 0
        upload(teacher, "demo.zip", demo_exam_zip())
        with teacher.expect_navigation(timeout=WAIT_MS):
            teacher.get_by_role("button", name="Upload", exact=True).click()

        # A student starts it and answers two parts; the exam stays open in their browser.
        launch_student(student, server.url, f"versions-student-{width}", resource_link_id=resource)
        exam = start_attempt(student)
        answer(exam, "q0p0", "4")
        answer(exam, "q0p1", "42")
        wait_saved(student)
        attempt_id = attempt_id_of(student)
        assert "What is 6 × 7?" in exam.locator("#questions").inner_text()

        # The upload form now warns, with the count; without the confirmation the server refuses.
        teacher.reload()
        warning = teacher.get_by_test_id("replace-warning")
        assert "1 attempt (1 in progress, 0 finished)" in warning.inner_text()
        fits_at_both_widths(teacher, "instructor page with the replace warning")
        upload(teacher, "corrected.zip", CORRECTED)
        teacher.evaluate("document.getElementById('confirm-replace').required = false")  # as a script could
        teacher.get_by_role("button", name="Upload", exact=True).click()
        teacher.wait_for_function("document.getElementById('exam-upload-status').dataset.state === 'error'")
        assert "1 attempt has been started on this exam" in teacher.locator("#exam-upload-status").inner_text()
        [(versions,)] = server.query("SELECT count(*) FROM exams_exampackage e JOIN lms_resource r "
                                     "ON r.id = e.resource_id WHERE r.resource_link_id = %s", (resource,))
        assert versions == 1
        teacher.get_by_label("I understand: replace the exam for new attempts").check()
        with teacher.expect_navigation(timeout=WAIT_MS):
            teacher.get_by_role("button", name="Upload", exact=True).click()

        # The versions: v2 current and unused, v1 with the student's attempt.
        assert "Demo exam (corrected)" in teacher.get_by_test_id("current-exam").inner_text()
        v2, v1 = teacher.get_by_test_id("version-2"), teacher.get_by_test_id("version-1")
        assert v2.get_by_test_id("version-current").count() == 1
        assert "0 in progress, 0 finished" in v2.get_by_test_id("version-attempts").inner_text()
        assert "1 in progress, 0 finished" in v1.get_by_test_id("version-attempts").inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        teacher.screenshot(path=str(SCREENSHOTS / f"exam-versions-{width}.png"), full_page=True)
        fits_at_both_widths(teacher, "instructor page with two versions")

        # Download version 1: the zip as it was uploaded, as a file, not a page.
        with teacher.expect_download() as download:
            v1.get_by_test_id("version-download").click()
        assert download.value.suggested_filename == "Demo-exam-v1.zip"
        data = Path(download.value.path()).read_bytes()
        assert data == demo_exam_zip()
        assert "index.html" in zipfile.ZipFile(BytesIO(data)).namelist()

        # Move the attempt: choose it, see the counts, confirm.
        teacher.get_by_test_id("move-link").click()
        teacher.get_by_test_id(f"move-row-{attempt_id}").wait_for()
        fits_at_both_widths(teacher, "move page")
        teacher.get_by_label(f"Student versions-student-{width}").check()
        teacher.get_by_test_id("move-chosen").click()
        confirm = teacher.get_by_test_id("move-confirm")
        assert "1 attempt will move to version 2" in confirm.inner_text()
        assert "1 in progress" in confirm.get_by_test_id("move-in-progress").inner_text()
        assert "0 finished" in confirm.get_by_test_id("move-finished").inner_text()
        assert confirm.get_by_test_id("move-different-shape").count() == 0  # same questions and parts
        fits_at_both_widths(teacher, "move confirmation")
        teacher.get_by_label("Reason (kept with each move)").fill("Reworded question 1")
        teacher.get_by_test_id("move-confirm-button").click()
        assert "1 attempt moved to version 2" in teacher.get_by_test_id("exam-message").inner_text()
        assert "1 in progress, 0 finished" in teacher.get_by_test_id("version-2").get_by_test_id(
            "version-attempts").inner_text()
        assert exam_version_of(server, attempt_id) == 2
        [(kind, detail)] = server.query("SELECT kind, detail::text FROM attempts_attemptevent WHERE attempt_id = %s",
                                        (attempt_id,))
        assert kind == "moved" and '"to_version": 2' in detail and '"from_version": 1' in detail

        # The student's open exam is told and reloads onto version 2, with their answers.
        exam = exam_frame(student)
        exam.get_by_text("What is 7 × 6?").wait_for(timeout=WAIT_MS)
        assert exam.locator("#answer-q0p0").input_value() == "4"
        assert exam.locator("#answer-q0p1").input_value() == "42"
        # ... and what they answer now is saved into the moved attempt.
        answer(exam, "q1p0", "11")
        wait_saved(student, timeout=WAIT_MS)
        stored = database_values(server, attempt_id)
        assert '"q1p0":"11"' in stored["cmi.suspend_data"] and '"q0p0":"4"' in stored["cmi.suspend_data"]

        # The next open of the attempt runs version 2 as well.
        student.get_by_role("link", name="← Back to the activity").click()
        student.get_by_test_id("student-page").wait_for()
        student.goto(f"{server.url}/attempt/{attempt_id}/")
        exam = exam_frame(student)
        exam.get_by_text("What is 7 × 6?").wait_for(timeout=WAIT_MS)
        assert [exam.locator(f"#answer-{p}").input_value() for p in ("q0p0", "q0p1", "q1p0")] == ["4", "42", "11"]
        assert re.search(r"Demo exam \(corrected\)", student.title())
        student.screenshot(path=str(SCREENSHOTS / f"exam-versions-student-moved-{width}.png"), full_page=True)
    finally:
        teacher_context.close()
        student_context.close()


REAL_EXAM = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "exams" / \
    "advanced-number-theory-numbas10.zip"


def real_exam_variant(data: bytes) -> bytes:
    """The real exam with its title changed (manifest and source.exam): a new version whose
    questions are the same."""
    source, out = zipfile.ZipFile(BytesIO(data)), BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename in ("imsmanifest.xml", "source.exam"):
                text = content.decode("utf-8")
                assert "Advanced Number Theory" in text
                content = text.replace("Advanced Number Theory", "Advanced Number Theory (v2)").encode("utf-8")
            target.writestr(info, content)
    return out.getvalue()


@pytest.mark.skipif(not REAL_EXAM.is_file(), reason=f"{REAL_EXAM} is absent (not part of the repository)")
def test_a_real_numbas_10_attempt_moves_to_a_new_version_with_its_answers(demo_server, chromium):
    from tests.test_real_exams_browser import EXAM_JS, GAPS, QUESTION_1_JS, eventually, numbas_frame, wait_for_numbas

    server = demo_server
    resource = "versions-real-numbas10"
    teacher = chromium.new_context(viewport={"width": 1280, "height": 800}).new_page()
    student = chromium.new_context(viewport={"width": 1280, "height": 800}).new_page()
    student.on("dialog", lambda dialog: dialog.accept())
    try:
        launch_instructor(teacher, server.url, "versions-real-teacher", resource_link_id=resource)
        teacher.set_input_files("#exam-package", str(REAL_EXAM))
        with teacher.expect_navigation(timeout=WAIT_MS):
            teacher.get_by_role("button", name="Upload", exact=True).click()

        launch_student(student, server.url, "versions-real-student", resource_link_id=resource)
        student.get_by_test_id("start-attempt").click()
        student.wait_for_url(re.compile(r"/attempt/\d+/$"), timeout=WAIT_MS)
        attempt_id = attempt_id_of(student)
        exam = exam_frame(student)
        exam.get_by_role("button", name="Start").click(timeout=WAIT_MS)
        frame = numbas_frame(student)
        exam.locator("[data-part-path=p0g0] input").first.wait_for(timeout=WAIT_MS)
        wait_for_numbas(frame, f"{EXAM_JS}.questionList[0].parts[0].gaps.length === 3")
        variables = frame.evaluate(QUESTION_1_JS)
        answers = dict(zip(GAPS, (str(variables["coef"][0]), str(variables["coef"][1]), str(variables["g"]))))
        for gap, value in answers.items():
            exam.locator(f"[data-part-path={gap}] input").first.fill(value)
        exam.get_by_role("button", name="Save answer").click()
        wait_saved(student, timeout=WAIT_MS)
        old_directory = frame.url.split("/exams/")[1].split("/")[0]

        teacher.reload()
        assert "1 attempt (1 in progress, 0 finished)" in teacher.get_by_test_id("replace-warning").inner_text()
        upload(teacher, "advanced-number-theory-v2.zip", real_exam_variant(REAL_EXAM.read_bytes()))
        teacher.get_by_label("I understand: replace the exam for new attempts").check()
        with teacher.expect_navigation(timeout=WAIT_MS):
            teacher.get_by_role("button", name="Upload", exact=True).click()
        assert "Advanced Number Theory (v2)" in teacher.get_by_test_id("current-exam").inner_text()
        teacher.get_by_test_id("move-link").click()
        teacher.get_by_test_id("move-all").click()
        assert "1 attempt will move to version 2" in teacher.get_by_test_id("move-confirm").inner_text()
        teacher.get_by_test_id("move-confirm-button").click()
        assert "1 attempt moved to version 2" in teacher.get_by_test_id("exam-message").inner_text()
        assert exam_version_of(server, attempt_id) == 2

        # The open exam reloads onto version 2's files; Numbas resumes with the same numbers and answers.
        moved = eventually(student, lambda: [f.url for f in student.frames if "/exams/" in f.url],
                           lambda urls: bool(urls) and all(old_directory not in url for url in urls))
        assert moved and all(old_directory not in url for url in moved), moved
        exam = exam_frame(student)
        exam.get_by_role("button", name="Resume").click(timeout=WAIT_MS)
        exam.locator("[data-part-path=p0g0] input").first.wait_for(timeout=WAIT_MS)
        frame = numbas_frame(student)
        new_directory = frame.url.split("/exams/")[1].split("/")[0]
        assert new_directory != old_directory
        wait_for_numbas(frame, f"{EXAM_JS}.entry === 'resume' && {EXAM_JS}.questionList[0].scope")
        assert frame.evaluate(QUESTION_1_JS) == variables
        assert [exam.locator(f"[data-part-path={gap}] input").first.input_value() for gap in GAPS] == \
            list(answers.values())
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        student.screenshot(path=str(SCREENSHOTS / "exam-versions-real-numbas10-moved.png"), full_page=True)
    finally:
        teacher.context.close()
        student.context.close()
