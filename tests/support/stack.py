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

import datetime
import ipaddress
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from numbas_infra import backup as backup_defs
from numbas_infra import nginx_config, spec
from tests.support.net import free_port, wait_for_http

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
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN), x509.DNSName(EXAM_DOMAIN),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


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
            http2_on_directive=False, worker_user=pwd.getpwuid(os.getuid()).pw_name,
            frame_ancestors=self.env["FRAME_ANCESTORS"],
            pid_file=str(self.root / "nginx.pid"), temp_dir=str(self.root / "nginx-temp"),
        )

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
