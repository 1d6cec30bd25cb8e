"""Closing times and time limits, enforced on the server over HTTP and the websocket (issue 15,
point 1): no resuming after the closing time, open attempts ended at it by the periodic task with
what was acknowledged before kept and later batches refused with a message; the exam's time
limit from the attempt's start, plus extra minutes and the grace period for saving.

The clock is moved (django.utils.timezone.now), never slept on."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.utils import timezone

from attempts import services
from attempts.models import AccessChange, Attempt, AttemptEvent, AttemptEventKind, Element, ElementChange
from attempts.tests.factories import batch, batch_message, launch, with_exam
from exams.models import ExamPackage
from grading.models import GradeReport

START = timezone.now().replace(microsecond=0) + timedelta(days=1)
CLOSES = START + timedelta(hours=1)


class Clock:
    def __init__(self, monkeypatch, at):
        self.at = at
        monkeypatch.setattr(timezone, "now", lambda: self.at)

    def move_to(self, at):
        self.at = at


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, START)


@pytest.fixture
def student(consumer, clock):
    student = launch(consumer, user_id="s1")
    with_exam(student.membership.resource, max_attempts=0, available_until=CLOSES)
    # No time limit here (the demo exam has one): the time limit has tests of its own.
    ExamPackage.objects.filter(resource=student.membership.resource).update(duration_seconds=None)
    return student


@pytest.fixture
def attempt(student):
    attempt = services.attempt_start(membership=student.membership)
    services.attempt_take_over(attempt=attempt)
    attempt.refresh_from_db()
    return attempt


def post_batch(client, attempt, message):
    return client.post(f"/attempt/{attempt.pk}/batches/", json.dumps(message), content_type="application/json")


def current(attempt):
    return dict(Element.objects.filter(attempt=attempt).values_list("key", "value"))


# --- the closing time ------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_attempt_gets_the_closing_time_as_its_deadline(attempt):
    assert attempt.deadline_at == CLOSES


@pytest.mark.django_db
def test_after_closing_resuming_is_refused_over_http(student, attempt, clock):
    assert post_batch(student, attempt, batch_message(attempt.writer_token, [("cmi.location", "1")])).status_code == 200
    clock.move_to(CLOSES + timedelta(seconds=1))

    refused = student.post(f"/attempt/{attempt.pk}/take-over/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "closed"
    assert "This exam closed at" in refused.json()["error"]["message"]
    assert Attempt.objects.get(pk=attempt.pk).writer_token == attempt.writer_token

    late = post_batch(student, attempt, batch_message(attempt.writer_token, [("cmi.location", "2")]))
    assert late.status_code == 409 and late.json()["error"]["code"] == "closed"
    assert "answers given after that were not saved" in late.json()["error"]["message"]
    assert current(attempt) == {"cmi.location": "1"}
    assert ElementChange.objects.filter(attempt=attempt).count() == 1


@pytest.mark.django_db
def test_a_batch_just_before_closing_is_kept_and_one_at_closing_refused(attempt, clock):
    clock.move_to(CLOSES - timedelta(milliseconds=1))
    assert services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id,
                                batch=batch(attempt.writer_token, [("cmi.location", "before")])).stored
    clock.move_to(CLOSES)
    with pytest.raises(services.BatchRefused) as refused:
        services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id,
                             batch=batch(attempt.writer_token, [("cmi.location", "after")]))
    assert refused.value.code == "closed"
    assert current(attempt) == {"cmi.location": "before"}


@pytest.mark.django_db
def test_open_attempts_are_ended_at_the_closing_time_with_their_answers_kept(student, attempt, clock):
    token = attempt.writer_token
    services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id, batch=batch(attempt.writer_token, [
        ("cmi.location", "3"), ("cmi.suspend_data", '{"answers": [1, 2]}'), ("cmi.score.raw", "2"),
        ("cmi.score.max", "4"), ("cmi.score.scaled", "0.5")]))
    clock.move_to(CLOSES - timedelta(seconds=1))
    assert services.attempts_end_past_deadline() == 0
    clock.move_to(CLOSES + timedelta(seconds=40))  # the task runs once a minute

    assert services.attempts_end_past_deadline() == 1
    attempt.refresh_from_db()
    assert attempt.ended_at == CLOSES and attempt.completion_status == "completed"
    values = current(attempt)
    assert values["cmi.suspend_data"] == '{"answers": [1, 2]}' and values["cmi.location"] == "3"
    assert values["cmi.completion_status"] == "completed" and values["cmi.exit"] == "time-out"
    event = AttemptEvent.objects.get(attempt=attempt)
    assert event.kind == AttemptEventKind.ENDED_AT_DEADLINE and event.detail["why"] == "closed"
    assert GradeReport.objects.get(membership=student.membership).score == 0.5  # counts as completed

    # a batch the page had not sent yet is refused with a message, not stored
    late = post_batch(student, attempt, batch_message(token, [("cmi.location", "4")]))
    assert late.status_code == 409 and late.json()["error"]["code"] == "closed"
    assert "This exam closed at" in late.json()["error"]["message"]
    assert current(attempt)["cmi.location"] == "3"
    assert services.attempts_end_past_deadline() == 0  # once only


@pytest.mark.django_db
def test_the_periodic_task_ends_them(attempt, clock):
    from attempts import tasks

    clock.move_to(CLOSES + timedelta(minutes=1))
    tasks.attempts_end_past_deadline.call_local()
    assert Attempt.objects.get(pk=attempt.pk).ended_at == CLOSES


@pytest.mark.django_db
def test_a_students_own_closing_time_applies(consumer, student, attempt, clock):
    other = launch(consumer, user_id="s2")
    other_attempt = services.attempt_start(membership=other.membership)
    instructor = launch(consumer, user_id="t1", roles="Instructor").membership.user
    services.access_change_set(resource_id=attempt.resource_id, user_id=attempt.user_id, changed_by=instructor,
                               available_until=CLOSES + timedelta(hours=1))
    assert Attempt.objects.get(pk=attempt.pk).deadline_at == CLOSES + timedelta(hours=1)

    clock.move_to(CLOSES + timedelta(minutes=5))
    assert services.attempts_end_past_deadline() == 1
    assert Attempt.objects.get(pk=other_attempt.pk).is_ended
    assert not Attempt.objects.get(pk=attempt.pk).is_ended
    assert post_batch(student, attempt, batch_message(attempt.writer_token, [("cmi.location", "1")])).status_code == 200

    clock.move_to(CLOSES + timedelta(hours=1))
    assert services.attempts_end_past_deadline() == 1
    assert Attempt.objects.get(pk=attempt.pk).ended_at == CLOSES + timedelta(hours=1)


@pytest.mark.django_db
def test_moving_the_closing_time_moves_open_attempts_deadlines(consumer, attempt):
    teacher = launch(consumer, user_id="t1", roles="Instructor")
    later = CLOSES.replace(second=0) + timedelta(days=1)  # the form has minutes
    response = teacher.post(f"/resource/{attempt.resource_id}/instructor/settings/", {
        "max_attempts": "0", "allow_review": "on", "show_score": "always", "grading_method": "highest",
        "report_when": "completion", "available_until": timezone.localtime(later).strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    assert Attempt.objects.get(pk=attempt.pk).deadline_at == later


# --- the websocket -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_db_thread(monkeypatch):
    """The consumer's database work on a thread of this test's, whose connection is closed
    afterwards (so the test database can be dropped)."""
    from django.db import connections

    from attempts import consumers

    pool = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(consumers, "_db_threads", pool)
    yield
    pool.submit(connections.close_all).result()
    pool.shutdown()


def _cookie(client) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _converse(cookie: str, attempt_id: int, token: str, then=None, send=None):
    """Connect to the attempt's socket; optionally send a batch; optionally run `then` (in a
    thread) after "ready" and collect what the socket says next."""
    from numbas_lti.asgi import application

    async def run():
        communicator = WebsocketCommunicator(application, f"/ws/attempt/{attempt_id}/?token={token}",
                                             headers=[(b"cookie", cookie.encode()), (b"origin", b"http://testserver")])
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        messages = [await communicator.receive_json_from(timeout=5)]
        if messages[-1]["type"] == "ready":
            if send is not None:
                await communicator.send_json_to(send)
                messages.append(await communicator.receive_json_from(timeout=5))
            if then is not None:
                await asyncio.get_running_loop().run_in_executor(None, then)
                messages.append(await communicator.receive_json_from(timeout=5))
        closed = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return messages, closed

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_after_closing_the_websocket_refuses_to_resume(student, attempt, clock):
    clock.move_to(CLOSES + timedelta(seconds=1))
    messages, closed = _converse(_cookie(student), attempt.pk, attempt.writer_token)
    assert messages[0]["type"] == "error" and messages[0]["code"] == "closed"
    assert "This exam closed at" in messages[0]["message"]
    assert closed == {"type": "websocket.close", "code": 4410}


@pytest.mark.django_db(transaction=True)
def test_the_open_window_is_told_when_the_attempt_is_ended_at_closing(student, attempt, clock):
    def close_now():
        from django.db import connections

        clock.move_to(CLOSES + timedelta(seconds=30))
        try:
            assert services.attempts_end_past_deadline() == 1
        finally:
            connections.close_all()  # this thread's connection, so the test database can be dropped

    stored = batch_message(attempt.writer_token, [("cmi.location", "7")])
    messages, closed = _converse(_cookie(student), attempt.pk, attempt.writer_token, send=stored, then=close_now)
    assert messages[1] == {"type": "ack", "batch": stored["batch"], "stored": True, "ended": False}
    assert messages[2]["type"] == "error" and messages[2]["code"] == "closed"
    assert "answers given after that were not saved" in messages[2]["message"]
    assert closed["code"] == 4410
    assert current(attempt)["cmi.location"] == "7"


@pytest.mark.django_db(transaction=True)
def test_a_batch_over_the_websocket_after_closing_is_refused_with_a_message(student, attempt, clock):
    from numbas_lti.asgi import application

    async def run():
        communicator = WebsocketCommunicator(application, f"/ws/attempt/{attempt.pk}/?token={attempt.writer_token}",
                                             headers=[(b"cookie", _cookie(student).encode()),
                                                      (b"origin", b"http://testserver")])
        await communicator.connect(timeout=5)
        ready = await communicator.receive_json_from(timeout=5)
        clock.move_to(CLOSES)  # connected before the closing time, sending after it
        message = batch_message(attempt.writer_token, [("cmi.location", "late")])
        await communicator.send_json_to(message)
        answer = await communicator.receive_json_from(timeout=5)
        closed = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return ready, message["batch"], answer, closed

    with ThreadPoolExecutor(1) as pool:
        ready, batch_id, answer, closed = pool.submit(asyncio.run, run()).result(timeout=30)
    assert ready["type"] == "ready"
    assert answer["type"] == "error" and answer["batch"] == batch_id and answer["code"] == "closed"
    assert "This exam closed at" in answer["message"]
    assert closed["code"] == 4410
    assert not ElementChange.objects.filter(attempt=attempt).exists()


# --- the exam's time limit ------------------------------------------------------------------


@pytest.fixture
def timed(student):
    """The exam has a 30-minute time limit; the activity closes much later."""
    resource = student.membership.resource
    resource.settings.available_until = None
    resource.settings.save()
    ExamPackage.objects.filter(resource=resource).update(duration_seconds=30 * 60)
    return student


@pytest.mark.django_db
def test_the_time_limit_ends_the_attempt_after_the_grace_period(timed, clock, settings):
    settings.ATTEMPT_TIME_LIMIT_GRACE_SECONDS = 60
    attempt = services.attempt_start(membership=timed.membership)
    token = services.attempt_take_over(attempt=attempt)
    assert Attempt.objects.get(pk=attempt.pk).deadline_at == START + timedelta(minutes=31)

    clock.move_to(START + timedelta(minutes=30, seconds=30))  # time is up; still in the grace period
    assert post_batch(timed, attempt, batch_message(token, [("cmi.location", "last")])).status_code == 200
    assert services.attempts_end_past_deadline() == 0

    clock.move_to(START + timedelta(minutes=31))
    late = post_batch(timed, attempt, batch_message(token, [("cmi.location", "too late")]))
    assert late.status_code == 409 and late.json()["error"]["code"] == "closed"
    assert "Your time for this exam ran out" in late.json()["error"]["message"]
    assert timed.post(f"/attempt/{attempt.pk}/take-over/").status_code == 409
    assert services.attempts_end_past_deadline() == 1
    attempt.refresh_from_db()
    assert attempt.ended_at == START + timedelta(minutes=31)
    assert current(attempt)["cmi.location"] == "last"
    assert AttemptEvent.objects.get(attempt=attempt).detail["why"] == "time_limit"


@pytest.mark.django_db
def test_extra_minutes_extend_the_time_limit_also_of_an_open_attempt(consumer, timed, clock, settings):
    settings.ATTEMPT_TIME_LIMIT_GRACE_SECONDS = 60
    attempt = services.attempt_start(membership=timed.membership)
    token = services.attempt_take_over(attempt=attempt)
    instructor = launch(consumer, user_id="t1", roles="Instructor").membership.user
    services.access_change_set(resource_id=attempt.resource_id, user_id=attempt.user_id, changed_by=instructor,
                               extra_minutes=15)
    assert Attempt.objects.get(pk=attempt.pk).deadline_at == START + timedelta(minutes=46)

    clock.move_to(START + timedelta(minutes=40))
    assert post_batch(timed, attempt, batch_message(token, [("cmi.location", "extended")])).status_code == 200
    assert services.attempts_end_past_deadline() == 0
    clock.move_to(START + timedelta(minutes=46))
    assert services.attempts_end_past_deadline() == 1
    assert current(attempt)["cmi.location"] == "extended"


@pytest.mark.django_db
def test_the_closing_time_wins_over_a_later_time_limit(timed, clock):
    resource = timed.membership.resource
    resource.settings.available_until = START + timedelta(minutes=10)
    resource.settings.save()
    attempt = services.attempt_start(membership=timed.membership)
    assert attempt.deadline_at == START + timedelta(minutes=10)
    assert AccessChange.objects.count() == 0


@pytest.mark.django_db
def test_the_student_page_shows_the_time_left_and_no_resume_after_the_deadline(timed, clock):
    attempt = services.attempt_start(membership=timed.membership)
    clock.move_to(START + timedelta(minutes=20, seconds=10))
    page = timed.get(f"/resource/{attempt.resource_id}/").content.decode()
    assert "10 minutes left" in page and 'data-testid="resume"' in page

    clock.move_to(START + timedelta(minutes=31))  # the task has not run yet
    page = timed.get(f"/resource/{attempt.resource_id}/").content.decode()
    assert 'data-testid="resume"' not in page and "Your time for this exam ran out" in page


@pytest.mark.django_db
def test_removing_an_access_change_brings_back_the_activitys_closing_time(consumer, attempt):
    instructor = launch(consumer, user_id="t1", roles="Instructor").membership.user
    services.access_change_set(resource_id=attempt.resource_id, user_id=attempt.user_id, changed_by=instructor,
                               available_until=CLOSES + timedelta(hours=1))
    services.access_change_set(resource_id=attempt.resource_id, user_id=attempt.user_id, changed_by=instructor)
    assert Attempt.objects.get(pk=attempt.pk).deadline_at == CLOSES


@pytest.mark.django_db
def test_the_migration_gives_attempts_open_at_deploy_their_deadline(timed):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("attempts.migrations.0008_deadlines_late_policy_reopen")
    attempt = services.attempt_start(membership=timed.membership)
    expected = Attempt.objects.get(pk=attempt.pk).deadline_at
    Attempt.objects.filter(pk=attempt.pk).update(deadline_at=None)
    migration.open_attempts_deadlines(apps, None)
    assert Attempt.objects.get(pk=attempt.pk).deadline_at == expected is not None
