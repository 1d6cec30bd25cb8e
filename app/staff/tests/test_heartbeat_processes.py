"""The development set-up of scripts/dev (SQLite, no Redis) runs daphne and the Huey worker as two
processes: the heartbeat the worker records must be what the web process reads, or the staff
dashboard says "never seen" (and "no grades are sent") while the worker runs."""

import json
import re
import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[2]

WORKER = "import django; django.setup(); from staff import tasks; tasks.worker_heartbeat.call_local(); import os; print(os.getpid())"
WEB = ("import django, json; django.setup(); from staff import selectors; "
       "print(json.dumps(selectors.worker_health().as_json()))")


def run_as_in_development(code: str, var_dir: Path) -> str:
    """Python in a fresh process with the settings scripts/dev uses (DEBUG, no DATABASE_URL nor
    REDIS_URL: SQLite and files under VAR_DIR)."""
    env = {k: v for k, v in os.environ.items() if k not in (
        "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "HUEY_IMMEDIATE", "DJANGO_SETTINGS_MODULE", "ALLOWED_HOSTS",
        "EXAM_ORIGIN")}
    env.update({"DJANGO_SETTINGS_MODULE": "numbas_lti.settings", "DEBUG": "1", "VAR_DIR": str(var_dir)})
    result = subprocess.run([sys.executable, "-c", code], cwd=APP, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_web_process_sees_the_heartbeat_the_worker_process_recorded(tmp_path):
    worker_pid = run_as_in_development(WORKER, tmp_path)
    item = json.loads(run_as_in_development(WEB, tmp_path))
    assert (item["status"], item["ok"]) == ("ok", True), item
    assert re.match(r"Last seen \d+ seconds? ago", item["detail"]), item
    assert f"(process {worker_pid})" in item["detail"]
    assert 0 <= item["age_seconds"] < 30


def test_without_a_worker_the_dashboard_still_says_never_seen(tmp_path):
    item = json.loads(run_as_in_development(WEB, tmp_path))
    assert (item["status"], item["ok"]) == ("problem", False)
    assert "Never seen" in item["detail"] and "run_huey" in item["hint"]
