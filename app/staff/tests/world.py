"""A known data set for the staff dashboard's tests, written straight through the ORM with
chosen times (the services would stamp "now")."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.contrib.auth import get_user_model

from attempts.models import Attempt
from exams.models import ExamPackage
from grading.models import GradeReport, GradeSend, ReportState, SendOutcome
from lms.models import Consumer, Context, LaunchLog, Resource, ResourceMembership, Role

NOW = datetime(2026, 3, 10, 3, 0, 0, tzinfo=dt_timezone.utc)
SECRET = "do-not-show-this-secret-9f2c"
_seq = itertools.count(1)


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def consumer(name="Moodle", key=None, active=True) -> Consumer:
    return Consumer.objects.create(name=name, key=key or f"key-{next(_seq)}", secret=SECRET, active=active)


def resource(consumer, title="", context_title="Course") -> Resource:
    n = next(_seq)
    context = Context.objects.create(consumer=consumer, context_id=f"ctx-{n}", title=context_title)
    return Resource.objects.create(consumer=consumer, resource_link_id=f"link-{n}", context=context, title=title)


def member(resource, *, role=Role.STUDENT, name="Ada Lovelace") -> ResourceMembership:
    first, _, last = name.partition(" ")
    user = get_user_model().objects.create(username=f"user-{next(_seq)}", first_name=first, last_name=last)
    return ResourceMembership.objects.create(user=user, resource=resource, role=role, last_launched_at=NOW)


def launch(membership, at: datetime) -> LaunchLog:
    return LaunchLog.objects.create(membership=membership, launched_at=at, role=membership.role,
                                    handoff_token_hash=uuid.uuid4().hex)


def attempt(membership, *, saved_at: datetime | None) -> Attempt:
    exam = ExamPackage.objects.filter(resource=membership.resource).first() or ExamPackage.objects.create(
        resource=membership.resource, version=1, title="Exam", launch_href="index.html",
        directory=uuid.uuid4().hex, file_count=1, expanded_bytes=1, sha256="0" * 64)
    number = Attempt.objects.filter(resource=membership.resource, user=membership.user).count() + 1
    return Attempt.objects.create(resource=membership.resource, user=membership.user, exam=exam, number=number,
                                  last_saved_at=saved_at)


def report(membership, *, state=ReportState.PENDING, due_at=None, failures=0, score=0.5) -> GradeReport:
    if state == ReportState.PENDING and due_at is None:
        due_at = NOW
    return GradeReport.objects.create(membership=membership, resource=membership.resource, score=score, state=state,
                                      due_at=due_at, failures=failures, updated_at=NOW)


def send(report, *, at: datetime, outcome=SendOutcome.RETRY, http_status=None, answer="") -> GradeSend:
    return GradeSend.objects.create(report=report, sent_at=at, score=report.score or 0, version=report.version,
                                    outcome=outcome, http_status=http_status, lms_answer=answer, duration_ms=12)
