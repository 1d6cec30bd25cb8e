"""What runs where, in plain Python (no Pulumi): the containers, their commands, environment,
mounts and health checks. The Pulumi program deploys exactly this, and the local full-stack
tests start the same commands with the same environment, so both read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROJECT = "numbas-lti"
NETWORK = f"{PROJECT}"

# Paths inside the containers (nginx mounts the same ones read-only).
STATIC_ROOT = "/srv/static"
MEDIA_ROOT = "/srv/media"
PRIVATE_ROOT = "/srv/private"
ACME_WEBROOT = "/var/www/acme"
CERT_DIR = "/etc/letsencrypt"
PRIVATE_X_ACCEL_PREFIX = "/_private"

# Paths on the server: the Hetzner volumes are mounted here by cloud-init.
DATA_MOUNT = "/mnt/data"  # PostgreSQL data, Redis append-only file
FILES_MOUNT = "/mnt/files"  # media (exams) and private files (reports)

DAPHNE_PORT = 8700
APP_IMAGE = f"{PROJECT}-app"

# Third-party images: pinned, never "latest".
POSTGRES_IMAGE = "postgres:15.10-bookworm"
REDIS_IMAGE = "redis:7.4.2-bookworm"
NGINX_IMAGE = "nginx:1.27.4-bookworm"
CERTBOT_IMAGE = "certbot/certbot:v3.1.0"


def container_name(role: str, index: int | None = None) -> str:
    return f"{PROJECT}-{role}" if index is None else f"{PROJECT}-{role}-{index}"


def daphne_names(replicas: int) -> list[str]:
    return [container_name("daphne", i) for i in range(1, replicas + 1)]


def huey_names(replicas: int) -> list[str]:
    return [container_name("huey", i) for i in range(1, replicas + 1)]


def daphne_upstreams(replicas: int) -> list[str]:
    """host:port of every daphne, as nginx's upstream lists them."""
    return [f"{name}:{DAPHNE_PORT}" for name in daphne_names(replicas)]


@dataclass(frozen=True)
class AppSettings:
    """The non-secret settings of the app containers."""

    domain: str
    exam_domain: str  # the exam-content host: uploaded exams run there, never on `domain`
    instance_name: str = "Numbas LTI"
    from_email: str = ""
    admin_emails: tuple[str, ...] = ()
    huey_workers: int = 2
    max_upload_mb: int = 100
    exam_mathjax: str = "local"  # or "cdn" (EXAM_MATHJAX)


def app_environment(settings: AppSettings, *, database_url_host: str = container_name("postgres"),
                    redis_host: str = container_name("redis")) -> dict[str, str]:
    """The app containers' environment without secrets (DATABASE_URL, SECRET_KEY and
    EMAIL_URL are added as secrets by the deployer)."""
    env = {
        "DEBUG": "0",
        "ALLOWED_HOSTS": settings.domain,
        "CSRF_TRUSTED_ORIGINS": f"https://{settings.domain}",
        "EXAM_ORIGIN": f"https://{settings.exam_domain}",
        "EXAM_MATHJAX": settings.exam_mathjax,
        "BEHIND_TLS_PROXY": "1",
        "COOKIES_SECURE": "1",
        "REDIS_URL": f"redis://{redis_host}:6379/0",
        "STATIC_ROOT": STATIC_ROOT,
        "MEDIA_ROOT": MEDIA_ROOT,
        "PRIVATE_ROOT": PRIVATE_ROOT,
        "PRIVATE_X_ACCEL_PREFIX": PRIVATE_X_ACCEL_PREFIX,
        "SERVE_FILES": "0",
        "STATIC_MANIFEST": "1",  # hashed static names: nginx caches them for a year
        "INSTANCE_NAME": settings.instance_name,
        "HUEY_WORKERS": str(settings.huey_workers),
        "EXAM_MAX_UPLOAD_BYTES": str(settings.max_upload_mb * 1024 * 1024),
        "VAR_DIR": "/srv/var",
    }
    if settings.from_email:
        env["DEFAULT_FROM_EMAIL"] = settings.from_email
    if settings.admin_emails:
        env["ADMIN_EMAILS"] = ",".join(settings.admin_emails)
    return env


def database_url(password: str, *, host: str = container_name("postgres"), port: int = 5432,
                 name: str = "numbas_lti", user: str = "numbas_lti") -> str:
    return f"postgres://{user}:{password}@{host}:{port}/{name}"


# Commands, as argv lists (app/ is the working directory in the image).
MIGRATE_COMMAND = ["sh", "-c", "python manage.py migrate --noinput && python manage.py collectstatic --noinput"]
# One websocket message carries one batch of attempt data. The app accepts a batch of up to
# ATTEMPT_MAX_BATCH_CHARS (8 M characters) and, over HTTP, a body of twice that to leave room for
# JSON escaping; daphne's own default (1 MiB) would cut the connection long before the app could
# answer "too_large". Messages above this limit are closed by daphne with code 1009.
WEBSOCKET_MAX_MESSAGE_BYTES = 2 * 8 * 1024 * 1024 + 64 * 1024


def daphne_command(*, bind: str = "0.0.0.0", port: int = DAPHNE_PORT, behind_proxy: bool = True) -> list[str]:
    """daphne behind nginx (which sets X-Forwarded-For/-Proto); the local stack binds loopback ports.
    `-v 0`: no access log of daphne's own, which writes every URL with its query string and so
    the hand-off and writer tokens; the app logs requests itself (app/core/access_log.py).
    `behind_proxy=False` (scripts/dev): the client's address is the connection's, since without
    nginx in front anyone could claim another in X-Forwarded-For (and so escape the login lockout)."""
    limit = str(WEBSOCKET_MAX_MESSAGE_BYTES)
    return ["daphne", "-v", "0", "-b", bind, "-p", str(port), *(["--proxy-headers"] if behind_proxy else []),
            "--websocket-max-message-size", limit, "--websocket-max-frame-size", limit,
            "numbas_lti.asgi:application"]


DAPHNE_COMMAND = daphne_command()
HUEY_COMMAND = ["python", "manage.py", "run_huey"]


@dataclass(frozen=True)
class HealthCheck:
    test: list[str]
    interval_s: int = 15
    timeout_s: int = 5
    retries: int = 5
    start_period_s: int = 20


# Django only answers its ALLOWED_HOSTS: the check sends the site's host name, as nginx would.
DAPHNE_HEALTH = HealthCheck(["CMD", "python", "-c",
                             "import os, urllib.request; urllib.request.urlopen(urllib.request.Request("
                             f"'http://127.0.0.1:{DAPHNE_PORT}/health/', headers={{'Host': "
                             "os.environ['ALLOWED_HOSTS'].split(',')[0], 'X-Forwarded-Proto': 'https'}), timeout=4)"])
# The worker is PID 1 (its container stops with it); healthy means it can reach its queue.
HUEY_HEALTH = HealthCheck(["CMD", "python", "-c",
                           "import os, redis; redis.Redis.from_url(os.environ['REDIS_URL'], socket_timeout=3).ping()"])
POSTGRES_HEALTH = HealthCheck(["CMD-SHELL", "pg_isready -U numbas_lti -d numbas_lti"])
REDIS_HEALTH = HealthCheck(["CMD", "redis-cli", "ping"])
# Healthy once the site has its Let's Encrypt certificate (unhealthy says: issuance is failing).
CERTBOT_HEALTH = HealthCheck(["CMD-SHELL", 'test -s "/etc/letsencrypt/live/$DOMAIN/fullchain.pem"'],
                             interval_s=300, start_period_s=900)
# Not `nginx -t`: that resolves every upstream name, so one daphne being replaced would
# mark nginx unhealthy.
NGINX_HEALTH = HealthCheck(["CMD-SHELL", "kill -0 \"$(cat /var/run/nginx.pid)\""])


@dataclass(frozen=True)
class Mount:
    source: str  # a host path or a Docker volume name
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    role: str
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    ports: tuple[tuple[int, int], ...] = ()  # (host, container): only nginx publishes any
    health: HealthCheck | None = None
    one_shot: bool = False


STATIC_VOLUME = f"{PROJECT}-static"
CERTS_VOLUME = f"{PROJECT}-certs"
ACME_VOLUME = f"{PROJECT}-acme"

APP_MOUNTS = (
    Mount(STATIC_VOLUME, STATIC_ROOT),
    Mount(f"{FILES_MOUNT}/media", MEDIA_ROOT),
    Mount(f"{FILES_MOUNT}/private", PRIVATE_ROOT),
)


def app_containers(settings: AppSettings, *, daphne_replicas: int, huey_replicas: int) -> list[ContainerSpec]:
    """The migrate step, daphne × N and huey × M, with the non-secret environment."""
    env = app_environment(settings)
    specs = [ContainerSpec(container_name("migrate"), "migrate", MIGRATE_COMMAND, env, APP_MOUNTS, one_shot=True)]
    specs += [ContainerSpec(name, "daphne", DAPHNE_COMMAND, env, APP_MOUNTS, health=DAPHNE_HEALTH)
              for name in daphne_names(daphne_replicas)]
    specs += [ContainerSpec(name, "huey", HUEY_COMMAND, env, APP_MOUNTS, health=HUEY_HEALTH)
              for name in huey_names(huey_replicas)]
    return specs


# --- Backups off the server (infra/numbas_infra/backup.py, infra/backup/) ----------------------
# PostgreSQL runs from a custom image (the pinned POSTGRES_IMAGE plus pgBackRest, restic and
# infra/backup/numbas-backup) so that it can archive its WAL; the backup container runs the same
# image with `numbas-backup schedule`. Both share PostgreSQL's socket directory and its data
# directory at the same path (pgBackRest checks that the server's data_directory is pg1-path).
from numbas_infra import backup as _backup  # noqa: E402 (backup.py imports nothing from here)

BACKUP_IMAGE = f"{PROJECT}-postgres-backup"  # tag: backup.image_tag(); built from infra/backup/Dockerfile
BACKUP_BUILD_CONTEXT = "infra/backup"  # relative to the repository
POSTGRES_DATA_TARGET = "/var/lib/postgresql/data"  # where DATA_MOUNT/postgres is mounted in both containers
POSTGRES_PGDATA = f"{POSTGRES_DATA_TARGET}/pgdata"  # PGDATA of the PostgreSQL container
PG_SOCKET_VOLUME = f"{PROJECT}-pgsocket"  # mounted at backup.SOCKET_DIR in both containers
BACKUP_STATE_VOLUME = f"{PROJECT}-backup-state"  # mounted at backup.STATE_DIR in the backup container
BACKUP_HEALTH = HealthCheck(["CMD", "numbas-backup", "health"], interval_s=60, start_period_s=120)


def app_backup_environment(*, enabled: bool) -> dict[str, str]:
    """For the app containers: whether the staff dashboard expects backups (and so reports their
    absence or age as a problem)."""
    return {"BACKUPS_EXPECTED": "1" if enabled else "0"}


def postgres_backup_command(settings: "_backup.BackupSettings") -> list[str]:
    """The PostgreSQL container's command with WAL archiving (the image's entrypoint runs it)."""
    return ["postgres", *_backup.postgres_archive_options(settings)]


def postgres_backup_environment() -> dict[str, str]:
    """Added to the PostgreSQL container's plain environment (with backup.POSTGRES_SECRET_ENV as
    secrets): where archive-push and archive-get find pgbackrest.conf."""
    return {"PGBACKREST_CONFIG": _backup.PGBACKREST_CONF}


POSTGRES_BACKUP_MOUNTS = (
    Mount(f"{DATA_MOUNT}/postgres", POSTGRES_DATA_TARGET),
    Mount(PG_SOCKET_VOLUME, _backup.SOCKET_DIR),
)


def pgbackrest_conf(settings: "_backup.BackupSettings") -> str:
    """/etc/pgbackrest/pgbackrest.conf (backup.PGBACKREST_CONF) in both containers."""
    return _backup.render_pgbackrest_conf(settings, POSTGRES_PGDATA)


def backup_container(settings: "_backup.BackupSettings") -> ContainerSpec:
    """The backup container, without its secrets (backup.SECRET_ENV). It runs as root (restic
    reads the app's private files; pgBackRest and pg_ctl run as postgres) and needs the data
    directory writable for a restore."""
    env = _backup.backup_environment(settings, pgdata=POSTGRES_PGDATA, media_root=MEDIA_ROOT,
                                     private_root=PRIVATE_ROOT)
    mounts = (
        *POSTGRES_BACKUP_MOUNTS,
        Mount(f"{FILES_MOUNT}/media", MEDIA_ROOT),
        Mount(f"{FILES_MOUNT}/private", PRIVATE_ROOT),
        Mount(BACKUP_STATE_VOLUME, _backup.STATE_DIR),
    )
    return ContainerSpec(container_name("backup"), "backup", ["numbas-backup", "schedule"], env, mounts,
                         health=BACKUP_HEALTH)
