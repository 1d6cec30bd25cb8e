"""scripts/dev from a fresh copy of the repository: it sets itself up, serves /health/, and its
test-launch page launches a student (and an instructor) into the demo resource, in Chromium."""

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_for_http

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # not `stack`: its own SQLite and ports, so it need not wait for the stacks
REPO = Path(__file__).resolve().parents[1]


def fresh_clone(dest: Path) -> Path:
    """The files git would check out (tracked and not ignored), without .venv or var/."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / name.decode()
        if source.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    clone = fresh_clone(tmp_path_factory.mktemp("clone"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE",
                                                             "HUEY_IMMEDIATE", "SECRET_KEY", "VIRTUAL_ENV",
                                                             "ALLOWED_HOSTS", "EXAM_ORIGIN")}
    env["PORT"] = str(port)
    log_path = clone / "dev.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(["bash", "scripts/dev"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health/", timeout=420, process=process)
        yield {"url": f"http://127.0.0.1:{port}", "clone": clone, "log": log_path}
    except Exception:
        print(log_path.read_text())
        raise
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_dev_serves_health_on_sqlite(dev_server):
    import json
    import urllib.request

    with urllib.request.urlopen(dev_server["url"] + "/health/") as response:
        assert json.load(response) == {"status": "ok", "checks": {"database": "ok"}}
    assert (dev_server["clone"] / "var" / "db.sqlite3").exists()
    log = dev_server["log"].read_text()
    assert "/test-launch/" in log and "admin / " in log


@pytest.mark.parametrize("role, testid", [("Student", "student-page"), ("Instructor", "instructor-page")])
def test_test_launch_page_launches_into_the_demo_resource(dev_server, page, role, testid):
    page.goto(dev_server["url"] + "/test-launch/")
    page.get_by_label(role).check()
    page.get_by_label("Name").fill(f"Demo {role}")
    page.get_by_label("LMS user id").fill(f"demo-{role.lower()}")
    page.get_by_test_id("launch").click()
    tool = page.frame_locator("iframe[name=tool-frame]")
    tool.get_by_test_id(testid).wait_for(timeout=15000)
    if role == "Instructor":  # the activity's facts are one click away on the instructor's page
        tool.get_by_test_id("about-activity").locator("summary").click()
    assert tool.get_by_test_id("resource-title").inner_text() == "Demo exam"
    assert tool.get_by_test_id("user-name").inner_text() == f"Demo {role}"
    assert tool.get_by_test_id("role").inner_text() == role


def test_the_demo_exam_runs_on_its_own_host_in_development(dev_server, page):
    """scripts/dev runs the same split as production: the application on 127.0.0.1, exam files
    on localhost (another host name, so none of the application's cookies reach them)."""
    port = dev_server["url"].rsplit(":", 1)[1]
    page.goto(dev_server["url"] + "/test-launch/")
    page.get_by_label("Student").check()
    page.get_by_label("LMS user id").fill("demo-taker")
    page.get_by_test_id("launch").click()
    tool = page.frame_locator("iframe[name=tool-frame]")
    tool.get_by_test_id("start-attempt").click()
    exam = tool.frame_locator("#exam-frame").frame_locator("#exam")
    exam.locator("#answer-q0p0").fill("4")
    exam.locator("#answer-q0p0").dispatch_event("change")
    runtime = next(frame for frame in page.frames if "/runtime/frame.html" in frame.url)
    assert runtime.url.startswith(f"http://localhost:{port}/runtime/")
    assert runtime.child_frames[0].url.startswith(f"http://localhost:{port}/exams/")
    tool_frame = next(frame for frame in page.frames if "/attempt/" in frame.url)
    tool_frame.wait_for_function("document.getElementById('save-status').dataset.state === 'saved'", timeout=15000)
    assert runtime.evaluate("() => document.cookie") == ""


@pytest.mark.parametrize("width", [1280, 390])
def test_the_test_launch_page_is_an_lti13_platform_whose_gradebook_gets_the_grade(dev_server, chromium, width):
    """LTI 1.3 offline: the page starts an OIDC login at the tool in its frame (offering its
    storage), its own authorization endpoint signs the id_token, the student takes the demo
    exam, and the worker sends the grade by AGS to the page's demo LMS, which lists it."""
    import time

    started = time.monotonic()
    context = chromium.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(dev_server["url"] + "/test-launch/")
        page.get_by_label("1.3", exact=False).check()
        page.get_by_label("Student").check()
        page.get_by_label("LMS user id").fill(f"demo-lti13-{width}")
        page.get_by_label("Name").fill(f"Thirteen {width}")
        page.get_by_test_id("launch").click()
        tool = page.frame_locator("iframe[name=tool-frame]")
        tool.get_by_test_id("student-page").wait_for(timeout=15000)
        assert tool.get_by_test_id("user-name").inner_text() == f"Thirteen {width}"
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        tool.get_by_test_id("start-attempt").click()
        exam = tool.frame_locator("#exam-frame").frame_locator("#exam")
        for part, value in (("q0p0", "4"), ("q0p1", "42"), ("q1p0", "13")):  # 2 of 4 marks
            exam.locator(f"#answer-{part}").fill(value)
            exam.locator(f"#answer-{part}").dispatch_event("change")
        exam.locator("#end-exam").click()
        exam.locator("#ended").wait_for(timeout=10000)

        grade = None
        while grade is None and time.monotonic() - started < 18:
            page.goto(dev_server["url"] + "/test-launch/")
            rows = page.get_by_test_id("demo-lms-grade").filter(has_text=f"Thirteen {width}")
            if rows.count():
                grade = rows.first.get_by_test_id("demo-lms-score").inner_text()
            else:
                time.sleep(0.5)
        assert grade == "2 / 4"
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()
    assert time.monotonic() - started < 20


def test_the_readmes_consumer_command_works_as_printed_in_a_new_shell(dev_server):
    """README.md and scripts/dev's banner print how to add an LMS consumer to the dev database;
    a new shell has none of scripts/dev's variables, so the line must carry what it needs."""
    clone = dev_server["clone"]
    readme = (clone / "README.md").read_text()
    [line] = [line for line in readme.splitlines() if line.startswith("DEBUG=1 .venv/bin/python app/manage.py create_lti_consumer")]
    assert "create_lti_consumer --key KEY" in dev_server["log"].read_text()
    new_shell = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    result = subprocess.run(["bash", "-c", line], cwd=clone, env=new_shell, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "moodle-maths" in result.stdout and "secret" in result.stdout.lower()


def test_the_dev_server_takes_no_claimed_address_for_the_login_lockout(dev_server):
    """scripts/dev has no proxy in front: the address is the connection's, so sending a new
    X-Forwarded-For with each guess does not escape the lockout."""
    import re

    import requests

    http = requests.Session()
    http.trust_env = False
    form = http.get(dev_server["url"] + "/admin/login/", timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    statuses = [http.post(dev_server["url"] + "/admin/login/", timeout=30,
                          data={"csrfmiddlewaretoken": csrf, "username": "dev-guesser", "password": "guess"},
                          headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
