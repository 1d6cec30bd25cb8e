"""Writes for attempts: starting one, taking over its window, and storing batches of
run-time data — each batch in one transaction, acknowledged only after it commits."""

from __future__ import annotations

import logging
import math
import re
import secrets
from contextlib import nullcontext
from dataclasses import dataclass, field as dataclass_field
from datetime import datetime, timezone as dt_timezone
from typing import NamedTuple

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.translation import gettext

from attempts import selectors
from attempts.models import (
    MAX_EXTRA_ATTEMPTS, MAX_EXTRA_MINUTES, MAX_EXTRA_PERCENT, AccessChange, Attempt, AttemptEvent, AttemptEventKind,
    Batch, Element, ElementChange, IdentifierKind, PendingAccessChange, ResourceSettings, TestRunRemoval,
)
from attempts.protocol import ParsedBatch
from lms.models import ResourceMembership, Role

logger = logging.getLogger(__name__)

SUMMARY_KEYS = {
    "cmi.completion_status": "completion_status",
    "cmi.success_status": "success_status",
    "cmi.score.raw": "score_raw",
    "cmi.score.min": "score_min",
    "cmi.score.max": "score_max",
    "cmi.score.scaled": "score_scaled",
}
ENDING_EXITS = {"normal", "time-out", "logout"}


class AttemptRefused(Exception):
    """A student may not do this now; the message says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BatchRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def attempt_group(attempt_id: int) -> str:
    return f"attempt.{attempt_id}"


def live_group(resource_id: int) -> str:
    return f"resource.{resource_id}.live"


def live_notify(resource_id: int) -> None:
    """Tell the resource's live views that an attempt started or ended (they recount). Never
    per answer: the live views also recount every few seconds by themselves."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(live_group(resource_id), {"type": "live.changed"})
    except Exception:  # a live view catches up at its next recount
        logger.warning("Could not notify the live view of resource %s", resource_id, exc_info=True)


@transaction.atomic
def attempt_start(*, membership: ResourceMembership) -> Attempt:
    """Start the student's next attempt on the resource's current exam, if the resource's
    settings allow it now."""
    # Lock the membership so that two clicks cannot both start "attempt 2".
    ResourceMembership.objects.select_for_update().filter(pk=membership.pk).first()
    options = selectors.attempt_options(membership=membership)
    if not options.can_start:
        raise AttemptRefused(options.reason)
    # Deleted attempts keep their numbers: count them too.
    last = Attempt.all_objects.filter(resource_id=membership.resource_id, user_id=membership.user_id).aggregate(
        n=Max("number")
    )["n"]
    attempt = Attempt.objects.create(
        resource_id=membership.resource_id, user_id=membership.user_id, exam=options.exam, number=(last or 0) + 1
    )
    attempt.deadline_at = selectors.attempt_deadline(attempt=attempt).at
    attempt.save(update_fields=["deadline_at"])
    transaction.on_commit(lambda: live_notify(membership.resource_id))
    return attempt


def attempt_take_over(*, attempt: Attempt, now=None) -> str:
    """Make the window being opened the attempt's only writer; tell any other window. Refused
    once the attempt's deadline (closing time or time limit) has passed: no resuming then."""
    closed = selectors.attempt_closed_message(attempt=attempt, now=now)
    if closed:
        raise AttemptRefused(closed)
    token = secrets.token_urlsafe(24)
    Attempt.runnable.filter(pk=attempt.pk).update(writer_token=token)
    attempt.writer_token = token
    layer = get_channel_layer()
    if layer is not None:
        try:
            async_to_sync(layer.group_send)(
                attempt_group(attempt.pk), {"type": "attempt.taken_over", "token": token}
            )
        except Exception:  # the other window also learns it on its next write
            logger.warning("Could not notify other windows of attempt %s", attempt.pk, exc_info=True)
    return token


# --- instructors' test runs -----------------------------------------------------------------


@transaction.atomic
def test_run_start(*, membership: ResourceMembership) -> Attempt:
    """An instructor of the resource tries its current exam as a student would (same runtime
    page, content origin and saving path) in a sandbox attempt that never counts. Opening,
    closing and due times and the attempt limit do not apply; the exam's own time limit runs in
    the page as for a student. An open test run is resumed rather than a second one started."""
    from lms.models import Role

    ResourceMembership.objects.select_for_update().filter(pk=membership.pk).first()
    if membership.role != Role.INSTRUCTOR:
        raise AttemptRefused(gettext("Only instructors of this activity can make a test run."))
    open_run = selectors.test_run_open(resource_id=membership.resource_id, user_id=membership.user_id)
    if open_run is not None:
        return open_run
    from exams.selectors import exam_current

    exam = exam_current(resource_id=membership.resource_id)
    if exam is None:
        raise AttemptRefused(gettext("There is no exam in this activity yet: upload one before a test run."))
    # Numbers are shared with any attempt this person has (one unique number per person).
    last = Attempt.all_objects.filter(resource_id=membership.resource_id, user_id=membership.user_id).aggregate(
        n=Max("number"))["n"]
    return Attempt.all_objects.create(resource_id=membership.resource_id, user_id=membership.user_id, exam=exam,
                                      number=(last or 0) + 1, is_test_run=True)


@transaction.atomic
def test_run_remove(*, resource_id: int, attempt_id: int, by) -> TestRunRemoval:
    """Remove one of the instructor's own test runs for good: the attempt, its values and its
    history are deleted; a TestRunRemoval row records whose it was and who removed it when."""
    attempt = (Attempt.test_runs.select_for_update()
               .filter(pk=attempt_id, resource_id=resource_id, user_id=by.pk).first())
    if attempt is None:
        raise AttemptActionRefused(gettext("There is no such test run of yours in this activity."))
    removal = TestRunRemoval.objects.create(
        resource_id=resource_id, attempt_id=attempt.pk, owner_id=attempt.user_id, number=attempt.number,
        started_at=attempt.started_at, ended_at=attempt.ended_at, score_raw=attempt.score_raw,
        changes=ElementChange.objects.filter(attempt_id=attempt.pk).count(), by=by, at=timezone.now())
    # Element and ElementChange reference the attempt without a database constraint: delete them first.
    ElementChange.objects.filter(attempt_id=attempt.pk).delete()
    Element.objects.filter(attempt_id=attempt.pk).delete()
    attempt.delete()
    _tell_window_ended_later(attempt_id, gettext("This test run was removed."))
    return removal


def _tell_window_ended_later(attempt_id: int, message: str) -> None:
    transaction.on_commit(lambda: _tell_window_ended(attempt_id, message))


TERM_FIELDS = ("extra_attempts", "available_from", "available_until", "due_at", "extra_minutes", "extra_percent",
               "time_limit_off")


class AccessChangeInvalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def access_terms_check(*, extra_attempts: int = 0, available_from=None, available_until=None, due_at=None,
                       extra_minutes: int = 0, extra_percent: int = 0, time_limit_off: bool = False,
                       reason: str = "") -> dict:
    """The terms of an access change, checked; AccessChangeInvalid says what is wrong."""
    if not isinstance(extra_attempts, int) or not 0 <= extra_attempts <= MAX_EXTRA_ATTEMPTS:
        raise AccessChangeInvalid(gettext("Extra attempts must be a whole number from 0 to %(max)d.")
                                  % {"max": MAX_EXTRA_ATTEMPTS})
    if not isinstance(extra_minutes, int) or not 0 <= extra_minutes <= MAX_EXTRA_MINUTES:
        raise AccessChangeInvalid(gettext("Extra time must be a whole number of minutes from 0 to %(max)d.")
                                  % {"max": MAX_EXTRA_MINUTES})
    if not isinstance(extra_percent, int) or not 0 <= extra_percent <= MAX_EXTRA_PERCENT:
        raise AccessChangeInvalid(gettext("Extra time must be a whole percentage from 0 to %(max)d.")
                                  % {"max": MAX_EXTRA_PERCENT})
    if extra_minutes and extra_percent:
        raise AccessChangeInvalid(gettext("Give extra time either in minutes or as a percentage, not both."))
    for moment in (available_from, available_until, due_at):
        if moment is not None and timezone.is_naive(moment):
            raise AccessChangeInvalid(gettext("Times need a time zone."))
    if available_from and available_until and available_from >= available_until:
        raise AccessChangeInvalid(gettext("This student's opening time must be before their closing time."))
    if due_at and available_until and due_at > available_until:
        raise AccessChangeInvalid(gettext("This student's due time cannot be after their closing time."))
    if due_at and available_from and due_at <= available_from:
        raise AccessChangeInvalid(gettext("This student's due time must be after their opening time."))
    if len(reason) > 500:
        raise AccessChangeInvalid(gettext("The reason can be at most 500 characters."))
    return {"extra_attempts": extra_attempts, "available_from": available_from, "available_until": available_until,
            "due_at": due_at, "extra_minutes": extra_minutes, "extra_percent": extra_percent,
            "time_limit_off": bool(time_limit_off), "reason": reason}


@transaction.atomic
def access_change_set(*, resource_id: int, user_id: int, changed_by, extra_attempts: int = 0,
                      available_from=None, available_until=None, due_at=None, extra_minutes: int = 0,
                      extra_percent: int = 0, time_limit_off: bool = False, reason: str = "") -> AccessChange | None:
    """Give one student of a resource extra attempts, their own opening, closing and due
    times, extra exam time (minutes or a percentage of the exam's duration) or no time limit
    (nothing at all removes the change). It applies at once: the next start checks it, open
    attempts' deadlines are recomputed, and an attempt open right now is told its new time
    limit over the websocket after commit (the Numbas keys it reads for it)."""
    if not selectors.access_change_possible(resource_id=resource_id, user_id=user_id):
        raise AccessChangeInvalid(gettext("This person has not opened this activity and is not on its course list."))
    terms = access_terms_check(extra_attempts=extra_attempts, available_from=available_from,
                               available_until=available_until, due_at=due_at, extra_minutes=extra_minutes,
                               extra_percent=extra_percent, time_limit_off=time_limit_off, reason=reason)
    existing = AccessChange.objects.select_for_update().filter(resource_id=resource_id, user_id=user_id).first()
    settings_ = selectors.resource_settings(resource_id=resource_id)
    keys_before = selectors.numbas_keys(access=selectors.student_access(settings=settings_, change=existing))
    if not any(terms[f] for f in TERM_FIELDS):
        if existing:
            existing.delete()
        change = None
    else:
        change, _ = AccessChange.objects.update_or_create(
            resource_id=resource_id, user_id=user_id,
            defaults={**terms, "changed_by": changed_by, "changed_at": timezone.now()},
        )
    attempt_deadlines_refresh(resource_id=resource_id, user_id=user_id)
    keys = selectors.numbas_keys(access=selectors.student_access(settings=settings_, change=change))
    if keys != keys_before:
        open_attempts = list(Attempt.objects.filter(resource_id=resource_id, user_id=user_id, ended_at__isnull=True)
                             .values_list("pk", flat=True))
        transaction.on_commit(lambda: _tell_open_attempts(open_attempts, keys))
    return change


@transaction.atomic
def attempt_deadlines_refresh(*, resource_id: int, user_id: int | None = None) -> int:
    """Recompute the deadline of the resource's open attempts (one student's, or everyone's)
    after the settings, the exam's time limit or an access change changed. Returns how many
    changed."""
    settings_ = selectors.resource_settings(resource_id=resource_id)
    changes = {c.user_id: c for c in AccessChange.objects.filter(resource_id=resource_id)}
    open_attempts = Attempt.objects.select_for_update().select_related("exam").filter(
        resource_id=resource_id, ended_at__isnull=True)
    if user_id is not None:
        open_attempts = open_attempts.filter(user_id=user_id)
    changed = []
    for attempt in open_attempts:
        deadline = selectors.attempt_deadline(attempt=attempt, settings=settings_,
                                              change=changes.get(attempt.user_id)).at
        if deadline != attempt.deadline_at:
            attempt.deadline_at = deadline
            changed.append(attempt)
    Attempt.objects.bulk_update(changed, ["deadline_at"])
    return len(changed)


MAX_LIST_ENTRIES = 1000
_LIST_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass
class AccessChangeListResult:
    """What one access change for several students did: applied at once to the students who
    have launched (their names), kept pending for entries that match nobody yet (as pasted),
    and refused entries with the reason."""

    applied: list[str] = dataclass_field(default_factory=list)
    pending: list[str] = dataclass_field(default_factory=list)
    refused: list[tuple[str, str]] = dataclass_field(default_factory=list)


def access_list_entries(text: str) -> list[str]:
    """The entries of a pasted list: one per line or separated by commas, semicolons or
    spaces; empty ones dropped, repeats once, in order."""
    return list(dict.fromkeys(e for e in _LIST_SEPARATORS.split(text or "") if e))


def _pending_value_key(kind: str, value: str) -> str:
    return value.lower() if kind in (IdentifierKind.EMAIL, IdentifierKind.USERNAME) else value


def _entry_problem(kind: str, value: str) -> str:
    if len(value) > 255:
        return gettext("Too long to be a username, e-mail address or user id.")
    if kind == IdentifierKind.EMAIL and ("@" not in value or value.startswith("@") or value.endswith("@")):
        return gettext("Not an e-mail address.")
    return ""


def _entry_matches(kind: str, value: str, student: dict) -> bool:
    lowered = value.lower()
    by_email = bool(student["email"]) and student["email"].lower() == lowered
    by_username = bool(student["username"]) and student["username"].lower() == lowered
    by_id = value in (student["lti_user_id"], student["sub"])
    return {IdentifierKind.EMAIL: by_email, IdentifierKind.USERNAME: by_username,
            IdentifierKind.USER_ID: by_id}.get(kind, by_email or by_username or by_id)


@transaction.atomic
def access_change_for_list(*, resource_id: int, changed_by, membership_ids: list[int], entries: list[str],
                           kind: str = IdentifierKind.ANY, **terms) -> AccessChangeListResult:
    """One access change for several students of a resource: those chosen (their memberships)
    and those a pasted list names by LMS username, e-mail address or LMS user id (`kind`, or
    any of them). An entry that matches one student who has launched applies to them now; one
    that matches nobody yet is kept as a pending change, applied at the first launch of
    whoever it matches (access_changes_pending_apply); one that matches several people, an
    instructor, or is no identifier is refused with the reason. Chosen memberships that are not
    students of this resource, no one at all, too many entries or invalid terms refuse the
    whole change (AccessChangeInvalid), and nothing is written."""
    terms = access_terms_check(**terms)
    if kind not in IdentifierKind.values:
        raise AccessChangeInvalid(gettext("Choose what the pasted list contains."))
    if len(entries) > MAX_LIST_ENTRIES:
        raise AccessChangeInvalid(gettext("A list can have at most %(max)d entries; this one has %(count)d. "
                                          "Split it into smaller lists.") % {"max": MAX_LIST_ENTRIES,
                                                                              "count": len(entries)})
    if not membership_ids and not entries:
        raise AccessChangeInvalid(gettext("Choose students or paste a list of usernames, e-mail addresses or "
                                          "LMS user ids."))
    members = list(ResourceMembership.objects.filter(resource_id=resource_id).values(
        "pk", "user_id", "role", full_name=F("user__lti_identity__full_name"), email=F("user__lti_identity__email"),
        username=F("user__lti_identity__username"), lti_user_id=F("user__lti_identity__lti_user_id"),
        sub=F("user__lti_identity__sub"), django_username=F("user__username")))
    by_pk = {m["pk"]: m for m in members}
    chosen = set(membership_ids)
    unknown = [pk for pk in chosen if pk not in by_pk or by_pk[pk]["role"] != Role.STUDENT]
    if unknown:
        raise AccessChangeInvalid(gettext("Some of the chosen people are not students of this activity: reload "
                                          "the page and choose again."))
    result = AccessChangeListResult()
    targets: dict[int, dict] = {}
    for pk in sorted(chosen):
        targets[by_pk[pk]["user_id"]] = by_pk[pk]
    pending: list[tuple[str, str]] = []
    for entry in entries:
        problem = _entry_problem(kind, entry)
        if problem:
            result.refused.append((entry, problem))
            continue
        matches = [m for m in members if _entry_matches(kind, entry, m)]
        people = {m["user_id"] for m in matches}
        if len(people) > 1:
            result.refused.append((entry, gettext("%(count)d people match it; use their LMS user id instead.")
                                   % {"count": len(people)}))
        elif matches and matches[0]["role"] != Role.STUDENT:
            result.refused.append((entry, gettext("An instructor of this activity.")))
        elif matches:
            targets[matches[0]["user_id"]] = matches[0]
        else:
            pending.append((entry, _pending_value_key(kind, entry)))
    now = timezone.now()
    for user_id, member in targets.items():
        access_change_set(resource_id=resource_id, user_id=user_id, changed_by=changed_by, **terms)
        result.applied.append(member["full_name"] or member["email"] or member["username"]
                              or member["lti_user_id"] or member["django_username"])
    for value, key in pending:
        PendingAccessChange.objects.update_or_create(
            resource_id=resource_id, kind=kind, value_key=key,
            defaults={**terms, "value": value, "changed_by": changed_by, "changed_at": now})
        result.pending.append(value)
    return result


@transaction.atomic
def pending_access_change_remove(*, resource_id: int, pending_id: int) -> bool:
    """Remove a pending access change of the resource; False if there was none."""
    deleted, _ = PendingAccessChange.objects.filter(resource_id=resource_id, pk=pending_id).delete()
    return bool(deleted)


@transaction.atomic
def access_changes_pending_apply(*, resource_id: int, user_id: int, email: str = "", username: str = "",
                                 user_ids: tuple[str, ...] = ()) -> AccessChange | None:
    """A student's launch of a resource (in its transaction, after their membership is made):
    the newest pending access change that names them (by e-mail address, LMS username or LMS
    user id) becomes their access change, unless they have a newer one, and every pending
    change that names them is removed. One query when none does."""
    ids = [i for i in user_ids if i]
    match = Q(pk__in=[])
    if email:
        match |= Q(kind__in=[IdentifierKind.EMAIL, IdentifierKind.ANY], value_key=email.lower())
        match |= Q(kind=IdentifierKind.ANY, value_key__iexact=email)
    if username:
        match |= Q(kind__in=[IdentifierKind.USERNAME, IdentifierKind.ANY], value_key=username.lower())
        match |= Q(kind=IdentifierKind.ANY, value_key__iexact=username)
    if ids:
        match |= Q(kind__in=[IdentifierKind.USER_ID, IdentifierKind.ANY], value_key__in=ids)
    found = list(PendingAccessChange.objects.select_for_update().filter(match, resource_id=resource_id)
                 .order_by("-changed_at", "-pk"))
    if not found:
        return None
    newest = found[0]
    PendingAccessChange.objects.filter(pk__in=[p.pk for p in found]).delete()
    existing = AccessChange.objects.filter(resource_id=resource_id, user_id=user_id).first()
    if existing is not None and existing.changed_at > newest.changed_at:
        return existing
    change = access_change_set(resource_id=resource_id, user_id=user_id, changed_by=newest.changed_by,
                               reason=newest.reason, **{f: getattr(newest, f) for f in TERM_FIELDS})
    if change is not None:  # when it was decided, not when it was applied
        AccessChange.objects.filter(pk=change.pk).update(changed_at=newest.changed_at)
    return change


DEADLINE_END_VALUES = (("cmi.completion_status", "completed"), ("cmi.exit", "time-out"))


def attempts_end_past_deadline(*, now=None) -> int:
    """End every open attempt whose deadline has passed (run every minute by attempts.tasks;
    driven by the database, so nothing is missed if the queue lost a task). Each in its own
    transaction: one that fails is tried again at the next run."""
    now = now or timezone.now()
    due = list(Attempt.objects.filter(ended_at__isnull=True, deadline_at__lte=now).values_list("pk", flat=True))
    ended = 0
    for attempt_id in due:
        try:
            ended += attempt_end_at_deadline(attempt_id=attempt_id, now=now)
        except Exception:
            logger.exception("Could not end attempt %s at its deadline", attempt_id)
    return ended


@transaction.atomic
def attempt_end_at_deadline(*, attempt_id: int, now=None) -> bool:
    """End an open attempt at its deadline: what was stored before it is kept (nothing can be
    stored after it: batch_store refuses), the exam's values say completed and timed out
    (written to the history like any change), the grade counts it, and its open window is told."""
    now = now or timezone.now()
    attempt = Attempt.objects.select_for_update().filter(pk=attempt_id, ended_at__isnull=True,
                                                         deadline_at__lte=now).first()
    if attempt is None:
        return False  # ended meanwhile, or its deadline moved
    sequence = (ElementChange.objects.filter(attempt=attempt).aggregate(m=Max("sequence"))["m"] or 0) + 1
    batch = Batch.objects.create(attempt=attempt, batch_id=f"deadline-{secrets.token_hex(8)}", content_hash="",
                                 element_count=len(DEADLINE_END_VALUES), received_at=now)
    for offset, (key, value) in enumerate(DEADLINE_END_VALUES):
        ElementChange.objects.create(attempt=attempt, batch=batch, key=key, value=value, sequence=sequence + offset,
                                     client_time=now)
        Element.objects.update_or_create(attempt=attempt, key=key,
                                         defaults={"value": value, "sequence": sequence + offset})
    attempt.ended_at = attempt.deadline_at
    attempt.completion_status = "completed"
    attempt.writer_token = ""
    due_at = selectors.student_access_of(resource_id=attempt.resource_id, user_id=attempt.user_id).due_at
    attempt.late = due_at is not None and attempt.ended_at > due_at
    attempt.save(update_fields=["ended_at", "completion_status", "writer_token", "late"])
    deadline = selectors.attempt_deadline(attempt=attempt)
    reason = deadline.reason if deadline.at == attempt.deadline_at else "closed"
    _audit(attempt, AttemptEventKind.ENDED_AT_DEADLINE, None, "", deadline=attempt.deadline_at.isoformat(),
           why=reason)
    _question_scores_record(attempt.pk)
    from grading.services import Trigger, grade_refresh

    grade_refresh(resource_id=attempt.resource_id, user_id=attempt.user_id, trigger=Trigger.COMPLETED)
    message = selectors.deadline_message(deadline=selectors.Deadline(attempt.deadline_at, reason))
    transaction.on_commit(lambda: _tell_window_ended(attempt.pk, message))
    transaction.on_commit(lambda: live_notify(attempt.resource_id))
    transaction.on_commit(lambda: _receipt_later(attempt.pk))
    return True


def _tell_window_ended(attempt_id: int, message: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(attempt_group(attempt_id), {"type": "attempt.ended", "message": message})
    except Exception:  # the window learns it at its next batch (refused: "closed")
        logger.warning("Could not tell attempt %s's window that it ended", attempt_id, exc_info=True)


def _tell_open_attempts(attempt_ids: list[int], numbas: dict[str, str]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for attempt_id in attempt_ids:
        try:
            async_to_sync(layer.group_send)(attempt_group(attempt_id), {"type": "attempt.access", "numbas": numbas})
        except Exception:  # the exam reads the keys again whenever it is reopened
            logger.warning("Could not tell attempt %s of its new access", attempt_id, exc_info=True)


# --- what instructors do to an attempt (each audited) --------------------------------------


class AttemptActionRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _audit(attempt: Attempt, kind: str, by, reason: str, **detail) -> AttemptEvent:
    return AttemptEvent.objects.create(attempt=attempt, kind=kind, by=by, at=timezone.now(), reason=reason[:500],
                                       detail=detail)


def _question_scores_record(attempt_id: int) -> None:
    from grading import services as grading_services

    grading_services.question_scores_record(attempt_id=attempt_id)


def _counts_again(attempt: Attempt) -> None:
    """After an instructor's change to an attempt: its recorded question scores (none when open
    or deleted) and the student's grade (re-sent if the LMS had another)."""
    from grading import services as grading_services  # grading depends on attempts, not the reverse

    grading_services.question_scores_record(attempt_id=attempt.pk)
    grading_services.grade_refresh(resource_id=attempt.resource_id, user_id=attempt.user_id,
                                   trigger=grading_services.Trigger.RECOMPUTE)


@transaction.atomic
def attempt_delete(*, attempt: Attempt, by, reason: str = "") -> Attempt:
    """Soft-delete: the attempt, its data and history stay, but it no longer counts — not for
    the grade, the attempts allowed, reports or statistics — and no window may write to it."""
    attempt = Attempt.all_objects.select_for_update().get(pk=attempt.pk)
    if attempt.deleted_at is not None:
        raise AttemptActionRefused(gettext("This attempt is already deleted."))
    attempt.deleted_at = timezone.now()
    attempt.writer_token = ""  # an open window's writes are refused from now on
    attempt.save(update_fields=["deleted_at", "writer_token"])
    _audit(attempt, AttemptEventKind.DELETED, by, reason)
    _counts_again(attempt)
    return attempt


@transaction.atomic
def attempt_restore(*, attempt: Attempt, by, reason: str = "") -> Attempt:
    attempt = Attempt.all_objects.select_for_update().get(pk=attempt.pk)
    if attempt.deleted_at is None:
        raise AttemptActionRefused(gettext("This attempt is not deleted."))
    attempt.deleted_at = None
    attempt.save(update_fields=["deleted_at"])
    _audit(attempt, AttemptEventKind.RESTORED, by, reason)
    _counts_again(attempt)
    return attempt


REOPEN_VALUES = (("cmi.completion_status", "incomplete"), ("cmi.exit", "suspend"))


@transaction.atomic
def attempt_reopen_by_student(*, attempt: Attempt, user) -> Attempt:
    """The student re-opens their own ended attempt, when the activity allows it and the
    attempt could still take answers now (before its closing time, refusing due date and time
    limit), and they have no other attempt open."""
    ResourceMembership.objects.select_for_update().filter(resource_id=attempt.resource_id, user_id=user.pk).first()
    attempt = Attempt.all_objects.select_for_update().select_related("exam").get(pk=attempt.pk)
    refusal = selectors.attempt_reopen_refusal(attempt=attempt, user=user)
    if refusal:
        raise AttemptActionRefused(refusal)
    return attempt_reopen(attempt=attempt, by=user, reason=gettext("Re-opened by the student."))


@transaction.atomic
def attempt_reopen(*, attempt: Attempt, by, reason: str = "") -> Attempt:
    """Let the student carry on with an ended attempt: it is open again, and the exam resumes
    where it was (its values say incomplete and suspended, written to the history like any change)."""
    attempt = Attempt.all_objects.select_for_update().select_related("exam").get(pk=attempt.pk)
    if attempt.deleted_at is not None:
        raise AttemptActionRefused(gettext("Restore this attempt before reopening it."))
    if attempt.ended_at is None:
        raise AttemptActionRefused(gettext("This attempt is still open."))
    now = timezone.now()
    sequence = (ElementChange.objects.filter(attempt=attempt).aggregate(m=Max("sequence"))["m"] or 0) + 1
    batch = Batch.objects.create(attempt=attempt, batch_id=f"reopen-{secrets.token_hex(8)}", content_hash="",
                                 element_count=len(REOPEN_VALUES), received_at=now)
    for offset, (key, value) in enumerate(REOPEN_VALUES):
        ElementChange.objects.create(attempt=attempt, batch=batch, key=key, value=value, sequence=sequence + offset,
                                     client_time=now)
        Element.objects.update_or_create(attempt=attempt, key=key,
                                         defaults={"value": value, "sequence": sequence + offset})
    attempt.ended_at = None
    attempt.completion_status = "incomplete"
    attempt.late = False  # decided again when it ends
    attempt.deadline_at = selectors.attempt_deadline(attempt=attempt).at
    attempt.save(update_fields=["ended_at", "completion_status", "late", "deadline_at"])
    _audit(attempt, AttemptEventKind.REOPENED, by, reason)
    _counts_again(attempt)
    return attempt


class _Stored(NamedTuple):
    batch_pk: int
    resource_id: int
    grade_counts: bool  # this attempt's score counts towards the grade (completed, or incomplete ones count)
    test_run: bool = False  # an instructor's test run: no grade, no LMS, no receipt, no statistics


@dataclass(frozen=True)
class BatchResult:
    stored: bool  # False: this batch had been stored before (a re-send)
    ended: bool


def _placeholders(rows: int, columns: int) -> str:
    row = "(" + ",".join(["%s"] * columns) + ")"
    return ",".join([row] * rows)


def _latest_per_key(batch: ParsedBatch):
    latest = {}
    for change in batch.changes:
        if change.key not in latest or latest[change.key].sequence < change.sequence:
            latest[change.key] = change
    return list(latest.values())


def batch_store(*, attempt_id: int, user_id: int, batch: ParsedBatch) -> BatchResult:
    """Store a batch of changes once, all or nothing.

    The same batch id again with the same content is acknowledged without storing anything;
    with other content it is refused. Only the attempt's owner, in the window that currently
    holds the attempt, may write, and only while the attempt is open.
    """
    now = timezone.now()
    latest = _latest_per_key(batch)
    postgresql = connection.vendor == "postgresql"
    completes = batch.terminate or any(c.key == "cmi.completion_status" and c.value == "completed" for c in latest)
    changes_score = completes or any(c.key in SUMMARY_KEYS for c in latest)
    # A batch whose score change changes the grade is stored in one transaction with the grade
    # and its outbox row. Most batches cannot change it (by default only completed attempts
    # count), so on PostgreSQL they are one statement in its own implicit transaction, and the
    # statement says whether the score counted after all; see _grade_counts_hint.
    in_transaction = not postgresql or completes or (changes_score and _grade_counts_hint.get(attempt_id, False))
    ended = follow_up = False
    with transaction.atomic() if in_transaction else nullcontext(), connection.cursor() as cursor:
        if postgresql:
            stored = _store_in_one_statement(cursor, attempt_id, user_id, batch, latest, now)
        else:
            stored = _store_step_by_step(cursor, attempt_id, user_id, batch, latest, now)
        if stored is not None and changes_score:
            if batch.terminate or not postgresql:  # the one statement updated the summary otherwise
                ended = _attempt_summary_update(cursor, attempt_id=attempt_id, terminate=batch.terminate, now=now)
            counts = stored.grade_counts if postgresql else _grade_counts(cursor, attempt_id)
            _grade_counts_hint_set(attempt_id, counts)
            if (completes or counts) and not stored.test_run:
                if in_transaction:
                    _grade_refresh(resource_id=stored.resource_id, user_id=user_id, completed=ended or completes)
                else:
                    follow_up = True
            if ended and not stored.test_run:
                _question_scores_record(attempt_id)
                transaction.on_commit(lambda: _receipt_later(attempt_id))
                transaction.on_commit(lambda: live_notify(stored.resource_id))
    if stored is None:
        return _not_stored(attempt_id=attempt_id, user_id=user_id, batch=batch, now=now)
    _note_if_late(attempt_id, batch, now)
    if follow_up:
        # Mispredicted (the resource counts incomplete attempts, learnt now): the grade follows
        # in a transaction of its own; later batches of this attempt take the one-transaction path.
        _grade_refresh(resource_id=stored.resource_id, user_id=user_id, completed=False)
    return BatchResult(stored=True, ended=ended)


SAVE_DELAY_NOTED_AFTER_MS = 60_000


def _note_if_late(attempt_id: int, batch: ParsedBatch, now) -> None:
    """Answers that reach us over a minute after the student gave them mean the student's page
    could not save for a while: the live view shows it. Rare, so one extra UPDATE then."""
    newest = max((c.client_ms for c in batch.changes if c.client_ms is not None), default=None)
    if newest is not None and now.timestamp() * 1000 - newest > SAVE_DELAY_NOTED_AFTER_MS:
        Attempt.all_objects.filter(pk=attempt_id).update(save_delayed_at=now)


# attempt id -> whether its score counted towards the grade at its last batch in this process.
# Only a hint for choosing the one-transaction path; the statement's answer is authoritative.
_grade_counts_hint: dict[int, bool] = {}


def _grade_counts_hint_set(attempt_id: int, counts: bool) -> None:
    if len(_grade_counts_hint) > 200_000:
        _grade_counts_hint.clear()
    _grade_counts_hint[attempt_id] = counts


def _receipt_later(attempt_id: int) -> None:
    from attempts.tasks import attempt_receipt_send

    try:
        attempt_receipt_send(attempt_id)
    except Exception:  # a receipt is a courtesy: never fail the save for it
        logger.exception("Could not queue the receipt for attempt %s", attempt_id)


def _grade_refresh(*, resource_id: int, user_id: int, completed: bool) -> None:
    """Update the student's grade in the batch's transaction. A fault in grading must not cost
    the student their answers: it is logged, and the grade is recomputed on the next change
    or when the instructor reports all scores."""
    from grading.services import Trigger, grade_refresh

    try:
        with transaction.atomic():
            grade_refresh(
                resource_id=resource_id, user_id=user_id, trigger=Trigger.COMPLETED if completed else Trigger.PROGRESS
            )
    except Exception:
        logger.exception("Could not update the grade of user %s in resource %s", user_id, resource_id)


_T = {
    "batch": Batch._meta.db_table,
    "attempt": Attempt._meta.db_table,
    "change": ElementChange._meta.db_table,
    "element": Element._meta.db_table,
    "settings": ResourceSettings._meta.db_table,
}
_UPSERT_ELEMENT = (
    "ON CONFLICT (attempt_id, key) DO UPDATE SET value = excluded.value, sequence = excluded.sequence "
    "WHERE e.sequence < excluded.sequence"
)


_NUMBER = r"^\s*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?\s*$"


def _summary_from(rows: str) -> str:
    """SET clauses copying completion, success and scores from the current values just
    written (`rows`: a CTE returning key, value) onto the attempt row."""
    clauses = []
    for key, field in SUMMARY_KEYS.items():
        value = f"(SELECT value FROM {rows} WHERE key = '{key}')"
        if field.startswith("score_"):
            value = f"(SELECT CASE WHEN value ~ '{_NUMBER}' THEN value::double precision END FROM {rows} WHERE key = '{key}')"
        else:
            value = f"left({value}, 20)"
        clauses.append(f"{field} = COALESCE({value}, a.{field})")
    return ", ".join(clauses)


def _store_in_one_statement(cursor, attempt_id, user_id, batch, latest, now):
    """PostgreSQL: the whole batch in one statement (so one round trip and its own
    transaction): record the batch if the writer may write, its history, the current values
    (newer sequence wins) and the attempt's summary. Returns what was stored (and whether the attempt's score counts
    towards the student's grade), or None if nothing was stored."""
    changes = batch.changes
    params = [batch.batch_id, batch.content_hash, len(changes), now, attempt_id, user_id, batch.token]
    sql = (
        f"WITH b AS (INSERT INTO {_T['batch']} (attempt_id, batch_id, content_hash, element_count, received_at) "
        f"SELECT a.id, %s, %s, %s, %s FROM {_T['attempt']} a "
        "WHERE a.id = %s AND a.user_id = %s AND a.writer_token = %s AND a.ended_at IS NULL "
        "AND (a.deadline_at IS NULL OR a.deadline_at > %s) "
        "ON CONFLICT (attempt_id, batch_id) DO NOTHING RETURNING id, attempt_id)"
    )
    params.append(now)
    summary = "last_saved_at = %s"
    if changes:
        history_rows = ",".join(["(%s, %s, %s::bigint, to_timestamp(%s::double precision / 1000))"] * len(changes))
        current_rows = ",".join(["(%s, %s, %s::bigint)"] * len(latest))
        for c in changes:
            params += [c.key, c.value, c.sequence, c.client_ms]
        params += [attempt_id]
        for c in latest:
            params += [c.key, c.value, c.sequence]
        sql += (
            f", h AS (INSERT INTO {_T['change']} (attempt_id, key, value, sequence, client_time, batch_id) "
            f"SELECT b.attempt_id, v.key, v.value, v.seq, v.t, b.id FROM b CROSS JOIN (VALUES {history_rows}) "
            "AS v(key, value, seq, t))"
            f", c AS (INSERT INTO {_T['element']} AS e (attempt_id, key, value, sequence) "
            f"SELECT %s, v.key, v.value, v.seq FROM (VALUES {current_rows}) AS v(key, value, seq) "
            f"WHERE EXISTS (SELECT 1 FROM b) {_UPSERT_ELEMENT} RETURNING key, value)"
        )
        if any(c.key in SUMMARY_KEYS for c in latest):
            summary += ", " + _summary_from("c")
    params += [now]
    sql += (
        f", u AS (UPDATE {_T['attempt']} a SET {summary} WHERE a.id = (SELECT attempt_id FROM b) "
        "RETURNING a.completion_status) "
        "SELECT b.id, a.resource_id, (COALESCE(s.include_incomplete, false) OR u.completion_status = 'completed') "
        "AND NOT a.is_test_run, a.is_test_run "
        f"FROM b JOIN {_T['attempt']} a ON a.id = b.attempt_id LEFT JOIN u ON true "
        f"LEFT JOIN {_T['settings']} s ON s.resource_id = a.resource_id"
    )
    cursor.execute(sql, params)
    row = cursor.fetchone()
    return _Stored(row[0], row[1], bool(row[2]), bool(row[3])) if row else None


def _store_step_by_step(cursor, attempt_id, user_id, batch, latest, now):
    """The same as _store_in_one_statement for databases without data-modifying CTEs
    (SQLite, the embedded development default), inside the caller's transaction."""
    cursor.execute(
        f"INSERT INTO {_T['batch']} (attempt_id, batch_id, content_hash, element_count, received_at) "
        f"SELECT id, %s, %s, %s, %s FROM {_T['attempt']} "
        "WHERE id = %s AND user_id = %s AND writer_token = %s AND ended_at IS NULL "
        "AND (deadline_at IS NULL OR deadline_at > %s) "
        "ON CONFLICT (attempt_id, batch_id) DO NOTHING RETURNING id, (SELECT resource_id FROM "
        f"{_T['attempt']} WHERE id = %s), (SELECT is_test_run FROM {_T['attempt']} WHERE id = %s)",
        [batch.batch_id, batch.content_hash, len(batch.changes), now, attempt_id, user_id, batch.token, now,
         attempt_id, attempt_id],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    batch_pk = row[0]
    resource_id = row[1]
    cursor.execute(f"UPDATE {_T['attempt']} SET last_saved_at = %s WHERE id = %s", [now, attempt_id])
    for start in range(0, len(batch.changes), 500):
        chunk = batch.changes[start : start + 500]
        params = [v for c in chunk for v in (attempt_id, c.key, c.value, c.sequence, c.client_time, batch_pk)]
        cursor.execute(
            f"INSERT INTO {_T['change']} (attempt_id, key, value, sequence, client_time, batch_id) "
            f"VALUES {_placeholders(len(chunk), 6)}",
            params,
        )
    for start in range(0, len(latest), 500):
        chunk = latest[start : start + 500]
        params = [v for c in chunk for v in (attempt_id, c.key, c.value, c.sequence)]
        cursor.execute(
            f"INSERT INTO {_T['element']} AS e (attempt_id, key, value, sequence) "
            f"VALUES {_placeholders(len(chunk), 4)} {_UPSERT_ELEMENT}",
            params,
        )
    return _Stored(batch_pk, resource_id, False, bool(row[2]))  # grade_counts: known after the summary update


def _grade_counts(cursor, attempt_id: int) -> bool:
    cursor.execute(
        f"SELECT (a.completion_status = 'completed' OR COALESCE(s.include_incomplete, false)) AND NOT a.is_test_run "
        f"FROM {_T['attempt']} a "
        f"LEFT JOIN {_T['settings']} s ON s.resource_id = a.resource_id WHERE a.id = %s",
        [attempt_id],
    )
    row = cursor.fetchone()
    return bool(row and row[0])


def _as_datetime(value):
    """A datetime read with a raw cursor (SQLite returns text)."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = Attempt._meta.get_field("deadline_at").to_python(value)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt_timezone.utc)


def _not_stored(*, attempt_id: int, user_id: int, batch: ParsedBatch, now) -> BatchResult:
    """Nothing was stored: a re-sent batch (acknowledge it again), or a refusal that says why."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT b.content_hash, a.ended_at IS NOT NULL FROM {_T['batch']} b JOIN {_T['attempt']} a "
            "ON a.id = b.attempt_id WHERE b.attempt_id = %s AND a.user_id = %s AND b.batch_id = %s",
            [attempt_id, user_id, batch.batch_id],
        )
        existing = cursor.fetchone()
        if existing is not None:
            if existing[0] != batch.content_hash:
                raise BatchRefused("batch_reused", gettext("This batch id was already used for different changes."))
            return BatchResult(stored=False, ended=bool(existing[1]))
        cursor.execute(f"SELECT user_id, ended_at, deadline_at FROM {_T['attempt']} WHERE id = %s", [attempt_id])
        attempt = cursor.fetchone()
    if attempt is None or attempt[0] != user_id:
        raise BatchRefused("forbidden", gettext("This attempt is not yours."))
    ended_at, deadline_at = (_as_datetime(v) for v in attempt[1:])
    if deadline_at is not None and now >= deadline_at and ended_at in (None, deadline_at):
        # Past the closing time or the time limit (ended by the task, or about to be).
        row = Attempt.all_objects.select_related("exam").get(pk=attempt_id)
        deadline = selectors.attempt_deadline(attempt=row)
        if deadline.at != deadline_at:
            deadline = selectors.Deadline(deadline_at, "closed")
        raise BatchRefused("closed", selectors.deadline_message(deadline=deadline))
    if ended_at is not None:
        raise BatchRefused("ended", gettext("This attempt has ended; its answers can no longer be changed."))
    raise BatchRefused("taken_over", gettext("This attempt was opened in another window, which now saves it."))


def _attempt_summary_update(cursor, *, attempt_id: int, terminate: bool, now) -> bool:
    """Copy completion, success and score from the current values onto the attempt row; on
    Terminate, end the attempt unless the exam suspended it."""
    keys = [*SUMMARY_KEYS, "cmi.exit"]
    cursor.execute(
        f"SELECT key, value FROM {Element._meta.db_table} WHERE attempt_id = %s AND key IN ({','.join(['%s'] * len(keys))})",
        [attempt_id, *keys],
    )
    values = dict(cursor.fetchall())
    fields = {}
    for key, field in SUMMARY_KEYS.items():
        if key in values:
            if field.startswith("score_"):
                try:
                    number = float(values[key])
                except ValueError:
                    continue
                if math.isfinite(number):  # values stored before protocol.NUMBER_KEY was checked
                    fields[field] = number
            else:
                fields[field] = values[key][:20]
    exit_value = values.get("cmi.exit", "")
    ended = terminate and exit_value != "suspend" and (
        exit_value in ENDING_EXITS or values.get("cmi.completion_status") == "completed"
    )
    if ended:
        fields["ended_at"] = now
    if fields:
        assignments = ", ".join(f"{name} = %s" for name in fields)
        if ended:  # late: ended after the student's due date (their access change's, else the activity's)
            attempt_table = Attempt._meta.db_table
            assignments += (
                f", late = COALESCE(COALESCE((SELECT c.due_at FROM {AccessChange._meta.db_table} c WHERE "
                f"c.resource_id = {attempt_table}.resource_id AND c.user_id = {attempt_table}.user_id), (SELECT "
                f"s.due_at FROM {_T['settings']} s WHERE s.resource_id = {attempt_table}.resource_id)) < %s, false)")
            fields["late_now"] = now
        cursor.execute(
            f"UPDATE {Attempt._meta.db_table} SET {assignments} WHERE id = %s", [*fields.values(), attempt_id]
        )
    return ended


# --- moving attempts between exam versions -------------------------------------------------------


@dataclass(frozen=True)
class MoveResult:
    moved: list[int]  # the attempts moved, by id
    to_version: int
    grades_changed: int  # students whose grade changed (re-sent to the LMS when already reported)


@transaction.atomic
def attempts_move_to_version(*, resource_id: int, attempt_ids: list[int] | None, by, to_exam=None,
                             reason: str = "") -> MoveResult:
    """Move attempts of a resource (those listed, or all when None; deleted ones never) to a
    version of its exam (the current one unless `to_exam` is given), in progress or finished.

    Their data stays as it is (every SCORM value, the history, instructors' marks); from now on
    the attempt opens, resumes and is reviewed with the new version, and its marks are read with
    that version's structure. Each move is audited (from and to version). Recorded question scores
    and the students' grades are recomputed; a grade that changes is re-sent through the outbox
    as after a re-mark. A window that has the attempt open loses its writer token (nothing from
    the old version can be saved into the moved attempt) and is told to reload onto the new one.
    """
    from exams.models import ExamPackage
    from exams.selectors import exam_current
    from grading import services as grading_services
    from grading.models import GradeReport

    if to_exam is None:
        to_exam = exam_current(resource_id=resource_id)
    if to_exam is None or to_exam.resource_id != resource_id:
        raise AttemptActionRefused(gettext("This activity has no such exam version."))
    to_exam = ExamPackage.objects.get(pk=to_exam.pk)
    attempts = Attempt.objects.select_for_update(of=("self",)).select_related("exam").filter(
        resource_id=resource_id).exclude(exam_id=to_exam.pk).order_by("pk")
    if attempt_ids is not None:
        attempts = attempts.filter(pk__in=attempt_ids)
    attempts = list(attempts)
    moved, open_ids, user_ids = [], [], set()
    for attempt in attempts:
        from_exam = attempt.exam
        attempt.exam = to_exam
        attempt.writer_token = ""  # the window on the old version stops saving
        attempt.save(update_fields=["exam", "writer_token"])
        _audit(attempt, AttemptEventKind.MOVED, by, reason, from_version=from_exam.version,
               to_version=to_exam.version, from_exam=str(from_exam.pk), to_exam=str(to_exam.pk))
        moved.append(attempt.pk)
        user_ids.add(attempt.user_id)
        if attempt.ended_at is None:
            open_ids.append(attempt.pk)
        else:
            grading_services.question_scores_record(attempt_id=attempt.pk)
    if open_ids:  # the new version's time limit may differ
        attempt_deadlines_refresh(resource_id=resource_id)
    before = dict(GradeReport.objects.filter(resource_id=resource_id, membership__user_id__in=user_ids)
                  .values_list("membership__user_id", "score"))
    changed = 0
    for user_id in sorted(user_ids):
        report = grading_services.grade_refresh(resource_id=resource_id, user_id=user_id,
                                                trigger=grading_services.Trigger.RECOMPUTE)
        changed += report is not None and report.score != before.get(user_id)
    message = gettext("Your instructor moved this attempt to version %(version)d of the exam. The page reloads "
                      "to carry on with it; your saved answers are kept.") % {"version": to_exam.version}
    transaction.on_commit(lambda: _tell_windows_moved(open_ids, message))
    if moved:
        transaction.on_commit(lambda: live_notify(resource_id))
    return MoveResult(moved=moved, to_version=to_exam.version, grades_changed=changed)


def _tell_windows_moved(attempt_ids: list[int], message: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for attempt_id in attempt_ids:
        try:
            async_to_sync(layer.group_send)(attempt_group(attempt_id), {"type": "attempt.moved", "message": message})
        except Exception:  # the window's next save is refused (its token is gone) and it reloads then
            logger.warning("Could not tell attempt %s's window that it moved", attempt_id, exc_info=True)
