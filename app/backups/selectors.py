"""How fresh the backups are, in words an operator understands at 3 a.m.

Three sources: the runs the backup container recorded (BackupRun: full, diff, files, verify),
and PostgreSQL's own WAL archiver statistics (`pg_stat_archiver`: when the last WAL segment
reached the bucket, when archiving last failed). Each check is ok, warning (look at it today),
problem (backups are missing or failing now) or not configured (BACKUPS_EXPECTED is off: a
development set-up, where nothing is expected).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from backups.models import BackupKind, BackupRun
from core.when import when_text

OK, WARNING, PROBLEM, NOT_CONFIGURED = "ok", "warning", "problem", "not_configured"
DETAIL_SHOWN = 300  # characters of a failed run's report
_WAL_NAME = re.compile(r"^[0-9A-F]{24}")



def _container_hint() -> str:
    return _("Look at the backup container's log (docker logs numbas-lti-backup) and its status "
             "(docker exec numbas-lti-backup numbas-backup status).")


@dataclass(frozen=True)
class BackupCheck:
    name: str  # stable, for monitors: database_backup, wal_archive, files_backup, backup_verify, backups
    label: str
    status: str  # OK | WARNING | PROBLEM | NOT_CONFIGURED
    detail: str
    hint: str
    age_seconds: float | None = None  # since the last success


def _span(seconds: float) -> str:
    """One unit, rounded down, as an operator counts: 40 seconds, 14 minutes, 27 hours, 9 days."""
    seconds = max(0, int(seconds))
    if seconds < 90:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    if seconds < 90 * 60:
        return ngettext("%(n)d minute", "%(n)d minutes", seconds // 60) % {"n": seconds // 60}
    if seconds < 48 * 3600:
        return ngettext("%(n)d hour", "%(n)d hours", seconds // 3600) % {"n": seconds // 3600}
    return ngettext("%(n)d day", "%(n)d days", seconds // 86400) % {"n": seconds // 86400}


def _ago(then: datetime, now: datetime) -> str:
    return _("%(time)s ago") % {"time": _span((now - then).total_seconds())}


def _at(moment: datetime) -> str:
    """"9 Dec 2026, 00:55 UTC": the viewer's zone, named, in the page's language (core.when)."""
    return when_text(moment)


def _age(then: datetime | None, now: datetime) -> float | None:
    return None if then is None else round(max(0.0, (now - then).total_seconds()), 1)


# --- recorded runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    last_ok_at: datetime | None
    last_failed_at: datetime | None
    failure: BackupRun | None  # the latest run, when it failed after the last success


def run_summaries() -> dict[str, RunSummary]:
    """Per kind, the latest success and failure (one query), and the latest failure's row for the
    kinds whose latest run failed (one query each, at most four)."""
    aggregates = {}
    for kind in BackupKind.values:
        aggregates[f"{kind}_ok"] = Max("finished_at", filter=Q(kind=kind, ok=True))
        aggregates[f"{kind}_failed"] = Max("finished_at", filter=Q(kind=kind, ok=False))
    latest = BackupRun.objects.aggregate(**aggregates)
    summaries = {}
    for kind in BackupKind.values:
        ok_at, failed_at = latest[f"{kind}_ok"], latest[f"{kind}_failed"]
        failure = None
        if failed_at is not None and (ok_at is None or failed_at > ok_at):
            failure = BackupRun.objects.filter(kind=kind, ok=False).order_by("-finished_at").first()
        summaries[kind] = RunSummary(ok_at, failed_at, failure)
    return summaries


def _failure_words(run: BackupRun, now: datetime) -> str:
    detail = run.detail.strip()
    if len(detail) > DETAIL_SHOWN:
        detail = detail[:DETAIL_SHOWN] + "…"
    return _("The latest try failed %(ago)s (%(at)s): %(detail)s") % {
        "ago": _ago(run.finished_at, now), "at": _at(run.finished_at), "detail": detail or _("no details")}


def database_backup_check(summaries: dict[str, RunSummary], *, now: datetime) -> BackupCheck:
    label = _("Database backups")
    full, diff = summaries[BackupKind.FULL], summaries[BackupKind.DIFF]
    last_ok = max((t for t in (full.last_ok_at, diff.last_ok_at) if t is not None), default=None)
    failures = [s.failure for s in (full, diff) if s.failure is not None]
    failure = max(failures, key=lambda run: run.finished_at, default=None)
    if failure is not None and last_ok is not None and failure.finished_at < last_ok:
        failure = None  # a full failed, a differential worked since (or the other way round)
    if last_ok is None:
        detail = _("No database backup has ever completed.")
        if failure is not None:
            detail += " " + _failure_words(failure, now)
        return BackupCheck("database_backup", label, PROBLEM, detail,
                           _("Without one there is nothing to restore from. ") + _container_hint())
    max_age = timedelta(hours=settings.BACKUP_DB_MAX_AGE_HOURS)
    full_max_age = timedelta(days=settings.BACKUP_FULL_MAX_AGE_DAYS)
    parts = []
    parts.append(_("Last full backup %(ago)s (%(at)s).") % {"ago": _ago(full.last_ok_at, now), "at": _at(full.last_ok_at)}
                 if full.last_ok_at else _("No full backup has completed."))
    if diff.last_ok_at and (full.last_ok_at is None or diff.last_ok_at > full.last_ok_at):
        parts.append(_("Last differential backup %(ago)s (%(at)s).") % {"ago": _ago(diff.last_ok_at, now),
                                                                      "at": _at(diff.last_ok_at)})
    if failure is not None:
        parts.append(_failure_words(failure, now))
    detail, age = " ".join(parts), _age(last_ok, now)
    if now - last_ok > max_age:
        return BackupCheck("database_backup", label, PROBLEM, detail,
                           _("Database backups should run every day. ") + _container_hint(), age)
    if full.last_ok_at is None or now - full.last_ok_at > full_max_age:
        return BackupCheck("database_backup", label, WARNING, detail,
                           _("Full backups should run every week; until one does, a restore needs an older full "
                             "backup and more WAL. ") + _container_hint(), age)
    if failure is not None:
        return BackupCheck("database_backup", label, WARNING, detail,
                           _("The schedule tries again within half an hour. ") + _container_hint(), age)
    return BackupCheck("database_backup", label, OK, detail, "", age)


def files_backup_check(summary: RunSummary, *, now: datetime) -> BackupCheck:
    label = _("Files backups")
    if summary.last_ok_at is None:
        detail = _("No backup of the exam and report files has ever completed.")
        if summary.failure is not None:
            detail += " " + _failure_words(summary.failure, now)
        return BackupCheck("files_backup", label, PROBLEM, detail, _container_hint())
    detail = _("Last files backup %(ago)s (%(at)s).") % {"ago": _ago(summary.last_ok_at, now), "at": _at(summary.last_ok_at)}
    if summary.failure is not None:
        detail += " " + _failure_words(summary.failure, now)
    age = _age(summary.last_ok_at, now)
    if now - summary.last_ok_at > timedelta(hours=settings.BACKUP_FILES_MAX_AGE_HOURS):
        return BackupCheck("files_backup", label, PROBLEM, detail,
                           _("Files are backed up every hour. ") + _container_hint(), age)
    if summary.failure is not None:
        return BackupCheck("files_backup", label, WARNING, detail, _container_hint(), age)
    return BackupCheck("files_backup", label, OK, detail, "", age)


def verify_check(summary: RunSummary, *, now: datetime) -> BackupCheck:
    label = _("Backup verification")
    if summary.failure is not None:
        detail = _failure_words(summary.failure, now)
        if summary.last_ok_at is not None:
            detail += " " + _("Last passed %(ago)s.") % {"ago": _ago(summary.last_ok_at, now)}
        return BackupCheck("backup_verify", label, PROBLEM, detail,
                           _("The backups may not restore. Run it again by hand (docker exec numbas-lti-backup "
                             "numbas-backup verify), read what it says, and take a full backup once it is fixed."),
                           _age(summary.last_ok_at, now))
    if summary.last_ok_at is None:
        return BackupCheck("backup_verify", label, WARNING, _("The backups have never been verified."),
                           _("The backup container verifies them every week and after the first full backup. ")
                           + _container_hint())
    detail = _("Last verified %(ago)s (%(at)s): a restore of the latest backups into scratch space worked.") % {
        "ago": _ago(summary.last_ok_at, now), "at": _at(summary.last_ok_at)}
    age = _age(summary.last_ok_at, now)
    if now - summary.last_ok_at > timedelta(days=settings.BACKUP_VERIFY_MAX_AGE_DAYS):
        return BackupCheck("backup_verify", label, WARNING, detail,
                           _("Verification should run every week. ") + _container_hint(), age)
    return BackupCheck("backup_verify", label, OK, detail, "", age)


# --- WAL archiving (PostgreSQL) ---------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiverStats:
    archive_mode: str  # off | on | always
    last_archived_wal: str | None
    last_archived_time: datetime | None
    failed_count: int
    last_failed_time: datetime | None
    current_wal: str | None  # the WAL file being written now (None during recovery)


ARCHIVER_SQL = """
SELECT current_setting('archive_mode'), last_archived_wal, last_archived_time, failed_count, last_failed_time,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END
FROM pg_stat_archiver
"""


def archiver_stats() -> ArchiverStats | None:
    """PostgreSQL's archiver statistics, straight from the server (None on another database)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(ARCHIVER_SQL)
        row = cursor.fetchone()
    return ArchiverStats(*row)


def _unarchived_changes(stats: ArchiverStats) -> bool:
    """Whether WAL has been written since the last archived segment (unknown counts as yes).
    pg_walfile_name() names the segment holding the insert position, the previous one exactly at
    a segment boundary, so an idle server right after a switch equals the last archived."""
    last = stats.last_archived_wal or ""
    if stats.current_wal is None or not _WAL_NAME.match(last) or not _WAL_NAME.match(stats.current_wal):
        return True
    # Timeline first, then the segment: compare the segment part (a restore starts a new timeline).
    return stats.current_wal[8:24] > last[8:24]


def wal_archive_check(stats: ArchiverStats | None, *, now: datetime) -> BackupCheck:
    label = _("WAL archiving")
    hint = _("Until it works, changes since the last database backup exist only on the server. "
             "PostgreSQL's log says why archive-push failed; ") + _container_hint()
    if stats is None:
        return BackupCheck("wal_archive", label, PROBLEM, _("Cannot tell: the database is not PostgreSQL."),
                           _("Backups need PostgreSQL with WAL archiving (DATABASE_URL)."))
    if stats.archive_mode == "off":
        return BackupCheck("wal_archive", label, PROBLEM,
                           _("WAL archiving is off: changes since the last database backup would be lost with the "
                             "server."),
                           _("Start PostgreSQL with the archive options of infra/numbas_infra/backup.py "
                             "(archive_mode=on, archive_command with pgbackrest archive-push)."))
    max_age = timedelta(minutes=settings.BACKUP_WAL_MAX_AGE_MINUTES)
    archived, failed = stats.last_archived_time, stats.last_failed_time
    age = _age(archived, now)
    if failed is not None and (archived is None or failed > archived):
        attempts = _("%(count)s failed attempts so far, the latest %(ago)s") % {
            "count": stats.failed_count, "ago": _ago(failed, now)}
        if archived is None:
            return BackupCheck("wal_archive", label, PROBLEM,
                               _("WAL archiving is failing and has never worked (%(attempts)s).") % {"attempts": attempts},
                               hint)
        if now - archived > max_age:
            return BackupCheck("wal_archive", label, PROBLEM,
                               _("WAL archiving failing since %(at)s (%(ago)s; %(attempts)s).") % {
                                   "at": _at(archived), "ago": _ago(archived, now), "attempts": attempts},
                               hint, age)
        return BackupCheck("wal_archive", label, WARNING,
                           _("WAL archiving failed %(ago)s and is being retried; the last segment reached the bucket "
                             "%(last)s.") % {"ago": _ago(failed, now), "last": _ago(archived, now)},
                           _("Nothing to do if it recovers within %(minutes)s minutes. ") % {
                               "minutes": int(settings.BACKUP_WAL_MAX_AGE_MINUTES)} + _container_hint(), age)
    if archived is None:
        return BackupCheck("wal_archive", label, WARNING, _("No WAL has been archived yet."),
                           _("PostgreSQL archives a segment within a minute of a change; if this stays, ") + _container_hint())
    if now - archived > max_age and _unarchived_changes(stats):
        return BackupCheck("wal_archive", label, PROBLEM,
                           _("Last WAL archived %(ago)s (%(at)s), although the database has changed since.") % {
                               "ago": _ago(archived, now), "at": _at(archived)}, hint, age)
    return BackupCheck("wal_archive", label, OK,
                       _("Last WAL segment archived %(ago)s (%(at)s).") % {"ago": _ago(archived, now), "at": _at(archived)},
                       "", age)


# --- all of it --------------------------------------------------------------------------------------


def backup_checks(*, now: datetime | None = None) -> list[BackupCheck]:
    """The backup items of the staff dashboard and /staff/health.json."""
    now = now or timezone.now()
    if not settings.BACKUPS_EXPECTED:
        return [BackupCheck("backups", _("Backups"), NOT_CONFIGURED,
                            _("No backup configured: this installation does not expect backups (development set-up)."),
                            _("In production the deploy sets BACKUPS_EXPECTED=1 and runs the backup container; see "
                              "README.md, “Backups”."))]
    summaries = run_summaries()
    return [
        database_backup_check(summaries, now=now),
        wal_archive_check(archiver_stats(), now=now),
        files_backup_check(summaries[BackupKind.FILES], now=now),
        verify_check(summaries[BackupKind.VERIFY], now=now),
    ]

