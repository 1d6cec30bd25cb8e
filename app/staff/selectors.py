"""Reads for the staff dashboard: consumers, recently active resources, grade delivery and
the health of the services behind the product.

Counting is done by the database (GROUP BY, subqueries, filtered aggregates) and only the rows
shown are read: the number of queries is fixed, whatever the number of consumers, resources,
launches or grade sends.
Consumer secrets are never selected.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, IntegerField, Max, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _, ngettext

from attempts.models import Attempt
from backups import selectors as backup_selectors
from core import health as core_health
from grading.models import GradeReport, GradeSend, ReportState, SendOutcome
from lms.models import Consumer, LaunchLog, Resource
from staff.services import HEARTBEAT_KEY, heartbeat_cache

logger = logging.getLogger(__name__)
ACTIVE_WINDOW = timedelta(hours=24)
TRIES_WINDOW = timedelta(hours=1)
RECENT_ERRORS = 20
ACTIVE_RESOURCES_SHOWN = 200
WORKER_STALE_AFTER = timedelta(minutes=3)


def _count(queryset, field: str = "pk"):
    """A correlated COUNT subquery (0 when nothing matches)."""
    counted = queryset.order_by().values(field).annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


# --- consumers ----------------------------------------------------------------------------------


def consumers_overview():
    """Every consumer with its number of resources and its latest launch (one query)."""
    resources = Resource.objects.filter(consumer=OuterRef("pk"))
    last_launch = (
        LaunchLog.objects.filter(membership__resource__consumer=OuterRef("pk"))
        .order_by().values("membership__resource__consumer").annotate(m=Max("launched_at")).values("m")
    )
    return (
        Consumer.objects.annotate(resource_count=_count(resources, "consumer"), last_launch_at=Subquery(last_launch))
        .only("id", "name", "key", "active")
        .order_by("name", "key")
    )


# --- resources active recently ------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveResources:
    rows: list  # Resource objects with launches_recent, attempts_saved_recent, context and consumer
    total: int  # how many resources were active (rows holds the busiest ACTIVE_RESOURCES_SHOWN)
    since: datetime


def active_resources(*, now: datetime | None = None, limit: int = ACTIVE_RESOURCES_SHOWN) -> ActiveResources:
    """Resources launched or with an attempt saved since `now - 24 h`, busiest first (three
    queries: launches and saves are each counted per resource in one GROUP BY, then the busiest
    resources are read with their consumer and context)."""
    since = (now or timezone.now()) - ACTIVE_WINDOW
    launches = dict(
        LaunchLog.objects.filter(launched_at__gte=since).order_by().values("membership__resource_id")
        .annotate(n=Count("*")).values_list("membership__resource_id", "n")
    )
    saves = dict(
        Attempt.objects.filter(last_saved_at__gte=since).order_by().values("resource_id")
        .annotate(n=Count("*")).values_list("resource_id", "n")
    )
    busiest = sorted(launches.keys() | saves.keys(), key=lambda pk: (-launches.get(pk, 0), -saves.get(pk, 0), pk))
    shown = {pk: i for i, pk in enumerate(busiest[:limit])}
    rows = list(
        Resource.objects.filter(pk__in=shown).select_related("consumer", "context")
        .only("id", "title", "resource_link_id", "consumer__id", "consumer__name", "consumer__key",
              "context__id", "context__title", "context__label", "context__context_id")
    )
    for row in rows:
        row.launches_recent, row.attempts_saved_recent = launches.get(row.pk, 0), saves.get(row.pk, 0)
    rows.sort(key=lambda row: shown[row.pk])
    return ActiveResources(rows=rows, total=len(busiest), since=since)


# --- grade delivery -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    pending: int  # grades owed to an LMS, not yet delivered
    pending_due: int  # ... of which due now (the rest wait for a retry's backoff)
    pending_retrying: int  # ... of which have failed at least once
    oldest_due_age_seconds: float | None  # how long the longest-waiting due grade has been due
    failed: int  # refused by the LMS; not retried until someone re-sends
    tries_last_hour: dict  # outcome -> count, every outcome present

    def as_json(self) -> dict:
        return asdict(self)


def grade_backlog(*, now: datetime | None = None) -> Backlog:
    """The outbox's numbers (two queries)."""
    now = now or timezone.now()
    pending = Q(state=ReportState.PENDING)
    due = pending & Q(due_at__lte=now)
    numbers = GradeReport.objects.aggregate(
        pending=Count("pk", filter=pending),
        pending_due=Count("pk", filter=due),
        pending_retrying=Count("pk", filter=pending & Q(failures__gt=0)),
        oldest_due=Min("due_at", filter=due),
        failed=Count("pk", filter=Q(state=ReportState.FAILED)),
    )
    tries = dict.fromkeys(SendOutcome.values, 0)
    for outcome, n in (
        GradeSend.objects.filter(sent_at__gte=now - TRIES_WINDOW).order_by().values("outcome")
        .annotate(n=Count("pk")).values_list("outcome", "n")
    ):
        tries[outcome] = n
    oldest = numbers["oldest_due"]
    return Backlog(
        pending=numbers["pending"],
        pending_due=numbers["pending_due"],
        pending_retrying=numbers["pending_retrying"],
        oldest_due_age_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else None,
        failed=numbers["failed"],
        tries_last_hour=tries,
    )


def recent_send_errors(*, limit: int = RECENT_ERRORS) -> list[GradeSend]:
    """The latest tries the LMS did not accept (retried or refused), newest first, with the
    resource and the student (two queries: the newest ids alone, then their rows with joins,
    so the joins never run over the whole log)."""
    ids = list(
        GradeSend.objects.exclude(outcome=SendOutcome.DELIVERED).order_by("-sent_at", "-id")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return []
    rows = (
        GradeSend.objects.filter(id__in=ids)
        .select_related("report__resource", "report__membership__user")
        .only("id", "sent_at", "outcome", "http_status", "lms_answer", "score",
              "report__id", "report__resource__id", "report__resource__title", "report__resource__resource_link_id",
              "report__membership__id", "report__membership__user__id", "report__membership__user__username",
              "report__membership__user__first_name", "report__membership__user__last_name")
        .order_by("-sent_at", "-id")
    )
    return list(rows)


# --- health -------------------------------------------------------------------------------------

OK, WARNING, PROBLEM, NOT_CONFIGURED = "ok", "warning", "problem", "not_configured"


@dataclass(frozen=True)
class HealthItem:
    name: str  # stable identifier for monitoring: database, redis, worker, backups (or database_backup,
    # wal_archive, files_backup, backup_verify when backups are expected)
    label: str
    status: str  # OK | WARNING (look at it today) | PROBLEM | NOT_CONFIGURED
    detail: str  # what was measured, in words
    hint: str  # what to do about it ("" when nothing is needed)
    latency_ms: float | None = None
    age_seconds: float | None = None  # worker: since its last heartbeat; backups: since the last success

    @property
    def ok(self) -> bool:
        """Nothing is broken now (a warning is ok: it needs attention, not a pager)."""
        return self.status != PROBLEM

    def as_json(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _timed(check) -> tuple[bool, float]:
    started = time.perf_counter()
    ok = check()
    return ok, round((time.perf_counter() - started) * 1000, 1)


def database_health() -> HealthItem:
    ok, ms = _timed(core_health._database_ok)
    if ok:
        return HealthItem("database", _("Database"), OK, _("Answered a trivial query in %(ms)s ms.") % {"ms": ms}, "",
                          latency_ms=ms)
    return HealthItem(
        "database", _("Database"), PROBLEM, _("Did not answer (after %(ms)s ms).") % {"ms": ms},
        _("Check that PostgreSQL is running and reachable from this server (DATABASE_URL), and that its disk is "
          "not full. Students' answers wait in their browsers until it is back."),
        latency_ms=ms,
    )


def redis_health() -> HealthItem:
    if not settings.REDIS_URL:
        return HealthItem(
            "redis", _("Redis"), NOT_CONFIGURED,
            _("Not configured: the task queue and the worker's heartbeat are files on this server, and live exam "
              "updates stay within one process (development set-up)."),
            _("In production set REDIS_URL so that the web servers and the worker share the cache and queue."),
        )
    ok, ms = _timed(core_health._redis_ok)
    if ok:
        return HealthItem("redis", _("Redis"), OK, _("Answered a ping in %(ms)s ms.") % {"ms": ms}, "", latency_ms=ms)
    return HealthItem(
        "redis", _("Redis"), PROBLEM, _("Did not answer a ping (after %(ms)s ms).") % {"ms": ms},
        _("Check that Redis is running and reachable (REDIS_URL). Without it grades are not queued for sending "
          "and live exam updates stop; grades already owed are sent once it is back."),
        latency_ms=ms,
    )


def worker_heartbeat() -> dict | None:
    """The last heartbeat a worker recorded ({"at": epoch seconds, "hostname", "pid"}), or None.
    Raises if the cache cannot be reached."""
    beat = heartbeat_cache().get(HEARTBEAT_KEY)
    if not isinstance(beat, dict) or not isinstance(beat.get("at"), (int, float)):
        return None
    return beat


def worker_health(*, now: datetime | None = None) -> HealthItem:
    now = now or timezone.now()
    label = _("Worker")
    try:
        beat = worker_heartbeat()
    except Exception:  # the cache (Redis) is down: the Redis item says why
        return HealthItem(
            "worker", label, PROBLEM, _("Unknown: the cache that holds its heartbeat cannot be reached."),
            _("Fix Redis first; then check the worker again."),
        )
    if beat is None:
        return HealthItem(
            "worker", label, PROBLEM, _("Never seen: no worker has recorded a heartbeat."),
            _("Start the Huey worker (manage.py run_huey) with periodic tasks enabled, using the same REDIS_URL as "
              "the web servers. Until it runs, no grades are sent to the LMSs."),
        )
    age = max(0.0, now.timestamp() - beat["at"])
    where = {"seconds": int(age), "host": str(beat.get("hostname", "?")), "pid": str(beat.get("pid", "?"))}
    detail = ngettext("Last seen %(seconds)s second ago on %(host)s (process %(pid)s).",
                      "Last seen %(seconds)s seconds ago on %(host)s (process %(pid)s).", int(age)) % where
    if age > WORKER_STALE_AFTER.total_seconds():
        return HealthItem(
            "worker", label, PROBLEM, detail,
            _("The worker has stopped or is stuck (it records a heartbeat every minute). Look at its log and restart "
              "it; grades owed to the LMSs are sent once it runs again."),
            age_seconds=round(age, 1),
        )
    return HealthItem("worker", label, OK, detail, "", age_seconds=round(age, 1))


def backups_health(*, now: datetime | None = None) -> list[HealthItem]:
    """Database backups, WAL archiving, files backups and their verification (backups.selectors);
    a single "not configured" item when this installation expects no backups."""
    try:
        checks = backup_selectors.backup_checks(now=now)
    except Exception:  # the database is down: its own item says so
        logger.warning("backup freshness could not be read", exc_info=True)
        return [HealthItem("backups", _("Backups"), PROBLEM,
                           _("Unknown: the database, where backup runs are recorded, cannot be read."),
                           _("Fix the database first; then check the backups again."))]
    return [HealthItem(c.name, c.label, c.status, c.detail, c.hint, age_seconds=c.age_seconds) for c in checks]


def health(*, now: datetime | None = None) -> list[HealthItem]:
    return [database_health(), redis_health(), worker_health(now=now), *backups_health(now=now)]


def overall_status(items: list[HealthItem]) -> str:
    """problem if anything is broken, else warning if anything needs attention, else ok."""
    statuses = {item.status for item in items}
    return PROBLEM if PROBLEM in statuses else WARNING if WARNING in statuses else OK
