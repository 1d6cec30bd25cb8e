"""A small resource whose statistics are known exactly (see `world`)."""

import datetime
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from attempts.models import Attempt, Element
from exams.models import ExamPackage
from grading.services import question_scores_record
from lms.models import Resource, ResourceMembership


def day(d, hour=10):
    return datetime.datetime(2025, 3, d, hour, tzinfo=datetime.timezone.utc)


def make_resource(consumer, link_id, structure=()):
    resource = Resource.objects.create(consumer=consumer, resource_link_id=link_id, title=f"Exam {link_id}")
    exam = ExamPackage.objects.create(resource=resource, version=1, title="Exam", launch_href="index.html",
                                      structure=list(structure), directory=uuid.uuid4().hex, file_count=1,
                                      expanded_bytes=1, sha256="0" * 64)
    return resource, exam


def make_user(name, resource, role="student"):
    user = get_user_model().objects.create(username=name)
    ResourceMembership.objects.create(user=user, resource=resource, role=role, last_launched_at=timezone.now())
    return user


def make_attempt(resource, exam, user, number=1, *, status="completed", scaled=None, raw=None, max_=None,
                 ended=None, objectives=(), extra=()):
    attempt = Attempt.objects.create(resource=resource, user=user, exam=exam, number=number, completion_status=status,
                                     score_scaled=scaled, score_raw=raw, score_max=max_, ended_at=ended)
    values = list(extra)
    for index, (qid, q_raw, q_max) in enumerate(objectives):
        values += [(f"cmi.objectives.{index}.id", qid), (f"cmi.objectives.{index}.score.raw", str(q_raw)),
                   (f"cmi.objectives.{index}.score.max", str(q_max)),
                   (f"cmi.objectives.{index}.success_status", "unknown")]
    Element.objects.bulk_create(Element(attempt=attempt, key=k, value=v, sequence=i) for i, (k, v) in enumerate(values))
    if ended is not None:  # as the app does when an attempt ends
        question_scores_record(attempt_id=attempt.pk)
    return attempt


@pytest.fixture
def world(consumer):
    """Four students and an instructor of one resource; the other resource's attempt must never count.

    attempt  status      score              ended     objectives
    a1       completed   scaled 0.0         1 Mar     q0 0/2, q1 0/3
    a2       completed   raw 7 / max 10     4 Mar     q1 1/3, q0 2/2 (objective order swapped)
    a3       completed   scaled 1.0 (9 / 9) 3 Mar     q0 2/2, q1 3/3, q2 "abc"/4 (not a number)
    a4       completed   none               3 Mar     —
    a5       incomplete  0.55 (1.1 / 2)     —         q0 1/2
    a6       incomplete  scaled 0.35        1 Mar     —
    """
    resource, exam = make_resource(consumer, "stats", [{"name": "Arithmetic", "parts": []}, {"name": "", "parts": []}])
    other, other_exam = make_resource(consumer, "elsewhere")
    u1, u2, u3, u4 = (make_user(f"s{i}", resource) for i in range(1, 5))
    make_user("teacher", resource, role="instructor")
    make_attempt(resource, exam, u1, 1, scaled=0.0, ended=day(1), objectives=[("q0", 0, 2), ("q1", 0, 3)],
                 extra=[("cmi.objectives._count", "2"), ("cmi.interactions.0.id", "q0p0")])
    make_attempt(resource, exam, u2, 1, raw=7, max_=10, ended=day(4), objectives=[("q1", 1, 3), ("q0", 2, 2)])
    make_attempt(resource, exam, u3, 1, scaled=1.0, raw=9, max_=9, ended=day(3), objectives=[("q0", 2, 2), ("q1", 3, 3), ("q2", "abc", 4)])
    make_attempt(resource, exam, u3, 2, ended=day(3, 23))
    make_attempt(resource, exam, u4, 1, status="incomplete", scaled=0.55, raw=1.1, max_=2, objectives=[("q0", 1, 2)])
    make_attempt(resource, exam, u1, 2, status="incomplete", scaled=0.35, ended=day(1, 0))
    outsider = make_user("s9", other)
    make_attempt(other, other_exam, outsider, scaled=0.95, ended=day(2), objectives=[("q0", 2, 2)])
    return resource
