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

# Who reads the files nginx serves from the files volume. The app (uid 10001) writes them;
# nginx's workers run as user `nginx` (uid 101, gid 101 in the official Debian image) and read
# them through their group: cloud-init gives media/ and private/ that group with the setgid bit,
# so every file and directory the app creates below inherits it (the app needs no membership of
# it), and the app sets the modes below (PRIVATE_*_MODE, MEDIA_*_MODE; app/core/files.py).
# Private files never give others anything; exams are public on the exam-content origin anyway.
NGINX_GID = 101
FILES_GID = NGINX_GID
PRIVATE_DIR_MODE = 0o2750
PRIVATE_FILE_MODE = 0o640
MEDIA_DIR_MODE = 0o2755
MEDIA_FILE_MODE = 0o644

DAPHNE_PORT = 8700
SERVER_LABEL = f"{PROJECT}.server"  # the Hetzner server's id, on every Docker resource (a new server: all anew)
ROLE_LABEL = f"{PROJECT}.role"  # on every container: daphne, huey, postgres, ... (docker ps --filter label=...)
APP_IMAGE = f"{PROJECT}-app"

# Third-party images: pinned, never "latest".
POSTGRES_IMAGE = "postgres:15.10-bookworm"
REDIS_IMAGE = "redis:7.4.2-bookworm"
NGINX_IMAGE = "nginx:1.27.4-bookworm"
CERTBOT_IMAGE = "certbot/certbot:v3.1.0"


def container_name(role: str, index: int | None = None) -> str:
    return f"{PROJECT}-{role}" if index is None else f"{PROJECT}-{role}-{index}"


def daphne_names(replicas: int, generation: str | None = None) -> list[str]:
    """daphne containers; in production each deploy that changes them brings a new `generation`
    (a new set of names), so new containers start next to the old ones (a rolling upgrade)."""
    role = f"daphne-{generation}" if generation else "daphne"
    return [container_name(role, i) for i in range(1, replicas + 1)]


def huey_names(replicas: int, generation: str | None = None) -> list[str]:
    role = f"huey-{generation}" if generation else "huey"
    return [container_name(role, i) for i in range(1, replicas + 1)]


def daphne_upstreams(replicas: int, generation: str | None = None) -> list[str]:
    """host:port of every daphne, as nginx's upstream lists them."""
    return [f"{name}:{DAPHNE_PORT}" for name in daphne_names(replicas, generation)]


# --- PostgreSQL connections: the pools and the server's limit, sized together ---------------
# Per daphne, database work runs on Django's one thread for sync code plus ATTEMPT_DB_THREADS (6)
# for attempt data: 8 connections at once at most (measured: see README, "Connections").
DAPHNE_DB_THREADS = 6
DAPHNE_POOL_SIZE, DAPHNE_POOL_OVERFLOW = DAPHNE_DB_THREADS + 2, 2
HUEY_POOL_OVERFLOW = 1
RESERVED_CONNECTIONS = 20  # the migrate step, backups, an operator's psql, superuser_reserved_connections


@dataclass(frozen=True)
class ConnectionBudget:
    daphne_pool: tuple[int, int]  # (DB_POOL_SIZE, DB_POOL_MAX_OVERFLOW) per daphne
    huey_pool: tuple[int, int]
    max_connections: int  # PostgreSQL's


def connection_budget(*, daphne_replicas: int, huey_replicas: int, huey_workers: int) -> ConnectionBudget:
    """PostgreSQL's max_connections covers every pool at its fullest twice over (during a rolling
    upgrade the old and the new containers run side by side), plus a reserve."""
    daphne = (DAPHNE_POOL_SIZE, DAPHNE_POOL_OVERFLOW)
    huey = (huey_workers + 1, HUEY_POOL_OVERFLOW)  # + the scheduler thread
    peak = 2 * (daphne_replicas * sum(daphne) + huey_replicas * sum(huey))
    # In steps of 100: a changed max_connections restarts PostgreSQL, so most replica changes should not.
    return ConnectionBudget(daphne, huey, -(-(peak + RESERVED_CONNECTIONS) // 100) * 100)


def go_duration(seconds: int) -> str:
    """A duration as the Docker provider reads it back (Go's time.Duration): 20s, 5m0s, 1h0m0s.
    Written any other way ("300s"), every `pulumi up` would show a difference."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


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
        "PRIVATE_DIR_MODE": f"{PRIVATE_DIR_MODE:04o}",
        "PRIVATE_FILE_MODE": f"{PRIVATE_FILE_MODE:04o}",
        "MEDIA_DIR_MODE": f"{MEDIA_DIR_MODE:04o}",
        "MEDIA_FILE_MODE": f"{MEDIA_FILE_MODE:04o}",
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
MIGRATE_STEPS = (["python", "manage.py", "migrate", "--noinput"], ["python", "manage.py", "collectstatic", "--noinput"])
MIGRATE_COMMAND = ["sh", "-c", " && ".join(" ".join(step) for step in MIGRATE_STEPS)]
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


# Host directories, bind-mounted (no Docker volumes: a docker.Volume's id is its name, so after
# a server replacement the old one's deletion could remove the new server's).
ETC_DIR = "/etc/numbas-lti"
NGINX_DIR = f"{ETC_DIR}/nginx"  # nginx's files (steps.nginx_config_script), read-only in nginx
STATE_DIR = "/var/lib/numbas-lti"
STATIC_VOLUME = f"{STATE_DIR}/static"  # collectstatic's output, served by nginx
ACME_VOLUME = f"{STATE_DIR}/acme"  # the ACME http-01 webroot
CERTS_VOLUME = f"{FILES_MOUNT}/letsencrypt"  # on the files volume: it survives a replaced server
HOST_DIRS = (ETC_DIR, NGINX_DIR, STATE_DIR, STATIC_VOLUME, ACME_VOLUME, CERTS_VOLUME)

APP_MOUNTS = (
    Mount(STATIC_VOLUME, STATIC_ROOT),
    Mount(f"{FILES_MOUNT}/media", MEDIA_ROOT),
    Mount(f"{FILES_MOUNT}/private", PRIVATE_ROOT),
)


def app_containers(settings: AppSettings, *, daphne_replicas: int, huey_replicas: int,
                   generation: str | None = None, backups_expected: bool = False) -> list[ContainerSpec]:
    """The migrate step, daphne × N and huey × M, with the non-secret environment (database pools
    sized by connection_budget)."""
    env = {**app_environment(settings), **app_backup_environment(enabled=backups_expected)}
    budget = connection_budget(daphne_replicas=daphne_replicas, huey_replicas=huey_replicas,
                               huey_workers=settings.huey_workers)
    daphne_env = {**env, "ATTEMPT_DB_THREADS": str(DAPHNE_DB_THREADS),
                  "DB_POOL_SIZE": str(budget.daphne_pool[0]), "DB_POOL_MAX_OVERFLOW": str(budget.daphne_pool[1])}
    huey_env = {**env, "DB_POOL_SIZE": str(budget.huey_pool[0]), "DB_POOL_MAX_OVERFLOW": str(budget.huey_pool[1])}
    specs = [ContainerSpec(container_name("migrate"), "migrate", MIGRATE_COMMAND, env, APP_MOUNTS, one_shot=True)]
    specs += [ContainerSpec(name, "daphne", DAPHNE_COMMAND, daphne_env, APP_MOUNTS, health=DAPHNE_HEALTH)
              for name in daphne_names(daphne_replicas, generation)]
    specs += [ContainerSpec(name, "huey", HUEY_COMMAND, huey_env, APP_MOUNTS, health=HUEY_HEALTH)
              for name in huey_names(huey_replicas, generation)]
    return specs


# --- Rolling upgrades: how a generation of app containers is stopped ---------------------------
# An upgrade starts the new daphnes, waits for their health check, points nginx at them
# (`nginx -s reload`), waits DAPHNE_DRAIN_S for requests already on their way to the old ones,
# then stops the old daphnes; then starts the new Huey workers and stops the old ones.
# tests/test_rolling_upgrade.py does exactly this on the local stack (under load).
#
# daphne has no drain of its own: on SIGTERM it cancels every request and websocket at once and
# exits within a second or two (its websockets end without a close frame, which browsers report
# as 1006); the attempt pages reconnect through nginx to the new daphnes and send again whatever
# was not acknowledged (a batch already stored is acknowledged again, not stored twice). A request
# still running after the drain, such as an exam upload being checked, is cut (502) and must be
# made again. The grace period only bounds a hung exit.
DAPHNE_STOP_SIGNAL = "SIGTERM"
DAPHNE_STOP_GRACE_S = 30
DAPHNE_DRAIN_S = 2
# Huey's consumer treats SIGINT as "finish the running tasks, then exit" and SIGTERM as "exit
# now" (huey/consumer.py: graceful_signal="INT"). Docker stops containers with SIGTERM unless
# told otherwise (stop_signal): a grade on its way to the LMS would then arrive there but never be
# recorded as delivered, and be sent again when its lease runs out. The grace period is longer
# than a grade-delivery run (its 20 s budget plus one request's PASSBACK_TIMEOUT_SECONDS).
HUEY_STOP_SIGNAL = "SIGINT"
HUEY_STOP_GRACE_S = 60


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
# Host directories like the others (see HOST_DIRS: no Docker volumes).
PG_SOCKET_VOLUME = f"{STATE_DIR}/pgsocket"  # mounted at backup.SOCKET_DIR in both containers
BACKUP_STATE_VOLUME = f"{STATE_DIR}/backup-state"  # mounted at backup.STATE_DIR in the backup container
HOST_DIRS = (*HOST_DIRS, PG_SOCKET_VOLUME, BACKUP_STATE_VOLUME)
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
