"""Students with attempts whose scores are known, for grading tests."""

from attempts import services as attempt_services
from attempts.models import Attempt
from attempts.tests.factories import batch, launch, with_exam


def student_with_exam(consumer, *, user_id="s1", **settings):
    client = launch(consumer, user_id=user_id)
    resource = client.membership.resource
    if not resource.exam_packages.exists():
        with_exam(resource, max_attempts=0, **settings)
    return client.membership


def start(membership) -> Attempt:
    attempt = attempt_services.attempt_start(membership=membership)
    attempt_services.attempt_take_over(attempt=attempt)
    attempt.refresh_from_db()
    return attempt


def answer(attempt, raw, max_=4, *, complete=False, questions=None):
    """Store a batch that sets the attempt's score (and per-question scores), optionally
    completing and ending it as Numbas does."""
    changes = [("cmi.score.raw", str(raw)), ("cmi.score.max", str(max_)), ("cmi.score.scaled", str(raw / max_))]
    for index, (qid, q_raw, q_max) in enumerate(questions or []):
        changes += [(f"cmi.objectives.{index}.id", qid), (f"cmi.objectives.{index}.score.raw", str(q_raw)),
                    (f"cmi.objectives.{index}.score.max", str(q_max))]
    if complete:
        changes += [("cmi.completion_status", "completed"), ("cmi.exit", "normal")]
    return attempt_services.batch_store(
        attempt_id=attempt.pk, user_id=attempt.user_id, batch=batch(attempt.writer_token, changes, terminate=complete)
    )
