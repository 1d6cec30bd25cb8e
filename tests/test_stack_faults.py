"""Faults under load on the production-shaped stack: ~500 students keep answering over
websockets through nginx while, one after another, a daphne is killed, PostgreSQL restarts,
Redis is down for 30 s and nginx reloads with another upstream. During each fault one more
student completes an attempt, so a grade is owed.

After each fault the students stop making new answers until everything they sent is
acknowledged; then, per session, what was stored is compared with what was sent, history rows
are checked for duplicates, and the grade owed must reach the LMS. At the end every service must
be running without anyone having restarted it by hand.

The figures are printed (run with -s to see them) and kept in test-artifacts/faults.json."""

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import aiohttp
import pytest
import requests
import urllib3

from tests.support.attempt_page import DEMO_SECRET
from tests.support.lms_stub import LmsStub
from tests.support.load import complete_attempt, per_session_gap, prepare_sessions, stack_student, store_counts

pytestmark = [pytest.mark.slow, pytest.mark.stack]
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
SESSIONS = int(os.environ.get("FAULT_SESSIONS", "500"))
INTERVAL, SIZE = 3.0, 10


def _run(coroutine_function):
    try:
        asyncio.run(asyncio.wait_for(coroutine_function(), timeout=600))
    except BaseException as error:  # reported by the test
        return error
    return None


@dataclass
class Fault:
    name: str
    inject: Callable[[], None]  # starts the fault and returns once it has been cleared
    settle: float  # seconds of load after it is cleared


def delivered_after(stub, number: int, cleared: float) -> float | None:
    """When the LMS accepted grade `number`, in seconds after `cleared` (a monotonic time)."""
    accepted = [r.time for r in stub.requests if r.sourcedid == f"fault-grade-{number}" and r.outcome == "accepted"]
    if not accepted:
        return None
    return round(min(accepted) - (time.time() - time.monotonic()) - cleared, 1)


def test_faults_under_load_lose_nothing(prod_stack):
    stack = prod_stack
    sessions = prepare_sessions(stack, SESSIONS, "fault")
    report = {"sessions": len(sessions), "faults": {}}
    stop, pause = threading.Event(), threading.Event()  # set by the injector; the sessions poll them
    timeline = {}

    def kill_daphne():
        stack.kill("daphne-1")
        time.sleep(5)

    def restart_postgres():
        stack.postgres_stop()
        time.sleep(3)
        stack.postgres_start()

    def stop_redis():
        stack.redis_stop()
        time.sleep(30)
        stack.redis_start()

    def reload_nginx():
        stack.nginx_reload(stack.daphne_ports[:-1])  # daphne-4 taken out of the upstream
        time.sleep(10)
        stack.nginx_reload(stack.daphne_ports)

    # Each fault is followed by a few seconds of load (the checkpoint then waits until every
    # session has caught up): enough to see the stack carry on, within the suite's time budget.
    faults = [Fault("kill -9 daphne-1", kill_daphne, 8), Fault("restart PostgreSQL", restart_postgres, 8),
              Fault("Redis down 30 s", stop_redis, 6), Fault("nginx reload, upstream changed", reload_nginx, 6)]

    with LmsStub(consumers={"demo": DEMO_SECRET}) as stub:
        graders = []
        for i, _ in enumerate(faults):
            grader = stack_student(stack, f"fault-grader-{i}", lis_outcome_service_url=stub.url,
                             lis_result_sourcedid=f"fault-grade-{i}")
            attempt_id = grader.start_attempt()
            graders.append((grader, attempt_id, grader.open_attempt(attempt_id)))

        def checkpoint(fault: Fault, number: int, began: float, cleared: float, completion: dict) -> None:
            pause.set()
            paused_at = time.monotonic()
            deadline = paused_at + 120
            while any(s.unacked for s in sessions) and time.monotonic() < deadline:
                time.sleep(0.2)
            caught_up = time.monotonic()
            stored = store_counts(stack, sessions)
            sent = {s.attempt: s.changes_sent for s in sessions}
            short = [a for a in sent if stored.get(a, (0, 0))[0] < sent[a]]
            worst, p95 = per_session_gap(sessions, began, paused_at)
            grade = number + 1
            delivered = stub.wait_for_grade(f"fault-grade-{number}", grade / 4, timeout=150)
            report["faults"][fault.name] = {
                "changes sent": sum(sent.values()),
                "changes acknowledged": sum(size for s in sessions for b, (_, size) in s.batches.items() if b in s.acked),
                "changes stored": sum(n for n, _ in stored.values()),
                "changes lost": sum(max(0, sent[a] - stored.get(a, (0, 0))[0]) for a in sent),
                "sessions with stored != sent": len(short) + sum(1 for a in sent if stored.get(a, (0, 0))[0] > sent[a]),
                "duplicate history rows": sum(n - d for n, d in stored.values()),
                "longest wait for an ack, worst session (s)": worst,
                "longest wait for an ack, p95 session (s)": p95,
                "seconds for every session to catch up once paused": round(caught_up - paused_at, 2),
                "completion posted during the fault": completion,
                "grade owed delivered": delivered,
                "grade delivered, seconds after the fault was cleared": delivered_after(stub, number, cleared),
                "reconnects so far": sum(s.reconnects for s in sessions),
            }
            pause.clear()

        def inject():
            try:
                time.sleep(10)  # every session connected and answering
                for number, fault in enumerate(faults):
                    began = time.monotonic()
                    timeline[fault.name] = began
                    grader, attempt_id, config = graders[number]
                    completion = {}
                    poster = threading.Thread(target=lambda: completion.update(
                        complete_attempt(grader, attempt_id, config, number + 1)), daemon=True)
                    fault_thread = threading.Thread(target=fault.inject, daemon=True)
                    fault_thread.start()
                    time.sleep(1)  # the fault is under way when the student completes
                    poster.start()
                    fault_thread.join(120)
                    cleared = time.monotonic()
                    poster.join(120)
                    time.sleep(fault.settle)
                    checkpoint(fault, number, began, cleared, completion)
            finally:
                stop.set()

        async def load():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=False)) as http:
                await asyncio.gather(*(s.run(http, stop=stop, pause=pause, interval=INTERVAL, size=SIZE)
                                       for s in sessions))

        started = time.monotonic()
        injector = threading.Thread(target=inject, daemon=True)
        injector.start()
        # Its own thread and event loop: the main thread may be running Playwright's.
        load_errors = []
        loader = threading.Thread(target=lambda: load_errors.extend(
            [e] if (e := _run(load)) else []), daemon=True)
        loader.start()
        loader.join(900)
        injector.join(60)
        assert not load_errors, load_errors
        report["load seconds"] = round(time.monotonic() - started, 1)

    stored = store_counts(stack, sessions)
    report |= {
        "changes sent": sum(s.changes_sent for s in sessions),
        "changes stored": sum(n for n, _ in stored.values()),
        "duplicate history rows": sum(n - d for n, d in stored.values()),
        "sessions that reconnected": sum(1 for s in sessions if s.reconnects),
        "reconnects": sum(s.reconnects for s in sessions),
        "restarts by the supervisor (as Docker's restart policy)": {
            n: sv.restarts for n, sv in stack.services.items() if sv.restarts},
    }
    artefacts = Path(__file__).resolve().parents[1] / "test-artifacts"
    artefacts.mkdir(exist_ok=True)
    (artefacts / "faults.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))

    assert list(report["faults"]) == [f.name for f in faults], report
    for name, figures in report["faults"].items():
        assert figures["changes lost"] == 0 and figures["sessions with stored != sent"] == 0, (name, figures)
        assert figures["changes stored"] == figures["changes sent"] == figures["changes acknowledged"], (name, figures)
        assert figures["duplicate history rows"] == 0, (name, figures)
        assert figures["completion posted during the fault"]["acknowledged"], (name, figures)
        assert figures["grade owed delivered"], (name, figures, stub.requests)
        assert "500" not in figures["completion posted during the fault"]["statuses"], (name, figures)
    lost = [s.attempt for s in sessions if stored.get(s.attempt, (0, 0))[0] != s.changes_sent]
    assert not lost, f"{len(lost)} sessions lost answers: {report}"
    assert report["duplicate history rows"] == 0
    assert all(not s.unacked for s in sessions)
    assert report["faults"]["kill -9 daphne-1"]["reconnects so far"] > 0, "the killed daphne's sessions reconnected"
    # Nothing needs a manual restart: every service runs, and the site answers through nginx.
    assert all(sv.process.poll() is None for sv in stack.services.values()), {
        n: sv.process.poll() for n, sv in stack.services.items()}
    assert requests.get(f"{stack.url}/health/", verify=False, timeout=10).status_code == 200
