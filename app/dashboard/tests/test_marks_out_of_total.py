"""Marks out of the whole exam (issue 15): an unfinished attempt's total, questions, parts and
gaps are out of the exam's full marks, whatever has been answered, and the instructor's attempt
page, the instructor's student page, the student's page, the grade and the attempts CSV agree.
Gaps of a gap-fill part can be re-marked."""

import csv
import io
import json
from pathlib import Path

import pytest

from attempts import services as attempt_services
from attempts.models import PartOverride
from attempts.tests.factories import batch, launch, with_exam
from exams.services import exam_package_upload
from grading.models import GradeReport
from reports import services as report_services
from reports import storage
from tests.support.packages import MANIFEST, make_zip

pytestmark = pytest.mark.django_db

SHARED_EXAM = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "exams" / \
    "advanced-number-theory-numbas10.zip"

# The demo exam (q0: q0p0 1 mark, q0p1 1 mark; q1: q1p0 2 marks), as its page writes it: an
# objective's maximum only once one of its parts is answered.
DEMO_START = [
    ("cmi.completion_status", "incomplete"), ("cmi.score.min", "0"), ("cmi.score.max", "4"),
    ("cmi.objectives.0.id", "q0"), ("cmi.objectives.1.id", "q1"),
    ("cmi.interactions.0.id", "q0p0"), ("cmi.interactions.0.objectives.0.id", "q0"), ("cmi.interactions.0.weighting", "1"),
    ("cmi.interactions.1.id", "q0p1"), ("cmi.interactions.1.objectives.0.id", "q0"), ("cmi.interactions.1.weighting", "1"),
    ("cmi.interactions.2.id", "q1p0"), ("cmi.interactions.2.objectives.0.id", "q1"), ("cmi.interactions.2.weighting", "2"),
]
DEMO_Q0_ANSWERED = [
    ("cmi.interactions.0.result", "1"), ("cmi.interactions.1.result", "1"),
    ("cmi.objectives.0.score.raw", "2"), ("cmi.objectives.0.score.max", "2"),
    ("cmi.score.raw", "2"), ("cmi.score.scaled", "0.5"),
]


def _open_attempt(consumer, *, changes, upload=None):
    teacher = launch(consumer, user_id="teacher", roles="Instructor")
    resource = with_exam(teacher.membership.resource, max_attempts=1, include_incomplete=True,
                          show_score="always")
    if upload is not None:
        exam_package_upload(resource=resource, upload=io.BytesIO(upload), size=len(upload))
    student = launch(consumer, user_id="s1")
    attempt = attempt_services.attempt_start(membership=student.membership)
    token = attempt_services.attempt_take_over(attempt=attempt)
    for chunk in changes:
        attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id, batch=batch(token, chunk))
    attempt.refresh_from_db()
    assert attempt.ended_at is None
    return teacher, student, attempt, f"/resource/{resource.pk}/instructor/attempts/{attempt.pk}/"


def _grade(attempt):
    return GradeReport.objects.get(membership__user=attempt.user, resource=attempt.resource).score


def _attempts_csv(teacher, attempt, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        report = report_services.report_request(resource_id=attempt.resource_id, kind="attempts",
                                                user=teacher.membership.user)
    report.refresh_from_db()
    assert report.state == "done", report.error
    with open(storage.absolute_path(report.relative_path), encoding="utf-8-sig", newline="") as f:
        header, *rows = list(csv.reader(f))
    return [dict(zip(header, row)) for row in rows]


def _student_pages(teacher, student, attempt) -> tuple[str, str]:
    mine = student.get(f"/resource/{attempt.resource_id}/").content.decode()
    membership_id = student.membership.pk
    theirs = teacher.get(f"/resource/{attempt.resource_id}/instructor/students/{membership_id}/").content.decode()
    return mine, theirs


def test_an_unfinished_demo_attempt_is_marked_out_of_4_everywhere(consumer, django_capture_on_commit_callbacks):
    teacher, student, attempt, base = _open_attempt(consumer, changes=[DEMO_START, DEMO_Q0_ANSWERED])
    # An instructor's mark (the same as the exam's) makes the score recomputed from the questions:
    # the unanswered q1 still counts its 2 marks (it was "100% (2 / 2)").
    assert teacher.post(base + "remark/", {"part": "q0p1", "score": "1"}).status_code == 302
    page = teacher.get(base)
    score = page.context["score"]
    assert (score.raw, score.max, score.scaled) == (2, 4, 0.5)
    assert "50\u00a0% (2 / 4)" in page.content.decode()
    assert {q.id: q.max for q in score.questions} == {"q0": 2, "q1": 2}
    assert {p.id: p.max for q in score.questions for p in q.parts} == {"q0p0": 1, "q0p1": 1, "q1p0": 2}
    assert _grade(attempt) == 0.5
    mine, theirs = _student_pages(teacher, student, attempt)
    assert "2 / 4" in mine and "2 / 4" in theirs
    [row] = _attempts_csv(teacher, attempt, django_capture_on_commit_callbacks)
    assert (row["score_raw"], row["score_max"], row["scaled"]) == ("2", "4", "0.5")


def _gapfill_exam() -> bytes:
    """One question with a gap-fill part of two gaps (2 marks and 1 mark), and a 1-mark part."""
    source = {"name": "Gaps", "question_groups": [{"pickingStrategy": "all-ordered", "questions": [
        {"name": "Fill", "parts": [
            {"type": "gapfill", "marks": 0, "gaps": [{"type": "numberentry", "marks": 2},
                                                     {"type": "numberentry", "marks": 1}]},
            {"type": "numberentry", "marks": 1}]},
        {"name": "Later", "parts": [{"type": "numberentry", "marks": 4}]}]}]}
    return make_zip({
        "imsmanifest.xml": MANIFEST.format(title="Gaps", href="index.html"),
        "index.html": "<!doctype html><title>exam</title>",
        "source.exam": "// Numbas version: exam_results_page_options\n" + json.dumps(source),
        "numbas-manifest.json": json.dumps({"Numbas_version": "10.0"}),
    })


GAP_START = [  # as Numbas writes them: the gap-fill part, then its gaps
    ("cmi.completion_status", "incomplete"),
    ("cmi.objectives.0.id", "q0"),
    ("cmi.interactions.0.id", "q0p0"), ("cmi.interactions.0.weighting", "3"),
    ("cmi.interactions.1.id", "q0p0g0"), ("cmi.interactions.1.weighting", "2"),
    ("cmi.interactions.2.id", "q0p0g1"), ("cmi.interactions.2.weighting", "1"),
    ("cmi.interactions.3.id", "q0p1"), ("cmi.interactions.3.weighting", "1"),
]
GAP_ANSWERS = [  # gap 0 wrong, gap 1 right, part 1 right: 2 of question 0's 4 marks
    ("cmi.interactions.0.result", "1"), ("cmi.interactions.1.result", "0"), ("cmi.interactions.2.result", "1"),
    ("cmi.interactions.3.result", "1"),
    ("cmi.objectives.0.score.raw", "2"), ("cmi.objectives.0.score.max", "4"),
    ("cmi.score.raw", "2"),
]


def test_a_gap_can_be_re_marked_and_moves_its_part_question_and_grade(consumer):
    teacher, student, attempt, base = _open_attempt(consumer, changes=[GAP_START, GAP_ANSWERS],
                                                    upload=_gapfill_exam())
    page = teacher.get(base)
    assert page.context["score"].max == 8  # q1 (4 marks) not answered yet
    assert 'value="q0p0g0"' in page.content.decode()  # the page offers the gap
    response = teacher.post(base + "remark/", {"part": "q0p0g0", "score": "1.5", "reason": "method"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert PartOverride.objects.get().part_id == "q0p0g0"
    score = teacher.get(base).context["score"]
    parts = {p.id: p.raw for q in score.questions for p in q.parts}
    assert (parts["q0p0g0"], parts["q0p0"]) == (1.5, 2.5)
    assert (score.raw, score.max) == (3.5, 8)
    assert _grade(attempt) == pytest.approx(3.5 / 8)
    # Beyond the gap's marks is refused, with the reason.
    refused = teacher.post(base + "remark/", {"part": "q0p0g1", "score": "2"})
    assert refused.status_code == 400 and "between 0 and 1" in refused.content.decode()


def test_the_real_exam_unfinished_is_out_of_10_with_bezout_gaps_re_markable(consumer,
                                                                             django_capture_on_commit_callbacks):
    if not SHARED_EXAM.is_file():
        pytest.skip(f"{SHARED_EXAM} is absent (the shared fixtures are not part of the repository)")
    start = [("cmi.completion_status", "incomplete"), ("cmi.objectives.0.id", "q0"),
             ("cmi.interactions.0.id", "q0p0"), ("cmi.interactions.0.weighting", "3"),
             *[(f"cmi.interactions.{i + 1}.id", f"q0p0g{i}") for i in range(3)],
             *[(f"cmi.interactions.{i + 1}.weighting", "1") for i in range(3)]]
    answered = [("cmi.interactions.0.result", "1"), ("cmi.interactions.1.result", "1"),
                ("cmi.interactions.2.result", "0"), ("cmi.interactions.3.result", "0"),
                ("cmi.objectives.0.score.raw", "1"), ("cmi.objectives.0.score.max", "3"), ("cmi.score.raw", "1")]
    teacher, student, attempt, base = _open_attempt(consumer, changes=[start, answered],
                                                    upload=SHARED_EXAM.read_bytes())
    assert teacher.post(base + "remark/", {"part": "q0p0g1", "score": "1"}).status_code == 302
    score = teacher.get(base).context["score"]
    assert (score.raw, score.max) == (2, 10)
    assert [q.max for q in score.questions] == [3, 3, 1, 1, 1, 1]
    assert _grade(attempt) == pytest.approx(0.2)
    mine, theirs = _student_pages(teacher, student, attempt)
    assert "2 / 10" in mine and "2 / 10" in theirs
    [row] = _attempts_csv(teacher, attempt, django_capture_on_commit_callbacks)
    assert (row["score_raw"], row["score_max"], row["scaled"]) == ("2", "10", "0.2")
