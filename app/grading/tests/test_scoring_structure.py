"""Scores out of the exam's structure (grading.scoring.with_structure / structure_total): what
an attempt has not answered counts with its marks; a random subset leaves the total to the
attempt; a re-marked gap moves its gap-fill part."""

import pytest

from grading import scoring

STRUCTURE = [
    {"name": "A", "picking": "all-ordered", "marks": 3, "parts": [
        {"type": "gapfill", "marks": 3, "gaps": [{"type": "numberentry", "marks": 1},
                                                 {"type": "numberentry", "marks": 2}]}]},
    {"name": "B", "picking": "all-ordered", "marks": 1, "parts": [{"type": "numberentry", "marks": 1}]},
]


def test_nothing_answered_yet_is_zero_out_of_the_whole_total():
    score = scoring.attempt_score({"cmi.objectives.0.id": "q0"}, structure=STRUCTURE)
    assert (score.raw, score.max, score.scaled) == (0, 4, 0)
    assert [(q.id, q.max) for q in score.questions] == [("q0", 3), ("q1", 1)]
    assert [(p.id, p.max) for p in score.questions[0].parts] == [("q0p0", 3), ("q0p0g0", 1), ("q0p0g1", 2)]


def test_a_reported_maximum_below_the_package_s_is_raised_and_scaled_follows():
    values = {"cmi.score.raw": "1", "cmi.score.max": "1", "cmi.score.scaled": "1"}
    assert scoring.attempt_score(values, structure=STRUCTURE).scaled == 0.25
    assert scoring.attempt_score(values).scaled == 1  # without the structure: what the exam said


def test_a_random_subset_is_out_of_the_attempt_s_own_questions():
    random = [dict(q, picking="random-subset") for q in STRUCTURE]
    assert scoring.structure_total(random) is None
    values = {"cmi.objectives.0.id": "q0", "cmi.objectives.0.score.raw": "1", "cmi.objectives.0.score.max": "3",
              "cmi.score.raw": "1", "cmi.score.max": "3"}
    assert scoring.attempt_score(values, structure=random).max == 3


def test_a_re_marked_gap_moves_its_part_unless_the_part_itself_is_re_marked():
    values = {"cmi.objectives.0.id": "q0", "cmi.objectives.0.score.raw": "1", "cmi.objectives.0.score.max": "3",
              "cmi.interactions.0.id": "q0p0", "cmi.interactions.0.weighting": "3", "cmi.interactions.0.result": "1",
              "cmi.interactions.1.id": "q0p0g0", "cmi.interactions.1.weighting": "1", "cmi.interactions.1.result": "1",
              "cmi.interactions.2.id": "q0p0g1", "cmi.interactions.2.weighting": "2", "cmi.interactions.2.result": "0"}
    gap = scoring.attempt_score(values, overrides={"q0p0g1": 2}, structure=STRUCTURE)
    assert {p.id: p.raw for p in gap.questions[0].parts} == {"q0p0": 3, "q0p0g0": 1, "q0p0g1": 2}
    assert (gap.raw, gap.max) == (3, 4)
    both = scoring.attempt_score(values, overrides={"q0p0g1": 2, "q0p0": 0.5}, structure=STRUCTURE)
    assert (both.questions[0].parts[0].raw, both.raw) == (0.5, 0.5)


@pytest.mark.django_db
def test_the_lms_is_told_the_exam_s_whole_maximum_for_an_attempt_that_reported_less(consumer):
    import uuid

    from django.contrib.auth import get_user_model

    from attempts.models import Attempt
    from exams.models import ExamPackage
    from grading.selectors import graded_attempts
    from lms.models import Resource

    resource = Resource.objects.create(consumer=consumer, resource_link_id="ags-max", title="T")
    exam = ExamPackage.objects.create(resource=resource, version=1, title="Exam", launch_href="index.html",
                                      structure=STRUCTURE, directory=uuid.uuid4().hex, file_count=1,
                                      expanded_bytes=1, sha256="0" * 64)
    user = get_user_model().objects.create(username="s")
    Attempt.objects.create(resource=resource, user=user, exam=exam, number=1, score_raw=1, score_max=1)
    Attempt.objects.create(resource=resource, user=user, exam=exam, number=2, score_raw=1, score_max=9)
    graded = graded_attempts(keys=[(resource.pk, user.pk, 1), (resource.pk, user.pk, 2)])
    assert graded[(resource.pk, user.pk, 1)].score_max == 4
    assert graded[(resource.pk, user.pk, 2)].score_max == 9  # the exam's own report is never lowered
