"""In Chromium: the staff dashboard's backup rows on a server that expects backups — ok,
warning and problem in words and colour — on a desktop and on a 390 px phone."""

from pathlib import Path

import pytest

from tests.support.live import start_live_server
from tests.support.widths import DESKTOP, SIZES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
PASSWORD = "backup-dashboard-pw-7c1d"
RUNS = """
from datetime import timedelta
from django.utils import timezone
from backups.models import BackupRun
now = timezone.now()
for kind, ago, ok, detail in [
    ("full", timedelta(days=9), True, "backup 20261124-010000F, 3901952 bytes stored"),
    ("diff", timedelta(hours=2), True, "backup 20261124-010000F_20261203-010000D, 52113 bytes stored"),
    ("files", timedelta(minutes=12), True, "snapshot 5746b73c: 1200 files, 8000 bytes added"),
    ("files", timedelta(minutes=2), False, "restic backup failed: Fatal: unable to open repository at s3:https://fsn1.your-objectstorage.com/numbas-lti-backups/numbas-lti/files: Access Denied."),
]:
    BackupRun.objects.create(kind=kind, started_at=now - ago - timedelta(minutes=1), finished_at=now - ago, ok=ok,
                             size_bytes=1 if ok else None, detail=detail)
"""


@pytest.fixture(scope="module")
def backup_server(tmp_path_factory):
    server = start_live_server(tmp_path_factory.mktemp("backups-dashboard"), extra_env={"BACKUPS_EXPECTED": "1"})
    server.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                  f"get_user_model().objects.create_superuser('operator', 'ops@example.org', '{PASSWORD}')")
    server.manage("shell", "-c", RUNS)
    yield server
    server.stop()


def status(page, name: str) -> str:
    return page.get_by_test_id(f"health-{name}").get_by_test_id("health-status").inner_text().strip()


def test_backup_freshness_reads_plainly_on_desktop_and_phone(backup_server, chromium):
    server = backup_server
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/staff/")
        page.locator("#id_username").fill("operator")
        page.locator("#id_password").fill(PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{server.url}/staff/")

        assert status(page, "database_backup") == "! Warning"
        assert "Last full backup 9 days ago" in page.get_by_test_id("health-database_backup").inner_text()
        assert status(page, "files_backup") == "! Warning"
        assert "Access Denied" in page.get_by_test_id("health-files_backup").inner_text()
        assert status(page, "backup_verify") == "! Warning"
        # The test database does not archive WAL: a problem, said in words.
        assert status(page, "wal_archive") == "✗ Problem"
        assert "WAL archiving is off" in page.get_by_test_id("health-wal_archive").inner_text()
        assert "Something needs attention" in page.get_by_test_id("health-summary").inner_text()
        colour = page.get_by_test_id("health-database_backup").locator(".status-warning").evaluate(
            "e => getComputedStyle(e).color")
        assert colour == "rgb(138, 83, 0)"

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for size in SIZES:  # the same page, on a desktop and narrowed to a phone
            page.set_viewport_size(size)
            width = size["width"]
            page.get_by_test_id("health").screenshot(path=str(SCREENSHOTS / f"staff-backups-{width}.png"))
            for name in ("database_backup", "wal_archive"):  # "Warning" and "Problem" on one line each
                word = page.get_by_test_id(f"health-{name}").get_by_test_id("health-status").locator("strong")
                assert word.evaluate("e => e.getBoundingClientRect().height") < 1.6 * word.evaluate(
                    "e => parseFloat(getComputedStyle(e).lineHeight) || 20"), word.inner_text()
            table = page.get_by_test_id("health").locator("table")
            box = table.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width  # the health table fits the screen
            assert table.evaluate("t => t.scrollWidth <= t.clientWidth + 1")
    finally:
        context.close()
