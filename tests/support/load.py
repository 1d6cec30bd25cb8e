"""Students on flaky connections, for the fault and rolling-upgrade tests: each keeps sending
batches of attempt data over the websocket (through nginx), keeps every unacknowledged batch and
re-sends it after a reconnect or when it waits too long — as the attempt page does with
localStorage."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import aiohttp
import requests

from tests.support.attempt_client import Student, batch
from tests.support.attempt_page import DEMO_SECRET


@dataclass
class LoadSession:
    url: str
    cookie: str
    origin: str
    token: str
    attempt: int
    sequence: int = 1
    batches: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (message, changes)
    sent_at: dict[str, float] = field(default_factory=dict)
    acked: set = field(default_factory=set)
    ack_times: list[float] = field(default_factory=list)
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    # The same events, told apart: a connection that never became ready (with the HTTP status of
    # a refused handshake), an established one that ended without our asking (with its close
    # code), an error the server answered in-band, and batches sent again after a reconnect.
    connect_failures: list[str] = field(default_factory=list)
    closes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    resent: int = 0
    already_stored: int = 0  # acknowledged with "stored": false (sent again after its commit)

    @property
    def unacked(self) -> list[str]:
        return [b for b in self.batches if b not in self.acked]

    @property
    def changes_sent(self) -> int:
        return sum(size for _, size in self.batches.values())

    def new_batch(self, size: int) -> str:
        batch_id = uuid.uuid4().hex
        changes = [{"seq": self.sequence + i, "key": f"cmi.interactions.{i % 20}.learner_response",
                    "value": str(random.randint(0, 10**6)), "t": int(time.time() * 1000)} for i in range(size)]
        self.sequence += size
        message = json.dumps({"type": "batch", "batch": batch_id, "token": self.token, "changes": changes,
                              "terminate": False})
        self.batches[batch_id] = (message, size)
        return batch_id

    async def run(self, http: aiohttp.ClientSession, *, stop, interval: float, size: int,
                  drain_seconds: float = 120, pause=None) -> None:
        """Until `stop` is set (then until everything is acknowledged, within drain_seconds).
        While `pause` is set no new answers are made, but unacknowledged ones are still sent:
        the fault test uses it to let every session catch up before it counts."""
        paused = (lambda: pause.is_set()) if pause is not None else (lambda: False)
        await asyncio.sleep(random.uniform(0, interval))
        next_batch = time.monotonic()
        drain_until = None
        while True:
            if stop.is_set():
                drain_until = drain_until or time.monotonic() + drain_seconds
                if not self.unacked or time.monotonic() > drain_until:
                    return
            ws, connected = None, False
            try:
                async with http.ws_connect(self.url, headers={"Cookie": self.cookie, "Origin": self.origin},
                                           ssl=False, heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
                    ready = await ws.receive(timeout=30)
                    if ready.type != aiohttp.WSMsgType.TEXT or json.loads(ready.data).get("type") != "ready":
                        raise ConnectionError(f"not ready: {ready.type} {ready.data!r}"[:200])
                    connected = True
                    if self.reconnects:
                        self.resent += len(self.unacked)
                    for batch_id in self.unacked:  # what the page kept in localStorage
                        await self._send(ws, batch_id)
                    reader = asyncio.ensure_future(self._read(ws))
                    try:
                        while not reader.done():
                            now = time.monotonic()
                            if stop.is_set():
                                drain_until = drain_until or now + drain_seconds
                                if not self.unacked or now > drain_until:
                                    return
                            elif paused():
                                next_batch = now + random.uniform(0, interval)
                            elif now >= next_batch:
                                await self._send(ws, self.new_batch(size))
                                next_batch = now + interval
                            for batch_id in self.unacked:  # no answer for a while: send again
                                if now - self.sent_at.get(batch_id, now) > 10:
                                    await self._send(ws, batch_id)
                            await asyncio.sleep(0.2)
                    finally:
                        reader.cancel()
                    self.closes.append(f"closed {ws.close_code}")
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, OSError) as error:
                self.errors.append(type(error).__name__)
                if connected:
                    self.closes.append(f"{type(error).__name__} {ws.close_code if ws is not None else ''}".strip())
                else:
                    status = getattr(error, "status", "")
                    self.connect_failures.append(f"{type(error).__name__} {status}".strip())
            self.reconnects += 1
            while not stop.is_set() and not paused() and time.monotonic() >= next_batch:  # answers keep coming offline
                self.new_batch(size)
                next_batch += interval
            await asyncio.sleep(random.uniform(0.5, 2.0))

    async def _send(self, ws, batch_id: str) -> None:
        self.sent_at[batch_id] = time.monotonic()
        await ws.send_str(self.batches[batch_id][0])

    async def _read(self, ws) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if data.get("type") == "ack":
                if data.get("stored") is False:
                    self.already_stored += 1
                if data["batch"] not in self.acked:
                    self.acked.add(data["batch"])
                    self.ack_times.append(time.monotonic())
            elif data.get("type") == "error":
                self.errors.append(data.get("code", "error"))
                self.refusals.append(data.get("code", "error"))
                if data.get("code") == "unavailable" and data.get("batch") in self.sent_at:
                    self.sent_at[data["batch"]] = time.monotonic() - 8  # as the page does: again in ~2 s


def ack_gaps(sessions: list[LoadSession], start: float, end: float) -> float:
    """The longest time without any acknowledgement (across all sessions) between start and end."""
    times = sorted(t for s in sessions for t in s.ack_times if start <= t <= end)
    if not times:
        return end - start
    edges = [start, *times, end]
    return max(b - a for a, b in zip(edges, edges[1:]))


# --- on the production-shaped stack (tests/support/stack.py), with its demo activity ---------------
def stack_student(stack, user_id: str, **launch_overrides) -> Student:
    """A student launched into the stack's demo activity over HTTPS (its throwaway certificate)."""
    s = Student(stack.url, key="demo", secret=DEMO_SECRET, user_id=user_id, launch_overrides=launch_overrides)
    s.http.verify, s.http.trust_env = False, False
    return s.launch()


def prepare_sessions(stack, count: int, prefix: str) -> list[LoadSession]:
    """`count` students, each with an attempt started and taken over, ready to send over the websocket."""
    def one(i):
        s = stack_student(stack, f"{prefix}-{i}")
        attempt_id = s.start_attempt()
        config = s.open_attempt(attempt_id)
        return LoadSession(url=s.websocket_url(config), cookie=s.cookie_header, origin=stack.url,
                           token=config["token"], attempt=attempt_id)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def store_counts(stack, sessions: list[LoadSession]) -> dict[int, tuple[int, int]]:
    """Per attempt: history rows stored, and distinct sequence numbers among them."""
    attempts = tuple(s.attempt for s in sessions)
    placeholders = ",".join(["%s"] * len(attempts))
    rows = stack.query(
        f"SELECT attempt_id, count(*), count(DISTINCT sequence) FROM attempts_elementchange "
        f"WHERE attempt_id IN ({placeholders}) GROUP BY attempt_id", attempts)
    return {a: (n, distinct) for a, n, distinct in rows}


def per_session_gap(sessions: list[LoadSession], start: float, end: float) -> tuple[float, float]:
    """For each session, the longest wait between acknowledgements in [start, end]; max and p95."""
    gaps = []
    for s in sessions:
        times = [t for t in s.ack_times if start <= t <= end]
        edges = [start, *times, end]
        gaps.append(max(b - a for a, b in zip(edges, edges[1:])))
    gaps.sort()
    return round(gaps[-1], 2), round(gaps[int(0.95 * (len(gaps) - 1))], 2)


def complete_attempt(grader, attempt_id, config, raw, *, within=90.0) -> dict:
    """The grader's last batch (completion and a score), posted over HTTPS as the page's fallback
    does: the same batch again until it is acknowledged. Returns the statuses seen."""
    message = batch(config["token"], [("cmi.score.raw", str(raw)), ("cmi.score.max", "4"),
                                      ("cmi.completion_status", "completed"), ("cmi.exit", "normal")],
                    1, terminate=True)
    statuses, deadline = [], time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            statuses.append(grader.post_batch(attempt_id, message).status_code)
        except requests.RequestException as error:
            statuses.append(type(error).__name__)
        if statuses[-1] == 200:
            break
        time.sleep(1)
    return {"statuses": sorted(set(map(str, statuses))), "tries": len(statuses), "acknowledged": statuses[-1] == 200}
