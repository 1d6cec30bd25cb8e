"""Attempt-data write path: simulated students (no browser) speaking the real websocket
protocol to two daphne processes (no nginx in front: sessions alternate between the two
ports) on PostgreSQL with the Redis channel layer.

    scripts/bench attempt_data [--saturating-sessions 50] [--live-sessions 2000] ...

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
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.attempt_client import Student  # noqa: E402
from tests.support.live import APP, start_live_server  # noqa: E402
from tests.support.net import free_port, wait_for_http  # noqa: E402

SECRET = "bench-secret"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def start_second_daphne(server, log_dir: Path):
    port = free_port()
    log = open(log_dir / "daphne-2.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "numbas_lti.asgi:application"],
        cwd=APP, env=server.env, stdout=log, stderr=subprocess.STDOUT,
    )
    wait_for_http(f"http://127.0.0.1:{port}/health/", timeout=60, process=process)
    return process, f"http://127.0.0.1:{port}"


def prepare(urls: list[str], count: int, prefix: str):
    """Launch `count` students (alternating servers), start and open an attempt for each."""

    def one(i):
        base = urls[i % len(urls)]
        student = Student(base, key="demo", secret=SECRET, user_id=f"{prefix}-{i}").launch()
        attempt_id = student.start_attempt()
        config = student.open_attempt(attempt_id)
        return {"url": student.websocket_url(config), "cookie": student.cookie_header, "origin": base,
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
                                   max_msg_size=0, heartbeat=None) as ws:
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


def stored(server, attempts):
    placeholders = ",".join(["%s"] * len(attempts))
    return server.query(f"SELECT count(*) FROM attempts_elementchange WHERE attempt_id IN ({placeholders})", tuple(attempts))[0][0]


def report(name, sessions, elapsed, server, failures=(), steady_from=None):
    latencies = [x * 1000 for s in sessions for x in s.latencies]
    steady = [x * 1000 for s in sessions for x, at in zip(s.latencies, s.sent_at) if steady_from and at >= steady_from]
    sent = sum(s.sent for s in sessions)
    acked = sum(s.acked for s in sessions)
    in_db = stored(server, [s.spec["attempt"] for s in sessions])
    print(f"{name}: {len(sessions)} sessions for {elapsed:.1f} s")
    print(f"  elements committed/s   {acked / elapsed:,.0f}")
    print(f"  ack latency p50/p99    {statistics.median(latencies):.1f} / {percentile(latencies, 99):.1f} ms "
          f"(max {max(latencies):.1f} ms, {len(latencies)} batches)")
    if steady:
        print(f"  steady state p50/p99   {statistics.median(steady):.1f} / {percentile(steady, 99):.1f} ms "
              f"(batches sent after every session had connected: {len(steady)})")
    print(f"  sent / acked / stored  {sent} / {acked} / {in_db}" + ("   OK" if sent == acked == in_db else "   MISMATCH"))
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
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = start_live_server(Path(tmp), host="127.0.0.1")
        second = None
        try:
            server.manage("ensure_demo_data", "--secret", SECRET)
            second, second_url = start_second_daphne(server, Path(tmp))
            urls = [server.url, second_url]
            print("setup: launching students and opening attempts …", flush=True)
            t0 = time.perf_counter()
            sat_specs = prepare(urls, args.saturating_sessions, "sat")
            live_specs = prepare(urls, args.live_sessions, "live") if args.live_sessions else []
            print(f"setup: {len(sat_specs) + len(live_specs)} students ready in {time.perf_counter() - t0:.0f} s", flush=True)

            try:
                sessions, elapsed = asyncio.run(saturating(sat_specs, args.saturating_seconds))
            except BaseException:
                for log in sorted(Path(tmp).glob("daphne*.log")):
                    print(f"--- {log.name}", "".join(log.read_text().splitlines(True)[-40:]), file=sys.stderr)
                raise
            report("(a) saturating, batches of 50", sessions, elapsed, server)
            if live_specs:
                began = time.perf_counter()
                sessions, elapsed, failures = asyncio.run(live(live_specs, args.live_seconds, args.interval, args.ramp))
                report(f"(b) live load, 20 elements (one 5 KB) every {args.interval:.0f} s", sessions, elapsed, server,
                       failures, steady_from=began + args.ramp + args.interval)
        finally:
            if second is not None:
                second.terminate()
                second.wait(timeout=10)
            server.stop()


if __name__ == "__main__":
    main()
