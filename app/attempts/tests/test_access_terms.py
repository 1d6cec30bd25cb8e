"""A student's own access (issue 15, point 3): own opening time, own due date under the
activity's late policy, extra time as a percentage of the exam's duration, and the time limit
switched off — enforced on the server over HTTP and the websocket, reaching an open exam live.
The clock is moved (django.utils.timezone.now), never slept on."""

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.utils import timezone

from attempts import selectors, services
from attempts.models import AccessChange, Attempt, Element, LatePolicy
from attempts.tests.factories import batch_message, launch, with_exam
from core.when import when_text
from exams.models import ExamPackage

START = timezone.now().replace(microsecond=0) + timedelta(days=1)
FINISH = [("cmi.score.raw", "1"), ("cmi.score.max", "4"), ("cmi.score.scaled", "0.25"),
          ("cmi.completion_status", "completed"), ("cmi.exit", "normal")]


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        at = START

    monkeypatch.setattr(timezone, "now", lambda: Clock.at)
    return Clock


@pytest.fixture
def people(consumer, clock):
    """A student, a classmate and their instructor in an activity with the demo exam."""
    student = launch(consumer, user_id="s1")
    classmate = launch(consumer, user_id="s2")
    teacher = launch(consumer, user_id="t1", roles="Instructor")
    return student, classmate, teacher


def activity(resource, *, minutes=None, **settings):
    with_exam(resource, max_attempts=0, **settings)
    ExamPackage.objects.filter(resource=resource).update(duration_seconds=minutes and minutes * 60)
    return resource


def change(student, teacher, **terms):
    return services.access_change_set(resource_id=student.membership.resource_id,
                                      user_id=student.membership.user_id, changed_by=teacher.membership.user, **terms)


def post_batch(client, attempt, message):
    return client.post(f"/attempt/{attempt.pk}/batches/", json.dumps(message), content_type="application/json")


def started(student):
    attempt = services.attempt_start(membership=student.membership)
    return attempt, services.attempt_take_over(attempt=attempt)


def start_over_http(client):
    """The student's Start button: the attempt page when started, else their page with why not."""
    response = client.post(f"/resource/{client.membership.resource_id}/attempts/start/", follow=True)
    assert response.status_code == 200
    return response


def current(attempt):
    return dict(Element.objects.filter(attempt=attempt).values_list("key", "value"))


# --- extra time as a percentage -----------------------------------------------------------


@pytest.mark.django_db
def test_fifty_percent_of_a_thirty_minute_exam_is_fifteen_minutes_more(people, clock, settings):
    settings.ATTEMPT_TIME_LIMIT_GRACE_SECONDS = 60
    student, classmate, teacher = people
    activity(student.membership.resource, minutes=30)
    attempt, token = started(student)
    assert Attempt.objects.get(pk=attempt.pk).deadline_at == START + timedelta(minutes=31)

    change(student, teacher, extra_percent=50, reason="Learning support plan")

    assert Attempt.objects.get(pk=attempt.pk).deadline_at == START + timedelta(minutes=46)
    assert selectors.attempt_time_left(attempt=attempt, now=START) == timedelta(minutes=45)
    numbas = student.get(f"/attempt/{attempt.pk}/state/").json()["numbas"]
    assert (numbas["duration_extension.amount"], numbas["duration_extension.units"]) == ("50", "percent")
    assert numbas["disable_duration"] == "false"

    clock.at = START + timedelta(minutes=44)  # past the exam's own 30 minutes (and the grace period)
    assert post_batch(student, attempt, batch_message(token, [("cmi.location", "extended")])).status_code == 200
    assert services.attempts_end_past_deadline() == 0
    clock.at = START + timedelta(minutes=46)
    late = post_batch(student, attempt, batch_message(token, [("cmi.location", "too late")]))
    assert late.status_code == 409 and late.json()["error"]["code"] == "closed"
    assert "Your time for this exam ran out" in late.json()["error"]["message"]
    assert services.attempts_end_past_deadline() == 1
    assert current(attempt)["cmi.location"] == "extended"


@pytest.mark.django_db
def test_minutes_and_percent_together_are_refused_and_nothing_is_written(people):
    student, _, teacher = people
    activity(student.membership.resource, minutes=30)
    with pytest.raises(services.AccessChangeInvalid, match="either in minutes or as a percentage"):
        change(student, teacher, extra_minutes=10, extra_percent=50)
    for bad in ({"extra_percent": -1}, {"extra_percent": 1001}, {"extra_minutes": 100001}):
        with pytest.raises(services.AccessChangeInvalid):
            change(student, teacher, **bad)
    assert not AccessChange.objects.exists()


# --- the time limit switched off ----------------------------------------------------------


@pytest.mark.django_db
def test_time_limit_off_the_attempt_is_not_ended_by_it_but_the_closing_time_holds(people, clock):
    student, classmate, teacher = people
    closes = START + timedelta(hours=3)
    activity(student.membership.resource, minutes=30, available_until=closes)
    attempt, token = started(student)
    others, others_token = started(classmate)

    change(student, teacher, time_limit_off=True)

    assert Attempt.objects.get(pk=attempt.pk).deadline_at == closes
    assert selectors.attempt_time_left(attempt=attempt, now=START) is None
    assert student.get(f"/attempt/{attempt.pk}/state/").json()["numbas"]["disable_duration"] == "true"
    clock.at = START + timedelta(hours=2)  # long past the exam's 30 minutes
    assert services.attempts_end_past_deadline() == 1  # the classmate's, not theirs
    assert Attempt.objects.get(pk=others.pk).ended_at is not None
    assert Attempt.objects.get(pk=attempt.pk).ended_at is None
    assert student.post(f"/attempt/{attempt.pk}/take-over/").status_code == 200
    token = Attempt.objects.get(pk=attempt.pk).writer_token
    assert post_batch(student, attempt, batch_message(token, [("cmi.location", "still going")])).status_code == 200

    clock.at = closes
    late = post_batch(student, attempt, batch_message(token, [("cmi.location", "after closing")]))
    assert late.status_code == 409 and "This exam closed at" in late.json()["error"]["message"]
    assert services.attempts_end_past_deadline() == 1
    assert current(attempt)["cmi.location"] == "still going"


# --- own opening time ----------------------------------------------------------------------


@pytest.mark.django_db
def test_own_opening_time_no_start_before_it_and_it_may_be_earlier_than_the_activitys(people, clock):
    student, classmate, teacher = people
    opens, own = START + timedelta(hours=2), START + timedelta(hours=1)
    activity(student.membership.resource, available_from=opens)
    change(student, teacher, available_from=own, reason="Sits the exam early")

    refused = start_over_http(student)
    assert "This exam opens on" in refused.content.decode() and not Attempt.objects.exists()
    clock.at = own
    assert "This exam opens on" in start_over_http(classmate).content.decode()
    start_over_http(student)
    assert Attempt.objects.filter(user=student.membership.user).count() == 1
    assert not Attempt.objects.filter(user=classmate.membership.user).exists()


@pytest.mark.django_db
def test_own_opening_time_later_than_the_activitys_holds_back_the_student(people, clock):
    student, classmate, teacher = people
    activity(student.membership.resource)
    change(student, teacher, available_from=START + timedelta(minutes=30))
    with pytest.raises(services.AttemptRefused, match="opens on"):
        services.attempt_start(membership=student.membership)
    services.attempt_start(membership=classmate.membership)
    clock.at = START + timedelta(minutes=30)
    services.attempt_start(membership=student.membership)


# --- own due date with each late policy ---------------------------------------------------


@pytest.mark.django_db
def test_own_due_date_with_the_refuse_policy_is_their_deadline(people, clock):
    student, classmate, teacher = people
    due, own = START + timedelta(hours=2), START + timedelta(minutes=30)
    activity(student.membership.resource, due_at=due, late_policy=LatePolicy.REFUSE)
    attempt, token = started(student)
    change(student, teacher, due_at=own)
    assert Attempt.objects.get(pk=attempt.pk).deadline_at == own

    clock.at = own
    late = post_batch(student, attempt, batch_message(token, [("cmi.location", "late")]))
    assert late.status_code == 409 and "late answers are not accepted" in late.json()["error"]["message"]
    assert services.attempts_end_past_deadline() == 1
    assert "late attempts are not accepted" in start_over_http(student).content.decode()
    start_over_http(classmate)  # the activity's due date is later
    assert Attempt.objects.filter(user=classmate.membership.user).count() == 1


@pytest.mark.django_db
def test_own_due_date_with_the_accept_policy_judges_late_against_theirs(people, clock):
    student, classmate, teacher = people
    due = START + timedelta(minutes=30)
    activity(student.membership.resource, due_at=due, late_policy=LatePolicy.ACCEPT)
    change(student, teacher, due_at=START + timedelta(hours=1))  # later than the activity's
    attempt, token = started(student)
    others, others_token = started(classmate)
    assert Attempt.objects.get(pk=attempt.pk).deadline_at is None

    clock.at = START + timedelta(minutes=45)
    for client, a, t in ((student, attempt, token), (classmate, others, others_token)):
        assert post_batch(client, a, batch_message(t, FINISH, terminate=True)).status_code == 200
    assert Attempt.objects.get(pk=attempt.pk).late is False
    assert Attempt.objects.get(pk=others.pk).late is True

    change(student, teacher, due_at=START + timedelta(minutes=50))
    second, token = started(student)
    clock.at = START + timedelta(minutes=55)
    assert post_batch(student, second, batch_message(token, FINISH, terminate=True)).status_code == 200
    assert Attempt.objects.get(pk=second.pk).late is True


@pytest.mark.django_db
def test_times_out_of_order_are_refused(people):
    student, _, teacher = people
    activity(student.membership.resource)
    with pytest.raises(services.AccessChangeInvalid, match="opening time must be before"):
        change(student, teacher, available_from=START + timedelta(hours=2), available_until=START + timedelta(hours=1))
    with pytest.raises(services.AccessChangeInvalid, match="due time cannot be after"):
        change(student, teacher, due_at=START + timedelta(hours=2), available_until=START + timedelta(hours=1))
    assert not AccessChange.objects.exists()


# --- over the websocket ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_db_thread(monkeypatch):
    from django.db import connections

    from attempts import consumers

    pool = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(consumers, "_db_threads", pool)
    yield
    pool.submit(connections.close_all).result()
    pool.shutdown()


def _socket(client, attempt, token, steps):
    """Open the attempt's socket as the student and run `steps(communicator)`."""
    from numbas_lti.asgi import application

    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"

    async def run():
        communicator = WebsocketCommunicator(application, f"/ws/attempt/{attempt.pk}/?token={token}",
                                             headers=[(b"cookie", cookie.encode()), (b"origin", b"http://testserver")])
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        try:
            return await steps(communicator)
        finally:
            await communicator.disconnect()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_over_the_websocket_a_percent_extension_reaches_the_open_exam_and_its_deadline_holds(people, clock,
                                                                                             settings):
    settings.ATTEMPT_TIME_LIMIT_GRACE_SECONDS = 0
    student, _, teacher = people
    activity(student.membership.resource, minutes=30)
    attempt, token = started(student)

    def give_more_time():
        from django.db import connections

        try:
            change(student, teacher, extra_percent=50)
        finally:
            connections.close_all()

    async def steps(communicator):
        said = [await communicator.receive_json_from(timeout=5)]
        await asyncio.get_running_loop().run_in_executor(None, give_more_time)
        said.append(await communicator.receive_json_from(timeout=5))
        clock.at = START + timedelta(minutes=40)
        message = batch_message(token, [("cmi.location", "in the extra time")])
        await communicator.send_json_to(message)
        said.append(await communicator.receive_json_from(timeout=5))
        clock.at = START + timedelta(minutes=45)
        await communicator.send_json_to(batch_message(token, [("cmi.location", "after it")]))
        said.append(await communicator.receive_json_from(timeout=5))
        return said

    ready, access, ack, refused = _socket(student, attempt, token, steps)
    assert ready["type"] == "ready"
    assert access == {"type": "access", "numbas": {"duration_extension.amount": "50",
                                                   "duration_extension.units": "percent",
                                                   "disable_duration": "false"}}
    assert ack["type"] == "ack" and ack["stored"] is True
    assert refused["type"] == "error" and refused["code"] == "closed"
    assert current(attempt)["cmi.location"] == "in the extra time"


@pytest.mark.django_db(transaction=True)
def test_over_the_websocket_time_limit_off_reaches_the_open_exam_and_resuming_works_after_it(people, clock):
    student, _, teacher = people
    activity(student.membership.resource, minutes=30)
    attempt, token = started(student)

    def switch_off():
        from django.db import connections

        try:
            change(student, teacher, time_limit_off=True)
        finally:
            connections.close_all()

    async def told(communicator):
        said = [await communicator.receive_json_from(timeout=5)]
        await asyncio.get_running_loop().run_in_executor(None, switch_off)
        said.append(await communicator.receive_json_from(timeout=5))
        return said

    ready, access = _socket(student, attempt, token, told)
    assert ready["type"] == "ready" and access["numbas"]["disable_duration"] == "true"

    clock.at = START + timedelta(hours=5)

    async def resume(communicator):
        said = [await communicator.receive_json_from(timeout=5)]
        await communicator.send_json_to(batch_message(token, [("cmi.location", "hours later")]))
        said.append(await communicator.receive_json_from(timeout=5))
        return said

    ready, ack = _socket(student, attempt, token, resume)
    assert ready["type"] == "ready" and ack["type"] == "ack" and ack["stored"] is True
    assert current(attempt)["cmi.location"] == "hours later"


@pytest.mark.django_db
def test_grades_wait_after_the_students_own_due_date_when_the_activity_says_so(people, clock):
    from grading.models import GradeReport, ReportState

    student, classmate, teacher = people
    activity(student.membership.resource, due_at=START + timedelta(hours=2), late_policy=LatePolicy.ACCEPT,
             report_after_due=False)
    change(student, teacher, due_at=START + timedelta(minutes=10))
    attempt, token = started(student)
    others, others_token = started(classmate)
    clock.at = START + timedelta(minutes=20)  # after the student's own due date, before the activity's
    for client, a, t in ((student, attempt, token), (classmate, others, others_token)):
        assert post_batch(client, a, batch_message(t, FINISH, terminate=True)).status_code == 200
    assert GradeReport.objects.get(membership=student.membership).state == ReportState.WAITING
    assert GradeReport.objects.get(membership=classmate.membership).state != ReportState.WAITING


@pytest.mark.django_db
def test_the_student_page_shows_their_own_due_date(people):
    student, classmate, teacher = people
    activity(student.membership.resource, due_at=START + timedelta(hours=2))
    change(student, teacher, due_at=START + timedelta(days=3))
    own = when_text(START + timedelta(days=3))  # "3 Dec 2026, 14:00 UTC": the viewer's zone, named
    activitys = when_text(START + timedelta(hours=2))
    from portal.tests.test_student_rules import text_of  # the rules before the Start button

    assert own.endswith(" UTC")
    assert text_of(student.get(f"/resource/{student.membership.resource_id}/").content.decode(),
                   "rules-due").startswith(own)
    assert text_of(classmate.get(f"/resource/{classmate.membership.resource_id}/").content.decode(),
                   "rules-due").startswith(activitys)
