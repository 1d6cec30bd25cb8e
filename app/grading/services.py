"""Writes for grading: a student's grade after a score change, discounts, and delivering
grades to the LMS (the outbox worker).

A grade change and its outbox row (`GradeReport`) are written in the caller's transaction;
the delivery task is only kicked after that transaction commits, and it reads the score from
the committed row — so an LMS never receives a grade before it is stored, nor a stale 0.
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Min, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from attempts.models import Attempt, ReportWhen
from attempts.services import attempt_deadlines_refresh
from attempts.selectors import resource_settings, student_access_of
from grading import ags, passback, scoring
from grading import selectors
from grading.models import Discount, GradeReport, GradeSend, ReportState, SendOutcome
from lms.models import LtiVersion, Resource, ResourceMembership
from lti13 import keys as lti13_keys
from lti13.models import Platform

logger = logging.getLogger(__name__)


class Trigger:
    """Why a grade is being looked at again."""

    PROGRESS = "progress"  # the student's exam changed a score
    COMPLETED = "completed"  # the student completed an attempt
    RECOMPUTE = "recompute"  # discounts or the grading method changed
    MANUAL = "manual"  # the instructor asked to report all scores


LEASE = timedelta(minutes=2)  # longer than a send can take (connect + read timeouts)


def _should_send(*, report_when: str, trigger: str, changed: bool, report: GradeReport) -> bool:
    """The resource's "when to report" policy. Grades already reported that change through
    recomputation are always re-sent, whatever the policy."""
    reported_before = report.state != ReportState.WAITING
    if trigger == Trigger.MANUAL:
        return True
    if not changed and report.state == ReportState.DELIVERED and report.sent_version == report.version:
        return False  # the LMS has exactly this already
    if trigger == Trigger.RECOMPUTE:
        return changed and (reported_before or report_when == ReportWhen.IMMEDIATELY)
    if report_when == ReportWhen.IMMEDIATELY:
        return changed or report.state == ReportState.WAITING
    if report_when == ReportWhen.ON_COMPLETION:
        return trigger == Trigger.COMPLETED
    return False


def passback_kick() -> None:
    """Ask for a delivery run soon. At most one run is queued at a time; the queue is only
    a hint (the sweeper finds due grades even if Redis lost it), so a queue that cannot be
    reached is logged, never an error for the student whose answer was just saved."""
    from grading import tasks

    try:
        tasks.passback_deliver_kick()
    except Exception:
        logger.warning("Could not queue a grade delivery run; the sweeper will deliver", exc_info=True)


def _can_report(membership: ResourceMembership) -> bool:
    return selectors.membership_can_report(membership)


def _no_outcome_message(membership: ResourceMembership) -> str:
    if membership.lti_version == LtiVersion.LTI_1P3:
        return gettext("The LMS did not offer its Assignment and Grade Services (with the score scope) in this "
                       "student's launch, so it has no gradebook entry to report to.")
    return gettext("The LMS did not send an outcome service URL and result id for this student, "
                   "so it has no gradebook entry to report to.")


def _after_own_due(*, resource_id: int, user_id: int, now) -> bool:
    """Whether the student's due date (their access change's, else the activity's) has passed."""
    due_at = student_access_of(resource_id=resource_id, user_id=user_id).due_at
    return due_at is not None and now > due_at


def grade_refresh(*, resource_id: int, user_id: int, trigger: str) -> GradeReport | None:
    """Recompute a student's grade for a resource, in the caller's transaction (one is opened
    if there is none), and queue it for the LMS when the resource's policy says so."""
    with transaction.atomic():
        membership = (
            ResourceMembership.objects.select_for_update()
            .filter(resource_id=resource_id, user_id=user_id)
            .first()
        )
        if membership is None:
            return None
        settings_ = resource_settings(resource_id=resource_id)
        discounts = selectors.discounts_for(resource_id=resource_id)
        attempts = selectors.attempts_for_grade(resource_id=resource_id, user_id=user_id, discounts=discounts)
        best = scoring.resource_grade(
            attempts, method=settings_.grading_method, include_incomplete=settings_.include_incomplete
        )
        score = None if best is None else round(best.scaled, 6)
        now = timezone.now()
        report = GradeReport.objects.filter(membership=membership).first()
        if report is None:
            if score is None:
                return None
            report = GradeReport(membership=membership, resource_id=resource_id, version=0, updated_at=now)
        changed = score != report.score
        fields = {"updated_at"}
        if changed or report.attempt_number != (best and best.number):
            report.score, report.attempt_number = score, best and best.number
            report.version += 1 if changed else 0
            fields |= {"score", "attempt_number", "version"}
        held_after_due = (trigger in (Trigger.PROGRESS, Trigger.COMPLETED) and not settings_.report_after_due
                          and _after_own_due(resource_id=resource_id, user_id=user_id, now=now))
        if score is not None and not held_after_due and _should_send(
            report_when=settings_.report_when, trigger=trigger, changed=changed, report=report
        ):
            if not _can_report(membership):
                report.state, report.last_error = ReportState.NO_OUTCOME, _no_outcome_message(membership)
            elif report.state != ReportState.PENDING or trigger == Trigger.MANUAL:
                report.state, report.due_at, report.failures, report.non_lti_answers = ReportState.PENDING, now, 0, 0
                transaction.on_commit(passback_kick)
            else:  # already pending: the newer score supersedes the older one when it is sent
                transaction.on_commit(passback_kick)
            fields |= {"state", "due_at", "failures", "non_lti_answers", "last_error"}
        report.updated_at = now
        if report.pk is None:
            report.version = max(report.version, 1)
            report.save()
        else:
            report.save(update_fields=sorted(fields))
        return report


def grades_refresh_resource(*, resource_id: int, trigger: str) -> int:
    """Recompute every student's grade for a resource (after discounts or grading settings
    change), each in its own transaction. Returns how many grades changed."""
    user_ids = list(Attempt.objects.filter(resource_id=resource_id).values_list("user_id", flat=True).distinct())
    changed = 0
    for user_id in user_ids:
        before = GradeReport.objects.filter(resource_id=resource_id, membership__user_id=user_id).values_list(
            "score", flat=True
        ).first()
        report = grade_refresh(resource_id=resource_id, user_id=user_id, trigger=trigger)
        changed += report is not None and report.score != before
    return changed


@dataclass(frozen=True)
class ReportAllCounts:
    """What "report all scores" did, so the instructor is told why nothing was queued."""

    queued: int = 0  # sent to the LMS now
    already: int = 0  # the LMS has it already, or it is on its way
    no_gradebook: int = 0  # the LMS offered no gradebook column for the student
    no_grade: int = 0  # the student has attempts but no score yet


def grades_report_all_counted(*, resource_id: int) -> ReportAllCounts:
    """The instructor's "report all scores": queue every student's current grade that the
    LMS does not have yet (or that failed), and count what was not queued, and why."""
    counts = {"queued": 0, "already": 0, "no_gradebook": 0, "no_grade": 0}
    user_ids = Attempt.objects.filter(resource_id=resource_id).values_list("user_id", flat=True).distinct()
    for user_id in user_ids:
        with transaction.atomic():
            existing = GradeReport.objects.filter(resource_id=resource_id, membership__user_id=user_id).first()
            already_owed_or_in_lms = existing is not None and (
                existing.state == ReportState.PENDING
                or (existing.state == ReportState.DELIVERED and existing.sent_version == existing.version)
            )
            if already_owed_or_in_lms:
                counts["already"] += 1
                continue
            report = grade_refresh(resource_id=resource_id, user_id=user_id, trigger=Trigger.MANUAL)
            if report is None or report.score is None:
                counts["no_grade"] += 1
            elif report.state == ReportState.PENDING:
                counts["queued"] += 1
            elif report.state == ReportState.NO_OUTCOME:
                counts["no_gradebook"] += 1
    return ReportAllCounts(**counts)


def grades_report_all(*, resource_id: int) -> int:
    """As grades_report_all_counted; returns how many were queued."""
    return grades_report_all_counted(resource_id=resource_id).queued


def grade_resend(*, report: GradeReport) -> None:
    """Send this student's current grade again now (the instructor's "re-send")."""
    with transaction.atomic():
        membership = ResourceMembership.objects.get(pk=report.membership_id)
        now = timezone.now()
        if not _can_report(membership):
            GradeReport.objects.filter(pk=report.pk).update(state=ReportState.NO_OUTCOME, updated_at=now)
            return
        if report.score is None:
            return
        GradeReport.objects.filter(pk=report.pk).update(
            state=ReportState.PENDING, due_at=now, failures=0, non_lti_answers=0, lease_until=None, updated_at=now
        )
        transaction.on_commit(passback_kick)


# --- discounts ------------------------------------------------------------------------------


def discount_set(*, resource_id: int, target: str, behaviour: str | None, user) -> None:
    """Discount a question or part (behaviour None removes the discount). Grades are then
    recomputed in the background; changed grades already reported are re-sent."""
    with transaction.atomic():
        if behaviour is None:
            Discount.objects.filter(resource_id=resource_id, target=target).delete()
        else:
            Discount.objects.update_or_create(
                resource_id=resource_id, target=target, defaults={"behaviour": behaviour, "created_by": user}
            )
        transaction.on_commit(lambda: _recompute_later(resource_id))


def question_scores_record(*, attempt_id: int) -> int:
    """Keep an ended attempt's per-question scores for statistics (re-marked parts applied);
    an open or deleted attempt has none. Returns how many rows it wrote."""
    from grading.models import AttemptQuestionScore

    AttemptQuestionScore.objects.filter(attempt_id=attempt_id).delete()
    resource_id = Attempt.objects.filter(pk=attempt_id, ended_at__isnull=False).values_list(
        "resource_id", flat=True).first()  # not deleted, ended
    if resource_id is None:
        return 0
    questions = selectors.attempt_scores(attempt_ids=[attempt_id])[attempt_id].questions
    rows = AttemptQuestionScore.objects.bulk_create(
        AttemptQuestionScore(attempt_id=attempt_id, resource_id=resource_id, question_id=q.id[:50], raw=q.raw,
                             max=q.max) for q in questions)
    return len(rows)


class RemarkRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@transaction.atomic
def part_remark(*, attempt: Attempt, part_id: str, score: float | None, by, reason: str = "") -> None:
    """An instructor's mark for one part of an attempt (None: back to the exam's mark). The
    student's grade is recomputed at once and re-sent if it changed; the change is audited."""
    from attempts.models import AttemptEvent, AttemptEventKind, PartOverride

    values = selectors.scoring_values(attempt_ids=[attempt.pk]).get(attempt.pk, {})
    structure = selectors.exam_structures(exam_ids=[attempt.exam_id]).get(attempt.exam_id)
    questions = scoring.questions_from(values)
    if structure:  # parts and gaps not answered yet can be marked too
        questions = scoring.with_structure(questions, structure)
    parts = {p.id: p for q in questions for p in q.parts}
    part = parts.get(part_id)
    if part is None:
        raise RemarkRefused(gettext("This attempt has no part or gap %(part)s.") % {"part": part_id})
    if score is not None and not 0 <= score <= part.max:
        raise RemarkRefused(gettext("The mark for %(part)s must be between 0 and %(max)s.")
                            % {"part": part_id, "max": f"{part.max:g}"})
    existing = PartOverride.objects.select_for_update().filter(attempt=attempt, part_id=part_id).first()
    before = existing.score if existing else None
    if score is None:
        if existing:
            existing.delete()
    else:
        PartOverride.objects.update_or_create(attempt=attempt, part_id=part_id,
                                              defaults={"score": score, "by": by, "at": timezone.now()})
    AttemptEvent.objects.create(attempt=attempt, kind=AttemptEventKind.REMARKED, by=by, at=timezone.now(),
                                reason=reason[:500], detail={"part": part_id, "exam_mark": part.raw,
                                                             "before": before, "after": score})
    grade_refresh(resource_id=attempt.resource_id, user_id=attempt.user_id, trigger=Trigger.RECOMPUTE)
    question_scores_record(attempt_id=attempt.pk)


@transaction.atomic
def resource_settings_save(*, form) -> None:
    """Save a valid settings form of a resource; if how grades are computed changed, every
    grade of the resource is recomputed (and changed grades the LMS has are sent again)."""
    before = (form.initial.get("grading_method"), form.initial.get("include_incomplete"))
    saved = form.save()
    attempt_deadlines_refresh(resource_id=saved.resource_id)  # a new closing time applies to open attempts
    if (saved.grading_method, saved.include_incomplete) != before:
        grading_settings_changed(resource_id=saved.resource_id)


def grading_settings_changed(*, resource_id: int) -> None:
    transaction.on_commit(lambda: _recompute_later(resource_id))


def _recompute_later(resource_id: int) -> None:
    from grading import tasks

    tasks.grades_recompute(resource_id)


# --- delivery -------------------------------------------------------------------------------


def retry_delay(failures: int, *, rng: random.Random | None = None) -> float:
    """Seconds to wait after the n-th consecutive failure: exponential, capped, full jitter."""
    ceiling = min(settings.PASSBACK_RETRY_MAX_SECONDS, settings.PASSBACK_RETRY_BASE_SECONDS * 2 ** min(failures - 1, 60))
    return (rng or random).uniform(ceiling / 10, ceiling)


@dataclass
class DeliveryStats:
    sent: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    outcomes: list[str] = field(default_factory=list)

    def add(self, outcome: str) -> None:
        self.sent += 1
        self.outcomes.append(outcome)
        if outcome == SendOutcome.DELIVERED:
            self.delivered += 1
        elif outcome == SendOutcome.FAILED:
            self.failed += 1
        else:
            self.retrying += 1


@dataclass(frozen=True)
class _Claimed:
    report_id: int
    version: int
    failures: int
    non_lti_answers: int
    delivery: passback.Delivery | ags.AgsDelivery
    resource_id: int = 0


_CLAIMED_FIELDS = (
    "id", "version", "failures", "non_lti_answers", "score", "attempt_number", "updated_at",
    "membership__lis_result_sourcedid", "membership__lis_outcome_service_url",
    "membership__resource__consumer__key", "membership__resource__consumer__secret",
    "membership__lti_version", "membership__platform_id", "membership__ags_lineitem_url",
    "membership__ags_lineitems_url", "membership__ags_scopes", "membership__user_id", "membership__user__lti_identity__sub",
    "resource_id", "resource__ags_lineitem_url", "resource__lti13_id", "resource__resource_link_id", "resource__title",
)


def _claim_due(*, now: datetime, limit: int) -> list[_Claimed]:
    """Lease up to `limit` due grades to this worker (others skip them)."""
    with transaction.atomic():
        due = GradeReport.objects.filter(state=ReportState.PENDING, due_at__lte=now).filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        rows = [dict(zip(_CLAIMED_FIELDS, r)) for r in due.order_by("due_at").values_list(*_CLAIMED_FIELDS)[:limit]]
        if rows:
            GradeReport.objects.filter(id__in=[r["id"] for r in rows]).update(lease_until=now + LEASE)
    lti13_rows = [r for r in rows if r["membership__lti_version"] == LtiVersion.LTI_1P3]
    graded = selectors.graded_attempts(keys=[(r["resource_id"], r["membership__user_id"], r["attempt_number"])
                                             for r in lti13_rows]) if lti13_rows else {}
    platforms = Platform.objects.in_bulk({r["membership__platform_id"] for r in lti13_rows} - {None})
    key = lti13_keys.signing_key() if lti13_rows else None
    claimed = []
    for r in rows:
        if r["membership__lti_version"] == LtiVersion.LTI_1P3:
            attempt = graded.get((r["resource_id"], r["membership__user_id"], r["attempt_number"]))
            delivery = _ags_delivery(
                platform=platforms.get(r["membership__platform_id"]), key=key, score=r["score"],
                lineitem_url=r["membership__ags_lineitem_url"] or r["resource__ags_lineitem_url"],
                lineitems_url=r["membership__ags_lineitems_url"], scopes=r["membership__ags_scopes"].split(),
                user_id=r["membership__user__lti_identity__sub"] or "",
                score_maximum=attempt.score_max if attempt and attempt.score_max else None,
                completed=bool(attempt and attempt.completed),
                resource_link_id=r["resource__lti13_id"] or r["resource__resource_link_id"],
                label=r["resource__title"], timestamp=r["updated_at"])
        else:
            delivery = passback.Delivery(r["membership__lis_result_sourcedid"], r["membership__lis_outcome_service_url"],
                                         r["membership__resource__consumer__key"] or "",
                                         r["membership__resource__consumer__secret"], r["score"])
        claimed.append(_Claimed(r["id"], r["version"], r["failures"], r["non_lti_answers"], delivery, r["resource_id"]))
    return claimed


#: The scoreMaximum of an activity whose graded attempt has no maximum marks: a percentage.
DEFAULT_SCORE_MAXIMUM = 100.0
AGS_TAG = "numbas-lti"


def _ags_delivery(*, platform: Platform | None, key, score: float, lineitem_url: str, lineitems_url: str,
                  scopes: list[str], user_id: str, score_maximum: float | None, completed: bool,
                  resource_link_id: str, label: str, timestamp: datetime) -> ags.AgsDelivery:
    """What sending one grade through AGS needs: the registration's token endpoint and our
    signing key, where the score goes, and the score out of the activity's maximum."""
    return ags.AgsDelivery(
        token_url=platform.auth_token_url if platform else "", auth_audience=platform.auth_audience if platform else "",
        client_id=platform.client_id if platform else "", private_key_pem=key.private_key_pem, kid=key.kid,
        scopes=tuple(scopes), lineitem_url=lineitem_url, lineitems_url=lineitems_url, user_id=user_id,
        score=score, score_maximum=score_maximum or DEFAULT_SCORE_MAXIMUM, completed=completed,
        resource_link_id=resource_link_id, label=label or resource_link_id, tag=AGS_TAG, timestamp=timestamp)


def _send(claimed: _Claimed) -> passback.SendResult:
    if isinstance(claimed.delivery, ags.AgsDelivery):
        sent = ags.send(claimed.delivery, timeout=settings.PASSBACK_TIMEOUT_SECONDS)
        found = sent.lineitem_url if sent.lineitem_url != claimed.delivery.lineitem_url else ""
        return _give_up_on_the_wrong_address(claimed, replace(sent.result, lineitem_url=found))
    return _give_up_on_the_wrong_address(
        claimed, passback.send(claimed.delivery, timeout=settings.PASSBACK_TIMEOUT_SECONDS)
    )


def _give_up_on_the_wrong_address(claimed: _Claimed, result: passback.SendResult) -> passback.SendResult:
    """An address that answers, again and again, with something that is not LTI (a login page,
    an odd status) is the wrong address, not an LMS having a bad moment: after
    PASSBACK_MAX_NON_LTI_ANSWERS such answers in a row the grade fails, for a person to see
    and re-send. Outages (no answer, 5xx, 429, POX failure) never count."""
    in_a_row = claimed.non_lti_answers + 1
    if result.lti_answer is not False or in_a_row < settings.PASSBACK_MAX_NON_LTI_ANSWERS:
        return result
    explanation = ngettext(
        "The LMS's grade address answered %(count)s time with something that is not an LTI outcomes answer, "
        "so the grade is no longer sent there. Check the outcome service URL in the LMS's settings for this "
        "tool, then re-send.",
        "The LMS's grade address answered %(count)s times in a row with something that is not an LTI outcomes "
        "answer, so the grade is no longer sent there. Check the outcome service URL in the LMS's settings for "
        "this tool, then re-send.",
        in_a_row,
    ) % {"count": in_a_row}
    return replace(result, outcome=SendOutcome.FAILED, lms_answer=f"{explanation} {result.lms_answer}")


def _non_lti_answers_after(claimed: _Claimed, result: passback.SendResult) -> int:
    if result.lti_answer is None:  # no answer to judge: neither proves nor disproves the address
        return claimed.non_lti_answers
    return claimed.non_lti_answers + 1 if result.lti_answer is False else 0


def _record_row(claimed: _Claimed, result: passback.SendResult, now: datetime, retry_at: datetime) -> None:
    same_version = Q(version=claimed.version)
    non_lti_answers = _non_lti_answers_after(claimed, result)
    if result.outcome == SendOutcome.DELIVERED:
        updates = dict(
            state=Case(When(same_version, then=Value(ReportState.DELIVERED)), default=Value(ReportState.PENDING)),
            due_at=now, failures=0, sent_score=claimed.delivery.score, sent_version=claimed.version,
            delivered_at=now, last_error="", non_lti_answers=0,
        )
    elif result.outcome == SendOutcome.FAILED:
        updates = dict(
            state=Case(When(same_version, then=Value(ReportState.FAILED)), default=Value(ReportState.PENDING)),
            due_at=now, failures=F("failures") + 1, last_error=result.lms_answer, non_lti_answers=non_lti_answers,
        )
    else:
        updates = dict(due_at=retry_at, failures=F("failures") + 1, last_error=result.lms_answer,
                       non_lti_answers=non_lti_answers)
    GradeReport.objects.filter(pk=claimed.report_id).update(lease_until=None, updated_at=now, **updates)


_RECORD_SQL = """
UPDATE {table} AS r SET
  lease_until = NULL, updated_at = %s,
  state = CASE WHEN v.outcome = 'retry' THEN r.state
               WHEN r.version = v.version THEN (CASE WHEN v.outcome = 'delivered' THEN 'delivered' ELSE 'failed' END)
               ELSE 'pending' END,
  due_at = CASE WHEN v.outcome = 'retry' THEN v.retry_at ELSE %s END,
  failures = CASE WHEN v.outcome = 'delivered' THEN 0 ELSE r.failures + 1 END,
  non_lti_answers = v.non_lti_answers,
  sent_score = CASE WHEN v.outcome = 'delivered' THEN v.score ELSE r.sent_score END,
  sent_version = CASE WHEN v.outcome = 'delivered' THEN v.version ELSE r.sent_version END,
  delivered_at = CASE WHEN v.outcome = 'delivered' THEN %s ELSE r.delivered_at END,
  last_error = CASE WHEN v.outcome = 'delivered' THEN '' ELSE v.answer END
FROM (VALUES {rows}) AS v(id, version, outcome, score, retry_at, answer, non_lti_answers)
WHERE r.id = v.id
"""
_RECORD_ROW = "(%s::bigint, %s::integer, %s::text, %s::double precision, %s::timestamptz, %s::text, %s::integer)"


def _record(done: list[tuple[_Claimed, passback.SendResult]]) -> None:
    """Record a group of finished sends: each grade's new state (delivered only if its version
    did not change meanwhile; a retry's next due time) and a GradeSend row per try."""
    now = timezone.now()
    retry_at = {c.report_id: now + timedelta(seconds=retry_delay(c.failures + 1)) for c, r in done
                if r.outcome == SendOutcome.RETRY}
    with transaction.atomic():
        if connection.vendor == "postgresql":
            params = [now, now, now]
            for c, r in done:
                params += [c.report_id, c.version, r.outcome, c.delivery.score, retry_at.get(c.report_id, now),
                           r.lms_answer, _non_lti_answers_after(c, r)]
            sql = _RECORD_SQL.format(table=GradeReport._meta.db_table, rows=",".join([_RECORD_ROW] * len(done)))
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
        else:
            for c, r in done:
                _record_row(c, r, now, retry_at.get(c.report_id, now))
        for c, r in done:
            if r.lineitem_url:  # found or created: the activity's next grades go straight there
                Resource.objects.filter(pk=c.resource_id).update(ags_lineitem_url=r.lineitem_url[:1000])
        sends = [
            GradeSend(report_id=c.report_id, sent_at=now, score=c.delivery.score, version=c.version,
                      outcome=r.outcome, http_status=r.http_status, lms_answer=r.lms_answer[:2000],
                      duration_ms=r.duration_ms)
            for c, r in done
        ]
        try:
            with transaction.atomic():
                GradeSend.objects.bulk_create(sends)
        except IntegrityError:  # a student removed meanwhile: keep the other records
            for send in sends:
                if GradeReport.objects.filter(pk=send.report_id).exists():
                    send.save()


def passback_deliver_due(*, limit: int | None = None, budget_seconds: float = 20.0, wait_for_retries: bool = True,
                         concurrency: int | None = None) -> DeliveryStats:
    """Send due grades until none are due (or the time budget is spent). Up to `concurrency`
    requests are in flight; more due grades are leased as earlier ones finish, and results
    are recorded in groups. With `wait_for_retries`, grades that become due within a couple
    of seconds are waited for, so short LMS hiccups clear in one run."""
    stats = DeliveryStats()
    deadline = time.monotonic() + budget_seconds
    concurrency = concurrency or settings.PASSBACK_CONCURRENCY
    window = limit or concurrency * 4  # leased and not yet recorded
    in_flight: dict[Future, _Claimed] = {}
    finished: list[tuple[_Claimed, passback.SendResult]] = []

    def flush():
        if finished:
            _record(finished)
            for _, r in finished:
                stats.add(r.outcome)
            finished.clear()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="passback") as pool:
        while True:
            in_budget = time.monotonic() < deadline
            if in_budget and len(in_flight) <= window // 2:
                for claimed in _claim_due(now=timezone.now(), limit=window - len(in_flight)):
                    in_flight[pool.submit(_send, claimed)] = claimed
            if not in_flight:
                flush()
                if not in_budget or not wait_for_retries:
                    break
                wait_s = passback_next_due_in()
                if wait_s is None or wait_s > 2.0:
                    break
                time.sleep(max(0.05, min(wait_s, deadline - time.monotonic())))
                continue
            done, _ = wait(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                finished.append((in_flight.pop(future), future.result()))
            if len(finished) >= concurrency or not in_flight:
                flush()
    return stats


def passback_next_due_in() -> float | None:
    """Seconds until the next pending grade is due (0 if one is due now), or None."""
    next_due = GradeReport.objects.filter(state=ReportState.PENDING).aggregate(m=Min("due_at"))["m"]
    if next_due is None:
        return None
    return max(0.0, (next_due - timezone.now()).total_seconds())
