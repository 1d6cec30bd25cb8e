import functools
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lms.services import consumer_create_or_update

# Under pytest-xdist (scripts/test runs the full suite on TEST_WORKERS workers) each worker has a
# test database of its own (pytest-django adds _gw0, _gw1, ...) and, from here, a Redis database of
# its own: the live servers' Huey queues and channel layers would otherwise be shared between workers.
# Databases 8-15 of scripts/test's Redis, never 0 (a serial run) or 7 (tests/test_passback_sweeper.py).
FIRST_WORKER_REDIS_DB = 8


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker and os.environ.get("TEST_REDIS_URL"):
        number = int(worker.removeprefix("gw"))
        if FIRST_WORKER_REDIS_DB + number > 15:
            raise pytest.UsageError(f"at most {16 - FIRST_WORKER_REDIS_DB} workers share scripts/test's Redis")
        parts = urlsplit(os.environ["TEST_REDIS_URL"])
        os.environ["TEST_REDIS_URL"] = parts._replace(path=f"/{FIRST_WORKER_REDIS_DB + number}").geturl()


# --- how pytest-xdist shares the work out (scripts/test: -n 2 --dist loadfile) ---------------
# A worker takes a whole test file at a time: the file's tests run in their order in one process
# and its module-scoped fixtures (live servers, browsers) start once, as in a serial run. The files
# marked `stack` as a whole (pytestmark; whole local stacks, processes killed and restarted) are one
# unit together, so they run one after another on one worker: two stacks at once on two cores would
# only make both slower and their timeouts tighter. (pytest-xdist's own --dist loadgroup does not
# group under pytest 9: it rewrites Node._nodeid, which pytest 9 no longer reads.)
STACK_MARK = re.compile(r"^pytestmark = .*\bpytest\.mark\.stack\b", re.MULTILINE)
ROOT = Path(__file__).resolve().parent


@functools.cache
def _file_is_stack(path: str) -> bool:
    try:
        return bool(STACK_MARK.search((ROOT / path).read_text(encoding="utf-8")))
    except OSError:
        return False


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndStackScheduling(LoadFileScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "stack" if _file_is_stack(path) else path

        def _assign_work_unit(self, node) -> None:
            # Order of the queue (within each part, xdist's: most tests first): app/'s files, then
            # the stack unit, then the other files under tests/. As in a serial run, a worker runs
            # app/'s tests before any browser test: the session's Chromium (Playwright's sync API)
            # leaves an event loop running in the worker's main thread, and app/ tests that call
            # asyncio.run or async_to_sync refuse to run under it. The stack unit (minutes long)
            # starts as soon as app/'s files are handed out, so it is not the run's tail.
            if not self.ordered:
                self.ordered = True
                units = list(self.workqueue.items())
                rank = {"stack": 1}
                units.sort(key=lambda unit: rank.get(unit[0], 0 if unit[0].startswith("app/") else 2))
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

    return FilesAndStackScheduling(config, log)


@pytest.fixture(autouse=True)
def _media_in_tmp(request, tmp_path):
    """Uploaded exams and private files go to temporary folders, never into the repository's var/."""
    if "settings" in request.fixturenames or request.node.get_closest_marker("django_db") or "db" in request.fixturenames:
        settings = request.getfixturevalue("settings")
        settings.MEDIA_ROOT = str(tmp_path / "media")
        settings.PRIVATE_ROOT = str(tmp_path / "private")


@pytest.fixture
def consumer(db):
    consumer, _, _ = consumer_create_or_update(key="moodle-key", secret="moodle-secret", name="University Moodle")
    return consumer


@pytest.fixture(scope="session")
def daphne_server(tmp_path_factory):
    """daphne serving the app on a database of its own (see tests/support/live.py)."""
    from tests.support.live import start_live_server

    server = start_live_server(tmp_path_factory.mktemp("live"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory):
    """A daphne whose demo consumer and resource (with the demo exam) exist."""
    from tests.support.attempt_page import DEMO_SECRET
    from tests.support.live import start_live_server

    server = start_live_server(tmp_path_factory.mktemp("demo"))
    server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prod_stack(tmp_path_factory):
    """The production-shaped stack (tests/support/stack.py): nginx TLS → daphne × 4 → PostgreSQL
    and Redis → Huey, from the deploy's own definitions, with the demo data."""
    from tests.support.attempt_page import DEMO_SECRET
    from tests.support.stack import LocalStack

    stack = LocalStack(tmp_path_factory.mktemp("stack")).start()
    try:
        stack.manage("ensure_demo_data", "--secret", DEMO_SECRET)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def chromium():
    import os

    from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing at /usr/bin/chromium (scripts/test installs it with apt)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; Django's ORM, used by other
    # tests in the same (single-threaded) process, would otherwise refuse to run.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request, tmp_path):
    context = chromium.new_context()
    page = context.new_page()
    yield page
    artefacts = __import__("pathlib").Path(__file__).parent / "test-artifacts"
    artefacts.mkdir(exist_ok=True)
    try:
        page.screenshot(path=str(artefacts / f"{request.node.name}.png"), full_page=True)
    except Exception:
        pass
    context.close()
