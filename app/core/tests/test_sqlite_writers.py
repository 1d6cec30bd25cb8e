"""The embedded SQLite database (scripts/dev) has two writers, daphne and the Huey worker: a
transaction that reads and then writes while the other writes must wait, not fail with
"database is locked" (which scripts/dev showed a student starting an attempt while the worker
stored a course list)."""

import threading
import time

from django.conf import settings
from django.db import connections, transaction


def _run_two_writers(tmp_path, django_db_blocker, options) -> tuple[list[Exception], int]:
    alias = "sqlite_writers"
    config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3"), "OPTIONS": dict(options)}
    connections.settings[alias] = connections.configure_settings({"default": dict(config), alias: config})[alias]
    errors: list[Exception] = []
    try:
        with django_db_blocker.unblock():
            with connections[alias].cursor() as cursor:
                cursor.execute("CREATE TABLE counter (n integer)")
                cursor.execute("INSERT INTO counter VALUES (0)")
            connections[alias].close()
            holding = threading.Event()

            def worker_writes():  # the worker: writes, and holds its transaction a moment
                try:
                    with transaction.atomic(using=alias):
                        with connections[alias].cursor() as cursor:
                            cursor.execute("UPDATE counter SET n = n + 1")
                        holding.set()
                        time.sleep(0.5)
                finally:
                    holding.set()
                    connections[alias].close()

            def request_reads_then_writes():  # a request: reads, then writes, meanwhile
                holding.wait(5)
                try:
                    with transaction.atomic(using=alias):
                        with connections[alias].cursor() as cursor:
                            cursor.execute("SELECT n FROM counter")
                            cursor.execute("UPDATE counter SET n = n + 10")
                except Exception as error:  # noqa: BLE001 — what the test is about
                    errors.append(error)
                finally:
                    connections[alias].close()

            threads = [threading.Thread(target=worker_writes), threading.Thread(target=request_reads_then_writes)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT n FROM counter")
                [(total,)] = cursor.fetchall()
            connections[alias].close()
    finally:
        del connections.settings[alias]
    return errors, total


def test_a_request_waits_for_the_workers_write_instead_of_failing(tmp_path, django_db_blocker):
    errors, total = _run_two_writers(tmp_path, django_db_blocker, settings.SQLITE_OPTIONS)
    assert errors == [] and total == 11
