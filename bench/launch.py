"""LTI 1.1 launch throughput and latency against one real daphne process on PostgreSQL.

Run with scripts/bench launch [--launches N] [--concurrency C]. Every launch is a distinct user
(so each creates a user, identity and membership), signed beforehand by an independent
consumer, and sent by C concurrent clients that each wait for the previous answer. A launch
counts as done when daphne answers 302 (the redirect to the resource page).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "infra")]
from tests.support import lms as test_lms  # noqa: E402
from tests.support.live import start_live_server  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def fire(url: str, bodies: list[dict | None], concurrency: int, max_seconds: float):
    """Send each body (None: a GET) with `concurrency` clients that wait for each answer."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(reversed(bodies))
    deadline = time.monotonic() + max_seconds
    connector = aiohttp.TCPConnector(limit=concurrency)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker():
            while queue and time.monotonic() < deadline:
                body = queue.pop()
                started = time.perf_counter()
                send = session.get(url) if body is None else session.post(url, data=body, allow_redirects=False)
                async with send as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)
                statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, statuses, elapsed


async def fire_at_rate(url: str, bodies: list[dict], rate: float):
    """Open loop: start one launch every 1/rate seconds whatever the answers (an LMS class
    arriving), and time each."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(body):
            started = time.perf_counter()
            async with session.post(url, data=body, allow_redirects=False) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            statuses[response.status] = statuses.get(response.status, 0) + 1

        tasks = []
        t0 = time.perf_counter()
        for i, body in enumerate(bodies):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)
    return latencies, statuses


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--rate", type=float, default=40, help="launches/s for the open-loop run")
    parser.add_argument("--rate-seconds", type=float, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = start_live_server(Path(tmp), host="127.0.0.1")
        try:
            server.manage("create_lti_consumer", "--key", "bench", "--secret", "bench-secret")
            url = f"{server.url}/lti/launch/"
            open_loop = int(args.rate * args.rate_seconds)
            total = args.warmup + args.launches + open_loop
            bodies = [
                test_lms.sign(
                    test_lms.launch_params(user_id=f"bench-user-{i}", resource_link_id=f"bench-res-{i % 50}"),
                    key="bench",
                    secret="bench-secret",
                    url=url,
                )
                for i in range(total)
            ]
            asyncio.run(fire(url, bodies[: args.warmup], args.concurrency, args.max_seconds))
            latencies, statuses, elapsed = asyncio.run(
                fire(url, bodies[args.warmup : args.warmup + args.launches], args.concurrency, args.max_seconds)
            )
            rate_latencies, rate_statuses = asyncio.run(
                fire_at_rate(url, bodies[args.warmup + args.launches :], args.rate)
            )
            # The floor: the same daphne serving a page that does no database work at all.
            floor_url = f"{server.url}/lti/config.xml"
            asyncio.run(fire(floor_url, [None] * args.warmup, args.concurrency, args.max_seconds))
            floor, _, floor_elapsed = asyncio.run(
                fire(floor_url, [None] * args.launches, args.concurrency, args.max_seconds)
            )
        finally:
            server.stop()

    ms = [x * 1000 for x in latencies]
    print(f"launch benchmark: 1 daphne process, PostgreSQL, {args.concurrency} concurrent clients")
    print(f"  launches sent     {len(ms)} (distinct users), answers {dict(sorted(statuses.items()))}")
    print(f"  throughput        {len(ms) / elapsed:.0f} launches/s over {elapsed:.1f} s")
    print(f"  latency p50       {statistics.median(ms):.1f} ms")
    print(f"  latency p90       {percentile(ms, 90):.1f} ms")
    print(f"  latency p99       {percentile(ms, 99):.1f} ms")
    print(f"  latency max       {max(ms):.1f} ms")
    rate_ms = [x * 1000 for x in rate_latencies]
    print(f"open loop: {args.rate:.0f} launches/s for {args.rate_seconds:.0f} s, answers {rate_statuses}")
    print(f"  latency p50/p99   {statistics.median(rate_ms):.1f} / {percentile(rate_ms, 99):.1f} ms")
    floor_ms = [x * 1000 for x in floor]
    print(f"floor (GET /lti/config.xml, no database work, same daphne and concurrency)")
    print(f"  throughput        {len(floor_ms) / floor_elapsed:.0f} requests/s")
    print(f"  latency p50/p99   {statistics.median(floor_ms):.1f} / {percentile(floor_ms, 99):.1f} ms")
    if statuses.keys() != {302} or rate_statuses.keys() != {302}:
        sys.exit("some launches were not accepted")


if __name__ == "__main__":
    main()
