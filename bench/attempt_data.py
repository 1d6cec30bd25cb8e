"""Attempt-data write path: simulated students (no browser) speaking the real websocket
protocol, on the production-shaped local stack (tests/support/stack.py: PostgreSQL, Redis channel
layer, daphne × N, Huey and nginx, from the deploy's own definitions).

    scripts/bench attempt_data [--daphnes 2] [--nginx] [--saturating-sessions 50] [--live-sessions 2000] ...

By default it measures what issue 3's targets are about: two daphne processes, the websockets
going to them directly (sessions alternate between the two). --nginx sends every websocket
through nginx over TLS instead (--daphnes 4 is production's count). On a 2-core machine the
load generator's own TLS work then competes with the server for the same CPUs.

(a) saturating: S sessions, each sending batches of 50 elements, the next after the ack.
(b) live load: N sessions, connecting over the first --ramp seconds, each then sending a
    batch of 20 elements (one a ~5 KB suspend_data) every 5 s.
Prints elements committed per second, ack latency p50/p99, and sent-versus-stored counts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import urllib3

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "infra")]
from tests.support.attempt_client import Student  # noqa: E402
from tests.support.stack import LocalStack  # noqa: E402

SECRET = "bench-secret"
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def prepare(stack: LocalStack, count: int, prefix: str, *, through_nginx: bool):
    """Launch `count` students through nginx, start and open an attempt for each; their
    websockets go through nginx or straight to a daphne (alternating)."""
    base = stack.url

    def one(i):
        student = Student(base, key="demo", secret=SECRET, user_id=f"{prefix}-{i}")
        student.http.verify, student.http.trust_env = False, False  # the stack's throwaway certificate
        student.launch()
        attempt_id = student.start_attempt()
        config = student.open_attempt(attempt_id)
        url = student.websocket_url(config)
        if not through_nginx:
            port = stack.daphne_ports[i % len(stack.daphne_ports)]
            url = url.replace(base.replace("https", "wss", 1), f"ws://127.0.0.1:{port}", 1)
        return {"url": url, "cookie": student.cookie_header, "origin": base,
                "token": config["token"], "attempt": attempt_id}

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def make_batch(token, sequence, size, suspend_bytes=0):
    # like a Numbas answer: the score comes with the interactions
    changes = [{"seq": sequence, "key": "cmi.score.raw", "value": str(random.randint(0, 20)), "t": int(time.time() * 1000)}]
    sequence += 1
    size -= 1
    for i in range(size - (1 if suspend_bytes else 0)):
        changes.append({"seq": sequence + i, "key": f"cmi.interactions.{i % 30}.learner_response",
                        "value": str(random.randint(0, 10**6)), "t": int(time.time() * 1000)})
    if suspend_bytes:
        changes.append({"seq": sequence + size - 1, "key": "cmi.suspend_data",
                        "value": json.dumps({"s": "x" * suspend_bytes}), "t": int(time.time() * 1000)})
    return {"type": "batch", "batch": uuid.uuid4().hex, "token": token, "changes": changes, "terminate": False}


class Session:
    def __init__(self, spec):
        self.spec, self.sequence, self.sent, self.acked, self.latencies = spec, 1, 0, 0, []
        self.sent_at: list[float] = []
        self.waiting: dict[str, tuple[float, asyncio.Future, int]] = {}

    async def run(self, http: aiohttp.ClientSession, body, connect_within: float = 0):
        await asyncio.sleep(random.uniform(0, connect_within))  # students arrive over time, not all at once
        async with http.ws_connect(self.spec["url"], headers={"Cookie": self.spec["cookie"], "Origin": self.spec["origin"]},
                                   max_msg_size=0, heartbeat=None, ssl=False) as ws:
            ready = json.loads((await ws.receive(timeout=30)).data)
            assert ready["type"] == "ready", ready
            reader = asyncio.create_task(self.read(ws))
            try:
                await body(self, ws)
                # wait for outstanding acks (bounded)
                deadline = time.monotonic() + 30
                while self.waiting and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            finally:
                reader.cancel()

    async def read(self, ws):
        async for message in ws:
            data = json.loads(message.data)
            if data.get("type") == "ack" and data["batch"] in self.waiting:
                started, future, size = self.waiting.pop(data["batch"])
                self.latencies.append(time.perf_counter() - started)
                self.sent_at.append(started)
                self.acked += size
                future.set_result(True)
            elif data.get("type") == "error":
                print("error from server:", data, file=sys.stderr)

    async def send(self, ws, size, suspend_bytes=0, wait=True):
        batch = make_batch(self.spec["token"], self.sequence, size, suspend_bytes)
        self.sequence += size
        future = asyncio.get_running_loop().create_future()
        self.waiting[batch["batch"]] = (time.perf_counter(), future, size)
        self.sent += size
        await ws.send_str(json.dumps(batch))
        if wait:
            await asyncio.wait_for(future, timeout=60)


async def saturating(specs, seconds):
    sessions = [Session(s) for s in specs]
    stop = time.monotonic() + seconds

    async def body(session, ws):
        while time.monotonic() < stop:
            await session.send(ws, 50)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(s.run(http, body) for s in sessions))
        elapsed = time.perf_counter() - started
    return sessions, elapsed


async def live(specs, seconds, interval, ramp):
    sessions = [Session(s) for s in specs]
    stop = time.monotonic() + ramp + seconds

    async def body(session, ws):
        await asyncio.sleep(random.uniform(0, interval))
        while time.monotonic() < stop:
            begun = time.monotonic()
            asyncio.ensure_future(session.send(ws, 20, suspend_bytes=5000, wait=False))
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - begun)))

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        started = time.perf_counter()
        results = await asyncio.gather(*(s.run(http, body, connect_within=ramp) for s in sessions), return_exceptions=True)
        elapsed = time.perf_counter() - started
    failures = [r for r in results if isinstance(r, BaseException)]
    return sessions, elapsed, failures


def stored(stack, attempts):
    placeholders = ",".join(["%s"] * len(attempts))
    return stack.query(f"SELECT count(*) FROM attempts_elementchange WHERE attempt_id IN ({placeholders})", tuple(attempts))[0][0]


class ConnectionSampler:
    """Samples PostgreSQL's connections from the app (pg_stat_activity) every 0.2 s: the figure the
    deploy's pool sizes and max_connections are set from (spec.connection_budget)."""

    def __init__(self, stack):
        import threading

        self.stack, self.peak, self.peak_active = stack, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psycopg2

        connection = psycopg2.connect(self.stack.database_url)
        connection.autocommit = True
        with connection.cursor() as cursor:
            while not self._stop.wait(0.2):
                cursor.execute("SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
                               "WHERE usename = 'numbas_lti' AND pid <> pg_backend_pid()")
                total, active = cursor.fetchone()
                self.peak, self.peak_active = max(self.peak, total), max(self.peak_active, active)
        connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def report(name, sessions, elapsed, stack, failures=(), steady_from=None, sampler=None):
    latencies = [x * 1000 for s in sessions for x in s.latencies]
    steady = [x * 1000 for s in sessions for x, at in zip(s.latencies, s.sent_at) if steady_from and at >= steady_from]
    sent = sum(s.sent for s in sessions)
    acked = sum(s.acked for s in sessions)
    in_db = stored(stack, [s.spec["attempt"] for s in sessions])
    print(f"{name}: {len(sessions)} sessions for {elapsed:.1f} s")
    print(f"  elements committed/s   {acked / elapsed:,.0f}")
    print(f"  ack latency p50/p99    {statistics.median(latencies):.1f} / {percentile(latencies, 99):.1f} ms "
          f"(max {max(latencies):.1f} ms, {len(latencies)} batches)")
    if steady:
        print(f"  steady state p50/p99   {statistics.median(steady):.1f} / {percentile(steady, 99):.1f} ms "
              f"(batches sent after every session had connected: {len(steady)})")
    print(f"  sent / acked / stored  {sent} / {acked} / {in_db}" + ("   OK" if sent == acked == in_db else "   MISMATCH"))
    if sampler is not None:
        daphnes = sum(1 for n in stack.services if n.startswith("daphne"))
        print(f"  PostgreSQL connections peak {sampler.peak} open, {sampler.peak_active} active at once "
              f"(all processes; {daphnes} daphne, pools {stack.env.get('DB_POOL_SIZE', '10')}"
              f"+{stack.env.get('DB_POOL_MAX_OVERFLOW', '20')} each)")
    if failures:
        print(f"  sessions that failed   {len(failures)}: {failures[:3]}")


def main():
    # The load generator is one Python process holding thousands of sockets: its own GC pauses
    # would show up as ack latency that no browser would see.
    gc.freeze()
    gc.set_threshold(50000, 20, 100)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saturating-sessions", type=int, default=50)
    parser.add_argument("--saturating-seconds", type=float, default=20)
    parser.add_argument("--live-sessions", type=int, default=2000)
    parser.add_argument("--live-seconds", type=float, default=30)
    parser.add_argument("--interval", type=float, default=5)
    parser.add_argument("--ramp", type=float, default=20, help="seconds over which live sessions connect")
    parser.add_argument("--daphnes", type=int, default=2, help="daphne processes (production: 4)")
    parser.add_argument("--nginx", action="store_true", help="websockets through nginx over TLS, not to daphne directly")
    parser.add_argument("--deploy-pools", action="store_true",
                        help="daphne's database pools as the deploy sizes them (spec.connection_budget)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-attempt-data-") as tmp:
        print("setup: starting the production-shaped stack …", flush=True)
        pools = {}
        if args.deploy_pools:  # the pool sizes the deploy gives daphne (spec.connection_budget)
            from numbas_infra import spec

            budget = spec.connection_budget(daphne_replicas=args.daphnes, huey_replicas=1, huey_workers=2)
            pools = {"DB_POOL_SIZE": str(budget.daphne_pool[0]), "DB_POOL_MAX_OVERFLOW": str(budget.daphne_pool[1]),
                     "ATTEMPT_DB_THREADS": str(spec.DAPHNE_DB_THREADS)}
        stack = LocalStack(Path(tmp) / "stack", daphne_replicas=args.daphnes, extra_env=pools).start()
        try:
            stack.manage("ensure_demo_data", "--secret", SECRET)
            route = (f"websockets through nginx (TLS) to daphne × {args.daphnes}" if args.nginx
                     else f"websockets straight to daphne × {args.daphnes}, alternating")
            print(f"setup: {stack.url}; {route}; launching students and opening attempts …", flush=True)
            t0 = time.perf_counter()
            sat_specs = prepare(stack, args.saturating_sessions, "sat", through_nginx=args.nginx)
            live_specs = prepare(stack, args.live_sessions, "live", through_nginx=args.nginx) if args.live_sessions else []
            print(f"setup: {len(sat_specs) + len(live_specs)} students ready in {time.perf_counter() - t0:.0f} s", flush=True)

            try:
                with ConnectionSampler(stack) as sampler:
                    sessions, elapsed = asyncio.run(saturating(sat_specs, args.saturating_seconds))
            except BaseException:
                for log in sorted(stack.logs.glob("daphne*.log")):
                    print(f"--- {log.name}", "".join(log.read_text().splitlines(True)[-40:]), file=sys.stderr)
                raise
            report("(a) saturating, batches of 50", sessions, elapsed, stack, sampler=sampler)
            if live_specs:
                began = time.perf_counter()
                with ConnectionSampler(stack) as sampler:
                    sessions, elapsed, failures = asyncio.run(live(live_specs, args.live_seconds, args.interval, args.ramp))
                report(f"(b) live load, 20 elements (one 5 KB) every {args.interval:.0f} s", sessions, elapsed, stack,
                       failures, steady_from=began + args.ramp + args.interval, sampler=sampler)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
