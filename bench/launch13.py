"""LTI 1.3 launch latency beside LTI 1.1, against one real daphne process on PostgreSQL.

Run with scripts/bench launch13 [--launches N] [--concurrency C]. An LTI 1.3 launch is two
requests to the tool: the OIDC login (the tool records a state and nonce and redirects to the
platform) and the launch (the platform's signed id_token: signature against the platform's
keyset — fetched once, then cached —, claims, deployment, the one-time state, then the same
writes as a 1.1 launch). The stand-in platform (tests/support/lti13_platform.py) answers the
authentication requests in-process between the two, outside the timings. Every launch is a
distinct user. The 1.1 launches are signed beforehand and sent the same way, for comparison.
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
from bench.launch import percentile  # noqa: E402
from tests.support import lms as test_lms  # noqa: E402
from tests.support.live import start_live_server  # noqa: E402
from tests.support.lti13_platform import ROLE_LEARNER, Lti13Platform  # noqa: E402


async def launches_13(server_url: str, lms: Lti13Platform, count: int, concurrency: int, max_seconds: float):
    """`count` 1.3 launches by `concurrency` clients: (login ms, launch ms, total ms, statuses, seconds)."""
    login_ms, launch_ms, total_ms, statuses = [], [], [], {}
    numbers = list(range(count))
    deadline = time.monotonic() + max_seconds

    async def worker():
        # each client is a browser: its own cookie jar (the state cookie)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            while numbers and time.monotonic() < deadline:
                n = numbers.pop()
                prepared = lms.prepare_launch(sub=f"bench13-user-{n}-{time.monotonic_ns()}", roles=[ROLE_LEARNER],
                                              context={"id": "bench-course"},
                                              resource_link={"id": f"bench13-res-{n % 50}", "title": "Bench"})
                login = prepared.login_request()
                started = time.perf_counter()
                async with session.post(login.url, data=login.params, allow_redirects=False) as answer:
                    await answer.read()
                    location = answer.headers.get("Location", "")
                logged_in = time.perf_counter()
                if answer.status != 302:
                    statuses[f"login {answer.status}"] = statuses.get(f"login {answer.status}", 0) + 1
                    continue
                # the platform's part runs in a thread, not in the event loop timing the tool's answers
                redirect_uri, fields = await asyncio.get_running_loop().run_in_executor(None, lms.authorize_url,
                                                                                         location)
                sent = time.perf_counter()
                async with session.post(redirect_uri, data=fields, allow_redirects=False) as answer:
                    await answer.read()
                done = time.perf_counter()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                login_ms.append((logged_in - started) * 1000)
                launch_ms.append((done - sent) * 1000)
                total_ms.append((logged_in - started + done - sent) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return login_ms, launch_ms, total_ms, statuses, time.perf_counter() - started


async def launches_11(url: str, bodies: list[dict], concurrency: int, max_seconds: float):
    latencies, statuses, queue = [], {}, list(reversed(bodies))
    deadline = time.monotonic() + max_seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker():
            while queue and time.monotonic() < deadline:
                body = queue.pop()
                started = time.perf_counter()
                async with session.post(url, data=body, allow_redirects=False) as answer:
                    await answer.read()
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, statuses, time.perf_counter() - started


def line(name: str, ms: list[float]) -> str:
    return f"  {name:<22}p50 {statistics.median(ms):6.1f} ms   p99 {percentile(ms, 99):6.1f} ms   max {max(ms):6.1f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, Lti13Platform(client_id="bench-tool", deployment_id="bench-dep") as lms:
        server = start_live_server(Path(tmp), host="127.0.0.1")
        try:
            server.manage("create_lti_consumer", "--key", "bench", "--secret", "bench-secret")
            server.manage("lti13_platform", "--issuer", lms.issuer, "--client-id", "bench-tool", "--name", "Bench LMS",
                          "--auth-login-url", lms.auth_url, "--token-url", lms.token_url,
                          "--keyset-url", lms.jwks_url, "--deployment-id", "bench-dep")
            launch_url = f"{server.url}/lti13/launch/"
            lms.register_tool(login_url=f"{server.url}/lti13/login/", redirect_uris=[launch_url],
                              jwks_url=f"{server.url}/lti13/jwks/")
            asyncio.run(launches_13(server.url, lms, args.warmup, args.concurrency, args.max_seconds))
            fetches_after_warmup = lms.jwks_fetches
            login_ms, launch_ms, total_ms, statuses13, elapsed13 = asyncio.run(
                launches_13(server.url, lms, args.launches, args.concurrency, args.max_seconds))
            url11 = f"{server.url}/lti/launch/"
            bodies = [test_lms.sign(test_lms.launch_params(user_id=f"bench11-user-{i}",
                                                           resource_link_id=f"bench11-res-{i % 50}"),
                                    key="bench", secret="bench-secret", url=url11)
                      for i in range(args.warmup + args.launches)]
            asyncio.run(launches_11(url11, bodies[: args.warmup], args.concurrency, args.max_seconds))
            ms11, statuses11, elapsed11 = asyncio.run(
                launches_11(url11, bodies[args.warmup:], args.concurrency, args.max_seconds))
        finally:
            server.stop()

    print(f"LTI launch latency: 1 daphne process, PostgreSQL, {args.concurrency} concurrent clients, distinct users")
    print(f"LTI 1.3: {len(total_ms)} launches in {elapsed13:.1f} s, answers {statuses13}, "
          f"platform keyset fetched {lms.jwks_fetches} time(s) ({fetches_after_warmup} during warm-up)")
    print(line("login (OIDC start)", login_ms))
    print(line("launch (id_token)", launch_ms))
    print(line("login + launch", total_ms))
    print(f"  throughput            {len(total_ms) / elapsed13:.0f} launches/s (platform time included)")
    print(f"LTI 1.1: {len(ms11)} launches in {elapsed11:.1f} s, answers {statuses11}")
    print(line("launch", ms11))
    print(f"  throughput            {len(ms11) / elapsed11:.0f} launches/s")
    if set(statuses13) != {302} or set(statuses11) != {302}:
        sys.exit("some launches were not accepted")


if __name__ == "__main__":
    main()
