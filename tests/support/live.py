"""A real daphne process on a database of its own, for browser and protocol tests.

Uses PostgreSQL when DATABASE_URL points at one (scripts/test), otherwise a SQLite file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from numbas_infra import spec
from tests.support.net import free_port, wait_for_http

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app"
CONTENT_HOST = "exams.localhost"


def fresh_database_url(tmp: Path, *, prefix: str = "live", migrate_env: dict | None = None) -> tuple[str, callable]:
    """A new database beside DATABASE_URL's (SQLite under `tmp` without PostgreSQL): its URL and a
    function that drops it. With `migrate_env` (a live server's environment) on PostgreSQL it is a copy
    (CREATE DATABASE ... TEMPLATE) of a database that `manage.py migrate` ran on once in this test process,
    rather than an empty one: the caller's own migrate then has nothing left to apply. (The migrations
    read no setting that differs between live servers.)"""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        return f"sqlite:///{tmp / 'live.sqlite3'}", lambda: None

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(base)
    template = _migrated_template(parts, migrate_env) if migrate_env is not None else None
    _admin_sql(parts, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return urlunsplit(parts._replace(path=f"/{name}")), lambda: _admin_sql(
        parts, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_sql(parts, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def admin_sql(sql: str) -> None:
    """One statement on DATABASE_URL's PostgreSQL server, outside any database's transaction
    (CREATE/DROP DATABASE)."""
    _admin_sql(urlsplit(os.environ["DATABASE_URL"]), sql)


def _drop_quietly(parts, name: str) -> None:
    try:
        _admin_sql(parts, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # the server is gone already (scripts/test stops it): nothing to drop
        pass


_templates: dict[str, str] = {}  # PostgreSQL server (netloc) -> template database, one per test process


def _migrated_template(parts, env: dict) -> str:
    """The migrations take a fresh process several seconds of CPU; the test suite starts some twenty
    live servers. Nothing connects to the template after its migrate (PostgreSQL copies only an
    idle template); it is dropped when the test process exits."""
    if parts.netloc not in _templates:
        import atexit

        name = f"live_template_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        _admin_sql(parts, f'CREATE DATABASE "{name}"')
        atexit.register(_drop_quietly, parts, name)
        result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=APP,
                                env={**env, "DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}"))},
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py migrate (template {name}) failed:\n{result.stdout}\n{result.stderr}")
        _templates[parts.netloc] = name
    return _templates[parts.netloc]


# Redis databases of their own for the live servers that run a Huey worker or keep process-wide
# keys (a worker takes every task in its database, whichever server queued it). scripts/test's
# Redis: 0 a serial run, 7 tests/test_passback_sweeper.py, 8-15 the xdist workers (conftest.py);
# these take 1-6, one per purpose and xdist worker (gw0 or gw1: scripts/test runs two).
_OWN_REDIS = {"grades": 1, "remark": 3, "staff": 5}


def own_redis_env(purpose: str) -> dict:
    """{"REDIS_URL": a Redis database only this purpose uses in this xdist worker}, or {} without Redis."""
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        return {}
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    if worker > 1:
        raise RuntimeError("own_redis_env has databases for two xdist workers (TEST_WORKERS=2 at most)")
    return {"REDIS_URL": urlunsplit(urlsplit(url)._replace(path=f"/{_OWN_REDIS[purpose] + worker}"))}


@dataclass
class LiveServer:
    url: str
    env: dict
    log_path: Path
    process: subprocess.Popen
    _drop: callable = field(repr=False, default=lambda: None)

    @property
    def exam_origin(self) -> str:
        return self.env["EXAM_ORIGIN"]

    def content_get(self, path: str, **kwargs):
        """GET a path of the exam-content origin from Python, which does not resolve *.localhost."""
        import requests

        port = self.url.rsplit(":", 1)[1]
        return requests.get(f"http://127.0.0.1:{port}{path}", headers={"Host": f"{CONTENT_HOST}:{port}",
                                                                        **kwargs.pop("headers", {})}, **kwargs)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=APP, env=self.env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def query(self, sql: str, params=()) -> list[tuple]:
        """Read the server's database directly (PostgreSQL or SQLite)."""
        url = self.env["DATABASE_URL"]
        if url.startswith("sqlite"):
            import sqlite3

            conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            sql = sql.replace("%s", "?")
        else:
            import psycopg2

            conn = psycopg2.connect(url)
        try:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            conn.close()

    def start_worker(self, log_path: Path, *args: str) -> subprocess.Popen:
        """A Huey worker (manage.py run_huey) for this server's queue; stop it with stop_process."""
        with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
            return subprocess.Popen([sys.executable, "manage.py", "run_huey", *args], cwd=APP, env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._drop()


def start_live_server(
    tmp: Path, *, host: str = "localhost", extra_env: dict | None = None, database_port: int | None = None
) -> LiveServer:
    """Migrate a fresh database and start daphne on it. `database_port` reaches the same
    PostgreSQL server through another port (a TcpProxy)."""
    port = free_port()
    env = {
        **os.environ,
        "SECRET_KEY": "live-test-" + uuid.uuid4().hex,
        "DEBUG": "0",
        "COOKIES_SECURE": "0",  # plain HTTP on loopback
        "FRAME_ANCESTORS": "'self' http://127.0.0.1:*",  # the test LMS pages
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        # Exams run on a host name of their own; Chromium resolves *.localhost to loopback.
        "EXAM_ORIGIN": f"http://{CONTENT_HOST}:{port}",
        "VAR_DIR": str(tmp / "var"),
        "SERVE_FILES": "1",
        "PYTHONUNBUFFERED": "1",
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",  # the test LMS (tests/support/lms_stub.py) is on loopback
        **(extra_env or {}),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("HUEY_IMMEDIATE", None)
    if os.environ.get("TEST_REDIS_URL") and "REDIS_URL" not in (extra_env or {}):
        env["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    # On PostgreSQL, a copy of a database already migrated with this same code: nothing is left to
    # apply, so no migrate process runs for it (one fewer Django start, seconds of CPU, per server).
    database_url, drop = fresh_database_url(tmp, migrate_env=env)
    from_template = database_url.startswith("postgres")
    if database_port is not None:
        parts = urlsplit(database_url)
        database_url = urlunsplit(parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{database_port}"))
    env["DATABASE_URL"] = database_url
    log_path = tmp / "daphne.log"
    server = LiveServer(url=f"http://{host}:{port}", env=env, log_path=log_path, process=None, _drop=drop)
    if not from_template:
        server.manage("migrate", "--noinput", "-v", "0")
    log = open(log_path, "w")
    server.process = subprocess.Popen(
        [sys.executable, "-m", *spec.daphne_command(bind="127.0.0.1", port=port)],  # as deployed
        cwd=APP,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health/", timeout=60, process=server.process)
    except Exception:
        server.stop()
        raise RuntimeError(f"daphne did not start:\n{log_path.read_text()}")
    return server


def stop_process(process: subprocess.Popen | None, sig=signal.SIGINT) -> None:
    """Ask a child to stop (SIGINT lets Huey finish its task), then kill it after 10 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
