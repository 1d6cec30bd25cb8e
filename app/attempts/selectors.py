"""Reads for attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings as django_settings
from django.db.models import Max, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _, ngettext

from attempts.models import (
    AccessChange, Attempt, Element, ElementChange, LatePolicy, PendingAccessChange, ResourceSettings, ShowScore,
)
from core.when import when_parts
from exams.models import ExamPackage
from exams.selectors import exam_current
from lms.models import Resource, ResourceMembership
from lti13.models import RosterMember, RosterStatus


@dataclass(frozen=True)
class AttemptOptions:
    can_start: bool
    reason: str  # why not, for the student; empty when they can
    exam: ExamPackage | None
    attempts_used: int
    attempts_allowed: int  # 0: unlimited


def resource_settings(*, resource_id: int) -> ResourceSettings:
    return ResourceSettings.objects.filter(resource_id=resource_id).first() or ResourceSettings(resource_id=resource_id)


def review_open(*, settings: ResourceSettings, now=None) -> bool:
    """Whether students may review their ended attempts now."""
    return settings.allow_review and (settings.review_from is None or (now or timezone.now()) >= settings.review_from)


def score_visible(*, settings: ResourceSettings, attempt: Attempt) -> bool:
    """Whether the student may see this attempt's score, by the resource's show_score rule."""
    if settings.show_score == ShowScore.ALWAYS:
        return True
    if settings.show_score == ShowScore.WHEN_COMPLETE:
        return attempt.is_ended
    if settings.show_score == ShowScore.IN_REVIEW:
        return attempt.is_ended and review_open(settings=settings)
    return False


def grade_visible(*, settings: ResourceSettings) -> bool:
    """Whether the student may see their grade as a number on the activity's page (the
    show_score rule applied to the grade, which may come from an attempt in progress)."""
    if settings.show_score == ShowScore.ALWAYS:
        return True
    if settings.show_score == ShowScore.WHEN_COMPLETE:
        return not settings.include_incomplete
    if settings.show_score == ShowScore.IN_REVIEW:
        return review_open(settings=settings) and not settings.include_incomplete
    return False


def attempts_of(*, membership: ResourceMembership) -> list[Attempt]:
    return list(
        Attempt.objects.filter(resource_id=membership.resource_id, user_id=membership.user_id)
        .select_related("exam")
        .order_by("number")
    )


def access_change_of(*, resource_id: int, user_id: int) -> AccessChange | None:
    return AccessChange.objects.filter(resource_id=resource_id, user_id=user_id).first()


def pending_access_changes(*, resource_id: int) -> list[PendingAccessChange]:
    """The resource's access changes waiting for a first launch, by what they name."""
    return list(PendingAccessChange.objects.filter(resource_id=resource_id).select_related("changed_by"))


def access_change_possible(*, resource_id: int, user_id: int) -> bool:
    """Whether this person may be given an access change in the resource: they have opened
    it, or they are a student on its course's list from the LMS (Names and Role Provisioning)
    who has not yet — the change then applies from their first launch."""
    if ResourceMembership.objects.filter(resource_id=resource_id, user_id=user_id).exists():
        return True
    course = Resource.objects.filter(pk=resource_id).values("context_id")
    return (RosterMember.objects.filter(context_id=Subquery(course), identity__user_id=user_id, is_instructor=False)
            .exclude(status=RosterStatus.DELETED).exists())


@dataclass(frozen=True)
class StudentAccess:
    """A student's effective access: the activity's settings with their access change applied."""

    attempts_allowed: int  # 0: unlimited
    available_until: object  # datetime | None
    extra_minutes: int
    available_from: object = None  # datetime | None
    due_at: object = None  # datetime | None
    late_policy: str = LatePolicy.ACCEPT
    extra_percent: int = 0
    time_limit_off: bool = False

    @property
    def refusing_due_at(self):
        """The due date when it works as a deadline (the activity refuses late answers)."""
        return self.due_at if self.late_policy == LatePolicy.REFUSE else None

    def time_allowed(self, duration_seconds: int) -> timedelta | None:
        """The exam's time limit for this student: its duration plus their extra minutes or
        percentage; None when the exam has none or theirs is switched off."""
        if not duration_seconds or self.time_limit_off:
            return None
        return timedelta(seconds=duration_seconds + 60 * self.extra_minutes
                         + duration_seconds * self.extra_percent / 100)


def student_access(*, settings: ResourceSettings, change: AccessChange | None) -> StudentAccess:
    if change is None:
        return StudentAccess(settings.max_attempts, settings.available_until, 0, available_from=settings.available_from,
                             due_at=settings.due_at, late_policy=settings.late_policy)
    allowed = settings.max_attempts + change.extra_attempts if settings.max_attempts else 0
    return StudentAccess(allowed, change.available_until or settings.available_until, change.extra_minutes,
                         available_from=change.available_from or settings.available_from,
                         due_at=change.due_at or settings.due_at, late_policy=settings.late_policy,
                         extra_percent=change.extra_percent, time_limit_off=change.time_limit_off)


def student_access_of(*, resource_id: int, user_id: int) -> StudentAccess:
    return student_access(settings=resource_settings(resource_id=resource_id),
                          change=access_change_of(resource_id=resource_id, user_id=user_id))


@dataclass(frozen=True)
class Deadline:
    """When an open attempt stops accepting answers, and why."""

    at: object  # datetime | None: no limit
    reason: str  # "closed" (the closing time), "due" (a due date that refuses late answers) or "time_limit"; "" if none


def attempt_deadline(*, attempt: Attempt, settings: ResourceSettings | None = None,
                     change: AccessChange | None | bool = False) -> Deadline:
    """The first of: the student's closing time (their access change's, else the activity's),
    their due date (likewise) when the activity refuses late answers, and the end of the
    exam's time limit from the attempt's start (plus their extra minutes or percentage and the
    grace period for saving; none when their time limit is switched off).
    `settings` and `change` are read when not given (change=None: the student has none).
    An instructor's test run has none: closing times and due dates do not stop an instructor
    trying the exam, and its time limit is the exam's own clock in the page (not enforced here)."""
    if attempt.is_test_run:
        return Deadline(None, "")
    if settings is None:
        settings = resource_settings(resource_id=attempt.resource_id)
    if change is False:
        change = access_change_of(resource_id=attempt.resource_id, user_id=attempt.user_id)
    access = student_access(settings=settings, change=change)
    candidates = []
    if access.available_until is not None:
        candidates.append((access.available_until, "closed"))
    if access.refusing_due_at is not None:
        candidates.append((access.refusing_due_at, "due"))
    allowed = access.time_allowed(attempt.exam.duration_seconds)
    if allowed is not None:
        limit = attempt.started_at + allowed + timedelta(seconds=django_settings.ATTEMPT_TIME_LIMIT_GRACE_SECONDS)
        candidates.append((limit, "time_limit"))
    if not candidates:
        return Deadline(None, "")
    at, reason = min(candidates, key=lambda c: c[0])
    return Deadline(at, reason)


def attempt_time_left(*, attempt: Attempt, now=None) -> timedelta | None:
    """The time the student has left in an open attempt by the exam's time limit (with their
    extra time; without the grace period), or None when the exam has no time limit for them."""
    if attempt.is_ended:
        return None
    allowed = student_access_of(resource_id=attempt.resource_id,
                                user_id=attempt.user_id).time_allowed(attempt.exam.duration_seconds)
    if allowed is None:
        return None
    return max(timedelta(0), attempt.started_at + allowed - (now or timezone.now()))


def deadline_message(*, deadline: Deadline) -> str:
    """What the student is told when an answer arrives after the deadline."""
    if deadline.reason == "due":
        return _("This exam was due at %(time)s on %(date)s and late answers are not accepted: answers given "
                 "after that were not saved. Everything saved before then is kept.") % _when(deadline.at)
    if deadline.reason == "time_limit":
        return _("Your time for this exam ran out at %(time)s on %(date)s; answers given after that were not "
                 "saved. Everything saved before then is kept.") % _when(deadline.at)
    return _("This exam closed at %(time)s on %(date)s; answers given after that were not saved. Everything "
             "saved before then is kept.") % _when(deadline.at)


def attempt_closed_message(*, attempt: Attempt, now=None) -> str:
    """Why the student may no longer write to this open attempt (its closing time or time limit
    has passed), or "" while they may."""
    deadline = attempt_deadline(attempt=attempt)
    if deadline.at is not None and (now or timezone.now()) >= deadline.at:
        return deadline_message(deadline=deadline)
    return ""


def attempt_reopen_refusal(*, attempt: Attempt, user, now=None) -> str:
    """Why the student may not re-open this attempt of theirs now, or "" if they may."""
    now = now or timezone.now()
    settings = resource_settings(resource_id=attempt.resource_id)
    if attempt.user_id != user.pk:
        return _("This attempt is not yours.")
    if not settings.allow_student_reopen:
        return _("This activity does not let students re-open their attempts.")
    if attempt.deleted_at is not None or attempt.ended_at is None:
        return _("Only a finished attempt can be re-opened.")
    opens = student_access_of(resource_id=attempt.resource_id, user_id=attempt.user_id).available_from
    if opens and now < opens:
        return _("This exam opens on %(date)s at %(time)s.") % _when(opens)
    closed = attempt_closed_message(attempt=attempt, now=now)
    if closed:
        return closed
    if Attempt.objects.filter(resource_id=attempt.resource_id, user_id=attempt.user_id,
                              ended_at__isnull=True).exists():
        return _("You have an attempt in progress: finish it before re-opening another.")
    return ""


def numbas_keys(*, access: StudentAccess) -> dict[str, str]:
    """The non-standard keys a Numbas exam reads for its time limit (Numbas's
    SCORMStorage.getDurationExtension: an extension in minutes or percent of the exam's
    duration, or the time limit disabled); it re-reads them when told "exam duration
    extension" through a window message."""
    if access.extra_percent:
        amount, units = access.extra_percent, "percent"
    else:
        amount, units = access.extra_minutes, "minutes"
    return {"duration_extension.amount": str(amount), "duration_extension.units": units,
            "disable_duration": "true" if access.time_limit_off else "false"}


def learner_identity(*, user) -> tuple[str, str]:
    """The person as the LMS knows them, for cmi.learner_id and cmi.learner_name: the LMS's
    user id (LTI 1.1 user_id, or the 1.3 `sub` for people only seen in 1.3) and the name it
    sent. Never our row id: Numbas shows both to the student. Someone without an LMS identity
    (a local account) is their username."""
    from lms.models import LtiIdentity

    lms_id, lms_name = LtiIdentity.objects.filter(user_id=user.pk).values_list(
        "lti_user_id", "full_name").first() or ("", "")
    return lms_id or user.get_username(), lms_name or user.get_full_name() or user.get_username()


def exam_display_values(*, attempt: Attempt, access: str, now=None) -> dict:
    """What the exam is told about who is taking it and what the activity lets them see, as
    far as Numbas reads it from the SCORM data (runtime/scripts/scorm-storage.js):
    cmi.learner_id / learner_name, `numbas.user_role` (an instructor sees answers revealed)
    and `numbas.review_allowed` (whether reviewing an ended attempt reveals the answers: the
    activity's "allow review" and "review allowed from"). Numbas has no SCORM key for showing
    marks or its results page — those are compiled into the exam from the editor's settings,
    and the settings page says so next to "Show students their marks"."""
    learner_id, learner_name = learner_identity(user=attempt.user)
    if access == "instructor":
        review_allowed = True
    else:
        review_allowed = review_open(settings=resource_settings(resource_id=attempt.resource_id), now=now)
    return {
        "learner_id": learner_id,
        "learner_name": learner_name,
        "numbas": {"user_role": "instructor" if access == "instructor" else "learner",
                   "review_allowed": "true" if review_allowed else "false"},
    }


def _when(moment) -> dict[str, str]:
    """{"date": "3 Dec 2026", "time": "14:00 CET"}: in the viewer's zone, named (core.when)."""
    return when_parts(moment)


def attempt_options(*, membership: ResourceMembership, now=None) -> AttemptOptions:
    now = now or timezone.now()
    settings = resource_settings(resource_id=membership.resource_id)
    access = student_access(settings=settings,
                            change=access_change_of(resource_id=membership.resource_id, user_id=membership.user_id))
    exam = exam_current(resource_id=membership.resource_id)
    attempts = attempts_of(membership=membership)
    used = len(attempts)

    def refuse(reason):
        return AttemptOptions(False, reason, exam, used, access.attempts_allowed)

    if exam is None:
        return refuse(_("There is no exam in this activity yet. Your instructor has to add one first."))
    if access.available_from and now < access.available_from:
        return refuse(_("This exam opens on %(date)s at %(time)s.") % _when(access.available_from))
    if access.available_until and now >= access.available_until:
        return refuse(_("This exam closed on %(date)s at %(time)s.") % _when(access.available_until))
    if access.refusing_due_at and now >= access.refusing_due_at:
        return refuse(_("This exam was due on %(date)s at %(time)s; late attempts are not accepted.")
                      % _when(access.refusing_due_at))
    if any(not a.is_ended for a in attempts):
        return refuse(_("You have an attempt in progress: resume it instead of starting a new one."))
    if access.attempts_allowed and used >= access.attempts_allowed:
        return refuse(
            ngettext("You have used all %(count)d attempt allowed.", "You have used all %(count)d attempts allowed.",
                     access.attempts_allowed) % {"count": access.attempts_allowed}
        )
    return AttemptOptions(True, "", exam, used, access.attempts_allowed)


def attempt_for_user(*, attempt_id: int, user) -> tuple[Attempt | None, str]:
    """The attempt and how this user may open it: "owner", "instructor" (read only) or ""."""
    if not user.is_authenticated or not 0 < attempt_id < 2**63:  # beyond a row id: no such attempt
        return None, ""
    try:
        attempt = Attempt.runnable.select_related("exam", "user").get(pk=attempt_id)  # test runs too
    except Attempt.DoesNotExist:
        return None, ""
    if attempt.user_id == user.pk:
        return attempt, "owner"
    is_instructor = ResourceMembership.objects.filter(
        resource_id=attempt.resource_id, user=user, role="instructor"
    ).exists()
    return (attempt, "instructor") if is_instructor else (None, "")


def test_runs_of(*, resource_id: int, user_id: int) -> list[Attempt]:
    """The instructor's own test runs of the resource, newest first."""
    return list(Attempt.test_runs.filter(resource_id=resource_id, user_id=user_id).select_related("exam")
                .order_by("-number"))


def test_run_open(*, resource_id: int, user_id: int) -> Attempt | None:
    return Attempt.test_runs.filter(resource_id=resource_id, user_id=user_id, ended_at__isnull=True).first()


def attempt_values(*, attempt_id: int) -> tuple[dict[str, str], int]:
    """Current values and the next sequence number a writer must use."""
    values = dict(Element.objects.filter(attempt_id=attempt_id).values_list("key", "value"))
    # Every stored change is in the history, including those a newer value superseded.
    last = ElementChange.objects.filter(attempt_id=attempt_id).aggregate(m=Max("sequence"))["m"]
    return values, (last or 0) + 1
