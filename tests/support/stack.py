"""A production-shaped stack on loopback, without Docker, from the same definitions the Pulumi
program deploys (infra/numbas_infra/spec.py and the nginx template): PostgreSQL, Redis, the
migrate step, daphne × N, Huey × M and nginx with a throwaway TLS certificate.

Like Docker's `restart: unless-stopped`, a supervisor thread restarts daphne and Huey processes
that exit. Every service keeps its log under the stack's directory. Fault helpers kill, stop and
restart services for the end-to-end tests.

With `backup=StackBackup(...)`, PostgreSQL archives its WAL with pgBackRest as in production
(infra/numbas_infra/backup.py) and `numbas_backup(...)` runs infra/backup/numbas-backup with the
environment the backup container has; the stack writes that environment to `backup.env` in its
directory for scripts/backup, scripts/restore and scripts/verify-backup.

    python -m tests.support.stack      # scripts/stack: run it until Ctrl-C
    STACK_BACKUPS=1 python -m tests.support.stack   # ... with backups to a local S3 endpoint
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from numbas_infra import backup as backup_defs
from numbas_infra import cloud_init, nginx_config, spec
from tests.support.net import free_port, self_signed_certificate, wait_for_http

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app"
DOMAIN = "localhost"
EXAM_DOMAIN = "exams.localhost"  # the exam-content host; Chromium resolves *.localhost to loopback
DB_PASSWORD = "local-stack-password"
TIMEOUT = 60


def _pg_bindir() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    raise RuntimeError("PostgreSQL is not installed (scripts/test installs it)")


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.getuid() == 0 else argv


def _self_signed(directory: Path) -> tuple[Path, Path]:
    return self_signed_certificate(directory / "fullchain.pem", directory / "privkey.pem",
                                   names=[DOMAIN, EXAM_DOMAIN], addresses=["127.0.0.1"])


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict
    cwd: Path
    log: Path
    restart: bool = True  # like Docker's restart policy
    process: subprocess.Popen | None = None
    restarts: int = 0

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)


@dataclass(frozen=True)
class StackBackup:
    """Where the stack's backups go (a BackupSettings) and the keys and passphrases."""

    settings: backup_defs.BackupSettings
    secrets: dict  # backup_defs.secret_environment(...)


@dataclass
class LocalStack:
    root: Path
    daphne_replicas: int = 4
    huey_replicas: int = 1
    extra_env: dict = field(default_factory=dict)
    # (user, group): nginx's workers run as this user and group, as in production (nginx, 101:101,
    # not the app's 10001), and media/ and private/ are prepared as cloud-init does. Needs root.
    # None: the workers run as the stack's own user.
    nginx_user: tuple[str, str] | None = None
    backup: StackBackup | None = None
    services: dict[str, Service] = field(default_factory=dict)
    _stopping: bool = False

    # --- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://{DOMAIN}:{self.https_port}"

    @property
    def exam_origin(self) -> str:
        return f"https://{EXAM_DOMAIN}:{self.https_port}"

    @property
    def database_url(self) -> str:
        return spec.database_url(DB_PASSWORD, host="127.0.0.1", port=self.pg_port)

    def start(self) -> "LocalStack":
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs = self.root / "logs"
        self.logs.mkdir(exist_ok=True)
        for name in ("static", "media", "private", "var", "acme", "nginx-temp", "certs", "redis"):
            (self.root / name).mkdir(exist_ok=True)
        if self.nginx_user:
            self._files_for_nginx_user()
        self.pg_port, self.redis_port = free_port(), free_port()
        self.http_port, self.https_port = free_port(), free_port()
        self.daphne_ports = [free_port() for _ in range(self.daphne_replicas)]
        try:
            self._start_postgres()
            self._start_redis()
            self.env = self._app_env()
            self._migrate()
            for i, port in enumerate(self.daphne_ports, start=1):
                self._add(f"daphne-{i}", spec.daphne_command(bind="127.0.0.1", port=port), self.env, APP)
            for _ in range(self.huey_replicas):
                self.add_huey()
            for port in self.daphne_ports:
                wait_for_http(f"http://127.0.0.1:{port}/health/", timeout=TIMEOUT)
            self._start_nginx()
            self._supervisor = threading.Thread(target=self._supervise, daemon=True, name="stack-supervisor")
            self._supervisor.start()
        except BaseException:
            self.stop()
            raise
        return self

    def add_huey(self) -> "Service":
        """One more Huey consumer (benchmarks start theirs when their data is ready)."""
        number = 1 + sum(1 for name in self.services if name.startswith("huey-"))
        return self._add(f"huey-{number}", spec.HUEY_COMMAND, self.env, APP)

    def _add(self, name: str, argv: list[str], env: dict, cwd: Path, *, restart: bool = True) -> Service:
        argv = [sys.executable, "-m", "daphne", *argv[1:]] if argv[0] == "daphne" else argv
        argv = [sys.executable, *argv[1:]] if argv[0] == "python" else argv
        service = Service(name, argv, env, cwd, self.logs / f"{name}.log", restart)
        service.start()
        self.services[name] = service
        return service

    def _app_env(self) -> dict:
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "HUEY_IMMEDIATE", "DEBUG")},
            **spec.app_environment(spec.AppSettings(domain=DOMAIN, exam_domain=EXAM_DOMAIN)),
            "EXAM_ORIGIN": self.exam_origin,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "SECRET_KEY": "local-stack-" + os.urandom(16).hex(),
            "STATIC_ROOT": str(self.root / "static"), "MEDIA_ROOT": str(self.root / "media"),
            "PRIVATE_ROOT": str(self.root / "private"), "VAR_DIR": str(self.root / "var"),
            "ALLOWED_HOSTS": f"{DOMAIN},127.0.0.1",
            "FRAME_ANCESTORS": "'self' https: http://127.0.0.1:*",
            "PYTHONUNBUFFERED": "1",
            "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",  # the test LMS (tests/support/lms_stub.py) is on loopback
            **spec.app_backup_environment(enabled=self.backup is not None),
            **self.extra_env,
        }
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        return env

    # --- services ----------------------------------------------------------------------------
    def _start_postgres(self) -> None:
        # Under /tmp itself: PostgreSQL runs as user postgres, which cannot enter pytest's
        # private temporary directories.
        self.pg_root = Path(tempfile.mkdtemp(prefix="numbas-lti-stack-pg-"))
        os.chmod(self.pg_root, 0o755)
        pg = self.pg_root / "data"
        pg.mkdir()
        if os.getuid() == 0:
            shutil.chown(pg, "postgres", "postgres")
            shutil.chown(self.pg_root, "postgres", "postgres")
        bindir = _pg_bindir()
        log = self.pg_root / "postgres.log"
        (self.logs / "postgres.log").symlink_to(log)
        self.pg_ctl = [str(bindir / "pg_ctl"), "-D", str(pg), "-w", "-l", str(log)]
        subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(pg), "-U", "postgres", "--auth=trust",
                                     "-E", "UTF8", "--locale=C.UTF-8"]), check=True, capture_output=True, timeout=120)
        self.pg_data, self.pg_bindir, self.pg_log = pg, bindir, log
        self.pg_options = (f"-p {self.pg_port} -k {self.pg_root} -c listen_addresses=127.0.0.1 -c fsync=off "
                           "-c synchronous_commit=off -c max_connections=300")
        self.pg_env = dict(os.environ)
        if self.backup is not None:
            self._prepare_backup()
        self.postgres_start()
        psql = [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        for sql in (f"CREATE ROLE numbas_lti LOGIN PASSWORD '{DB_PASSWORD}'", "CREATE DATABASE numbas_lti OWNER numbas_lti"):
            subprocess.run([*psql, "-c", sql], check=True, capture_output=True, timeout=60)

    def postgres_start(self) -> None:
        subprocess.run(_as_postgres([*self.pg_ctl, "start", "-o", self.pg_options]), check=True, capture_output=True,
                       timeout=120, env=self.pg_env)

    # --- backups (infra/numbas_infra/backup.py, infra/backup/numbas-backup) -------------------
    def _prepare_backup(self) -> None:
        """pgbackrest.conf, its directories, PostgreSQL's archive options and numbas-backup's
        environment, as the Pulumi program gives the PostgreSQL and backup containers."""
        settings = self.backup.settings
        dirs = {name: self.pg_root / name for name in ("pgbackrest-spool", "pgbackrest-lock", "pgbackrest-log",
                                                        "backup-state")}
        for directory in dirs.values():
            directory.mkdir()
            if os.getuid() == 0:
                shutil.chown(directory, "postgres", "postgres")
        conf = self.pg_root / "pgbackrest.conf"
        conf.write_text(backup_defs.render_pgbackrest_conf(
            settings, str(self.pg_data), pg_port=self.pg_port, pg_socket_path=str(self.pg_root), pg_user="postgres",
            spool_path=str(dirs["pgbackrest-spool"]), lock_path=str(dirs["pgbackrest-lock"]),
            log_path=str(dirs["pgbackrest-log"])))
        os.chmod(conf, 0o644)
        (self.logs / "pgbackrest").symlink_to(dirs["pgbackrest-log"])
        self.pg_options += " " + shlex.join(backup_defs.postgres_archive_options(settings))
        postgres_secrets = {k: v for k, v in self.backup.secrets.items() if k in backup_defs.POSTGRES_SECRET_ENV}
        self.pg_env = {**os.environ, "PGBACKREST_CONFIG": str(conf), **postgres_secrets}
        self.backup_env = {
            **os.environ,
            **backup_defs.backup_environment(
                settings, pgdata=str(self.pg_data), media_root=str(self.root / "media"),
                private_root=str(self.root / "private"), database_url=self.database_url,
                pg_socket_dir=str(self.pg_root), pg_port=self.pg_port, pgbackrest_conf=str(conf),
                state_dir=str(dirs["backup-state"]), restic_host="numbas-lti-local", pg_user="postgres",
                pg_run_as="postgres" if os.getuid() == 0 else ""),
            "NUMBAS_BACKUP_PG_BINDIR": str(self.pg_bindir),
            **self.backup.secrets,
        }
        # For scripts/backup, scripts/restore and scripts/verify-backup (secrets of a local test
        # endpoint only), with what they need to stop and start this PostgreSQL.
        keep = set(backup_defs.backup_environment(settings, pgdata="", media_root="", private_root="")) | {
            "NUMBAS_BACKUP_PG_BINDIR", *self.backup.secrets}
        exports = {k: v for k, v in self.backup_env.items() if k in keep}
        exports |= {"STACK_PG_CTL": str(self.pg_bindir / "pg_ctl"), "STACK_PG_LOG": str(self.pg_log),
                    "STACK_PG_OPTIONS": self.pg_options}
        env_file = self.root / "backup.env"
        env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(exports.items())))
        os.chmod(env_file, 0o600)

    def numbas_backup(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        """Run infra/backup/numbas-backup with the backup container's environment."""
        if self.backup is None:
            raise RuntimeError("this stack was started without backup=StackBackup(...)")
        result = subprocess.run([str(backup_defs.SCRIPT), *args], env=self.backup_env, capture_output=True, text=True,
                                timeout=timeout)
        with open(self.logs / "numbas-backup.log", "a") as log:
            log.write(f"--- numbas-backup {' '.join(args)}: exit {result.returncode}\n{result.stdout}{result.stderr}")
        if check and result.returncode != 0:
            raise RuntimeError(f"numbas-backup {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
        return result

    def postgres_stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_postgres([*self.pg_ctl, "-m", mode, "stop"]), capture_output=True, timeout=120)

    def _start_redis(self) -> None:
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--appendonly", "yes",
                "--dir", str(self.root / "redis"), "--save", ""]
        self._add("redis", argv, dict(os.environ), self.root, restart=False)
        self._wait_port(self.redis_port)

    def redis_stop(self) -> None:
        self.services["redis"].stop()

    def redis_start(self) -> None:
        self.services["redis"].start()
        self._wait_port(self.redis_port)

    def _migrate(self) -> None:
        argv = spec.MIGRATE_COMMAND
        result = subprocess.run(argv, cwd=APP, env=self.env, capture_output=True, text=True, timeout=300)
        (self.logs / "migrate.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"the migrate step failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")

    def nginx_conf(self, upstream_ports: list[int]) -> str:
        cert, key = getattr(self, "_cert", None) or _self_signed(self.root / "certs")
        self._cert = (cert, key)
        errors = self.root / "errors"
        if not errors.exists():
            shutil.copytree(REPO / "nginx" / "errors", errors)
        return nginx_config.render_nginx_conf(
            domain=DOMAIN, exam_domain=EXAM_DOMAIN, upstreams=[f"127.0.0.1:{p}" for p in upstream_ports],
            certificate=str(cert), certificate_key=str(key), max_body_mb=101, errors_dir=str(errors),
            static_root=str(self.root / "static"), media_root=str(self.root / "media"),
            private_root=str(self.root / "private"), acme_webroot=str(self.root / "acme"),
            listen_http=self.http_port, listen_https=self.https_port, ipv6=False, bind_address="127.0.0.1",
            http2_on_directive=False,
            worker_user=self.nginx_user[0] if self.nginx_user else pwd.getpwuid(os.getuid()).pw_name,
            worker_group=self.nginx_user[1] if self.nginx_user else None,
            frame_ancestors=self.env["FRAME_ANCESTORS"],
            pid_file=str(self.root / "nginx.pid"), temp_dir=str(self.root / "nginx-temp"),
        )

    def _files_for_nginx_user(self) -> None:
        """media/ and private/ in the workers' group with cloud-init's own lines and modes
        (infra/numbas_infra/cloud_init.py), so nginx reads what the app writes through the group only."""
        user, group = self.nginx_user
        gid = grp.getgrnam(group).gr_gid
        if pwd.getpwnam(user).pw_uid in (0, os.getuid()) or gid in (0, os.getgid()):
            raise ValueError(f"nginx_user {self.nginx_user} must be neither root nor the app's user and group")
        if os.getuid() != 0:
            raise RuntimeError("nginx_user needs root (nginx's master switches its workers to that user)")
        os.chmod(self.root, 0o711)  # the workers pass through; they list nothing
        closed = [p for p in self.root.parents if not os.stat(p).st_mode & stat.S_IXOTH]
        if closed:
            raise RuntimeError(f"nginx's workers ({user}) cannot reach {self.root}: {closed[0]} is closed to others")
        lines = [line for d in cloud_init.files_directories(uid=os.getuid(), gid=gid)
                 for line in cloud_init.directory_lines(str(self.root), d)]
        subprocess.run(["sh", "-c", "\n".join(["set -eu", *lines])], check=True, capture_output=True, timeout=120)

    def _start_nginx(self) -> None:
        (self.root / "nginx.conf").write_text(self.nginx_conf(self.daphne_ports))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self._add("nginx", [nginx, "-p", str(self.root), "-c", str(self.root / "nginx.conf"), "-e", "stderr",
                            "-g", "daemon off;"], dict(os.environ), self.root, restart=False)
        self._wait_port(self.https_port)

    def nginx_reload(self, upstream_ports: list[int]) -> None:
        """Render the config with other upstreams and reload nginx (no dropped listener)."""
        (self.root / "nginx.conf").write_text(self.nginx_conf(upstream_ports))
        self.services["nginx"].process.send_signal(signal.SIGHUP)

    def _wait_port(self, port: int) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nothing listens on {port}; see {self.logs}")

    # --- supervision and faults -------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._stopping:
            for service in list(self.services.values()):
                if service.restart and service.process is not None and service.process.poll() is not None \
                        and not self._stopping:
                    service.restarts += 1
                    time.sleep(0.5)  # Docker waits a little too
                    service.start()
            time.sleep(0.2)

    def kill(self, name: str) -> None:
        """SIGKILL a service (the supervisor restarts it if it is daphne or Huey)."""
        os.killpg(self.services[name].process.pid, signal.SIGKILL)

    def stop(self) -> None:
        self._stopping = True
        for name in [n for n in self.services if n.startswith(("nginx", "daphne", "huey"))] + ["redis"]:
            if name in self.services:
                self.services[name].stop(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
        if getattr(self, "pg_ctl", None):
            self.postgres_stop()
        if getattr(self, "pg_root", None):
            log = self.pg_root / "postgres.log"
            if log.exists():
                (self.logs / "postgres.log").unlink(missing_ok=True)
                shutil.copy(log, self.logs / "postgres.log")  # keep the log with the others
            shutil.rmtree(self.pg_root, ignore_errors=True)

    # --- the app, from outside -----------------------------------------------------------------
    def exam_host_get(self, path: str) -> tuple[int, dict, bytes]:
        """GET from nginx's exam-content host, naming it in the TLS handshake and the Host header."""
        import http.client
        import ssl

        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        connection = http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=10, context=context)
        connection.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", self.https_port), timeout=10),
                                              server_hostname=EXAM_DOMAIN)
        try:
            connection.request("GET", path, headers={"Host": f"{EXAM_DOMAIN}:{self.https_port}"})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def manage(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=APP, env=self.env, capture_output=True,
                                text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def query(self, sql: str, params=(), *, superuser: bool = False) -> list[tuple]:
        """Run one statement as the app's role, or as the cluster's superuser (not committed)."""
        import psycopg2

        url = f"postgres://postgres@127.0.0.1:{self.pg_port}/numbas_lti" if superuser else self.database_url
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            conn.close()

    # --- rolling upgrade ---------------------------------------------------------------------------
    def rolling_upgrade(self, env_changes: dict | None = None, *, daphne_replicas: int | None = None,
                        huey_replicas: int | None = None, drain: float = spec.DAPHNE_DRAIN_S,
                        daphne_grace: float = spec.DAPHNE_STOP_GRACE_S, huey_grace: float = spec.HUEY_STOP_GRACE_S,
                        before_huey: Callable[[], None] | None = None) -> "Upgrade":
        """Replace every daphne and Huey process by a new generation, as the deploy does (steps 3-6
        of an upgrade; backup and migrations come before, verification after):

        1. start the new daphnes (same command, new ports, the environment with `env_changes`)
           and wait for each one's /health/;
        2. point nginx's upstream at them and reload; wait until its new workers run, then
           `drain` seconds for requests already on their way to the old daphnes;
        3. stop the old daphnes (spec.DAPHNE_STOP_SIGNAL, then SIGKILL after `daphne_grace`),
           taken off the supervisor first so that it does not start them again;
        4. start the new Huey workers (after `before_huey`, a hook for tests) and wait until
           they consume;
        5. stop the old workers with spec.HUEY_STOP_SIGNAL (they finish their running tasks)
           and wait for them to exit (SIGKILL after `huey_grace`).
        """
        generation = getattr(self, "generation", 1) + 1
        old_daphnes = [n for n in self.services if n.startswith("daphne")]
        old_hueys = [n for n in self.services if n.startswith("huey")]
        env = {**self.env, **(env_changes or {})}
        upgrade = Upgrade(generation=generation, old_daphnes=old_daphnes, old_hueys=old_hueys)
        phase = _Phases(upgrade)

        with phase("new daphnes healthy"):
            ports = [free_port() for _ in range(daphne_replicas or len(old_daphnes))]
            for i, port in enumerate(ports, start=1):
                name = f"daphne-g{generation}-{i}"
                self._add(name, spec.daphne_command(bind="127.0.0.1", port=port), env, APP)
                upgrade.new_daphnes.append(name)
            for name, port in zip(upgrade.new_daphnes, ports):
                wait_for_http(f"http://127.0.0.1:{port}/health/", timeout=TIMEOUT,
                              process=self.services[name].process)
        with phase("nginx reloaded"):
            self._nginx_reload_and_wait(ports)
        with phase("drain"):
            time.sleep(drain)
        self.daphne_ports = ports
        with phase("old daphnes stopped"):
            upgrade.exits |= self._retire(old_daphnes, getattr(signal, spec.DAPHNE_STOP_SIGNAL), daphne_grace)
        if before_huey is not None:
            before_huey()
        with phase("new huey consuming"):
            for i in range(1, (huey_replicas if huey_replicas is not None else len(old_hueys)) + 1):
                name = f"huey-g{generation}-{i}"
                self._add(name, spec.HUEY_COMMAND, env, APP)
                upgrade.new_hueys.append(name)
            for name in upgrade.new_hueys:
                self._wait_for_log(name, "consumer started")
        with phase("old huey drained"):
            upgrade.exits |= self._retire(old_hueys, getattr(signal, spec.HUEY_STOP_SIGNAL), huey_grace)
        self.env, self.generation = env, generation
        upgrade.timings["total (without the hook)"] = round(sum(upgrade.timings.values()), 2)
        return upgrade

    def _nginx_reload_and_wait(self, upstream_ports: list[int]) -> None:
        """nginx_reload, then wait until the master has replaced its workers (a config it cannot
        load leaves the old workers running: that is an error here)."""
        master = self.services["nginx"].process.pid
        before = set(_children(master))
        self.nginx_reload(upstream_ports)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            workers = {pid: title for pid, title in _children(master).items()
                       if pid not in before and "worker process" in title and "shutting down" not in title}
            if workers and all("shutting down" in title or pid not in before
                               for pid, title in _children(master).items() if "worker process" in title):
                return
            time.sleep(0.05)
        raise TimeoutError(f"nginx did not start new workers after the reload; see {self.logs}/nginx.log")

    def _retire(self, names: list[str], sig: int, grace: float) -> dict[str, "Exit"]:
        """Signal every service in `names` at once, wait up to `grace` seconds for each to exit
        (SIGKILL after that) and remove them from the stack. The supervisor leaves them alone."""
        services = [self.services[name] for name in names]
        for service in services:
            service.restart = False
        started = time.monotonic()
        for service in services:
            if service.process.poll() is None:
                os.killpg(service.process.pid, sig)
        exits = {}
        for service in services:
            forced = False
            try:
                service.process.wait(timeout=max(0.0, started + grace - time.monotonic()))
            except subprocess.TimeoutExpired:
                forced = True
                os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait(timeout=TIMEOUT)
            exits[service.name] = Exit(service.process.returncode, started, round(time.monotonic() - started, 2),
                                      forced)
            self.retired[service.name] = self.services.pop(service.name)
        return exits

    @property
    def retired(self) -> dict[str, Service]:
        """Services stopped by rolling_upgrade, by name (their logs stay under logs/)."""
        if not hasattr(self, "_retired"):
            self._retired = {}
        return self._retired

    def daphne_connections(self) -> dict[str, int]:
        """Established connections to each daphne process (current and retired), from the kernel's
        socket table: who is serving right now. Connections no daphne process holds count as "?"."""
        services = {n: sv for n, sv in {**self.retired, **self.services}.items() if n.startswith("daphne")}
        ports = {int(sv.argv[sv.argv.index("-p") + 1]) for sv in services.values()}
        established = {}  # socket inode -> local port
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) in ports:
                established[int(fields[9])] = fields[1]
        counts = dict.fromkeys(services, 0)
        for name, service in services.items():
            if service.process is None or service.process.poll() is not None:
                continue
            try:
                targets = [os.readlink(fd) for fd in Path(f"/proc/{service.process.pid}/fd").iterdir()]
            except OSError:
                continue  # it exited meanwhile
            for target in targets:
                if target.startswith("socket:[") and established.pop(int(target[8:-1]), None):
                    counts[name] += 1
        counts["?"] = len(established)
        return counts

    def _wait_for_log(self, name: str, text: str) -> None:
        service, deadline = self.services[name], time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if text in service.log.read_text(errors="replace"):
                return
            if service.process.poll() is not None:
                raise RuntimeError(f"{name} exited with {service.process.returncode}; see {service.log}")
            time.sleep(0.1)
        raise TimeoutError(f"{name} did not log {text!r} within {TIMEOUT}s; see {service.log}")


@dataclass
class Exit:
    code: int
    signalled_at: float  # time.monotonic() when it was told to stop
    seconds: float  # from the signal to the exit
    forced: bool  # SIGKILL after the grace period


@dataclass
class Upgrade:
    """What LocalStack.rolling_upgrade did: service names, exits, seconds per phase."""

    generation: int
    old_daphnes: list[str]
    old_hueys: list[str]
    new_daphnes: list[str] = field(default_factory=list)
    new_hueys: list[str] = field(default_factory=list)
    exits: dict[str, Exit] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds it took
    began: dict[str, float] = field(default_factory=dict)  # phase -> time.monotonic() it began


class _Phases:
    """`with phases("name"): ...` records when the block began and the seconds it took."""

    def __init__(self, upgrade: Upgrade):
        self.timings, self.began = upgrade.timings, upgrade.began

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = self.began[name] = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - started, 2)


def _children(pid: int) -> dict[int, str]:
    """The child processes of `pid`, with their titles (nginx names its workers in theirs)."""
    children = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                cmdline = (status.parent / "cmdline").read_bytes()
                children[int(status.parent.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue  # it exited meanwhile
    return children


def main() -> int:
    root = Path(os.environ.get("STACK_DIR") or tempfile.mkdtemp(prefix="numbas-lti-stack-"))
    s3 = None
    backup = None
    if os.environ.get("STACK_BACKUPS") == "1":
        from tests.support.s3 import LocalS3

        s3 = LocalS3(keep_dir=True).start()
        backup = StackBackup(s3.backup_settings(), s3.secrets())
    # The test-launch page is off in production; this local stack turns it on (for staff).
    stack = LocalStack(root, daphne_replicas=int(os.environ.get("DAPHNE_REPLICAS", "4")),
                       extra_env={"TEST_LAUNCH_ENABLED": "1"}, backup=backup)
    try:
        stack.start()
    except BaseException:
        if s3 is not None:
            s3.stop()
        raise
    if backup is not None:
        stack.numbas_backup("stanza-create")
        print(f"Backups (WAL archiving on) to a local S3 endpoint at {s3.endpoint_url}/:\n"
              f"  STACK_DIR={root} scripts/backup full|diff|files|status, scripts/restore [--target-time T], "
              f"scripts/verify-backup", flush=True)
    stack.manage("ensure_demo_data")
    print(f"Numbas LTI, production-shaped, at {stack.url}/ (self-signed certificate), exams at {stack.exam_origin}/\n"
          f"  test launches (TEST_LAUNCH_ENABLED=1 here): {stack.url}/test-launch/ needs a staff login: "
          f"create one with DEBUG=1 DATABASE_URL={stack.database_url} .venv/bin/python app/manage.py createsuperuser\n"
          f"  logs: {stack.logs}\n  Ctrl-C stops everything.", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        stack.stop()
        if s3 is not None:
            s3.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
