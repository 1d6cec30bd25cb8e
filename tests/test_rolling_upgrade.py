"""A rolling upgrade under load on the production-shaped stack: 200 students keep answering over
websockets through nginx while every daphne and Huey process is replaced by a new generation, in
the deploy's order (LocalStack.rolling_upgrade: new daphnes healthy → nginx reloaded onto them →
old daphnes stopped → new Huey started → old Huey drained with SIGINT).

Meanwhile a poller asks nginx for /health/ and a student's page over and over, and one student
completes an attempt just before the Huey switch, so the old worker is sending that grade (to an
LMS that takes its time to answer) when it is told to stop.

Afterwards every student sends what is not yet acknowledged, and: no connection failed and no
5xx was seen (only closes, each followed by a reconnect and the re-sending of what was pending);
stored = sent per session, with no duplicate history row; only the new generation serves (every
connection to a daphne is held by a process with the new marker in its environment, HTTP requests
are in the new daphnes' logs); the grade reached the LMS exactly once and the old worker exited
by itself after sending it.

The figures are printed (run with -s to see them) and kept in test-artifacts/rolling.json."""

import asyncio
import json
import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import requests
import urllib3

from tests.support.attempt_page import DEMO_SECRET
from tests.support.lms_stub import LmsStub
from tests.support.load import complete_attempt, per_session_gap, prepare_sessions, stack_student, store_counts
from tests.support.stack import LocalStack

pytestmark = [pytest.mark.slow, pytest.mark.stack]
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
SESSIONS = int(os.environ.get("ROLLING_SESSIONS", "200"))
INTERVAL, SIZE = 2.5, 10  # a batch of 10 changes every 2.5 s per student
WARM_UP, SETTLE = 5.0, 5.0  # seconds of load before the upgrade, and after it
MARKER = "NUMBAS_TEST_GENERATION"  # in the environment of each generation's processes
SOURCEDID = "rolling-grade"
LMS_ANSWER_DELAY = 60.0  # the LMS holds its answer until the old worker was told to stop (at most this long)


@pytest.fixture(scope="module")
def rolling_stack(tmp_path_factory):
    """A stack of its own (not prod_stack): the upgrade replaces every daphne and Huey process,
    and other tests address them by their first names."""
    stack = LocalStack(tmp_path_factory.mktemp("rolling"), extra_env={MARKER: "1"}).start()
    try:
        stack.manage("ensure_demo_data", "--secret", DEMO_SECRET)
        yield stack
    finally:
        stack.stop()


class Poller(threading.Thread):
    """GETs each URL in turn through nginx, a new connection each time (as many browsers make),
    until `stop` is set, at most `limit` requests: counts statuses and errors per URL."""

    def __init__(self, urls: dict[str, tuple[str, dict]], stop: threading.Event, *, pause=0.05, limit=4000):
        super().__init__(daemon=True)
        self.urls, self.stop, self.pause, self.limit = urls, stop, pause, limit
        self.seen: dict[str, Counter] = {name: Counter() for name in urls}

    def run(self):
        for _ in range(self.limit):
            if self.stop.is_set():
                return
            for name, (url, headers) in self.urls.items():
                try:
                    response = requests.get(url, headers={**headers, "Connection": "close"}, verify=False,
                                            timeout=15, allow_redirects=False)
                    self.seen[name][str(response.status_code)] += 1
                except requests.RequestException as error:
                    self.seen[name][type(error).__name__] += 1
            time.sleep(self.pause)


def _environment(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode(errors="replace").split("=", 1) for p in pairs if b"=" in p)


def _grade_record(stack) -> list[tuple]:
    return stack.query(
        "SELECT r.state, r.score, coalesce(array_agg(s.outcome ORDER BY s.id) FILTER (WHERE s.id IS NOT NULL), '{}') "
        "FROM grading_gradereport r JOIN lms_resourcemembership m ON m.id = r.membership_id "
        "LEFT JOIN grading_gradesend s ON s.report_id = r.id WHERE m.lis_result_sourcedid = %s GROUP BY r.id",
        (SOURCEDID,))


def test_rolling_upgrade_under_load_loses_nothing(rolling_stack):
    stack = rolling_stack
    began = time.monotonic()
    sessions = prepare_sessions(stack, SESSIONS, "rolling")
    prepared = time.monotonic()
    watcher = stack_student(stack, "rolling-watcher")
    stop, stop_polling = threading.Event(), threading.Event()
    poller = Poller({"/health/": (f"{stack.url}/health/", {}),
                     "student page": (stack.url + watcher.resource_page, {"Cookie": watcher.cookie_header})},
                    stop_polling)
    report: dict = {"students": len(sessions), "seconds to prepare them": round(prepared - began, 1)}
    grade: dict = {}
    old_huey = next(sv for name, sv in stack.services.items() if name.startswith("huey"))

    with LmsStub(consumers={"demo": DEMO_SECRET}, accept_delay=LMS_ANSWER_DELAY) as stub:
        grader = stack_student(stack, "rolling-grader", lis_outcome_service_url=stub.url,
                               lis_result_sourcedid=SOURCEDID)
        grader_attempt = grader.start_attempt()
        grader_config = grader.open_attempt(grader_attempt)

        def answer_once_the_old_worker_is_stopping():
            deadline = time.monotonic() + LMS_ANSWER_DELAY
            while "Shutting down gracefully" not in old_huey.log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            grade["old worker stopping at"] = time.monotonic()
            time.sleep(1)
            grade["lms answered at"] = time.monotonic()
            stub.release()

        def complete_before_the_huey_switch():
            """The old worker is the only one: it takes the grade, and the LMS keeps it waiting
            until the worker has been told to stop."""
            grade["completion"] = complete_attempt(grader, grader_attempt, grader_config, 4)
            grade["lms got it"] = stub.wait_for_grade(SOURCEDID, 1.0, timeout=40)
            grade["lms got it at"] = time.monotonic()
            threading.Thread(target=answer_once_the_old_worker_is_stopping, daemon=True).start()

        async def load():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=False)) as http:
                await asyncio.gather(*(s.run(http, stop=stop, interval=INTERVAL, size=SIZE, drain_seconds=60)
                                       for s in sessions))

        load_errors: list[BaseException] = []

        def run_load():
            try:  # its own thread and event loop, bounded in time
                asyncio.run(asyncio.wait_for(load(), timeout=240))
            except BaseException as error:  # reported by the test
                load_errors.append(error)

        loader = threading.Thread(target=run_load, daemon=True)
        loader.start()
        poller.start()
        try:
            time.sleep(WARM_UP)
            upgrade_began = time.monotonic()
            upgrade = stack.rolling_upgrade({MARKER: "2"}, before_huey=complete_before_the_huey_switch)
            time.sleep(SETTLE)
            # Who serves now: every connection to a daphne, and fresh HTTP requests.
            connections = stack.daphne_connections()
            probe = f"/rolling-probe-{uuid.uuid4().hex}/"
            probe_statuses = Counter(requests.get(stack.url + probe, verify=False, timeout=15).status_code
                                     for _ in range(20))
        finally:
            stop_polling.set()
            stop.set()  # the students stop answering and send whatever is not acknowledged
            flushed_from = time.monotonic()
            loader.join(120)
            poller.join(30)
        flushed = time.monotonic()
        # (A grade sent twice would show by now: the new worker swept for due grades when it started.)
        lms_accepted = stub.accepted_for(SOURCEDID)
        lms_requests = [r.outcome for r in stub.requests if r.sourcedid == SOURCEDID]

    assert not load_errors, load_errors
    assert not loader.is_alive()
    stored = store_counts(stack, sessions)
    sent = {s.attempt: s.changes_sent for s in sessions}
    gaps = {  # the longest wait for an acknowledgement: worst session, p95 session (s)
        "from the upgrade's start to the end of the load": per_session_gap(sessions, upgrade_began, flushed_from),
        "while the new daphnes start": per_session_gap(sessions, upgrade.began["new daphnes healthy"],
                                                       upgrade.began["nginx reloaded"]),
        "from the old daphnes' stop to the end of the load": per_session_gap(
            sessions, upgrade.began["old daphnes stopped"], flushed_from),
    }
    huey_exit = upgrade.exits[upgrade.old_hueys[0]]
    served_by = {name: connections.get(name, 0) for name in [*upgrade.old_daphnes, *upgrade.new_daphnes, "?"]}
    generation_of = {name: _environment(stack.services[name].process.pid).get(MARKER) for name in upgrade.new_daphnes}
    probes_in = {name: (stack.services.get(name) or stack.retired[name]).log.read_text().count(f'"GET {probe}" 404')
                 for name in [*upgrade.old_daphnes, *upgrade.new_daphnes]}

    report |= {
        "batch every (s)": INTERVAL, "changes per batch": SIZE,
        "batches sent": sum(len(s.batches) for s in sessions),
        "batches acknowledged": sum(len(s.acked) for s in sessions),
        "changes sent": sum(sent.values()),
        "changes stored": sum(n for n, _ in stored.values()),
        "sessions with stored != sent": sum(1 for a in sent if stored.get(a, (0, 0))[0] != sent[a]),
        "duplicate history rows": sum(n - d for n, d in stored.values()),
        "sessions that reconnected": sum(1 for s in sessions if s.reconnects),
        "reconnects": sum(s.reconnects for s in sessions),
        "closes by the server": dict(Counter(c for s in sessions for c in s.closes)),
        "failed connection attempts": dict(Counter(f for s in sessions for f in s.connect_failures)),
        "errors answered in-band": dict(Counter(r for s in sessions for r in s.refusals)),
        "batches sent after a reconnect": sum(s.resent for s in sessions),
        "of those, already stored (their acknowledgement was lost with the old daphne)":
            sum(s.already_stored for s in sessions),
        "longest wait for an ack, worst and p95 session (s)": gaps,
        "seconds for every session to flush once stopped": round(flushed - flushed_from, 2),
        "http poller (through nginx)": {name: dict(counter) for name, counter in poller.seen.items()},
        "upgrade phases (s)": upgrade.timings,
        "old processes' exits (s after the signal)": {name: {"code": e.code, "seconds": e.seconds, "forced": e.forced}
                                                       for name, e in upgrade.exits.items()},
        "connections per daphne after the upgrade": served_by,
        "marker of the new daphnes": generation_of,
        "probe requests in each daphne's log": probes_in,
        "grade": {
            "completion (HTTPS, during the upgrade)": grade.get("completion"),
            "seconds from the LMS getting the grade to the old worker's SIGINT":
                round(huey_exit.signalled_at - grade["lms got it at"], 2) if "lms got it at" in grade else None,
            "seconds from the SIGINT to the LMS's answer":
                round(grade["lms answered at"] - huey_exit.signalled_at, 2) if "lms answered at" in grade else None,
            "seconds from the LMS's answer to the old worker's exit":
                round(huey_exit.signalled_at + huey_exit.seconds - grade["lms answered at"], 2)
                if "lms answered at" in grade else None,
            "LMS accepted": lms_accepted, "LMS requests": lms_requests,
            "database (state, score, sends)": _grade_record(stack),
        },
        "seconds of load": round(flushed - prepared, 1),
    }
    artefacts = Path(__file__).resolve().parents[1] / "test-artifacts"
    artefacts.mkdir(exist_ok=True)
    (artefacts / "rolling.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))

    # Nothing failed: no refused connection, no error answered, no 5xx (or anything but 200) to the poller.
    assert report["failed connection attempts"] == {}, report
    assert report["errors answered in-band"] == {}, report
    for name, counter in poller.seen.items():
        assert set(counter) == {"200"} and counter["200"] > 20, (name, report["http poller (through nginx)"])
    # Every close was followed by a reconnect that re-sent what was pending, and all is acknowledged.
    assert report["reconnects"] >= len(sessions) * 0.9, "the old daphnes' websockets were closed"
    assert all(s.reconnects == len(s.closes) for s in sessions)
    assert all(not s.unacked for s in sessions), report
    # Stored = sent, per session; no history row twice.
    lost = {a: (sent[a], stored.get(a, (0, 0))[0]) for a in sent if stored.get(a, (0, 0))[0] != sent[a]}
    assert not lost, f"{len(lost)} sessions stored != sent: {list(lost.items())[:5]}"
    assert report["duplicate history rows"] == 0, report
    assert report["batches sent"] == report["batches acknowledged"], report
    # Only the new generation serves.
    assert all(e.code is not None for e in upgrade.exits.values()) and not set(upgrade.exits) & set(stack.services)
    assert all(served_by[name] == 0 for name in upgrade.old_daphnes) and served_by["?"] == 0, served_by
    assert sum(served_by[name] for name in upgrade.new_daphnes) >= len(sessions), served_by
    assert set(generation_of.values()) == {"2"}, generation_of
    assert probe_statuses == {404: 20}, probe_statuses
    assert sum(probes_in[name] for name in upgrade.new_daphnes) == 20, probes_in
    assert all(probes_in[name] == 0 for name in upgrade.old_daphnes), probes_in
    # The daphnes were replaced within their grace period; the old Huey finished its task first.
    assert not any(e.forced for e in upgrade.exits.values()), report["old processes' exits"]
    assert grade["completion"]["acknowledged"] and grade["lms got it"], report["grade"]
    # Told to stop while the grade was in flight (SIGINT, then the LMS answered), it exited by itself after.
    assert "old worker stopping at" in grade, ("the old worker never logged a graceful shutdown", report["grade"])
    assert huey_exit.code == 0 and huey_exit.signalled_at < grade["old worker stopping at"] < grade["lms answered at"]
    assert huey_exit.signalled_at + huey_exit.seconds > grade["lms answered at"], report["grade"]
    assert lms_accepted == [1.0] and lms_requests == ["accepted"], report["grade"]
    assert _grade_record(stack) == [("delivered", 1.0, ["delivered"])], report["grade"]
    huey_log = stack.retired[upgrade.old_hueys[0]].log.read_text()
    assert "Shutting down gracefully" in huey_log and "All workers have stopped" in huey_log
