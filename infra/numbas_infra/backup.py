"""Backups off the server, in plain Python (no Pulumi): what PostgreSQL, pgBackRest, restic and
the backup container (`infra/backup/numbas-backup`) are given. The Pulumi program deploys this
(see spec.backup_container) and the local production-shaped stack (tests/support/stack.py)
starts PostgreSQL and runs numbas-backup with the same definitions.

- PostgreSQL: continuous WAL archiving with pgBackRest (`archive_command`, `archive_timeout`),
  weekly full and daily differential backups, encrypted (aes-256-cbc) in an S3 bucket.
- Media and private files: restic, encrypted, to the same endpoint under another prefix.

Secrets (S3 keys, the pgBackRest cipher pass, the restic password) are never part of these
definitions: they are passed separately as the environment variables named in SECRET_ENV.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

BACKUP_DIR = Path(__file__).resolve().parents[1] / "backup"  # infra/backup: Dockerfile, numbas-backup
SCRIPT = BACKUP_DIR / "numbas-backup"
DOCKERFILE = BACKUP_DIR / "Dockerfile"

STANZA = "numbas-lti"
PGBACKREST_CONF = "/etc/pgbackrest/pgbackrest.conf"  # in the custom PostgreSQL image, both containers
SPOOL_PATH = "/var/spool/pgbackrest"  # asynchronous archive-push's queue (created by the Debian package)
ARCHIVE_TIMEOUT_S = 60  # an idle site still ships its WAL within a minute of a change
SOCKET_DIR = "/var/run/postgresql"  # PostgreSQL's socket, shared with the backup container
STATE_DIR = "/var/lib/numbas-backup"  # the schedule's memory, scratch space for verification

# --- secrets: names of the environment variables; values come from the deployer ----------------
S3_KEY_ID_ENV = "PGBACKREST_REPO1_S3_KEY"  # numbas-backup gives restic the same (AWS_ACCESS_KEY_ID)
S3_KEY_SECRET_ENV = "PGBACKREST_REPO1_S3_KEY_SECRET"  # ... (AWS_SECRET_ACCESS_KEY)
CIPHER_PASS_ENV = "PGBACKREST_REPO1_CIPHER_PASS"  # encrypts the database backups and WAL
RESTIC_PASSWORD_ENV = "RESTIC_PASSWORD"  # encrypts the files backups
SECRET_ENV = (S3_KEY_ID_ENV, S3_KEY_SECRET_ENV, CIPHER_PASS_ENV, RESTIC_PASSWORD_ENV)
# PostgreSQL itself runs archive-push (and archive-get during recovery): it needs these three.
POSTGRES_SECRET_ENV = (S3_KEY_ID_ENV, S3_KEY_SECRET_ENV, CIPHER_PASS_ENV)


def secret_environment(*, s3_key_id, s3_key_secret, cipher_pass, restic_password) -> dict:
    """The secret part of the backup container's environment. Values are passed through untouched
    (strings, or pulumi Outputs for the deployer); PostgreSQL gets the POSTGRES_SECRET_ENV subset."""
    return {S3_KEY_ID_ENV: s3_key_id, S3_KEY_SECRET_ENV: s3_key_secret, CIPHER_PASS_ENV: cipher_pass,
            RESTIC_PASSWORD_ENV: restic_password}


# --- schedule (UTC), carried out by `numbas-backup schedule` ------------------------------------
DB_BACKUP_HOUR_UTC = 1  # the daily database backup: differential, or full on FULL_BACKUP_WEEKDAY
FULL_BACKUP_WEEKDAY = 7  # ISO weekday (7 = Sunday)
FILES_BACKUP_EVERY_MINUTES = 60  # restic snapshot of media and private files, then forget --prune
VERIFY_WEEKDAY = 3  # ISO weekday (3 = Wednesday): `numbas-backup verify` (restores into scratch)
VERIFY_HOUR_UTC = 3
RETRY_AFTER_MINUTES = 30  # a failed run is tried again after this long


@dataclass(frozen=True)
class BackupSettings:
    """Where backups go and how long they are kept. Keys and passwords are not in here."""

    endpoint: str  # S3 host name, e.g. fsn1.your-objectstorage.com (Hetzner Object Storage)
    region: str  # e.g. fsn1
    bucket: str
    prefix: str = "numbas-lti"  # inside the bucket: <prefix>/pgbackrest and <prefix>/files
    port: int = 443
    uri_style: str = "path"  # "path" (https://endpoint/bucket/...) or "host" (https://bucket.endpoint/...)
    verify_tls: bool = True
    ca_file: str = ""  # a CA bundle to trust instead of the system's (tests: a self-signed endpoint)
    stanza: str = STANZA
    retention_full: int = 4  # full backups kept, with their differentials and the WAL to restore them
    keep_hourly: int = 24  # restic snapshots kept (forget --prune)
    keep_daily: int = 14
    keep_weekly: int = 8
    process_max: int = 2  # parallel compression/transfer processes of pgBackRest
    # Past this much WAL waiting to be archived (the bucket unreachable for long), pgBackRest
    # drops WAL rather than fill the data volume: the site stays up, point-in-time recovery
    # across the gap is lost, and the health page says WAL archiving is failing until then.
    archive_push_queue_max: str = "4GiB"

    def __post_init__(self):
        if self.uri_style not in ("path", "host"):
            raise ValueError(f"uri_style must be 'path' or 'host', not {self.uri_style!r}")
        for name in ("endpoint", "region", "bucket"):
            if not getattr(self, name) or any(c.isspace() for c in getattr(self, name)):
                raise ValueError(f"{name} must be a non-empty word, not {getattr(self, name)!r}")
        if "://" in self.endpoint or "/" in self.endpoint:
            raise ValueError(f"endpoint is a host name without scheme or path, not {self.endpoint!r}")
        if self.prefix != self.prefix.strip("/") or any(c.isspace() for c in self.prefix):
            raise ValueError(f"prefix must not start or end with '/' nor contain spaces: {self.prefix!r}")
        if min(self.retention_full, self.keep_hourly, self.keep_daily, self.keep_weekly) < 1:
            raise ValueError("retention counts must be at least 1")

    @property
    def pgbackrest_path(self) -> str:
        return f"/{self.prefix}/pgbackrest" if self.prefix else "/pgbackrest"

    @property
    def restic_repository(self) -> str:
        host = self.endpoint if self.port == 443 else f"{self.endpoint}:{self.port}"
        path = f"{self.prefix}/files" if self.prefix else "files"
        return f"s3:https://{host}/{self.bucket}/{path}"


def render_pgbackrest_conf(settings: BackupSettings, pg_path: str, *, pg_port: int = 5432,
                           pg_socket_path: str = SOCKET_DIR, pg_user: str = "numbas_lti",
                           spool_path: str = SPOOL_PATH, lock_path: str = "/tmp/pgbackrest",
                           log_path: str = "") -> str:
    """pgbackrest.conf for both containers (PostgreSQL's archive-push and the backup container).
    `pg_user` must be a superuser reachable over the socket (the image's POSTGRES_USER is).
    Without `log_path`, pgBackRest logs to the console only (docker logs)."""
    lines = [
        "# Written by infra/numbas_infra/backup.py. Keys and passphrases come from the environment:",
        f"# {', '.join(POSTGRES_SECRET_ENV)}.",
        "[global]",
        "repo1-type=s3",
        f"repo1-s3-endpoint={settings.endpoint}",
        f"repo1-s3-region={settings.region}",
        f"repo1-s3-bucket={settings.bucket}",
        f"repo1-s3-uri-style={settings.uri_style}",
        f"repo1-storage-port={settings.port}",
        f"repo1-storage-verify-tls={'y' if settings.verify_tls else 'n'}",
        *([f"repo1-storage-ca-file={settings.ca_file}"] if settings.ca_file else []),
        f"repo1-path={settings.pgbackrest_path}",
        "repo1-cipher-type=aes-256-cbc",
        "repo1-bundle=y",  # small files in a few objects: far fewer requests
        f"repo1-retention-full={settings.retention_full}",
        "repo1-retention-full-type=count",
        "compress-type=zst",
        f"process-max={settings.process_max}",
        "start-fast=y",  # checkpoint at once when a backup starts
        "archive-async=y",
        f"archive-push-queue-max={settings.archive_push_queue_max}",
        f"spool-path={spool_path}",
        f"lock-path={lock_path}",
        "log-level-console=warn",  # archive-push runs per WAL segment: only problems in PostgreSQL's log
        "log-level-stderr=warn",
        *([f"log-path={log_path}", "log-level-file=info"] if log_path else ["log-level-file=off"]),
        "",
        f"[{settings.stanza}]",
        f"pg1-path={pg_path}",
        f"pg1-port={pg_port}",
        f"pg1-socket-path={pg_socket_path}",
        f"pg1-user={pg_user}",
        "",
    ]
    return "\n".join(lines)


def archive_command(settings: BackupSettings) -> str:
    return f"pgbackrest --stanza={settings.stanza} archive-push %p"


def postgres_archive_options(settings: BackupSettings, *, archive_timeout_s: int = ARCHIVE_TIMEOUT_S) -> list[str]:
    """The `-c key=value` arguments PostgreSQL needs for continuous archiving (argv items, no
    shell quoting: pass them after `postgres` in the container's command; shlex.join for a shell).
    Give them only when the backup container runs with the same settings: with archive_mode on
    and nowhere to archive, WAL piles up until archive_push_queue_max is reached."""
    return ["-c", "wal_level=replica", "-c", "archive_mode=on",
            "-c", f"archive_command={archive_command(settings)}",
            "-c", f"archive_timeout={archive_timeout_s}"]


def restic_options(settings: BackupSettings) -> list[str]:
    style = "path" if settings.uri_style == "path" else "dns"
    options = ["-o", f"s3.bucket-lookup={style}", "-o", f"s3.region={settings.region}"]
    if settings.ca_file:
        options += ["--cacert", settings.ca_file]
    if not settings.verify_tls:
        options += ["--insecure-tls"]
    return options


def backup_environment(settings: BackupSettings, *, pgdata: str, media_root: str, private_root: str,
                       database_url: str = f"postgresql:///numbas_lti?host={SOCKET_DIR}&user=numbas_lti",
                       pg_socket_dir: str = SOCKET_DIR, pg_port: int = 5432,
                       pgbackrest_conf: str = PGBACKREST_CONF, state_dir: str = STATE_DIR,
                       restic_host: str = "numbas-lti", pg_user: str = "numbas_lti",
                       pg_run_as: str = "postgres") -> dict[str, str]:
    """The non-secret environment of `numbas-backup` (the backup container's, or the local
    stack's). `database_url` is where runs are recorded (the app's database; over the socket,
    where the image trusts local connections, it holds no password)."""
    return {
        "PGBACKREST_CONFIG": pgbackrest_conf,
        "NUMBAS_BACKUP_STANZA": settings.stanza,
        "PGDATA": pgdata,
        "NUMBAS_BACKUP_PGHOST": pg_socket_dir,
        "NUMBAS_BACKUP_PGPORT": str(pg_port),
        "NUMBAS_BACKUP_PGUSER": pg_user,
        "NUMBAS_BACKUP_PG_RUN_AS": pg_run_as,
        "NUMBAS_BACKUP_DATABASE_URL": database_url,
        "NUMBAS_BACKUP_FILES": f"{media_root} {private_root}",
        "NUMBAS_BACKUP_STATE": state_dir,
        "RESTIC_CACHE_DIR": f"{state_dir}/restic-cache",  # kept between runs: fewer requests
        "RESTIC_REPOSITORY": settings.restic_repository,
        "NUMBAS_BACKUP_RESTIC_OPTIONS": " ".join(restic_options(settings)),
        "NUMBAS_BACKUP_RESTIC_HOST": restic_host,
        "NUMBAS_BACKUP_KEEP_HOURLY": str(settings.keep_hourly),
        "NUMBAS_BACKUP_KEEP_DAILY": str(settings.keep_daily),
        "NUMBAS_BACKUP_KEEP_WEEKLY": str(settings.keep_weekly),
        "NUMBAS_BACKUP_DB_HOUR": str(DB_BACKUP_HOUR_UTC),
        "NUMBAS_BACKUP_FULL_WEEKDAY": str(FULL_BACKUP_WEEKDAY),
        "NUMBAS_BACKUP_FILES_EVERY_MINUTES": str(FILES_BACKUP_EVERY_MINUTES),
        "NUMBAS_BACKUP_VERIFY_WEEKDAY": str(VERIFY_WEEKDAY),
        "NUMBAS_BACKUP_VERIFY_HOUR": str(VERIFY_HOUR_UTC),
        "NUMBAS_BACKUP_RETRY_MINUTES": str(RETRY_AFTER_MINUTES),
        "TZ": "UTC",
    }


def image_tag() -> str:
    """Changes exactly when what goes into the custom PostgreSQL image changes."""
    digest = hashlib.sha256()
    for path in (DOCKERFILE, SCRIPT):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
