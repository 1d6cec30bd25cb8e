"""Reads for the student's activity page: the activity's rules as they apply to this student,
told before they start (attempts allowed and left, time limit, opening, closing and due times,
how their grade is worked out, what they see afterwards)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _, ngettext

from attempts import selectors as attempt_selectors
from attempts.models import Attempt, GradingMethod, LatePolicy, ResourceSettings, ShowScore
from exams.models import ExamPackage


def duration_text(duration: timedelta) -> str:
    """A duration as people say it: "45 minutes", "1 hour", "1 hour 30 minutes" (rounded up to
    the minute)."""
    minutes = max(0, -(-int(duration.total_seconds()) // 60))
    hours, minutes = divmod(minutes, 60)
    hours_text = ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    minutes_text = ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    if hours and minutes:
        return _("%(hours)s %(minutes)s") % {"hours": hours_text, "minutes": minutes_text}
    return hours_text if hours else minutes_text


@dataclass(frozen=True)
class ActivityRules:
    attempts_allowed: int  # 0: unlimited
    attempts_used: int
    attempts_left: int | None  # None: unlimited
    time_limit: str  # "" when the exam has none (for this student)
    extra_time: str  # their extra time, "" if none
    time_limit_off: bool  # the exam has a time limit, switched off for this student
    opens_at: datetime | None
    opens_later: bool
    closes_at: datetime | None
    due_at: datetime | None
    late: str  # what happens after the due time, "" without one
    grading: str
    marks: str
    review: str
    review_from: datetime | None  # when review opens, if later than now
    time_left: str  # in the attempt in progress, "" if none or no time limit


def _grading_text(settings: ResourceSettings, attempts_allowed: int) -> str:
    if attempts_allowed == 1:
        text = _("Your attempt's score is your grade.")
    elif settings.grading_method == GradingMethod.LAST:
        text = _("Your last attempt counts.")
    else:
        text = _("Your best attempt counts.")
    if not settings.include_incomplete:
        text += " " + _("Only attempts you finish count towards your grade.")
    return text


def _marks_text(settings: ResourceSettings) -> str:
    return {
        ShowScore.ALWAYS: _("You see your score as you go."),
        ShowScore.WHEN_COMPLETE: _("You see your score when you finish an attempt."),
        ShowScore.IN_REVIEW: _("You see your score when you review a finished attempt."),
        ShowScore.NEVER: _("Your score is not shown to you here."),
    }.get(settings.show_score, "")


def activity_rules(*, settings: ResourceSettings, user_id: int, exam: ExamPackage | None,
                   attempts: list[Attempt], now=None) -> ActivityRules:
    now = now or timezone.now()
    access = attempt_selectors.student_access_of(resource_id=settings.resource_id, user_id=user_id)
    allowed = access.attempts_allowed
    used = len(attempts)
    duration = exam.duration_seconds if exam is not None else None
    limit = access.time_allowed(duration) if duration else None
    extra = limit - timedelta(seconds=duration) if limit is not None else None
    review_later = settings.allow_review and settings.review_from is not None and now < settings.review_from
    if not settings.allow_review:
        review = _("You cannot review your attempts once they are finished.")
    elif review_later:
        review = _("You can review your finished attempts from:")
    else:
        review = _("You can review your finished attempts.")
    late = ""
    if access.due_at is not None:
        late = (_("Answers given after the due time are not accepted.") if access.late_policy == LatePolicy.REFUSE
                else _("Answers given after the due time are accepted, and the attempt is marked late."))
    time_left = ""
    for attempt in attempts:
        if not attempt.is_ended:
            left = attempt_selectors.attempt_time_left(attempt=attempt, now=now)
            if left is not None:
                time_left = duration_text(left)
    return ActivityRules(
        attempts_allowed=allowed,
        attempts_used=used,
        attempts_left=max(0, allowed - used) if allowed else None,
        time_limit=duration_text(limit) if limit is not None else "",
        extra_time=duration_text(extra) if extra is not None and extra > timedelta(0) else "",
        time_limit_off=bool(duration) and access.time_limit_off,
        opens_at=access.available_from,
        opens_later=access.available_from is not None and now < access.available_from,
        closes_at=access.available_until,
        due_at=access.due_at,
        late=late,
        grading=_grading_text(settings, allowed),
        marks=_marks_text(settings),
        review=review,
        review_from=settings.review_from if review_later else None,
        time_left=time_left,
    )
