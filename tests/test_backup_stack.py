"""Backups and restore on the production-shaped stack (tests/support/stack.py) with PostgreSQL
archiving its WAL through pgBackRest, and restic, to a local S3 endpoint (tests/support/s3.py):
the same numbas-backup (infra/backup/) that the backup container runs, through the operator's
commands scripts/backup, scripts/restore and scripts/verify-backup.

The tests run in order on one stack (each leaves it running on restored data):
1. real data → a full backup → more data (in WAL only) → every table and file checksummed →
   PostgreSQL's data directory and the files destroyed → one restore command → identical;
2. point in time: A written, time T from the database's clock, B written, restore to T → A
   without B;
3. the staff health JSON says the backups are fresh;
4. verify passes on the good repositories and fails, saying what, once objects are deleted.

Figures (durations, sizes) are printed (-s) and kept in test-artifacts/backup.json."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import requests
import urllib3

from numbas_infra import backup
from tests.support.attempt_client import Student, batch
from tests.support.attempt_page import DEMO_SECRET
from tests.support.s3 import LocalS3
from tests.support.stack import REPO, LocalStack, StackBackup

pytestmark = [pytest.mark.slow, pytest.mark.stack]
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
FIGURES: dict = {}
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def s3():
    with LocalS3() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def stack(s3, tmp_path_factory):
    stack = LocalStack(tmp_path_factory.mktemp("backup-stack"), daphne_replicas=2, huey_replicas=1,
                       backup=StackBackup(s3.backup_settings(prefix="stack"), s3.secrets()))
    stack.start()
    try:
        stack.manage("ensure_demo_data", "--secret", DEMO_SECRET)
        stack.numbas_backup("stanza-create")
        yield stack
    finally:
        stack.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "backup.json").write_text(json.dumps(FIGURES, indent=2, default=str))
        print("\nbackup figures:", json.dumps(FIGURES, indent=2, default=str))


def operator(stack, command: str, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """scripts/<command> as an operator runs it against the local stack."""
    started = time.monotonic()
    result = subprocess.run([str(REPO / "scripts" / command), *args], env={**os.environ, "STACK_DIR": str(stack.root)},
                            capture_output=True, text=True, timeout=timeout)
    FIGURES.setdefault("seconds", []).append((" ".join([command, *args]), round(time.monotonic() - started, 1)))
    with open(stack.logs / "operator.log", "a") as log:
        log.write(f"--- scripts/{command} {' '.join(args)}: exit {result.returncode}\n{result.stdout}{result.stderr}")
    if check and result.returncode != 0:
        raise AssertionError(f"scripts/{command} {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


# --- data ---------------------------------------------------------------------------------------


def student(stack, user_id: str) -> Student:
    s = Student(stack.url, key="demo", secret=DEMO_SECRET, user_id=user_id)
    s.http.verify, s.http.trust_env = False, False
    return s.launch()


def answer(stack, user_id: str, *, complete: bool, raw: int = 3) -> int:
    """A student launches, starts an attempt and answers over HTTPS (the page's fallback path)."""
    s = student(stack, user_id)
    attempt = s.start_attempt()
    token = s.open_attempt(attempt)["token"]
    changes = [("cmi.location", "q1"), ("cmi.suspend_data", json.dumps({"user": user_id, "pad": "x" * 2000})),
               ("cmi.interactions.0.id", "q0p0"), ("cmi.interactions.0.learner_response", f"{user_id}-answer"),
               ("cmi.score.raw", str(raw)), ("cmi.score.max", "4")]
    if complete:
        changes += [("cmi.completion_status", "completed"), ("cmi.exit", "normal")]
    response = s.post_batch(attempt, batch(token, changes, 1, terminate=complete))
    assert response.status_code == 200, response.text[:300]
    return attempt


def request_report(stack) -> str:
    """A scores CSV written by the stack's Huey worker into PRIVATE_ROOT; returns its id."""
    code = ("from lms.models import Resource; from reports.services import report_request; "
            "r = Resource.objects.get(resource_link_id='demo-exam'); "
            "print(report_request(resource_id=r.pk, kind='scores', user=None).pk)")
    report_id = stack.manage("shell", "-c", code).strip().splitlines()[-1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = stack.query("SELECT state FROM reports_reportfile WHERE id = %s", (report_id,))[0][0]
        if state in ("done", "failed"):
            break
        time.sleep(0.5)
    assert state == "done", f"the report is {state}; see {stack.logs}/huey-1.log"
    return report_id


def wal_archived(stack, *, timeout: float = 90) -> str:
    """Switch to a new WAL segment and wait until the one holding everything so far is archived."""
    segment = stack.query("SELECT pg_walfile_name(pg_switch_wal())", superuser=True)[0][0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = stack.query("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or ""
        if last[8:24] >= segment[8:24] and len(last) >= 24:
            return segment
        time.sleep(0.25)
    raise AssertionError(f"WAL segment {segment} was not archived within {timeout}s (last: {last})")


# --- what is compared -------------------------------------------------------------------------------


def table_checksums(stack) -> dict[str, tuple[int, str]]:
    """Every table of the app's database: row count and an md5 of all its rows in a fixed order."""
    tables = [t for (t,) in stack.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    sums = {}
    for table in tables:
        count, digest = stack.query(
            f'SELECT count(*), md5(coalesce(string_agg(t::text, E\'\\n\' ORDER BY t::text), \'\')) FROM "{table}" t')[0]
        sums[table] = (count, digest)
    return sums


def file_checksums(*roots: Path) -> dict[str, str]:
    sums = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def destroy(stack) -> None:
    """The data directory and the files gone, as on a lost volume."""
    stack.postgres_stop("immediate")
    subprocess.run(["rm", "-rf", str(stack.pg_data)], check=True)
    for name in ("media", "private"):
        for child in (stack.root / name).iterdir():
            subprocess.run(["rm", "-rf", str(child)], check=True)
    assert not stack.pg_data.exists() and not any((stack.root / "media").iterdir())


# --- the tests --------------------------------------------------------------------------------------


def test_backup_destroy_and_restore_gives_back_every_row_and_file(stack, s3):
    for i in range(6):
        answer(stack, f"backup-student-{i}", complete=i % 2 == 0, raw=i % 5)
    report_id = request_report(stack)
    assert (stack.root / "private" / "reports" / f"{report_id}.csv").exists()

    operator(stack, "backup", "full")
    operator(stack, "backup", "files")
    # After the backup: only in the WAL, which the restore must replay.
    after_backup = answer(stack, "after-the-backup", complete=True, raw=4)

    # Quiet: the worker is the only writer without a request (grade retries to the launches'
    # unreachable gradebook). Then everything written is in archived WAL.
    huey = stack.services["huey-1"]
    huey.restart = False
    huey.stop()
    tables = table_checksums(stack)
    files = file_checksums(stack.root / "media", stack.root / "private")
    wal_archived(stack)
    assert tables["attempts_attempt"][0] >= 7 and tables["reports_reportfile"][0] == 1
    assert any("/exams/" in p for p in files) and any(p.endswith(f"{report_id}.csv") for p in files)
    FIGURES["data"] = {"tables": len(tables), "rows": sum(n for n, _ in tables.values()), "files": len(files),
                       "database_mb": round(stack.query("SELECT pg_database_size('numbas_lti')")[0][0] / 2**20, 1)}
    FIGURES["bucket_bytes"] = {"pgbackrest": sum(s3.keys("stack/pgbackrest/").values()),
                               "restic": sum(s3.keys("stack/files/").values())}
    FIGURES["full_backup"] = stack.query("SELECT size_bytes, detail FROM backups_backuprun WHERE kind = 'full' "
                                         "AND ok ORDER BY finished_at DESC LIMIT 1")[0]

    destroy(stack)
    result = operator(stack, "restore")
    assert "restore complete" in result.stderr

    assert table_checksums(stack) == tables
    assert file_checksums(stack.root / "media", stack.root / "private") == files
    huey.restart = True
    huey.start()
    # The app works on the restored data: the last answer is there and a student can carry on.
    assert stack.query("SELECT count(*) FROM attempts_attempt WHERE id = %s", (after_backup,))[0][0] == 1
    assert requests.get(f"{stack.url}/health/", verify=False, timeout=10).status_code == 200
    answer(stack, "after-the-restore", complete=False)
    # The restored server archives again, on the restore's new timeline.
    assert wal_archived(stack)[:8] != "00000001"


def test_a_deploy_backs_up_before_its_migrations(stack):
    """steps.migrate_script runs `numbas-backup pre-deploy` first: a differential backup (a full one
    exists by now), recorded like the scheduled ones."""
    diffs = "SELECT count(*) FROM backups_backuprun WHERE kind = 'diff' AND ok"
    before = stack.query(diffs)[0][0]
    operator(stack, "backup", "pre-deploy")
    assert stack.query(diffs)[0][0] == before + 1


def test_point_in_time_restore_gives_the_state_between_two_writes(stack):
    stack.manage("create_lti_consumer", "--key", "pitr-a", "--secret", "a" * 32)
    target = stack.query("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")[0][0]
    time.sleep(1.5)
    stack.manage("create_lti_consumer", "--key", "pitr-b", "--secret", "b" * 32)
    assert {k for (k,) in stack.query("SELECT key FROM lms_consumer WHERE key LIKE 'pitr-%%'")} == {"pitr-a", "pitr-b"}
    wal_archived(stack)

    operator(stack, "restore", "--target-time", target)

    assert [k for (k,) in stack.query("SELECT key FROM lms_consumer WHERE key LIKE 'pitr-%%'")] == ["pitr-a"]
    assert requests.get(f"{stack.url}/health/", verify=False, timeout=10).status_code == 200


def test_the_staff_health_json_says_the_backups_are_fresh(stack):
    stack.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                                "get_user_model().objects.create_superuser('backup-ops', '', 'backup-ops-password-1')")
    http = requests.Session()
    http.verify, http.trust_env = False, False
    login = http.get(f"{stack.url}/admin/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    http.post(f"{stack.url}/admin/login/", data={"csrfmiddlewaretoken": token, "username": "backup-ops",
                                                   "password": "backup-ops-password-1", "next": "/staff/"},
              headers={"Referer": f"{stack.url}/admin/login/", "Origin": stack.url}, timeout=10)
    wal_archived(stack)
    status = operator(stack, "backup", "status").stdout
    assert "full backup:" in status and "last_archived_wal" in status
    health = http.get(f"{stack.url}/staff/health.json", timeout=10).json()
    checks = health["checks"]
    assert checks["database_backup"]["status"] == "ok", checks["database_backup"]
    assert checks["files_backup"]["status"] == "ok", checks["files_backup"]
    assert checks["wal_archive"]["status"] == "ok", checks["wal_archive"]
    assert "Last WAL segment archived" in checks["wal_archive"]["detail"]
    # Never verified yet (the next test does): a warning, not a problem.
    assert checks["backup_verify"]["status"] == "warning"
    assert health["status"] == "warning"


def restic_data_packs(stack) -> set[str]:
    """Ids of the restic packs that hold only file contents (restic's own index says)."""
    env = {**stack.backup_env, "AWS_ACCESS_KEY_ID": stack.backup_env[backup.S3_KEY_ID_ENV],
           "AWS_SECRET_ACCESS_KEY": stack.backup_env[backup.S3_KEY_SECRET_ENV]}
    restic = ["restic", *shlex.split(env["NUMBAS_BACKUP_RESTIC_OPTIONS"])]
    packs = set()
    for index in subprocess.run([*restic, "list", "index"], env=env, capture_output=True, text=True, check=True,
                                timeout=60).stdout.split():
        listed = json.loads(subprocess.run([*restic, "cat", "index", index], env=env, capture_output=True, text=True,
                                           check=True, timeout=60).stdout)
        packs |= {p["id"] for p in listed["packs"] if all(b["type"] == "data" for b in p["blobs"])}
    return packs


def test_verify_passes_on_good_backups_and_fails_clearly_on_a_damaged_bucket(stack, s3):
    result = operator(stack, "verify-backup")
    assert "verification passed" in result.stderr
    assert "latest backup restored and answered" in result.stderr
    ok, detail = stack.query("SELECT ok, detail FROM backups_backuprun WHERE kind = 'verify' "
                             "ORDER BY finished_at DESC LIMIT 1")[0]
    assert ok and "latest files snapshot restored" in detail

    # Damage both repositories: the largest object of the newest database backup, and a restic pack.
    backups = {k: n for k, n in s3.keys("stack/pgbackrest/backup/").items() if re.search(r"/\d{8}-\d{6}F/", k)}
    newest = max(re.search(r"/(\d{8}-\d{6}F[^/]*)/", k).group(1) for k in backups)
    victim = max((k for k in backups if f"/{newest}/" in k and "backup.manifest" not in k), key=backups.get)
    s3.delete(victim)
    # A pack of file contents: a missing tree pack makes restic 0.14 retry with backoff for minutes.
    data_packs = restic_data_packs(stack)
    packs = [k for k in s3.keys("stack/files/data/") if k.rsplit("/", 1)[1] in data_packs]
    assert packs
    s3.delete(packs[0])

    result = operator(stack, "verify-backup", check=False)
    assert result.returncode != 0
    message = result.stderr.splitlines()[-1]
    assert "verification FAILED" in message
    assert "restoring the latest database backup failed" in message
    assert "pgbackrest verify: status: error" in message and "missing" in message
    assert "restic check" in message
    ok, detail = stack.query("SELECT ok, detail FROM backups_backuprun WHERE kind = 'verify' "
                             "ORDER BY finished_at DESC LIMIT 1")[0]
    assert not ok and "restoring the latest database backup failed" in detail
