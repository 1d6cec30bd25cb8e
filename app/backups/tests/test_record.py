"""numbas-backup records every run with one INSERT through psql (infra/backup/numbas-backup,
RECORD_SQL): run here against this test database, the rows are what the selectors read."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path

import pytest
from django.db import connection

from backups import selectors
from backups.models import BackupRun

SCRIPT = Path(__file__).resolve().parents[3] / "infra" / "backup" / "numbas-backup"
pytestmark = pytest.mark.django_db(transaction=True)  # psql, another connection, must see and leave the rows


def database_url() -> str:
    if connection.vendor != "postgresql":
        pytest.skip("scripts/test runs the suite on PostgreSQL")
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    return f"postgresql://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def record(*args: str, url: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "NUMBAS_BACKUP_DATABASE_URL": url or database_url(),
           "NUMBAS_BACKUP_NOW": str(int(datetime(2026, 12, 9, 1, 5, tzinfo=dt_timezone.utc).timestamp()))}
    return subprocess.run(["sh", str(SCRIPT), "record", *args], env=env, capture_output=True, text=True, timeout=30)


def test_a_run_is_recorded_with_its_times_size_and_words():
    if not shutil.which("psql") and not list(Path("/usr/lib/postgresql").glob("*/bin/psql")):
        pytest.fail("psql is missing (scripts/test installs PostgreSQL)")
    started = int(datetime(2026, 12, 9, 1, 0, tzinfo=dt_timezone.utc).timestamp())
    detail = "backup 20261209-010000F, 3883088 bytes stored; it's \"quoted\" and has a ; and :colon"
    result = record("full", str(started), "true", "3883088", detail)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    run = BackupRun.objects.get()
    assert (run.kind, run.ok, run.size_bytes, run.detail) == ("full", True, 3883088, detail)
    assert run.started_at == datetime(2026, 12, 9, 1, 0, tzinfo=dt_timezone.utc)
    assert run.finished_at == datetime(2026, 12, 9, 1, 5, tzinfo=dt_timezone.utc)

    assert record("files", str(started), "false", "", "restic backup failed: " + "x" * 5000).returncode == 0
    failed = BackupRun.objects.get(kind="files")
    assert (failed.ok, failed.size_bytes, len(failed.detail)) == (False, None, 2000)
    summaries = selectors.run_summaries()
    assert summaries["full"].last_ok_at == run.finished_at and summaries["files"].failure == failed


def test_the_database_refuses_what_is_not_a_run():
    assert record("restore", "1796000000", "true", "", "").returncode == 0  # the script still succeeds...
    assert not BackupRun.objects.exists()  # ...but the kind is refused by a constraint
    result = record("full", "1796000000", "true", "-5", "")
    assert "could not record" in result.stderr and not BackupRun.objects.exists()


def test_an_unreachable_database_costs_the_record_not_the_run():
    result = record("diff", "1796000000", "true", "1", "x", url="postgresql://nobody@127.0.0.1:9/none?connect_timeout=2")
    assert result.returncode == 0
    assert "could not record the diff run" in result.stderr
