"""In Chromium: an operator logs in through the admin and reads the staff dashboard of a live
server — its sections, the demo consumer and the resource just launched, the database and
Redis healthy, and the worker's heartbeat recorded by another process through the shared cache
(Redis, or files under VAR_DIR without it)."""

from pathlib import Path

import pytest

from tests.support.attempt_page import DEMO_SECRET, launch_student
from tests.support.live import own_redis_env, start_live_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
PASSWORD = "staff-browser-pw-4b1e"


@pytest.fixture(scope="module")
def staff_server(tmp_path_factory):
    """A daphne of its own; with Redis, a Redis database of its own (the heartbeat key is shared
    by everything using one)."""
    server = start_live_server(tmp_path_factory.mktemp("staff"), extra_env=own_redis_env("staff"))
    server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
    server.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                  f"get_user_model().objects.create_superuser('operator', 'ops@example.org', '{PASSWORD}')")
    yield server
    server.stop()


def test_operator_reads_the_staff_dashboard(staff_server, page, chromium):
    server = staff_server
    redis = bool(server.env.get("REDIS_URL"))
    launch_student(chromium.new_context().new_page(), server.url, "staff-dash-student")
    # What a Huey worker does every minute, from another process: daphne reads it from Redis.
    server.manage("shell", "-c", "from staff.services import heartbeat_record; heartbeat_record()")

    page.goto(f"{server.url}/staff/")
    assert "/admin/login/" in page.url  # not logged in: the admin's login
    page.locator("#id_username").fill("operator")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"{server.url}/staff/")

    assert page.get_by_role("heading", level=1).inner_text() == "Staff dashboard"
    headings = page.get_by_role("heading", level=2).all_inner_texts()
    assert headings == ["Health", "Grade delivery", "Resources active in the last 24 hours", "Consumers"]

    assert "OK" in page.get_by_test_id("health-database").get_by_test_id("health-status").inner_text()
    redis_status = page.get_by_test_id("health-redis").get_by_test_id("health-status").inner_text()
    worker = page.get_by_test_id("health-worker").inner_text()
    # Either way the page sees the other process's heartbeat: through Redis, or without it (the
    # development set-up) through the shared file cache under VAR_DIR.
    assert "Last seen" in worker and "OK" in worker, worker
    if redis:
        assert "OK" in redis_status
        assert "Everything checked is working." in page.get_by_test_id("health-summary").inner_text()
    else:
        assert "Not configured" in redis_status

    consumers = page.get_by_test_id("consumer").all_inner_texts()
    assert any("demo" in row for row in consumers), consumers
    assert DEMO_SECRET not in page.content()
    active = page.get_by_test_id("active-resource")
    assert active.count() == 1
    assert active.first.locator("td").all_inner_texts()[3:] == ["1", "0"]  # one launch, no attempt saved, in 24 h
    assert page.get_by_test_id("backlog-pending").inner_text().startswith("0 ")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "staff-dashboard.png"), full_page=True)

    health = page.request.get(f"{server.url}/staff/health.json").json()
    assert health["checks"]["database"]["status"] == "ok"
    assert health["checks"]["redis"]["status"] == ("ok" if redis else "not_configured")
