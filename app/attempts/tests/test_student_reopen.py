"""Students re-open their own finished attempt when the activity allows it (issue 15, point 1),
only while the attempt could still take answers. The clock is moved, never slept on."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from attempts import services
from attempts.models import Attempt, AttemptEvent, AttemptEventKind, Element
from attempts.tests.factories import batch_message, launch, with_exam
from exams.models import ExamPackage

START = timezone.now().replace(microsecond=0) + timedelta(days=1)
CLOSES = START + timedelta(hours=2)
FINISH = [("cmi.location", "5"), ("cmi.completion_status", "completed"), ("cmi.exit", "normal")]


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        at = START

    monkeypatch.setattr(timezone, "now", lambda: Clock.at)
    return Clock


def finished(consumer, *, duration=None, **settings):
    student = launch(consumer, user_id="s1")
    with_exam(student.membership.resource, max_attempts=0, available_until=CLOSES, **settings)
    ExamPackage.objects.filter(resource=student.membership.resource).update(duration_seconds=duration)
    attempt = services.attempt_start(membership=student.membership)
    token = services.attempt_take_over(attempt=attempt)
    response = student.post(f"/attempt/{attempt.pk}/batches/", json.dumps(batch_message(token, FINISH, terminate=True)),
                            content_type="application/json")
    assert response.json()["ended"] is True
    return student, attempt


def reopen(client, attempt):
    return client.post(f"/attempt/{attempt.pk}/reopen/")


@pytest.mark.django_db
def test_a_student_reopens_their_finished_attempt_when_allowed(consumer, clock):
    student, attempt = finished(consumer, allow_student_reopen=True)
    page = student.get(f"/resource/{attempt.resource_id}/").content.decode()
    assert 'data-testid="reopen"' in page

    response = reopen(student, attempt)
    assert response.status_code == 302 and response["Location"] == f"/attempt/{attempt.pk}/"
    attempt.refresh_from_db()
    assert attempt.ended_at is None and attempt.deadline_at == CLOSES
    values = dict(Element.objects.filter(attempt=attempt).values_list("key", "value"))
    assert values["cmi.location"] == "5" and values["cmi.exit"] == "suspend"
    event = AttemptEvent.objects.get(attempt=attempt, kind=AttemptEventKind.REOPENED)
    assert event.by_id == attempt.user_id
    token = student.post(f"/attempt/{attempt.pk}/take-over/").json()["token"]
    assert student.post(f"/attempt/{attempt.pk}/batches/", json.dumps(batch_message(token, [("cmi.location", "6")])),
                        content_type="application/json").status_code == 200


@pytest.mark.django_db
def test_not_when_the_activity_does_not_allow_it(consumer, clock):
    student, attempt = finished(consumer)
    assert 'data-testid="reopen"' not in student.get(f"/resource/{attempt.resource_id}/").content.decode()
    response = reopen(student, attempt)
    assert response.status_code == 302 and response["Location"] == f"/resource/{attempt.resource_id}/"
    assert "does not let students re-open" in student.get(response["Location"]).content.decode()
    assert Attempt.objects.get(pk=attempt.pk).ended_at is not None


@pytest.mark.django_db
def test_not_after_closing_nor_after_the_time_limit(consumer, clock):
    student, attempt = finished(consumer, allow_student_reopen=True, duration=30 * 60)
    clock.at = START + timedelta(minutes=40)  # the 30-minute limit (and its grace) has passed
    reopen(student, attempt)
    assert Attempt.objects.get(pk=attempt.pk).ended_at is not None
    assert 'data-testid="reopen"' not in student.get(f"/resource/{attempt.resource_id}/").content.decode()

    ExamPackage.objects.filter(resource_id=attempt.resource_id).update(duration_seconds=None)
    clock.at = CLOSES + timedelta(seconds=1)
    reopen(student, attempt)
    assert Attempt.objects.get(pk=attempt.pk).ended_at is not None


@pytest.mark.django_db
def test_only_the_owner_and_not_with_another_attempt_open(consumer, clock):
    student, attempt = finished(consumer, allow_student_reopen=True)
    other = launch(consumer, user_id="s2")
    assert reopen(other, attempt).status_code == 403
    services.attempt_start(membership=student.membership)  # attempt 2, open
    reopen(student, attempt)
    assert Attempt.objects.get(pk=attempt.pk).ended_at is not None
