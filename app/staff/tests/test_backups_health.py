"""Backup freshness on the staff dashboard and in /staff/health.json (backups.selectors):
ok / warning / problem in words, and "No backup configured" in development."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from backups import selectors as backup_selectors
from backups.models import BackupRun
from staff import services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _worker_alive():
    services.heartbeat_record(now=timezone.now() - timedelta(seconds=5))
    yield
    services.heartbeat_cache().delete(services.HEARTBEAT_KEY)


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(get_user_model().objects.create_user("operator", password="pw", is_staff=True))
    return client


@pytest.fixture
def expected(settings, monkeypatch):
    """Backups expected, and WAL archived a minute ago (the test database does not archive)."""
    settings.BACKUPS_EXPECTED = True
    stats = backup_selectors.ArchiverStats("on", "000000010000000000000009", timezone.now() - timedelta(minutes=1), 0,
                                           None, "00000001000000000000000A")
    monkeypatch.setattr(backup_selectors, "archiver_stats", lambda: stats)


def run(kind, ago, ok=True, detail=""):
    finished = timezone.now() - ago
    BackupRun.objects.create(kind=kind, started_at=finished - timedelta(minutes=1), finished_at=finished, ok=ok,
                             size_bytes=10, detail=detail)


def fresh():
    run("full", timedelta(days=2))
    run("diff", timedelta(hours=1))
    run("files", timedelta(minutes=10))
    run("verify", timedelta(days=1))


def test_development_says_no_backup_configured(staff_client):
    data = staff_client.get("/staff/health.json").json()
    assert data["status"] == "ok"
    assert data["checks"]["backups"]["status"] == "not_configured"
    assert "No backup configured" in staff_client.get("/staff/").content.decode()


def test_fresh_backups_are_ok_everywhere(staff_client, expected):
    fresh()
    data = staff_client.get("/staff/health.json").json()
    assert data["status"] == "ok"
    names = ["database_backup", "wal_archive", "files_backup", "backup_verify"]
    assert [n for n in data["checks"] if n not in ("database", "redis", "worker")] == names
    for name in names:
        check = data["checks"][name]
        assert (check["status"], check["ok"]) == ("ok", True), check
    assert data["checks"]["database_backup"]["age_seconds"] == pytest.approx(3600, abs=5)
    html = staff_client.get("/staff/").content.decode()
    assert "Everything checked is working." in html
    assert 'data-testid="health-wal_archive"' in html and "Last WAL segment archived" in html


def test_a_stale_full_backup_is_a_warning_in_words(staff_client, expected):
    fresh()
    BackupRun.objects.filter(kind="full").update(finished_at=timezone.now() - timedelta(days=9),
                                                 started_at=timezone.now() - timedelta(days=9, minutes=1))
    data = staff_client.get("/staff/health.json").json()
    assert data["status"] == "warning"
    check = data["checks"]["database_backup"]
    assert (check["status"], check["ok"]) == ("warning", True)
    assert check["detail"].startswith("Last full backup 9 days ago")
    html = staff_client.get("/staff/").content.decode()
    assert "should be looked at soon" in html and "Warning" in html and "Last full backup 9 days ago" in html


def test_failing_backups_are_a_problem(staff_client, expected):
    run("full", timedelta(days=3))
    run("diff", timedelta(hours=30), ok=False, detail="pgbackrest backup failed: ERROR: [039]: HTTP 403")
    run("files", timedelta(minutes=10))
    run("verify", timedelta(days=1))
    data = staff_client.get("/staff/health.json").json()
    assert data["status"] == "problem"
    check = data["checks"]["database_backup"]
    assert (check["status"], check["ok"]) == ("problem", False)
    assert "Last full backup 3 days ago" in check["detail"] and "HTTP 403" in check["detail"]
    assert "Something needs attention" in staff_client.get("/staff/").content.decode()


def test_an_unreadable_database_makes_the_backups_unknown_not_an_error(staff_client, settings, monkeypatch):
    settings.BACKUPS_EXPECTED = True

    def down(**kwargs):
        raise ConnectionError("the database is gone")

    monkeypatch.setattr(backup_selectors, "backup_checks", down)
    data = staff_client.get("/staff/health.json").json()
    assert data["checks"]["backups"]["status"] == "problem"
    assert "cannot be read" in data["checks"]["backups"]["detail"]
