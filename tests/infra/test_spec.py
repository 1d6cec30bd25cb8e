"""The container health checks that spec.py gives the deploy work against the real app."""

import json
import os
import subprocess
import sys

import pytest

from numbas_infra import spec
from tests.support.live import start_live_server

pytestmark = pytest.mark.slow


def run_check(check: spec.HealthCheck, env: dict, port: int | None = None) -> int:
    assert check.test[:3] == ["CMD", "python", "-c"]
    code = check.test[3].replace(f":{spec.DAPHNE_PORT}/", f":{port}/") if port else check.test[3]
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=30).returncode


def test_the_daphne_and_huey_health_checks_pass_against_the_app_and_fail_without_it(tmp_path):
    domain = "numbas.example.ac.uk"
    # 127.0.0.1 too, for the fixture's own readiness check.
    server = start_live_server(tmp_path, extra_env={"ALLOWED_HOSTS": f"{domain},127.0.0.1", "BEHIND_TLS_PROXY": "1"})
    try:
        port = int(server.url.rsplit(":", 1)[1])
        env = {**os.environ, "ALLOWED_HOSTS": domain, "REDIS_URL": os.environ.get("TEST_REDIS_URL", "")}
        assert run_check(spec.DAPHNE_HEALTH, env, port) == 0
        # The check sends the configured host name: a host Django does not serve is unhealthy.
        assert run_check(spec.DAPHNE_HEALTH, {**env, "ALLOWED_HOSTS": "other.example.org"}, port) != 0
        if env["REDIS_URL"]:
            assert run_check(spec.HUEY_HEALTH, env) == 0
            assert run_check(spec.HUEY_HEALTH, {**env, "REDIS_URL": "redis://127.0.0.1:9/0"}) != 0
    finally:
        server.stop()
    assert run_check(spec.DAPHNE_HEALTH, env, port) != 0  # nothing listening: unhealthy


def test_only_nginx_publishes_ports_and_every_app_container_has_a_check():
    settings = spec.AppSettings(domain="numbas.example.ac.uk", exam_domain="exams.numbas.example.ac.uk")
    for container in spec.app_containers(settings, daphne_replicas=3, huey_replicas=2):
        assert not container.ports
        assert container.one_shot or container.health is not None


def test_the_migrate_step_runs_as_deployed_and_leaves_hashed_static_files(tmp_path):
    """spec.MIGRATE_COMMAND with the deployed environment (paths and database moved to tmp)."""
    from tests.support.live import APP

    env = {
        **os.environ,
        **spec.app_environment(spec.AppSettings(domain="numbas.example.ac.uk", exam_domain="exams.numbas.example.ac.uk")),
        "STATIC_ROOT": str(tmp_path / "static"), "MEDIA_ROOT": str(tmp_path / "media"),
        "PRIVATE_ROOT": str(tmp_path / "private"), "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "SECRET_KEY": "migrate-test-" + "x" * 40,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(spec.MIGRATE_COMMAND, cwd=APP, env={**env, "PATH": f"{os.path.dirname(sys.executable)}:{env['PATH']}"},
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "static" / "staticfiles.json").exists()
    assert any(p.name.startswith("runtime.") and p.name != "runtime.js" for p in (tmp_path / "static" / "attempts").iterdir())
    # The exam-content host's files keep their names (exams and MathJax address them by fixed paths),
    # without what no browser loads.
    content = tmp_path / "static" / "content"
    for path in ("runtime/frame.html", "runtime/frame.js", "runtime/scorm-again/scorm2004.min.js",
                 "mathjax/2/MathJax.js", "mathjax/4/tex-svg.js", "mathjax/local-fonts.js",
                 "mathjax/fonts/mathjax-newcm-font/svg.js"):
        assert (content / path).is_file(), path
    assert not list((content / "runtime").glob("frame.*.js")), "content files must not be hashed"
    assert not (content / "mathjax" / "2" / "unpacked").exists()
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    assert not [name for name in manifest["paths"] if name.startswith("content/")]
    assert (tmp_path / "db.sqlite3").stat().st_size > 0


def test_daphne_accepts_every_batch_the_app_accepts_over_the_websocket():
    from django.conf import settings

    command = spec.daphne_command()
    for option in ("--websocket-max-message-size", "--websocket-max-frame-size"):
        limit = int(command[command.index(option) + 1])
        # as for HTTP bodies: twice the batch limit in characters, for JSON escaping
        assert limit >= 2 * settings.ATTEMPT_MAX_BATCH_CHARS, option
        assert limit < 64 * 1024 * 1024, f"{option}: an unbounded message lets anyone exhaust memory"


def test_daphne_keeps_no_access_log_and_trusts_forwarded_addresses_only_behind_nginx():
    deployed, development = spec.DAPHNE_COMMAND, spec.daphne_command(bind="127.0.0.1", port=8000, behind_proxy=False)
    for command in (deployed, development):
        assert command[command.index("-v") + 1] == "0", "daphne's access log writes URLs with their tokens"
    assert "--proxy-headers" in deployed  # behind nginx, which sets X-Forwarded-For itself
    assert "--proxy-headers" not in development  # nothing in front: X-Forwarded-For is whatever a client says
