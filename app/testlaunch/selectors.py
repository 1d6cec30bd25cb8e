"""Reads of the test-launch page's demo LMS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from django.conf import settings

from lms.models import Context, LtiIdentity, ResourceMembership, Role
from testlaunch import platform as demo_platform
from testlaunch.models import DemoLineItem, DemoOutcomeResult, DemoScore

#: The demo course list the demo LMS gives (NRPS) besides whoever launched: (user id, name, role).
DEMO_MEMBERS = (
    ("demo-student-1", "Demo Student", "student"),
    ("demo-student-2", "Ada Lovelace", "student"),
    ("demo-student-3", "Alan Turing", "student"),
    ("demo-student-4", "Grace Hopper", "student"),
    ("demo-teacher-1", "Demo Teacher", "instructor"),
)


def demo_course(*, course_id: int) -> Context | None:
    """A course of the demo LMS: a course of the demo consumer."""
    return Context.objects.filter(pk=course_id, consumer__key=settings.DEMO_CONSUMER_KEY).first()


def lineitems_find(*, context: Context, resource_link_id: str = "", resource_id: str = "", tag: str = ""):
    items = DemoLineItem.objects.filter(context=context)
    for field, value in (("resource_link_id", resource_link_id), ("resource_id", resource_id), ("tag", tag)):
        if value:
            items = items.filter(**{field: value})
    return items


def lineitem_of(*, context: Context, lineitem_id: int) -> DemoLineItem | None:
    return DemoLineItem.objects.filter(context=context, pk=lineitem_id).first()


def course_members(*, context: Context) -> list[dict]:
    """The course list (NRPS members): the demo people, and everyone who opened one of the
    course's activities (by the id the LMS knows them by)."""
    members = {user_id: _member(user_id, name, role) for user_id, name, role in DEMO_MEMBERS}
    launched: dict[str, tuple[str, str]] = {}
    for membership in ResourceMembership.objects.filter(resource__context=context).select_related("user__lti_identity"):
        identity: LtiIdentity | None = getattr(membership.user, "lti_identity", None)
        if identity is None:
            continue
        user_id = identity.sub or identity.lti_user_id
        role = "instructor" if membership.role == Role.INSTRUCTOR else "student"
        if launched.get(user_id, ("", ""))[1] != "instructor":  # an instructor of any of its activities
            launched[user_id] = (identity.full_name, role)
    for user_id, (name, role) in launched.items():
        members[user_id] = _member(user_id, name or members.get(user_id, {}).get("name", ""), role)
    return list(members.values())


def _member(user_id: str, name: str, role: str) -> dict:
    given, _, family = name.partition(" ")
    return {"user_id": user_id, "status": "Active", "name": name, "given_name": given, "family_name": family,
            "roles": demo_platform.ROLES[role][:1]}


@dataclass(frozen=True)
class ReceivedScore:
    received_at: datetime
    activity: str
    course: str
    user_id: str
    name: str
    score_given: float | None
    score_maximum: float | None
    activity_progress: str
    grading_progress: str


def scores_received(*, limit: int = 20) -> list[ReceivedScore]:
    """The latest scores the demo LMS received, newest first, with the names of the people."""
    scores = list(DemoScore.objects.select_related("lineitem__context")[:limit])
    names = dict(LtiIdentity.objects.filter(consumer__key=settings.DEMO_CONSUMER_KEY,
                                            sub__in={s.user_id for s in scores}).values_list("sub", "full_name"))
    return [ReceivedScore(s.received_at, s.lineitem.label, str(s.lineitem.context), s.user_id,
                          names.get(s.user_id, ""), s.score_given, s.score_maximum, s.activity_progress,
                          s.grading_progress) for s in scores]


@dataclass(frozen=True)
class GradebookRow:
    """A cell of the demo LMS's gradebook: a person's score in an activity, and how it came."""

    name: str
    user_id: str
    activity: str
    course: str
    score_given: float | None
    score_maximum: float | None
    received_at: datetime | None
    via: str  # "LTI 1.1 outcomes" or "LTI 1.3 AGS"


def gradebook(*, limit: int = 200) -> list[GradebookRow]:
    """The demo LMS's gradebook: everyone launched with LTI 1.1 as a student (with the score its
    outcome service last received, if any) and the latest LTI 1.3 score of each person in each
    gradebook column; the most recently graded first."""
    rows = [
        GradebookRow(r.full_name, r.user_id, r.resource.title or r.resource.resource_link_id,
                     str(r.resource.context or ""), r.score, None if r.score is None else 1.0, r.received_at,
                     "LTI 1.1 outcomes")
        for r in DemoOutcomeResult.objects.select_related("resource__context")[:limit]
    ]
    latest: dict[tuple[int, str], ReceivedScore] = {}
    for score in DemoScore.objects.select_related("lineitem__context")[:limit]:
        latest.setdefault((score.lineitem_id, score.user_id), score)
    names = dict(LtiIdentity.objects.filter(consumer__key=settings.DEMO_CONSUMER_KEY,
                                            sub__in={s.user_id for s in latest.values()}).values_list("sub", "full_name"))
    rows += [GradebookRow(names.get(s.user_id, ""), s.user_id, s.lineitem.label, str(s.lineitem.context),
                          s.score_given, s.score_maximum, s.received_at, "LTI 1.3 AGS") for s in latest.values()]
    never = datetime.min.replace(tzinfo=dt_timezone.utc)
    return sorted(rows, key=lambda r: r.received_at or never, reverse=True)
