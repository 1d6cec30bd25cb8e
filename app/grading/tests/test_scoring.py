"""Scores from what the exam reported, discounts, and the grading method — table driven."""

import pytest

from grading import scoring
from grading.scoring import FULL_MARKS, REMOVE, AttemptForGrade


def exam_values(questions, *, total=None):
    """Values as a Numbas exam stores them: questions [(id, [(part id, score, marks), ...])]."""
    values, part_index = {}, 0
    raw = max_ = 0.0
    for qi, (qid, parts) in enumerate(questions):
        q_raw = sum(p[1] for p in parts)
        q_max = sum(p[2] for p in parts)
        values |= {f"cmi.objectives.{qi}.id": qid, f"cmi.objectives.{qi}.score.raw": str(q_raw),
                   f"cmi.objectives.{qi}.score.max": str(q_max)}
        for pid, score, marks in parts:
            values |= {f"cmi.interactions.{part_index}.id": pid, f"cmi.interactions.{part_index}.result": str(score),
                       f"cmi.interactions.{part_index}.weighting": str(marks),
                       f"cmi.interactions.{part_index}.objectives.0.id": qid}
            part_index += 1
        raw, max_ = raw + q_raw, max_ + q_max
    values |= {"cmi.score.raw": str(total if total is not None else raw), "cmi.score.max": str(max_)}
    return values


# q0: parts 1/1 and 0/1; q1: 1/2; q2: 3/3 → 5 of 7 in total.
EXAM = exam_values([("q0", [("q0p0", 1, 1), ("q0p1", 0, 1)]), ("q1", [("q1p0", 1, 2)]), ("q2", [("q2p0", 3, 3)])])


@pytest.mark.parametrize(
    "discounts, raw, max_",
    [
        ({}, 5, 7),
        ({"q1": REMOVE}, 4, 5),
        ({"q1": FULL_MARKS}, 6, 7),
        ({"q0p1": REMOVE}, 5, 6),
        ({"q0p1": FULL_MARKS}, 6, 7),
        ({"q0p0": FULL_MARKS}, 5, 7),  # already full marks: nothing changes
        ({"q0p0": REMOVE, "q0p1": REMOVE}, 4, 5),  # the whole question's parts removed
        ({"q2": REMOVE, "q1": FULL_MARKS}, 3, 4),
        ({"q9": REMOVE}, 5, 7),  # not in this exam: ignored
    ],
)
def test_discounts_change_the_attempt_score(discounts, raw, max_):
    score = scoring.attempt_score(EXAM, discounts)
    assert (score.raw, score.max) == (raw, max_)
    assert score.scaled == pytest.approx(raw / max_)


def test_without_discounts_the_exam_scaled_score_is_used():
    assert scoring.attempt_score({**EXAM, "cmi.score.scaled": "0.6"}).scaled == 0.6
    assert scoring.attempt_score(EXAM).scaled == pytest.approx(5 / 7)
    assert scoring.attempt_score({"cmi.score.raw": "3"}).scaled is None  # no maximum: no score
    assert scoring.attempt_score({"cmi.score.scaled": "1.7"}).scaled == 1.0  # clamped to what an LMS accepts
    assert scoring.attempt_score({"cmi.score.scaled": "nan"}).scaled is None


def test_symbolic_part_results_mean_all_or_nothing():
    values = {**exam_values([("q0", [("q0p0", 0, 2)])]), "cmi.interactions.0.result": "correct"}
    values["cmi.objectives.0.score.raw"] = "2"
    assert scoring.questions_from(values)[0].parts[0].raw == 2
    assert scoring.attempt_score(values, {"q0p0": REMOVE}).max == 0


def test_removing_everything_leaves_no_score():
    assert scoring.attempt_score(EXAM, {"q0": REMOVE, "q1": REMOVE, "q2": REMOVE}).scaled is None


def A(number, scaled, completed=True):
    return AttemptForGrade(number=number, completed=completed, scaled=scaled)


@pytest.mark.parametrize(
    "attempts, method, include_incomplete, expected",
    [
        ([A(1, 0.5), A(2, 0.8), A(3, 0.6)], scoring.HIGHEST, False, (2, 0.8)),
        ([A(1, 0.5), A(2, 0.8), A(3, 0.6)], scoring.LAST, False, (3, 0.6)),
        ([A(1, 0.5), A(2, 0.9, completed=False)], scoring.HIGHEST, False, (1, 0.5)),
        ([A(1, 0.5), A(2, 0.9, completed=False)], scoring.HIGHEST, True, (2, 0.9)),
        ([A(1, 0.5), A(2, 0.1, completed=False)], scoring.LAST, True, (2, 0.1)),
        ([A(1, 0.5), A(2, 0.1, completed=False)], scoring.LAST, False, (1, 0.5)),
        ([A(1, 0.7), A(2, 0.7)], scoring.HIGHEST, False, (2, 0.7)),  # a tie: the later attempt
        ([A(1, None), A(2, 0.3)], scoring.LAST, False, (2, 0.3)),
        ([A(1, 0.4, completed=False)], scoring.HIGHEST, False, None),
        ([], scoring.HIGHEST, True, None),
    ],
)
def test_grading_method_picks_the_attempt(attempts, method, include_incomplete, expected):
    best = scoring.resource_grade(attempts, method=method, include_incomplete=include_incomplete)
    assert (best and (best.number, best.scaled)) == expected
