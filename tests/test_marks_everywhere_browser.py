"""In Chromium: an unfinished attempt's marks are out of the exam's full total, and the same on
every page and in the CSV — the student's page, the instructor's students list, student page and
attempt page, the grades page, the statistics page and the attempts CSV — at 1280×800 and
390×844; with the demo exam (re-marked by the instructor, whose review then says so) and with
the real Numbas 10 exam when ../shared/fixtures is present. The exam shows the student's LMS
name (cmi.learner_name), not "Name (our row id)".

Screenshots go to test-artifacts/screenshots/marks-everywhere-*.png."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from tests.support.attempt_page import (
    DEMO_SECRET,
    answer,
    attempt_id_of,
    exam_frame,
    launch_instructor,
    launch_student,
    wait_saved,
)
from tests.support.live import start_live_server, stop_process
from tests.test_accessibility import axe_problems
from tests.test_real_exams_browser import (
    EXAM_JS,
    GAPS,
    QUESTION_1_JS,
    WAIT_MS,
    numbas_frame,
    wait_for_numbas,
    wait_stored,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REAL_EXAM = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "exams" / \
    "advanced-number-theory-numbas10.zip"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of its own with a Huey worker of its own (its queue a SQLite file: REDIS_URL
    empty), which writes the attempts CSV."""
    directory = tmp_path_factory.mktemp("marks-everywhere")
    server = start_live_server(directory, extra_env={"REDIS_URL": ""})
    server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
    worker = server.start_worker(directory / "huey.log")
    yield server
    stop_process(worker)
    server.stop()


def _shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.screenshot(path=str(SCREENSHOTS / f"marks-everywhere-{name}-{size['width']}.png"), full_page=True)


def _activity(chromium, server, tmp_path, link: str, package: bytes):
    """An instructor's activity with this exam, counting attempts not completed yet."""
    teacher = chromium.new_context(viewport=DESKTOP).new_page()
    launch_instructor(teacher, server.url, f"teacher-{link}", resource_link_id=link)
    zip_path = tmp_path / f"{link}.zip"
    zip_path.write_bytes(package)
    teacher.set_input_files("#exam-package", str(zip_path))
    with teacher.expect_navigation(timeout=WAIT_MS):
        teacher.get_by_role("button", name="Upload", exact=True).click()
    settings = teacher.get_by_test_id("resource-settings")
    settings.get_by_label("Count attempts the student has not completed").check()
    with teacher.expect_navigation(timeout=WAIT_MS):
        settings.get_by_test_id("save-settings").click()
    resource_id = int(re.search(r"/resource/(\d+)/", teacher.url)[1])
    return teacher, resource_id


def _attempts_csv(teacher, server, resource_id) -> dict[str, str]:
    teacher.goto(f"{server.url}/resource/{resource_id}/instructor/reports/")
    with teacher.expect_navigation(timeout=WAIT_MS):
        teacher.get_by_test_id("request-attempts").click()
    newest = teacher.get_by_test_id("report-row").first  # newest first
    download_link = newest.get_by_test_id("report-download")
    download_link.wait_for(timeout=WAIT_MS)  # the page polls while the worker writes it
    with teacher.expect_download(timeout=WAIT_MS) as info:
        download_link.click()
    [row] = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8-sig").read())))
    return row


def assert_marks_everywhere(student, teacher, server, resource_id, name: str, raw: str, max_: str, percent: int,
                            shot: str):
    """The attempt's marks as raw / max and its percentage on every page, at both sizes."""
    base = f"{server.url}/resource/{resource_id}"
    for size in (DESKTOP, PHONE):
        student.set_viewport_size(size)
        teacher.set_viewport_size(size)
        student.goto(f"{base}/")
        assert student.get_by_test_id("attempt-1").get_by_test_id("attempt-score").inner_text() == f"{raw} / {max_}"
        _shot(student, f"{shot}-student")

        teacher.goto(f"{base}/instructor/students/")
        row = teacher.get_by_test_id("student-row").filter(has_text=name)
        assert f"{percent}\u00a0%" in row.locator("td").nth(3).inner_text()  # choose, name, attempts, grade
        row.get_by_role("link", name=name).click()
        assert f"{raw} / {max_}" in teacher.get_by_test_id("attempt-1").inner_text()
        assert teacher.get_by_test_id("person-grade").inner_text().startswith(f"{percent}\u00a0%")
        teacher.get_by_test_id("attempt-link-1").click()
        assert teacher.get_by_test_id("attempt-score").inner_text().startswith(f"{percent}\u00a0% ({raw} / {max_})")
        _shot(teacher, f"{shot}-attempt")

        teacher.goto(f"{base}/instructor/")
        teacher.get_by_test_id("grades-link").click()
        assert teacher.get_by_test_id("grade-score").first.inner_text().startswith(f"{percent}\u00a0%")

        teacher.goto(f"{base}/instructor/statistics/?all=1")
        assert teacher.get_by_test_id("headline-4").inner_text() == f"{percent:.1f}%"  # the mean of one attempt
        assert teacher.get_by_test_id("headline-5").inner_text() == f"{percent:.1f}%"  # its median
        _shot(teacher, f"{shot}-statistics")
    row = _attempts_csv(teacher, server, resource_id)
    assert (row["score_raw"], row["score_max"]) == (raw, max_)
    assert float(row["scaled"]) == pytest.approx(percent / 100)


def test_the_demo_exam_unfinished_and_re_marked(server, chromium, tmp_path):
    from exams.demo import demo_exam_zip

    teacher, resource_id = _activity(chromium, server, tmp_path, "marks-demo", demo_exam_zip())
    student = chromium.new_context(viewport=DESKTOP).new_page()
    try:
        launch_student(student, server.url, "lms-alice-77", resource_link_id="marks-demo",
                       lis_person_name_full="Alice Marks")
        student.get_by_test_id("start-attempt").click()
        exam = exam_frame(student)
        exam.locator("#answer-q0p0").wait_for(timeout=WAIT_MS)
        # The exam greets the student by the name the LMS sent, never by our row id.
        assert exam.locator("#welcome").inner_text() == "Hello, Alice Marks."
        answer(exam, "q0p0", "4")
        answer(exam, "q0p1", "42")  # question 1 right (2 marks); question 2 (2 marks) not answered
        wait_saved(student)
        attempt_id = attempt_id_of(student)
        [(ended, state_id)] = server.query(
            "SELECT ended_at IS NOT NULL, (SELECT value FROM attempts_element WHERE attempt_id = %s "
            "AND key = 'cmi.score.raw') FROM attempts_attempt WHERE id = %s", (attempt_id, attempt_id))
        assert (ended, state_id) == (False, "2")
        assert_marks_everywhere(student, teacher, server, resource_id, "Alice Marks", "2", "4", 50, "demo")

        # The instructor gives 1 of question 2's marks: 3 / 4 everywhere ...
        teacher.set_viewport_size(DESKTOP)
        teacher.goto(f"{server.url}/resource/{resource_id}/instructor/students/")
        teacher.get_by_role("link", name="Alice Marks").click()
        teacher.get_by_test_id("attempt-link-1").click()
        teacher.get_by_test_id("part-q1p0").locator("summary").click()
        teacher.locator("#mark-q1p0").fill("1")
        teacher.locator("#reason-q1p0").fill("method marks")
        with teacher.expect_navigation(timeout=WAIT_MS):
            teacher.get_by_test_id("remark-q1p0").click()
        assert_marks_everywhere(student, teacher, server, resource_id, "Alice Marks", "3", "4", 75, "demo-remarked")

        # ... and the review (the exam frame shows the exam's own 2 / 4) says what changed.
        for size in (DESKTOP, PHONE):
            review = chromium.new_context(viewport=size, storage_state=teacher.context.storage_state()).new_page()
            review.goto(f"{server.url}/attempt/{attempt_id}/")
            note = review.get_by_test_id("mark-changes")
            note.wait_for(timeout=WAIT_MS)
            assert note.is_visible()
            rows = [re.sub(r"\s+", " ", text).strip() for text in note.locator("tr[data-testid]").all_inner_texts()]
            assert rows == ["Question 2, part a 0 / 2 1 / 2 (re-marked by an instructor)", "Total 2 / 4 3 / 4"]
            exam_frame(review).locator("#answer-q0p0").wait_for(timeout=WAIT_MS)  # the exam runs below it
            assert not axe_problems(review, f"review with the changed marks at {size['width']} px")
            _shot(review, "demo-review-note")
            review.context.close()
    finally:
        student.context.close()
        teacher.context.close()


@pytest.mark.skipif(not REAL_EXAM.is_file(), reason=f"{REAL_EXAM} is absent (not part of the repository)")
def test_the_real_exam_unfinished(server, chromium, tmp_path):
    teacher, resource_id = _activity(chromium, server, tmp_path, "marks-real", REAL_EXAM.read_bytes())
    student = chromium.new_context(viewport=DESKTOP).new_page()
    student.on("dialog", lambda dialog: dialog.accept())
    try:
        launch_student(student, server.url, "lms-bob-88", resource_link_id="marks-real",
                       lis_person_name_full="Bob Real")
        student.get_by_test_id("start-attempt").click()
        student.wait_for_url(re.compile(r"/attempt/\d+/$"), timeout=WAIT_MS)
        attempt_id = attempt_id_of(student)
        exam = exam_frame(student)
        exam.get_by_role("button", name="Start").click(timeout=WAIT_MS)
        frame = numbas_frame(student)
        wait_for_numbas(frame, f"{EXAM_JS}.questionList[0].parts[0].gaps.length === 3")
        # Numbas has the LMS's identity (it shows the name on its pages), not our row id.
        assert frame.evaluate(f"() => [{EXAM_JS}.student_name, {EXAM_JS}.student_id]") == ["Bob Real", "lms-bob-88"]
        variables = frame.evaluate(QUESTION_1_JS)
        for gap, value in zip(GAPS, (variables["coef"][0], variables["coef"][1], variables["g"])):
            exam.locator(f"[data-part-path={gap}] input").first.fill(str(value))
        exam.get_by_role("button", name="Save answer").click()
        wait_stored(student, server, attempt_id, {"cmi.score.raw": "3"})
        wait_saved(student, timeout=WAIT_MS)
        assert server.query("SELECT ended_at IS NULL FROM attempts_attempt WHERE id = %s", (attempt_id,)) == [(True,)]
        # Question 1's 3 marks of the exam's 10, with 5 questions not answered yet.
        assert_marks_everywhere(student, teacher, server, resource_id, "Bob Real", "3", "10", 30, "real")
    finally:
        student.context.close()
        teacher.context.close()
