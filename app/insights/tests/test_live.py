"""The live view: its summary (one query) and its websocket — who may listen, the first
summary, and a push when an attempt starts."""

import asyncio
import datetime
from concurrent.futures import ThreadPoolExecutor

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.utils import timezone

from attempts import services as attempt_services
from attempts.models import Attempt
from attempts.tests.factories import batch, launch, with_exam
from insights.live import live_summary


@pytest.mark.django_db
def test_summary_counts_what_is_happening(consumer):
    teacher = launch(consumer, user_id="t", roles="Instructor")
    resource = with_exam(teacher.membership.resource, max_attempts=0)
    now = timezone.now()
    students = [launch(consumer, user_id=f"s{i}") for i in range(5)]
    a = [attempt_services.attempt_start(membership=s.membership) for s in students]
    Attempt.objects.filter(pk=a[0].pk).update(last_saved_at=now)  # saving now
    Attempt.objects.filter(pk=a[1].pk).update(last_saved_at=now - datetime.timedelta(minutes=30))  # quiet
    Attempt.objects.filter(pk=a[2].pk).update(last_saved_at=now, save_delayed_at=now - datetime.timedelta(minutes=2))
    Attempt.objects.filter(pk=a[3].pk).update(ended_at=now - datetime.timedelta(minutes=10), completion_status="completed")
    Attempt.objects.filter(pk=a[4].pk).update(deleted_at=now)  # does not count at all

    summary = live_summary(resource_id=resource.pk, now=now)

    assert {k: summary[k] for k in ("in_progress", "saving_now", "quiet", "saving_problems", "completed",
                                    "completed_last_hour", "started_last_hour")} == {
        "in_progress": 3, "saving_now": 2, "quiet": 1, "saving_problems": 1, "completed": 1,
        "completed_last_hour": 1, "started_last_hour": 4}
    assert [p["attempt"] for p in summary["problems"]] == [a[2].pk]


@pytest.mark.django_db
def test_a_late_batch_is_noted_as_a_saving_problem(consumer):
    launch(consumer, user_id="t", roles="Instructor")
    student = launch(consumer, user_id="s1")
    with_exam(student.membership.resource)
    attempt = attempt_services.attempt_start(membership=student.membership)
    token = attempt_services.attempt_take_over(attempt=attempt)
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id,
                                 batch=batch(token, [("cmi.location", "1")]))  # t = 2025: very late
    attempt.refresh_from_db()
    assert attempt.save_delayed_at is not None
    fresh = batch(token, [("cmi.location", "2")])
    object.__setattr__(fresh.changes[0], "client_ms", timezone.now().timestamp() * 1000)
    Attempt.objects.filter(pk=attempt.pk).update(save_delayed_at=None)
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id, batch=fresh)
    attempt.refresh_from_db()
    assert attempt.save_delayed_at is None


def _converse(cookie: str, resource_id: int, then=None):
    from numbas_lti.asgi import application

    async def run():
        communicator = WebsocketCommunicator(application, f"/ws/resource/{resource_id}/live/",
                                             headers=[(b"cookie", cookie.encode()), (b"origin", b"http://testserver")])
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        messages = []
        try:
            messages.append(await communicator.receive_json_from(timeout=5))
            if then is not None and messages[-1].get("type") == "summary":
                await asyncio.get_running_loop().run_in_executor(None, then)
                messages.append(await communicator.receive_json_from(timeout=5))
        except AssertionError:
            pass
        output = await communicator.receive_output(timeout=1) if messages and messages[-1].get("type") == "error" else None
        await communicator.disconnect()
        return messages, output

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=30)


def _cookie(client) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@pytest.mark.django_db(transaction=True)
def test_the_instructor_gets_a_summary_and_a_push_when_an_attempt_starts(consumer, settings):
    settings.LIVE_INTERVAL_SECONDS = 60  # the push, not the recount, must bring the news
    teacher = launch(consumer, user_id="t", roles="Instructor")
    resource = with_exam(teacher.membership.resource, max_attempts=0)
    student = launch(consumer, user_id="s1")

    messages, _ = _converse(_cookie(teacher), resource.pk,
                            then=lambda: attempt_services.attempt_start(membership=student.membership))

    assert messages[0]["type"] == "summary" and messages[0]["in_progress"] == 0
    assert messages[1]["type"] == "summary" and messages[1]["in_progress"] == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["student", "other_instructor"])
def test_others_are_refused(consumer, who):
    teacher = launch(consumer, user_id="t", roles="Instructor")
    resource = with_exam(teacher.membership.resource)
    client = launch(consumer, user_id="s1") if who == "student" else launch(
        consumer, user_id="t2", roles="Instructor", resource_link_id="res-2", context_id="course-2")

    messages, output = _converse(_cookie(client), resource.pk)

    assert messages and messages[0]["code"] == "forbidden"
    assert output == {"type": "websocket.close", "code": 4403}
