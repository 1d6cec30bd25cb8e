"""Per-question scores recorded when an attempt ends (for statistics): written at the end,
kept in step with re-marks, removed when the attempt is reopened, and averaged by the
statistics page together with attempts that have none recorded."""

import pytest

from attempts import services as attempt_services
from attempts.tests.factories import batch, launch, with_exam
from dashboard.tests.test_attempt_page import ANSWERS, END, STRUCTURE
from grading import services
from grading.models import AttemptQuestionScore
from insights.selectors import question_averages

pytestmark = pytest.mark.django_db


def ended_attempt(consumer, user_id, answers=ANSWERS, *, end=True):
    student = launch(consumer, user_id=user_id)
    attempt = attempt_services.attempt_start(membership=student.membership)
    token = attempt_services.attempt_take_over(attempt=attempt)
    for changes in (STRUCTURE, answers):
        attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id, batch=batch(token, changes))
    if end:
        attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id,
                                     batch=batch(token, END, terminate=True))
    attempt.refresh_from_db()
    return attempt


def recorded(attempt):
    return {r.question_id: (r.raw, r.max) for r in AttemptQuestionScore.objects.filter(attempt=attempt)}


@pytest.fixture
def resource(consumer):
    teacher = launch(consumer, user_id="t", roles="Instructor")
    return with_exam(teacher.membership.resource, max_attempts=0)


def test_written_when_the_attempt_ends_and_not_before(consumer, resource):
    open_attempt = ended_attempt(consumer, "s1", end=False)
    assert recorded(open_attempt) == {}
    done = ended_attempt(consumer, "s2")
    assert recorded(done) == {"q0": (2.0, 2.0), "q1": (0.0, 2.0)}


def test_kept_in_step_with_remarks_and_removed_on_reopen(consumer, resource):
    done = ended_attempt(consumer, "s1")
    services.part_remark(attempt=done, part_id="q1p0", score=1.0, by=None)
    assert recorded(done) == {"q0": (2.0, 2.0), "q1": (1.0, 2.0)}
    attempt_services.attempt_reopen(attempt=done, by=None)
    assert recorded(done) == {}


def test_statistics_average_recorded_and_unrecorded_attempts_alike(consumer, resource):
    ended_attempt(consumer, "s1")  # ended, recorded: q0 2/2, q1 0/2
    # completed by the exam but not ended yet (no Terminate): read from its run-time data
    other = ended_attempt(consumer, "s2", end=False, answers=[
        *ANSWERS[:3], ("cmi.interactions.2.result", "2"), ("cmi.objectives.0.score.raw", "2"),
        ("cmi.objectives.0.score.max", "2"), ("cmi.objectives.1.score.raw", "2"), ("cmi.objectives.1.score.max", "2"),
        ("cmi.score.raw", "4"), ("cmi.completion_status", "completed")])
    assert other.ended_at is None and other.completion_status == "completed" and recorded(other) == {}
    ended_attempt(consumer, "s3", end=False)  # in progress: only with all attempts
    deleted = ended_attempt(consumer, "s4")
    attempt_services.attempt_delete(attempt=deleted, by=None)
    assert recorded(deleted) == {}

    averages = {q.id: (q.attempts, q.raw, q.max) for q in question_averages(resource_id=resource.pk)}
    assert averages == {"q0": (2, 4.0, 4.0), "q1": (2, 2.0, 4.0)}
    with_open = {q.id: q.attempts for q in question_averages(resource_id=resource.pk, all_attempts=True)}
    assert with_open == {"q0": 3, "q1": 3}

    attempt_services.attempt_restore(attempt=deleted, by=None)
    assert recorded(deleted) == {"q0": (2.0, 2.0), "q1": (0.0, 2.0)}
