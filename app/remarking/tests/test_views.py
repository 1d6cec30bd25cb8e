"""The re-mark page and its calls: the page shows progress and the preview; bad input gets a
clear 4xx and writes nothing; a run is reached only through its own activity."""

import json

import pytest
from django.test import Client

from attempts.models import AttemptEvent
from grading.tests.helpers import start, student_with_exam
from remarking.models import RemarkItem, RemarkItemStatus, RemarkRun
from remarking.tests.test_services import REMARKED, answered

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(consumer):
    from attempts.tests.factories import launch

    membership = student_with_exam(consumer)
    attempt = answered(start(membership), {"q0p0": 1, "q0p1": 0, "q1p0": 0})
    teacher = launch(consumer, user_id="teacher", roles="Instructor")
    return membership.resource, attempt, teacher


def url(resource, rest=""):
    return f"/resource/{resource.pk}/instructor/remark/{rest}"


def post_json(client, path, body):
    return client.post(path, data=body if isinstance(body, (str, bytes)) else json.dumps(body),
                       content_type="application/json")


def test_start_mark_preview_apply_through_the_pages(world):
    resource, attempt, teacher = world
    page = teacher.get(url(resource))
    assert page.status_code == 200 and b'data-testid="start-form"' in page.content
    assert teacher.post(url(resource, "start/"), {"scope": "all"}).status_code == 302
    run = RemarkRun.objects.get()
    page = teacher.get(url(resource))
    assert b'id="marking-frame"' in page.content and b'"pending": 1' in page.content
    handed = teacher.post(url(resource, f"{run.pk}/next/?after=0")).json()
    assert handed["next"]["attempt"] == attempt.pk and handed["next"]["state"]["entry"] == "resume"
    assert handed["next"]["exam"].startswith("/exams/")
    recorded = post_json(teacher, handed["next"]["recordUrl"], {"values": REMARKED, "exam": None})
    assert recorded.status_code == 200
    assert recorded.json() == {"next": None, "progress": {"total": 1, "done": 1, "pending": 0, "marked": 1,
                                                          "failed": 0, "applied": 0, "stale": 0, "changed": 1}}
    page = teacher.get(url(resource)).content.decode()
    assert 'data-testid="preview"' in page and 'data-old="1.0" data-new="2.0"' in page
    assert 'data-id="q0p1">Question 1: Arithmetic, part b: 0 → 1' in page and "1 / 4 → 2 / 4" in page
    applied = teacher.post(url(resource, f"{run.pk}/apply/"), follow=True)
    assert "1 attempts changed" in applied.content.decode()
    assert AttemptEvent.objects.filter(attempt=attempt).count() == 1


def test_bad_input_is_refused_with_a_message_and_writes_nothing(world):
    resource, attempt, teacher = world
    refused = teacher.post(url(resource, "start/"), {"scope": "everything"})
    assert refused.status_code == 400 and "Choose which attempts to re-mark." in refused.content.decode()
    assert not RemarkRun.objects.exists()
    teacher.post(url(resource, "start/"), {"scope": "all"})
    run = RemarkRun.objects.get()
    assert teacher.post(url(resource, f"{run.pk}/next/?after=first")).status_code == 400
    for lanes in ("lane=2&lanes=2", "lane=0&lanes=9", "lane=x&lanes=2"):
        refused = teacher.post(url(resource, f"{run.pk}/next/?{lanes}"))
        assert refused.status_code == 400 and "lane" in refused.json()["error"]["message"]
    record = url(resource, f"{run.pk}/attempts/{attempt.pk}/")
    refused = post_json(teacher, record, {"values": REMARKED})  # not handed out yet
    assert refused.status_code == 400 and "not been handed out" in refused.json()["error"]["message"]
    teacher.post(url(resource, f"{run.pk}/next/"))
    for body, status, says in [
        ("{not json", 400, "not valid JSON"),
        ([1, 2], 400, "Send {"),
        ({"values": "4"}, 400, "Send {"),
        ({"values": {"cmi.score.raw": "four"}}, 400, "is not a number"),
        ({"values": {"cmi.interactions.0.result": "maybe"}}, 400, "is not a score"),
        ({"values": {"cmi.score.raw": ["4"]}}, 400, "text or number"),
        ({"values": {f"cmi.score.raw{i}": "1" for i in range(6000)}}, 400, "at most 5000"),
        ("x" * 2_100_000, 413, "too large"),
    ]:
        answer = post_json(teacher, record, body)
        assert answer.status_code == status, (body, answer.content[:200])
        assert says in answer.json()["error"]["message"]
    assert RemarkItem.objects.get().status == RemarkItemStatus.PENDING
    refused = teacher.post(url(resource, f"{run.pk}/apply/"))
    assert refused.status_code == 400 and "let the re-mark finish" in refused.content.decode()
    elsewhere = post_json(teacher, url(resource, f"{run.pk}/attempts/{attempt.pk + 99}/"), {"values": {}})
    assert elsewhere.status_code == 400 and "not part of this re-mark" in elsewhere.json()["error"]["message"]
    assert teacher.post(url(resource, f"{run.pk + 1}/next/")).status_code == 404
    assert not AttemptEvent.objects.exists()


def test_students_and_strangers_cannot_reach_it(world):
    resource, attempt, teacher = world
    teacher.post(url(resource, "start/"), {"scope": "all"})
    run = RemarkRun.objects.get()
    student = Client()
    student.force_login(attempt.user)
    assert student.get(url(resource)).status_code == 403
    assert student.post(url(resource, f"{run.pk}/next/")).status_code == 403
    assert Client().post(url(resource, f"{run.pk}/discard/")).status_code == 401
    assert RemarkItem.objects.get().base_sequence is None
