"""Report downloads through nginx when nginx's workers are another user than the app, as in
production (workers: nginx, 101:101; app: 10001). The app's files reach nginx through the group
cloud-init gives media/ and private/ (spec.FILES_GID, setgid), never through "others".

Here the app runs as root and nginx's workers as `nobody` in nobody's own group, prepared by the
same cloud-init lines (LocalStack(nginx_user=...)). Before the group design every download was 403
in production (reports dir 0700, files 0600); the stack tests never saw it because their nginx
ran as the app's own user.
"""

import grp
import os
import pwd
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

import pytest
import urllib3

from tests.support.attempt_client import Student
from tests.support.attempt_page import DEMO_SECRET
from tests.support.stack import LocalStack

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

WORKER_USER = "nobody"


@pytest.fixture(scope="module")
def stack():
    if os.getuid() != 0:
        pytest.skip("running nginx's workers as another user needs root (CI and scripts/test as root do)")
    group = grp.getgrgid(pwd.getpwnam(WORKER_USER).pw_gid).gr_name
    # Not under pytest's temporary folders: those are closed to other users, as in production
    # nothing on the way to the volume's directories is the workers' business.
    root = Path(tempfile.mkdtemp(prefix="numbas-lti-stack-perms-"))
    stack = LocalStack(root, daphne_replicas=1, nginx_user=(WORKER_USER, group))
    stack.start()
    try:
        stack.manage("ensure_demo_data", "--secret", DEMO_SECRET)
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def _instructor(stack) -> tuple[Student, int]:
    """An instructor of the demo resource, launched through nginx, and the resource's id."""
    instructor = Student(stack.url, key="demo", secret=DEMO_SECRET, user_id="perms-teacher", roles="Instructor")
    instructor.http.trust_env, instructor.http.verify = False, False
    instructor.launch()
    return instructor, int(re.search(r"/resource/(\d+)/", instructor.resource_page).group(1))


def _report(stack, instructor: Student, resource_id: int) -> dict:
    """Ask for a scores CSV as the reports page does and wait for Huey to write it."""
    page_url = f"{stack.url}/resource/{resource_id}/instructor/reports/"
    assert instructor.http.get(page_url, timeout=20).status_code == 200
    asked = instructor.http.post(page_url, data={"kind": "scores"}, timeout=20, headers={
        "Accept": "application/json", "X-CSRFToken": instructor.csrf_token, "Origin": stack.url, "Referer": page_url})
    assert asked.status_code == 202, asked.text[:300]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = instructor.http.get(stack.url + asked.json()["status_url"], timeout=20).json()
        if status["state"] in ("done", "failed"):
            assert status["state"] == "done", status
            return status
        time.sleep(0.2)
    raise AssertionError(f"the report was not written: {status}; see {stack.logs}")


def test_nginx_as_another_user_serves_reports_through_the_group_only(stack):
    worker = pwd.getpwnam(WORKER_USER)
    assert worker.pw_uid not in (0, os.getuid())
    assert f"user {WORKER_USER} " in (stack.root / "nginx.conf").read_text()
    instructor, resource_id = _instructor(stack)

    status = _report(stack, instructor, resource_id)
    [(relative,)] = stack.query("SELECT relative_path FROM reports_reportfile WHERE id = %s", (status["id"],))
    path = stack.root / "private" / relative

    # The instructor's download is handed to nginx (X-Accel-Redirect), whose worker reads the file.
    download = instructor.http.get(stack.url + status["download_url"], timeout=20)
    assert download.status_code == 200, (download.status_code, download.text[:200])
    assert download.content == path.read_bytes() and download.content.startswith(b"\xef\xbb\xbfname,")

    # Readable by the group nginx's workers are in, by no one else.
    group = pwd.getpwnam(WORKER_USER).pw_gid  # the worker's group (nginx_user's)
    for below in [stack.root / "private", *sorted((stack.root / "private").rglob("*"))]:
        mode = below.stat().st_mode
        assert below.stat().st_gid == group, below
        assert not stat.S_IMODE(mode) & 0o007, f"{below} is open to others: {stat.filemode(mode)}"
        assert stat.S_IMODE(mode) & 0o040, f"{below} is closed to nginx's group: {stat.filemode(mode)}"
        if below.is_dir():
            assert mode & stat.S_ISGID, f"{below} does not pass its group down: {stat.filemode(mode)}"

    # The fault this guards against: a file only its owner may read is refused by nginx.
    path.chmod(0o600)
    refused = instructor.http.get(stack.url + status["download_url"], timeout=20)
    assert refused.status_code == 403 and path.read_bytes() not in refused.content


def test_nginx_as_another_user_serves_exam_files(stack):
    [(directory, href)] = stack.query("SELECT directory, launch_href FROM exams_exampackage ORDER BY id LIMIT 1")
    assert stack.exam_host_get(f"/exams/{directory}/{href}")[0] == 200
    exams = stack.root / "media" / "exams"
    for below in [exams, *exams.rglob("*")]:
        assert below.stat().st_gid == pwd.getpwnam(WORKER_USER).pw_gid, below
