"""The signal an upgrade stops the old Huey workers with (spec.py) means what the deploy expects of
the installed Huey; tests/test_rolling_upgrade.py shows it, and daphne's, at work under load."""

import inspect
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from huey import MemoryHuey
from huey.consumer_options import ConsumerConfig

from grading import services as grading_services
from numbas_infra import spec

APP = Path(__file__).resolve().parents[2] / "app"


def _production_huey_consumer_options() -> dict:
    """settings.HUEY["consumer"] as the containers have it (with REDIS_URL; the tests run without)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "numbas_lti.settings", "REDIS_URL": "redis://127.0.0.1:9/0",
           "SECRET_KEY": "x", "DEBUG": "0", "ALLOWED_HOSTS": "numbas.example.ac.uk",
           "EXAM_ORIGIN": "https://exams.numbas.example.ac.uk"}
    code = "import json, django; django.setup(); from django.conf import settings; print(json.dumps(settings.HUEY))"
    result = subprocess.run([sys.executable, "-c", code], cwd=APP, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    huey = json.loads(result.stdout.strip().splitlines()[-1])
    assert huey["huey_class"] == "huey.RedisHuey"
    return huey.get("consumer", {})


def test_the_huey_stop_signal_lets_running_tasks_finish_and_sigterm_would_not():
    config = ConsumerConfig(**_production_huey_consumer_options())
    config.validate()
    consumer = MemoryHuey(immediate=False).create_consumer(**config.values)
    stop_signal = getattr(signal, spec.HUEY_STOP_SIGNAL)
    # huey/consumer.py: signal -> (restart, graceful). Graceful: join the workers (their tasks finish).
    assert consumer._signal_actions[stop_signal] == (False, True)
    assert consumer._signal_actions[signal.SIGTERM] == (False, False)  # Docker's default: tasks abandoned
    assert config.shutdown_timeout is None  # it waits for the task; the grace period bounds it


def test_the_huey_grace_period_covers_a_grade_delivery_run():
    budget = inspect.signature(grading_services.passback_deliver_due).parameters["budget_seconds"].default
    assert spec.HUEY_STOP_GRACE_S > budget + settings.PASSBACK_TIMEOUT_SECONDS

