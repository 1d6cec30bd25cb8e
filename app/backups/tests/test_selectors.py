"""Backup freshness in words: recorded runs (fresh, stale, failing, never), WAL archiving from
PostgreSQL's archiver statistics, and nothing expected in development."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connection

from backups import selectors
from backups.models import BackupRun
from backups.selectors import NOT_CONFIGURED, OK, PROBLEM, WARNING, ArchiverStats

NOW = datetime(2026, 12, 9, 3, 0, tzinfo=dt_timezone.utc)


def run(kind: str, *, ago: timedelta, ok: bool = True, detail: str = "", seconds: int = 30) -> BackupRun:
    finished = NOW - ago
    return BackupRun.objects.create(kind=kind, started_at=finished - timedelta(seconds=seconds), finished_at=finished,
                                    ok=ok, size_bytes=1000 if ok else None, detail=detail)


def checks(settings, stats: ArchiverStats | None = None) -> dict[str, selectors.BackupCheck]:
    settings.BACKUPS_EXPECTED = True
    found = {c.name: c for c in selectors.backup_checks(now=NOW)}
    if stats is not None:
        found["wal_archive"] = selectors.wal_archive_check(stats, now=NOW)
    return found


def healthy_runs():
    run("full", ago=timedelta(days=3))
    run("diff", ago=timedelta(hours=2))
    run("files", ago=timedelta(minutes=20))
    run("verify", ago=timedelta(days=2), detail="latest backup restored and answered")


# --- not expected -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_development_expects_no_backup_and_says_so(settings, django_assert_num_queries):
    assert settings.BACKUPS_EXPECTED is False  # the default
    with django_assert_num_queries(0):
        (item,) = selectors.backup_checks(now=NOW)
    assert (item.name, item.status) == ("backups", NOT_CONFIGURED)
    assert item.detail.startswith("No backup configured")
    assert "BACKUPS_EXPECTED" in item.hint


# --- recorded runs ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_fresh_backups_are_ok_with_their_ages(settings):
    healthy_runs()
    found = checks(settings)
    database, files, verify = found["database_backup"], found["files_backup"], found["backup_verify"]
    assert (database.status, files.status, verify.status) == (OK, OK, OK)
    assert "Last full backup 3 days ago" in database.detail
    assert "Last differential backup 2 hours ago" in database.detail
    assert database.age_seconds == 2 * 3600 and database.hint == ""
    assert files.detail.startswith("Last files backup 20 minutes ago")
    assert verify.detail.startswith("Last verified 2 days ago")


@pytest.mark.django_db
def test_nothing_ever_backed_up_is_a_problem(settings):
    found = checks(settings)
    assert found["database_backup"].status == PROBLEM
    assert found["database_backup"].detail == "No database backup has ever completed."
    assert "docker logs numbas-lti-backup" in found["database_backup"].hint
    assert found["files_backup"].status == PROBLEM
    assert (found["backup_verify"].status, found["backup_verify"].detail) == (WARNING, "The backups have never been verified.")


@pytest.mark.django_db
def test_a_database_backup_older_than_26_hours_is_a_problem(settings):
    run("full", ago=timedelta(hours=26))
    assert checks(settings)["database_backup"].status == OK  # exactly 26 h: not yet
    BackupRun.objects.all().delete()
    run("full", ago=timedelta(days=9))
    item = checks(settings)["database_backup"]
    assert item.status == PROBLEM
    assert "Last full backup 9 days ago" in item.detail
    assert item.age_seconds == 9 * 86400


@pytest.mark.django_db
def test_a_full_backup_nine_days_old_under_fresh_differentials_is_a_warning(settings):
    run("full", ago=timedelta(days=9))
    run("diff", ago=timedelta(hours=3))
    item = checks(settings)["database_backup"]
    assert item.status == WARNING
    assert "Last full backup 9 days ago" in item.detail and "Last differential backup 3 hours ago" in item.detail
    assert "every week" in item.hint


@pytest.mark.django_db
def test_a_failed_try_after_a_recent_success_is_a_warning_with_its_reason(settings):
    healthy_runs()
    run("diff", ago=timedelta(minutes=30), ok=False,
        detail="pgbackrest backup failed: ERROR: [039]: HTTP request failed with 403 (Forbidden)")
    item = checks(settings)["database_backup"]
    assert item.status == WARNING
    assert "The latest try failed 30 minutes ago" in item.detail and "403 (Forbidden)" in item.detail
    # A success after the failure: forgotten.
    run("diff", ago=timedelta(minutes=5))
    assert checks(settings)["database_backup"].status == OK


@pytest.mark.django_db
def test_failures_only_are_a_problem_that_says_why(settings):
    run("files", ago=timedelta(minutes=3), ok=False, detail="restic backup failed: Fatal: unable to open config file")
    item = checks(settings)["files_backup"]
    assert item.status == PROBLEM
    assert "No backup of the exam and report files has ever completed." in item.detail
    assert "unable to open config file" in item.detail


@pytest.mark.django_db
def test_files_older_than_26_hours_are_a_problem(settings):
    run("files", ago=timedelta(hours=27))
    item = checks(settings)["files_backup"]
    assert (item.status, item.age_seconds) == (PROBLEM, 27 * 3600)
    assert item.detail.startswith("Last files backup 27 hours ago")


@pytest.mark.django_db
def test_a_failed_verification_is_a_problem_and_a_stale_one_a_warning(settings):
    run("verify", ago=timedelta(days=9))
    item = checks(settings)["backup_verify"]
    assert item.status == WARNING and "Last verified 9 days ago" in item.detail
    run("verify", ago=timedelta(hours=1), ok=False, detail="restoring the latest database backup failed: ERROR: [055]")
    item = checks(settings)["backup_verify"]
    assert item.status == PROBLEM
    assert "The latest try failed 60 minutes ago" in item.detail and "[055]" in item.detail
    assert "Last passed 9 days ago" in item.detail
    assert "numbas-backup verify" in item.hint


@pytest.mark.django_db
def test_long_failure_reports_are_cut(settings):
    run("files", ago=timedelta(minutes=1), ok=False, detail="x" * 5000)
    assert len(checks(settings)["files_backup"].detail) < 600


@pytest.mark.django_db
def test_the_checks_take_a_fixed_number_of_queries(settings, django_assert_max_num_queries):
    settings.BACKUPS_EXPECTED = True
    for i in range(30):
        for kind in ("full", "diff", "files", "verify"):
            run(kind, ago=timedelta(hours=i), ok=i % 3 != 0)
    with django_assert_max_num_queries(6):  # runs, up to 4 failures, the archiver
        selectors.backup_checks(now=NOW)


# --- WAL archiving ----------------------------------------------------------------------------------


def stats(**kw) -> ArchiverStats:
    values = {"archive_mode": "on", "last_archived_wal": "000000010000000000000041", "last_archived_time": NOW - timedelta(seconds=40),
              "failed_count": 0, "last_failed_time": None, "current_wal": "000000010000000000000042"}
    return ArchiverStats(**{**values, **kw})


def test_wal_archived_recently_is_ok():
    item = selectors.wal_archive_check(stats(), now=NOW)
    assert (item.status, item.age_seconds) == (OK, 40.0)
    assert item.detail.startswith("Last WAL segment archived 40 seconds ago")


def test_wal_not_archived_for_long_is_a_problem_only_while_the_database_changes():
    old = NOW - timedelta(minutes=40)
    busy = selectors.wal_archive_check(stats(last_archived_time=old), now=NOW)
    assert busy.status == PROBLEM
    assert busy.detail.startswith("Last WAL archived 40 minutes ago") and "changed since" in busy.detail
    # Nothing written since the last switch: an idle site, nothing to archive.
    idle = selectors.wal_archive_check(stats(last_archived_time=old, current_wal="000000010000000000000041"), now=NOW)
    assert idle.status == OK
    # After a restore the timeline changes; the segment number still tells.
    idle = selectors.wal_archive_check(stats(last_archived_time=old, last_archived_wal="000000020000000000000041.partial",
                                             current_wal="000000030000000000000041"), now=NOW)
    assert idle.status == OK
    unknown = selectors.wal_archive_check(stats(last_archived_time=old, last_archived_wal="00000002.history"), now=NOW)
    assert unknown.status == PROBLEM


def test_wal_archiving_failing_is_a_warning_at_first_then_a_problem_that_says_since_when():
    item = selectors.wal_archive_check(stats(last_archived_time=NOW - timedelta(minutes=3), failed_count=2,
                                             last_failed_time=NOW - timedelta(seconds=20)), now=NOW)
    assert item.status == WARNING and "is being retried" in item.detail
    since = NOW - timedelta(hours=2, minutes=5)
    item = selectors.wal_archive_check(stats(last_archived_time=since, failed_count=118,
                                             last_failed_time=NOW - timedelta(seconds=20)), now=NOW)
    assert item.status == PROBLEM
    assert item.detail.startswith("WAL archiving failing since 9 Dec 2026, 00:55 UTC (2 hours ago; 118 failed attempts")
    assert "only on the server" in item.hint
    never = selectors.wal_archive_check(stats(last_archived_wal=None, last_archived_time=None, failed_count=5,
                                              last_failed_time=NOW - timedelta(seconds=5)), now=NOW)
    assert never.status == PROBLEM and "has never worked" in never.detail
    # An old failure, archived since: fine.
    ok = selectors.wal_archive_check(stats(failed_count=1, last_failed_time=NOW - timedelta(hours=5)), now=NOW)
    assert ok.status == OK


def test_archiving_off_or_not_yet_or_not_postgresql():
    off = selectors.wal_archive_check(stats(archive_mode="off"), now=NOW)
    assert off.status == PROBLEM and off.detail.startswith("WAL archiving is off")
    first = selectors.wal_archive_check(stats(last_archived_wal=None, last_archived_time=None), now=NOW)
    assert (first.status, first.detail) == (WARNING, "No WAL has been archived yet.")
    assert selectors.wal_archive_check(None, now=NOW).status == PROBLEM


@pytest.mark.django_db
def test_the_archiver_is_read_from_postgresql_itself(settings):
    if connection.vendor != "postgresql":
        pytest.skip("scripts/test runs the suite on PostgreSQL")
    live = selectors.archiver_stats()
    assert live.archive_mode == "off"  # scripts/test's own PostgreSQL does not archive
    assert len(live.current_wal) == 24
    item = checks(settings)["wal_archive"]
    assert (item.status, item.detail.split(":")[0]) == (PROBLEM, "WAL archiving is off")
