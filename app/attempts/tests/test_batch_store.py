"""Storing attempt data: once per batch, only by the attempt's writer, history and current
values in one transaction."""

import pytest

from attempts import services
from attempts.models import Attempt, Batch, Element, ElementChange
from attempts.tests.factories import batch, launch, with_exam


@pytest.fixture
def attempt(consumer):
    student = launch(consumer, user_id="s1")
    with_exam(student.membership.resource, max_attempts=0)
    attempt = services.attempt_start(membership=student.membership)
    services.attempt_take_over(attempt=attempt)
    attempt.refresh_from_db()
    return attempt


def store(attempt, b, user_id=None):
    return services.batch_store(attempt_id=attempt.pk, user_id=user_id or attempt.user_id, batch=b)


def current(attempt):
    return dict(Element.objects.filter(attempt=attempt).values_list("key", "value"))


@pytest.mark.django_db
def test_batch_appends_history_and_updates_current_values(attempt):
    result = store(attempt, batch(attempt.writer_token, [("cmi.location", "1"), ("cmi.suspend_data", "{}"),
                                                         ("cmi.location", "2")]))
    assert result.stored and not result.ended
    assert ElementChange.objects.filter(attempt=attempt).count() == 3
    assert current(attempt) == {"cmi.location": "2", "cmi.suspend_data": "{}"}
    attempt.refresh_from_db()
    assert attempt.last_saved_at is not None


@pytest.mark.django_db
def test_the_same_batch_twice_is_stored_once(attempt):
    b = batch(attempt.writer_token, [("cmi.location", "1")])
    assert store(attempt, b).stored is True
    assert store(attempt, b).stored is False
    assert Batch.objects.count() == 1 and ElementChange.objects.count() == 1


@pytest.mark.django_db
def test_a_reused_batch_id_with_other_content_is_refused(attempt):
    store(attempt, batch(attempt.writer_token, [("cmi.location", "1")], batch_id="fixed-batch-id"))
    with pytest.raises(services.BatchRefused) as refused:
        store(attempt, batch(attempt.writer_token, [("cmi.location", "9")], batch_id="fixed-batch-id"))
    assert refused.value.code == "batch_reused"
    assert current(attempt) == {"cmi.location": "1"}


@pytest.mark.django_db
def test_an_older_change_arriving_late_does_not_overwrite_a_newer_one(attempt):
    store(attempt, batch(attempt.writer_token, [("cmi.location", "new", 20)]))
    store(attempt, batch(attempt.writer_token, [("cmi.location", "old", 10)]))
    assert current(attempt) == {"cmi.location": "new"}
    assert ElementChange.objects.count() == 2  # both are in the history


@pytest.mark.django_db
def test_only_the_current_window_may_write(attempt):
    old_token = attempt.writer_token
    services.attempt_take_over(attempt=attempt)
    with pytest.raises(services.BatchRefused) as refused:
        store(attempt, batch(old_token, [("cmi.location", "1")]))
    assert refused.value.code == "taken_over"
    assert Batch.objects.count() == 0 and ElementChange.objects.count() == 0


@pytest.mark.django_db
def test_another_user_cannot_write(attempt, consumer):
    other = launch(consumer, user_id="s2")
    with pytest.raises(services.BatchRefused) as refused:
        store(attempt, batch(attempt.writer_token, [("cmi.location", "1")]), user_id=other.membership.user_id)
    assert refused.value.code == "forbidden"
    assert Batch.objects.count() == 0 and ElementChange.objects.count() == 0


@pytest.mark.django_db
def test_terminate_after_completion_ends_the_attempt_with_its_score(attempt):
    token = attempt.writer_token
    store(attempt, batch(token, [("cmi.score.raw", "3"), ("cmi.score.max", "4"), ("cmi.score.min", "0")]))
    result = store(attempt, batch(token, [("cmi.completion_status", "completed"), ("cmi.success_status", "passed"),
                                          ("cmi.score.scaled", "0.75"), ("cmi.exit", "normal")], terminate=True))
    assert result.ended
    attempt.refresh_from_db()
    assert attempt.is_ended and attempt.completion_status == "completed" and attempt.success_status == "passed"
    assert (attempt.score_raw, attempt.score_max, attempt.score_scaled) == (3.0, 4.0, 0.75)
    with pytest.raises(services.BatchRefused) as refused:
        store(attempt, batch(token, [("cmi.location", "5")]))
    assert refused.value.code == "ended"


@pytest.mark.django_db
def test_terminate_with_suspend_keeps_the_attempt_open(attempt):
    result = store(attempt, batch(attempt.writer_token, [("cmi.exit", "suspend"), ("cmi.suspend_data", "x")],
                                  terminate=True))
    assert not result.ended
    attempt.refresh_from_db()
    assert not attempt.is_ended


@pytest.mark.django_db
def test_large_suspend_data_and_large_batches(attempt):
    big = "x" * 300_000
    changes = [(f"cmi.interactions.{i}.learner_response", str(i)) for i in range(600)] + [("cmi.suspend_data", big)]
    store(attempt, batch(attempt.writer_token, changes))
    assert current(attempt)["cmi.suspend_data"] == big
    assert ElementChange.objects.count() == 601


@pytest.mark.django_db
def test_scores_reach_the_attempt_row_as_they_change_and_nonsense_is_ignored(attempt):
    token = attempt.writer_token
    store(attempt, batch(token, [("cmi.score.raw", "2.5"), ("cmi.completion_status", "incomplete"),
                                 ("cmi.score.scaled", "0.625")]))
    attempt.refresh_from_db()
    assert (attempt.score_raw, attempt.score_scaled, attempt.completion_status) == (2.5, 0.625, "incomplete")
    store(attempt, batch(token, [("cmi.score.raw", "lots"), ("cmi.score.max", "1e1")]))
    attempt.refresh_from_db()
    assert (attempt.score_raw, attempt.score_max) == (2.5, 10.0)
    assert not attempt.is_ended


@pytest.mark.django_db
def test_a_score_stored_before_numbers_were_checked_does_not_reach_the_attempt_row(attempt):
    # Values from before protocol.NUMBER_KEY was checked may hold what no score can be.
    Element.objects.create(attempt=attempt, key="cmi.score.raw", value="Infinity", sequence=1)
    Element.objects.create(attempt=attempt, key="cmi.score.max", value="4", sequence=2)
    store(attempt, batch(attempt.writer_token, [("cmi.completion_status", "completed"), ("cmi.exit", "normal")],
                         terminate=True))
    attempt.refresh_from_db()
    assert attempt.is_ended and attempt.score_max == 4.0
    assert attempt.score_raw is None
