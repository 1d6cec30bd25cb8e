"""The backup definitions the Pulumi program and the local stack share (infra/numbas_infra/backup.py,
spec.py's backup section), the custom PostgreSQL image (infra/backup/Dockerfile, checked
statically) and numbas-backup's schedule, run with a fake clock. The backups themselves run
against the local stack in tests/test_backup_stack.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from numbas_infra import backup, spec

from tests.infra.test_dockerfile import exec_form, parse_dockerfile, split_flags, stages

REPO = Path(__file__).resolve().parents[2]
SETTINGS = backup.BackupSettings(endpoint="fsn1.your-objectstorage.com", region="fsn1", bucket="numbas-backups")


# --- settings and what they render -----------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"uri_style": "virtual"}, {"endpoint": "https://fsn1.your-objectstorage.com"}, {"endpoint": "a/b"},
    {"bucket": ""}, {"region": "fsn 1"}, {"prefix": "/lead"}, {"prefix": "trail/"}, {"retention_full": 0},
    {"keep_daily": 0},
])
def test_settings_refuse_what_would_break_the_tools(bad):
    with pytest.raises(ValueError):
        backup.BackupSettings(**{"endpoint": "e.example", "region": "r", "bucket": "b", **bad})


def test_the_two_repositories_live_under_the_prefix_of_one_bucket():
    assert SETTINGS.pgbackrest_path == "/numbas-lti/pgbackrest"
    assert SETTINGS.restic_repository == "s3:https://fsn1.your-objectstorage.com/numbas-backups/numbas-lti/files"
    other = backup.BackupSettings(endpoint="localhost", region="r", bucket="b", prefix="site/prod", port=9000)
    assert other.restic_repository == "s3:https://localhost:9000/b/site/prod/files"
    assert other.pgbackrest_path == "/site/prod/pgbackrest"


def parse_conf(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None and key not in current, line
        current[key] = value
    return sections


def test_pgbackrest_conf_encrypts_retains_and_names_no_secret():
    conf = parse_conf(backup.render_pgbackrest_conf(SETTINGS, "/var/lib/postgresql/data/pgdata"))
    glob, stanza = conf["global"], conf[backup.STANZA]
    assert glob["repo1-type"] == "s3" and glob["repo1-s3-endpoint"] == SETTINGS.endpoint
    assert (glob["repo1-s3-bucket"], glob["repo1-s3-region"], glob["repo1-s3-uri-style"]) == ("numbas-backups", "fsn1", "path")
    assert glob["repo1-cipher-type"] == "aes-256-cbc"
    assert glob["repo1-retention-full"] == "4" and glob["repo1-retention-full-type"] == "count"
    assert glob["repo1-storage-verify-tls"] == "y" and "repo1-storage-ca-file" not in glob
    assert glob["archive-async"] == "y" and glob["archive-push-queue-max"] == "4GiB"
    assert stanza == {"pg1-path": "/var/lib/postgresql/data/pgdata", "pg1-port": "5432",
                      "pg1-socket-path": backup.SOCKET_DIR, "pg1-user": "numbas_lti"}
    # Keys and passphrases come from the environment only.
    options = {k for section in conf.values() for k in section}
    assert not options & {"repo1-s3-key", "repo1-s3-key-secret", "repo1-cipher-pass"}
    insecure = parse_conf(backup.render_pgbackrest_conf(
        backup.BackupSettings(endpoint="e.example", region="r", bucket="b", verify_tls=False, uri_style="host"), "/d"))
    assert insecure["global"]["repo1-storage-verify-tls"] == "n" and insecure["global"]["repo1-s3-uri-style"] == "host"


def test_the_secret_variables_are_the_tools_own_names():
    secrets = backup.secret_environment(s3_key_id="K", s3_key_secret="S", cipher_pass="C", restic_password="R")
    assert secrets == {"PGBACKREST_REPO1_S3_KEY": "K", "PGBACKREST_REPO1_S3_KEY_SECRET": "S",
                       "PGBACKREST_REPO1_CIPHER_PASS": "C", "RESTIC_PASSWORD": "R"}
    assert set(backup.POSTGRES_SECRET_ENV) < set(backup.SECRET_ENV) == set(secrets)
    # None of them is in the plain environment or the rendered config.
    env = backup.backup_environment(SETTINGS, pgdata="/d", media_root="/m", private_root="/p")
    assert not set(env) & set(backup.SECRET_ENV)


def test_postgres_archives_with_pgbackrest_within_a_minute():
    options = backup.postgres_archive_options(SETTINGS)
    assert options[::2] == ["-c"] * (len(options) // 2)
    values = dict(o.split("=", 1) for o in options[1::2])
    assert values == {"wal_level": "replica", "archive_mode": "on", "archive_timeout": "60",
                      "archive_command": "pgbackrest --stanza=numbas-lti archive-push %p"}
    # numbas-backup archives the same way while a restored cluster replays its WAL.
    assert "archive_command=pgbackrest --stanza=$STANZA archive-push %p" in backup.SCRIPT.read_text()
    assert spec.postgres_backup_command(SETTINGS) == ["postgres", *options]
    assert spec.postgres_backup_environment() == {"PGBACKREST_CONFIG": backup.PGBACKREST_CONF}
    assert spec.backup_container(SETTINGS).env["PGBACKREST_CONFIG"] == backup.PGBACKREST_CONF


def test_every_variable_of_the_environment_is_read_by_numbas_backup():
    script = backup.SCRIPT.read_text()
    env = backup.backup_environment(SETTINGS, pgdata="/d", media_root="/m", private_root="/p")
    tool_own = {"PGBACKREST_CONFIG", "RESTIC_REPOSITORY", "RESTIC_CACHE_DIR", "TZ"}  # pgBackRest's, restic's, date's
    for name in set(env) - tool_own:
        assert re.search(rf"\$\{{?{name}\b", script), f"{name} is set but numbas-backup never reads it"
    assert env["NUMBAS_BACKUP_FILES"] == "/m /p"
    assert env["NUMBAS_BACKUP_RESTIC_OPTIONS"] == "-o s3.bucket-lookup=path -o s3.region=fsn1"
    assert env["NUMBAS_BACKUP_DATABASE_URL"] == "postgresql:///numbas_lti?host=/var/run/postgresql&user=numbas_lti"


def test_the_backup_container_shares_the_data_directory_and_socket_of_postgres():
    container = spec.backup_container(SETTINGS)
    assert container.name == "numbas-lti-backup" and container.command == ["numbas-backup", "schedule"]
    assert not container.ports and container.health == spec.BACKUP_HEALTH
    targets = {m.target: m for m in container.mounts}
    for mount in spec.POSTGRES_BACKUP_MOUNTS:
        assert targets[mount.target] == mount  # same source at the same path: pgBackRest checks pg1-path
    assert targets[spec.MEDIA_ROOT].source == f"{spec.FILES_MOUNT}/media"
    assert targets[spec.PRIVATE_ROOT].source == f"{spec.FILES_MOUNT}/private"
    assert targets[backup.STATE_DIR].source == spec.BACKUP_STATE_VOLUME
    assert container.env["PGDATA"] == spec.POSTGRES_PGDATA
    assert parse_conf(spec.pgbackrest_conf(SETTINGS))[backup.STANZA]["pg1-path"] == spec.POSTGRES_PGDATA
    # The deployed containers (tests/infra/test_deploy.py::test_production_backs_up_off_the_server).
    assert spec.app_backup_environment(enabled=True) == {"BACKUPS_EXPECTED": "1"}
    assert spec.app_backup_environment(enabled=False) == {"BACKUPS_EXPECTED": "0"}


# --- the image ---------------------------------------------------------------------------------------


def test_the_image_is_the_pinned_postgres_image_with_pinned_tools_and_the_script():
    (stage,) = stages(parse_dockerfile(backup.DOCKERFILE.read_text()))
    assert stage.image == spec.POSTGRES_IMAGE
    runs = " ".join(i.args for i in stage.instructions if i.keyword == "RUN")
    pins = dict(re.findall(r"\b(pgbackrest|restic)=(\S+)", runs))
    assert set(pins) == {"pgbackrest", "restic"}
    for package, version in pins.items():  # what the tests here run is what production installs
        installed = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
        if installed.returncode == 0:
            assert installed.stdout == version, f"{package}: Dockerfile pins {version}, tests run {installed.stdout}"
    copies = [split_flags(i.args)[1] for i in stage.instructions if i.keyword == "COPY"]
    assert copies == [["numbas-backup", "/usr/local/bin/numbas-backup"]]
    assert (backup.BACKUP_DIR / "numbas-backup").exists() and os.access(backup.SCRIPT, os.X_OK)
    assert "/var/spool/pgbackrest" in runs and backup.SPOOL_PATH == "/var/spool/pgbackrest"
    assert not any(i.keyword in ("CMD", "ENTRYPOINT", "USER") for i in stage.instructions)  # the postgres image's own
    assert exec_form('["numbas-backup", "health"]') == spec.BACKUP_HEALTH.test[1:]
    assert len(backup.image_tag()) == 16


# --- the script ------------------------------------------------------------------------------------


def run_script(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["dash", str(backup.SCRIPT), *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ["PATH"], **(env or {})})


def test_numbas_backup_is_posix_sh():
    assert backup.SCRIPT.read_text().startswith("#!/bin/sh\n")
    for shell in ("sh", "dash"):
        if shutil.which(shell):
            assert subprocess.run([shell, "-n", str(backup.SCRIPT)], capture_output=True).returncode == 0
    assert run_script("--help").returncode == 0
    assert run_script().returncode == 2 and run_script("unknown").returncode == 2
    result = run_script("restore", "--to", "/x")
    assert result.returncode != 0 and "unknown argument" in result.stderr


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())


# 2026-12-06 is a Sunday (full backups), 2026-12-09 a Wednesday (verification).
@pytest.mark.parametrize("now, stamps, due", [
    ("2026-12-03 15:00", {}, ["full", "files"]),  # first start: a full backup and the files at once
    ("2026-12-03 15:05", {"last-full": "2026-12-03 15:01", "last-files": "2026-12-03 15:02"}, ["verify"]),
    ("2026-12-04 00:30", {"last-full": "2026-12-03 15:01", "last-files": "2026-12-04 00:00",
                          "last-verify": "2026-12-03 15:03"}, []),
    ("2026-12-04 01:00", {"last-full": "2026-12-03 15:01", "last-files": "2026-12-04 00:30",
                          "last-verify": "2026-12-03 15:03"}, ["diff"]),  # the daily one, at 01:00
    ("2026-12-04 09:00", {"last-full": "2026-12-03 15:01", "last-diff": "2026-12-04 01:01",
                          "last-files": "2026-12-04 08:30", "last-verify": "2026-12-03 15:03"}, []),
    ("2026-12-06 01:00", {"last-full": "2026-11-29 01:02", "last-diff": "2026-12-05 01:01",
                          "last-files": "2026-12-06 00:30", "last-verify": "2026-12-02 03:00"}, ["full"]),  # Sunday
    ("2026-12-06 01:00", {"last-full": "2026-12-05 09:00", "last-files": "2026-12-06 00:30",
                          "last-verify": "2026-12-05 09:05"}, ["diff"]),  # a full yesterday: no second one
    ("2026-12-05 00:30", {"last-full": "2026-12-03 15:01", "last-diff": "2026-12-03 23:00",
                          "last-files": "2026-12-05 00:00", "last-verify": "2026-12-03 15:03"}, ["diff"]),  # 25 h: missed
    ("2026-12-12 13:00", {"last-full": "2026-12-04 12:00", "last-diff": "2026-12-12 01:00",
                          "last-files": "2026-12-12 12:30", "last-verify": "2026-12-09 03:00"}, ["full"]),  # 8 days
    ("2026-12-09 03:00", {"last-full": "2026-12-06 01:00", "last-diff": "2026-12-09 01:00",
                          "last-files": "2026-12-09 02:30", "last-verify": "2026-12-02 03:00"}, ["verify"]),  # Wednesday
    ("2026-12-08 03:00", {"last-full": "2026-12-06 01:00", "last-diff": "2026-12-08 01:00",
                          "last-files": "2026-12-08 02:30", "last-verify": "2026-12-02 03:00"}, []),  # Tuesday
    ("2026-12-08 03:01", {"last-full": "2026-12-06 01:00", "last-diff": "2026-12-08 01:00",
                          "last-files": "2026-12-08 01:59", "last-verify": "2026-11-30 03:00"}, ["files", "verify"]),
    # A failure waits half an hour before it is tried again.
    ("2026-12-03 15:20", {"failed-db": "2026-12-03 15:00", "failed-files": "2026-12-03 15:01"}, []),
    ("2026-12-03 15:31", {"failed-db": "2026-12-03 15:00", "failed-files": "2026-12-03 15:01"}, ["full", "files"]),
    ("2026-12-04 01:05", {"last-full": "2026-12-03 15:01", "failed-db": "2026-12-04 01:00",
                          "last-files": "2026-12-04 00:30", "last-verify": "2026-12-03 15:03"}, []),
])
def test_the_schedule_runs_what_is_due(tmp_path, now, stamps, due):
    for name, at in stamps.items():
        (tmp_path / name).write_text(str(utc(at)))
    env = {"NUMBAS_BACKUP_STATE": str(tmp_path), "NUMBAS_BACKUP_NOW": str(utc(now)), **{
        k: v for k, v in backup.backup_environment(SETTINGS, pgdata="/d", media_root="/m", private_root="/p").items()
        if k.startswith("NUMBAS_BACKUP_") and k[14:] in ("DB_HOUR", "FULL_WEEKDAY", "FILES_EVERY_MINUTES",
                                                         "VERIFY_WEEKDAY", "VERIFY_HOUR", "RETRY_MINUTES")}}
    result = run_script("due", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == due


def test_the_health_check_needs_a_recent_heartbeat(tmp_path):
    env = {"NUMBAS_BACKUP_STATE": str(tmp_path)}
    assert run_script("health", env=env).returncode == 1
    (tmp_path / "heartbeat").touch()
    assert run_script("health", env=env).returncode == 0
    old = (datetime.now() - timedelta(minutes=6)).timestamp()
    os.utime(tmp_path / "heartbeat", (old, old))
    assert run_script("health", env=env).returncode == 1


def test_the_schedule_takes_no_backup_while_a_restore_runs(tmp_path):
    (tmp_path / "restoring").touch()
    env = {"NUMBAS_BACKUP_STATE": str(tmp_path), "PGBACKREST_CONFIG": str(tmp_path / "missing.conf"),
           "NUMBAS_BACKUP_PG_RUN_AS": ""}
    result = run_script("schedule", "--once", env=env)
    assert result.returncode == 0
    assert "a restore is running: no backup now" in result.stderr
    assert (tmp_path / "heartbeat").exists() and not (tmp_path / "failed-db").exists()
