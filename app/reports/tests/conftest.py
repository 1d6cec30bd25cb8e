"""A resource with a known set of students, attempts, per-question scores and grades."""

from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

import pytest
from django.test import Client

from attempts.models import Attempt, Element
from attempts.tests.factories import launch, with_exam
from grading.models import GradeReport
from lms.models import LtiIdentity, Resource

T0 = datetime(2025, 11, 24, 10, 0, tzinfo=dt_timezone.utc)
T1 = datetime(2025, 11, 24, 10, 30, tzinfo=dt_timezone.utc)
T2 = datetime(2025, 11, 25, 9, 0, tzinfo=dt_timezone.utc)
T3 = datetime(2025, 11, 25, 9, 45, tzinfo=dt_timezone.utc)


def name(client: Client, full_name: str, email: str) -> None:
    user = client.membership.user
    LtiIdentity.objects.filter(user=user).update(full_name=full_name, email=email)
    first, _, last = full_name.partition(" ")
    type(user).objects.filter(pk=user.pk).update(first_name=first, last_name=last, email=email)


def scores(attempt: Attempt, total: tuple, questions: list[tuple[str, float, float, list[tuple[str, float, float]]]]):
    """Write the attempt's current values as Numbas does: cmi.score.*, an objective per question
    and an interaction per part (result = the part's score, weighting = its marks)."""
    raw, max_ = total
    values = {"cmi.score.raw": raw, "cmi.score.max": max_, "cmi.score.scaled": raw / max_, "cmi.location": "2",
              "cmi.suspend_data": '{"not": "scoring"}'}
    interaction = 0
    for index, (qid, q_raw, q_max, parts) in enumerate(questions):
        values |= {f"cmi.objectives.{index}.id": qid, f"cmi.objectives.{index}.score.raw": q_raw,
                   f"cmi.objectives.{index}.score.max": q_max}
        for pid, p_raw, p_max in parts:
            values |= {f"cmi.interactions.{interaction}.id": pid, f"cmi.interactions.{interaction}.result": p_raw,
                       f"cmi.interactions.{interaction}.weighting": p_max,
                       f"cmi.interactions.{interaction}.learner_response": "42"}
            interaction += 1
    Element.objects.bulk_create(
        Element(attempt=attempt, key=k, value=str(v), sequence=i) for i, (k, v) in enumerate(values.items(), 1)
    )


@dataclass
class Known:
    resource: Resource
    instructor: Client
    ada: Client
    bob: Client
    carol: Client
    dan: Client


@pytest.fixture
def known(consumer) -> Known:
    """Resource res-1 with the demo exam (q0 "Arithmetic": parts of 1 and 1 mark; q1 "Primes":
    one part of 2 marks) and:
      Ada   (s1): attempt 1 completed 3/4 (q0 1/2: p0 right, p1 wrong; q1 2/2), attempt 2
                  incomplete 2/4 (q0 2/2; q1 0/2); grade 0.75 from attempt 1, delivered.
      Bob   (+s2, a name that is a spreadsheet formula): attempt 1 not attempted, no values.
      Carol (s3): launched only: not in the scores CSV.
      Dan   (s4): no attempt but a grade report (waiting, no score).
    """
    ada = launch(consumer, user_id="s1")
    resource = ada.membership.resource
    with_exam(resource, max_attempts=0)
    exam = resource.exam_packages.get()
    bob = launch(consumer, user_id="+s2")
    carol = launch(consumer, user_id="s3")
    dan = launch(consumer, user_id="s4")
    instructor = launch(consumer, user_id="t1", roles="Instructor")
    name(ada, "Ada Lovelace", "ada@example.ac.uk")
    name(bob, "=HYPERLINK(\"http://evil.example\")", "@bob@example.ac.uk")
    name(carol, "Carol Ng", "carol@example.ac.uk")
    name(dan, "Dan Brown", "dan@example.ac.uk")

    def attempt(client, number, status, started, ended):
        a = Attempt.objects.create(resource=resource, user=client.membership.user, exam=exam, number=number,
                                   completion_status=status, ended_at=ended)
        Attempt.objects.filter(pk=a.pk).update(started_at=started)
        return a

    a1 = attempt(ada, 1, "completed", T0, T1)
    scores(a1, (3, 4), [("q0", 1, 2, [("q0p0", 1, 1), ("q0p1", 0, 1)]), ("q1", 2, 2, [("q1p0", 2, 2)])])
    a2 = attempt(ada, 2, "incomplete", T2, None)
    scores(a2, (2, 4), [("q0", 2, 2, [("q0p0", 1, 1), ("q0p1", 1, 1)]), ("q1", 0, 2, [("q1p0", 0, 2)])])
    attempt(bob, 1, "not attempted", T2, None)
    GradeReport.objects.create(membership=ada.membership, resource=resource, score=0.75, attempt_number=1,
                               state="delivered", sent_score=0.75, sent_version=1, delivered_at=T1, updated_at=T1)
    GradeReport.objects.create(membership=dan.membership, resource=resource, score=None, state="waiting", updated_at=T1)
    return Known(resource, instructor, ada, bob, carol, dan)
