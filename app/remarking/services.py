"""Writes for re-marking every attempt of a resource with its current exam version.

A run is started with one item per attempt in its scope. The instructor's page asks for the
next attempt (remark_item_hand_out: the attempt's values, and the sequence number they were
read at), has the exam mark it again in the browser, and sends back what the exam reported
(remark_item_record), which is compared with what is stored. Nothing touches an attempt until
remark_run_apply: then each changed attempt gets the new values as a change of its own (in its
history like any batch, under the batch id "remark-<run>"), an audit event with the old and new
marks, its exam version set to the run's, and the student's grade recomputed — and re-sent to
the LMS when it changed and the LMS had it. An attempt that changed after it was marked is not
applied (stale). Applying twice applies nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models.functions import Mod
from django.utils import timezone
from django.utils.translation import gettext

from attempts import selectors as attempt_selectors
from attempts.models import Attempt, AttemptEvent, AttemptEventKind, Batch, Element, ElementChange
from exams.selectors import exam_current
from grading import scoring
from grading import selectors as grading_selectors
from grading import services as grading_services
from remarking import selectors
from remarking.models import RemarkItem, RemarkItemStatus, RemarkRun, RemarkRunStatus, RemarkScope


class RemarkRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# The values a re-mark may change: the scores the exam reports (in total, per question as
# objectives, per part and gap as interactions). Nothing else the exam writes while marking
# (its suspend data, location, times, completion) is kept.
_NUMERIC = re.compile(r"^cmi\.(score\.(raw|scaled|min|max)|objectives\.\d{1,4}\.score\.(raw|scaled|min|max))$")
_RESULT = re.compile(r"^cmi\.interactions\.\d{1,5}\.result$")
_SUCCESS = re.compile(r"^cmi\.objectives\.\d{1,4}\.success_status$")
_RESULT_WORDS = {"correct", "incorrect", "unanticipated", "neutral"}
MAX_VALUES = 5000
MAX_ERROR = 500


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def scoring_values_clean(values) -> dict[str, str]:
    """The scoring values among what the exam reported, checked; RemarkRefused when the report
    is not a {key: text} object or a score is not a number."""
    if not isinstance(values, dict) or len(values) > MAX_VALUES:
        raise RemarkRefused(gettext("The marks must be an object of at most %(n)s values.") % {"n": MAX_VALUES})
    clean = {}
    for key, value in values.items():
        if not isinstance(key, str) or not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise RemarkRefused(gettext("Every mark must be a key with a text or number value."))
        text = value if isinstance(value, str) else repr(value)
        if _NUMERIC.match(key):
            if _number(text) is None:
                raise RemarkRefused(gettext("The value of %(key)s is not a number.") % {"key": key[:100]})
        elif _RESULT.match(key):
            if _number(text) is None and text not in _RESULT_WORDS:
                raise RemarkRefused(gettext("The value of %(key)s is not a score.") % {"key": key[:100]})
        elif _SUCCESS.match(key):
            if text not in ("passed", "failed", "unknown"):
                raise RemarkRefused(gettext("The value of %(key)s is not passed, failed or unknown.") % {"key": key[:100]})
        else:
            continue  # not a score: never kept
        clean[key] = text
    return clean


def _same(key: str, old: str | None, new: str) -> bool:
    if old is None:
        return False
    if _NUMERIC.match(key) or _RESULT.match(key):
        a, b = _number(old), _number(new)
        if a is not None and b is not None:
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return old == new


def _with_summary(attempt: Attempt, values: dict[str, str]) -> dict[str, str]:
    """The attempt's summary scores where its values lack them (as grading.selectors does)."""
    values = dict(values)
    for key, value in (("cmi.score.raw", attempt.score_raw), ("cmi.score.max", attempt.score_max),
                       ("cmi.score.scaled", attempt.score_scaled)):
        if value is not None:
            values.setdefault(key, repr(value))
    return values


def _differences(old: scoring.AttemptScore, new: scoring.AttemptScore) -> list[dict]:
    before = {q.id: q.raw for q in old.questions} | {p.id: p.raw for q in old.questions for p in q.parts}
    after = {q.id: q.raw for q in new.questions} | {p.id: p.raw for q in new.questions for p in q.parts}
    return [{"id": key, "old": before.get(key), "new": after[key]}
            for key in after if before.get(key) is None or not math.isclose(before[key], after[key], abs_tol=1e-9)]


# --- runs -------------------------------------------------------------------------------------


@transaction.atomic
def remark_run_start(*, resource_id: int, scope: str, by) -> RemarkRun:
    """A run over the resource's attempts in `scope`, marked with its current exam version."""
    if scope not in RemarkScope.values:
        raise RemarkRefused(gettext("Choose which attempts to re-mark."))
    exam = exam_current(resource_id=resource_id)
    if exam is None:
        raise RemarkRefused(gettext("There is no exam in this activity yet."))
    if RemarkRun.objects.filter(resource_id=resource_id, status=RemarkRunStatus.RUNNING).exists():
        raise RemarkRefused(gettext("A re-mark is already under way: continue it, or discard it first."))
    attempts = Attempt.objects.filter(resource_id=resource_id)
    if scope == RemarkScope.IN_PROGRESS:
        attempts = attempts.filter(ended_at__isnull=True)
    elif scope == RemarkScope.FINISHED:
        attempts = attempts.filter(ended_at__isnull=False)
    attempt_ids = list(attempts.order_by("pk").values_list("pk", flat=True))
    if not attempt_ids:
        raise RemarkRefused(gettext("There are no attempts to re-mark."))
    try:
        with transaction.atomic():
            run = RemarkRun.objects.create(resource_id=resource_id, exam=exam, scope=scope, created_by=by,
                                           created_at=timezone.now())
    except IntegrityError:  # another instructor started one at the same moment
        raise RemarkRefused(gettext("A re-mark is already under way: continue it, or discard it first.")) from None
    RemarkItem.objects.bulk_create(RemarkItem(run=run, attempt_id=pk) for pk in attempt_ids)
    return run


def _running(run: RemarkRun) -> None:
    if run.status == RemarkRunStatus.APPLIED:
        raise RemarkRefused(gettext("This re-mark has been applied already."))
    if run.status == RemarkRunStatus.DISCARDED:
        raise RemarkRefused(gettext("This re-mark was discarded."))


@dataclass(frozen=True)
class HandOut:
    attempt_id: int
    exam_path: str
    state: dict


MAX_LANES = 4


@transaction.atomic
def remark_item_hand_out(*, run: RemarkRun, after_attempt_id: int = 0, lane: int = 0,
                         lanes: int = 1) -> HandOut | None:
    """The next attempt to mark (after `after_attempt_id`, so that an attempt the page could not
    mark is not handed out again and again), with the values it is marked from; None when
    every attempt is marked. The page marks in `lanes` frames at once; each lane gets the
    attempts whose id modulo `lanes` is `lane`, so no two lanes mark the same attempt."""
    _running(run)
    if not 1 <= lanes <= MAX_LANES or not 0 <= lane < lanes:
        raise RemarkRefused(gettext("The lane must be from 0 to %(n)s.") % {"n": MAX_LANES - 1})
    items = RemarkItem.objects.filter(run=run, status=RemarkItemStatus.PENDING, attempt_id__gt=after_attempt_id)
    if lanes > 1:
        items = items.annotate(lane=Mod("attempt_id", lanes)).filter(lane=lane)
    item = (items.select_for_update(skip_locked=True, of=("self",))
            .select_related("attempt__user").order_by("attempt_id").first())
    if item is None:
        return None
    values, next_sequence = attempt_selectors.attempt_values(attempt_id=item.attempt_id)
    item.base_sequence = next_sequence
    item.save(update_fields=["base_sequence"])
    return HandOut(attempt_id=item.attempt_id, exam_path=run.exam.launch_path,
                   state=selectors.remark_state(attempt=item.attempt, values=values))


@transaction.atomic
def remark_item_record(*, run: RemarkRun, attempt_id: int, values=None, error: str = "") -> RemarkItem:
    """Keep what the exam reported for one attempt (or why it could not mark it), compared with
    what the attempt has now. Recording an attempt again replaces its earlier result."""
    _running(run)
    item = (RemarkItem.objects.select_for_update().filter(run=run, attempt_id=attempt_id)
            .select_related("attempt__exam").first())
    if item is None:
        raise RemarkRefused(gettext("This attempt is not part of this re-mark."))
    if item.status not in (RemarkItemStatus.PENDING, RemarkItemStatus.MARKED, RemarkItemStatus.FAILED):
        raise RemarkRefused(gettext("This attempt's re-mark has been applied already."))
    if item.base_sequence is None:
        raise RemarkRefused(gettext("This attempt has not been handed out for marking yet."))
    now = timezone.now()
    if error or values is None:
        item.status, item.error, item.marked_at = RemarkItemStatus.FAILED, (error or gettext("No marks."))[:MAX_ERROR], now
        item.changed, item.new_values, item.differences = False, {}, []
        item.save()
        return item
    reported = scoring_values_clean(values)
    current, next_sequence = attempt_selectors.attempt_values(attempt_id=attempt_id)
    if next_sequence != item.base_sequence:  # the student saved answers while it was being marked
        item.status, item.error, item.marked_at = RemarkItemStatus.STALE, gettext(
            "The attempt changed while it was being marked; start a new re-mark to include it."), now
        item.save()
        return item
    attempt = item.attempt
    structures = grading_selectors.exam_structures(exam_ids=[attempt.exam_id, run.exam_id])
    new_values = {key: value for key, value in reported.items() if not _same(key, current.get(key), value)}
    old = scoring.attempt_score(_with_summary(attempt, current), structure=structures.get(attempt.exam_id))
    new = scoring.attempt_score(_with_summary(attempt, {**current, **new_values}), structure=structures.get(run.exam_id))
    item.status, item.error, item.marked_at = RemarkItemStatus.MARKED, "", now
    item.old_raw, item.old_max, item.new_raw, item.new_max = old.raw, old.max, new.raw, new.max
    item.new_values = new_values
    item.changed = bool(new_values)
    item.differences = _differences(old, new) if new_values else []
    item.save()
    return item


@dataclass(frozen=True)
class Applied:
    applied: int
    stale: int
    unchanged: int


def remark_run_apply(*, run: RemarkRun, by) -> Applied:
    """Apply every changed attempt of a fully marked run (each in its own transaction, so a
    failure part-way leaves the rest to a second apply, which skips what is done)."""
    with transaction.atomic():
        run = RemarkRun.objects.select_for_update().get(pk=run.pk)
        if run.status == RemarkRunStatus.APPLIED:
            return Applied(0, 0, 0)
        _running(run)
        current = exam_current(resource_id=run.resource_id)
        if current is None or current.pk != run.exam_id:
            raise RemarkRefused(gettext("A newer version of the exam was uploaded after this re-mark started: "
                                        "discard it and start again."))
        if run.items.filter(status=RemarkItemStatus.PENDING).exists():
            raise RemarkRefused(gettext("Not every attempt has been marked yet: let the re-mark finish first."))
    applied = stale = 0
    for item_id in list(run.items.filter(status=RemarkItemStatus.MARKED, changed=True).values_list("pk", flat=True)):
        if _item_apply(run=run, item_id=item_id, by=by):
            applied += 1
        else:
            stale += 1
    unchanged = run.items.filter(status=RemarkItemStatus.MARKED, changed=False).count()
    RemarkRun.objects.filter(pk=run.pk, status=RemarkRunStatus.RUNNING).update(
        status=RemarkRunStatus.APPLIED, finished_at=timezone.now(), finished_by=by)
    return Applied(applied, stale, unchanged)


@transaction.atomic
def _item_apply(*, run: RemarkRun, item_id: int, by) -> bool:
    item = RemarkItem.objects.select_for_update().get(pk=item_id)
    if item.status != RemarkItemStatus.MARKED:
        return item.status == RemarkItemStatus.APPLIED
    attempt = Attempt.all_objects.select_for_update().get(pk=item.attempt_id)
    _, next_sequence = attempt_selectors.attempt_values(attempt_id=attempt.pk)
    if attempt.deleted_at is not None or next_sequence != item.base_sequence:
        item.status = RemarkItemStatus.STALE
        item.error = gettext("The attempt changed after it was marked; its re-mark was not applied.")
        item.save(update_fields=["status", "error"])
        return False
    now = timezone.now()
    changes = sorted(item.new_values.items())
    body = json.dumps(changes, separators=(",", ":"))
    batch = Batch.objects.create(attempt=attempt, batch_id=f"remark-{run.pk}",
                                 content_hash=hashlib.sha256(body.encode()).hexdigest(),
                                 element_count=len(changes), received_at=now)
    ElementChange.objects.bulk_create(
        ElementChange(attempt=attempt, key=key, value=value, sequence=next_sequence + i, client_time=None, batch=batch)
        for i, (key, value) in enumerate(changes))
    Element.objects.bulk_create(
        [Element(attempt=attempt, key=key, value=value, sequence=next_sequence + i)
         for i, (key, value) in enumerate(changes)],
        update_conflicts=True, unique_fields=["attempt", "key"], update_fields=["value", "sequence"])
    fields = ["exam"]
    for key, field in (("cmi.score.raw", "score_raw"), ("cmi.score.min", "score_min"),
                       ("cmi.score.max", "score_max"), ("cmi.score.scaled", "score_scaled")):
        if key in item.new_values:
            setattr(attempt, field, _number(item.new_values[key]))
            fields.append(field)
    old_exam_version = attempt.exam.version
    attempt.exam_id = run.exam_id
    if not attempt.is_ended:
        # A window still holding the attempt would go on writing with sequence numbers these
        # values now follow: it is stopped (as when the attempt is opened elsewhere), and the
        # student carries on from the stored values by reloading it.
        attempt.writer_token = secrets.token_urlsafe(24)
        fields.append("writer_token")
        token = attempt.writer_token
        transaction.on_commit(lambda: _tell_window_taken_over(attempt.pk, token))
    attempt.save(update_fields=fields)
    AttemptEvent.objects.create(
        attempt=attempt, kind=AttemptEventKind.REMARKED, by=by, at=now,
        reason=gettext("Re-marked with version %(version)s of the exam") % {"version": run.exam.version},
        detail={"remark_run": run.pk, "exam_version": run.exam.version, "from_exam_version": old_exam_version,
                "before": {"raw": item.old_raw, "max": item.old_max},
                "after": {"raw": item.new_raw, "max": item.new_max},
                "changes": item.differences, "values": item.new_values})
    item.status, item.applied_at = RemarkItemStatus.APPLIED, now
    item.save(update_fields=["status", "applied_at"])
    grading_services.grade_refresh(resource_id=attempt.resource_id, user_id=attempt.user_id,
                                   trigger=grading_services.Trigger.RECOMPUTE)
    grading_services.question_scores_record(attempt_id=attempt.pk)
    return True


def _tell_window_taken_over(attempt_id: int, token: str) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from attempts.services import attempt_group

    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(attempt_group(attempt_id), {"type": "attempt.taken_over", "token": token})
    except Exception:  # the window learns it at its next batch (refused: "taken_over")
        pass


@transaction.atomic
def remark_run_discard(*, run: RemarkRun, by) -> None:
    """Forget a run that was not applied (nothing of it ever reached the attempts)."""
    run = RemarkRun.objects.select_for_update().get(pk=run.pk)
    if run.status == RemarkRunStatus.DISCARDED:
        return
    if run.status == RemarkRunStatus.APPLIED:
        raise RemarkRefused(gettext("This re-mark has been applied already; it cannot be discarded."))
    run.status, run.finished_at, run.finished_by = RemarkRunStatus.DISCARDED, timezone.now(), by
    run.save(update_fields=["status", "finished_at", "finished_by"])
