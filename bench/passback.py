"""Grade passback: N pending grades delivered by one Huey consumer to a local LMS stub that
fails a fraction of requests at random (HTTP 500).

    scripts/bench passback [--grades 10000] [--fail-rate 0.2] [--seed 1] [--max-seconds 180]

It runs on the production-shaped local stack (tests/support/stack.py: PostgreSQL, Redis, the
migrate step, daphne × 4 and nginx, from the deploy's own definitions), with its Huey consumer
(spec.HUEY_COMMAND) started by the benchmark.

Setup (not timed): the stack; one consumer, context and resource;
N students (user, LTI identity, membership with its own lis_result_sourcedid and the stub's
outcome service URL) and N GradeReport rows, pending, due now, score random (4 dp), version 1.
The stub is tests/support/lms_stub.py's CLI (it verifies every OAuth1 signature and body hash);
the worker is the stack's one Huey consumer with the deployed settings.

The consumer is started first and its start-up delivery runs (Huey runs periodic tasks once
when it starts, and grading kicks a run on start-up) are let finish on the empty outbox, then
the grades are written; so the timed run is what a real score change does to an idle
consumer: one `passback_deliver_kick()`, then whatever that run queues, plus the consumer's
own sweep once a minute. --worker-after-grades starts the consumer after the grades instead
(its start-up runs then join the kick, before the clock starts).

The clock starts at the kick and stops when the database shows every grade delivered (polled
every 0.25 s). The PASSBACK_* and HUEY_WORKERS environment variables pass through to the
consumer, e.g. `PASSBACK_CONCURRENCY=32 scripts/bench passback`. scripts/bench's own PostgreSQL and
Redis are not used.

Target: all 10,000 delivered in < 60 s.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app"
sys.path[:0] = [str(REPO), str(REPO / "infra")]
from tests.support.net import free_port, wait_for_http  # noqa: E402
from tests.support.stack import LocalStack  # noqa: E402
from numbas_infra import spec  # noqa: E402

KEY, SECRET = "bench-passback", "bench-passback-secret"
POLL_SECONDS = 0.25


def populate(count: int, outcome_url: str, seed: int) -> None:
    """One consumer, context and resource; `count` students with a pending grade each."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from grading.models import GradeReport, ReportState
    from lms.models import Consumer, Context, LtiIdentity, Resource, ResourceMembership, Role

    User = get_user_model()
    rng = random.Random(seed)
    now = timezone.now()
    batch = 2000
    with transaction.atomic():
        consumer = Consumer.objects.create(name="Bench LMS", key=KEY, secret=SECRET)
        context = Context.objects.create(consumer=consumer, context_id="bench-course", title="Bench course")
        resource = Resource.objects.create(consumer=consumer, context=context, resource_link_id="bench-exam",
                                           title="Bench exam")
        users = User.objects.bulk_create(
            [User(username=f"bench-passback-{i}", password="!") for i in range(count)], batch_size=batch)
        LtiIdentity.objects.bulk_create(
            [LtiIdentity(consumer=consumer, lti_user_id=f"student-{i}", user=u, full_name=f"Student {i}")
             for i, u in enumerate(users)], batch_size=batch)
        memberships = ResourceMembership.objects.bulk_create(
            [ResourceMembership(user=u, resource=resource, role=Role.STUDENT, lti_roles="Learner",
                                lis_result_sourcedid=f"bench-sourcedid-{i}-{uuid.uuid4().hex[:8]}",
                                lis_outcome_service_url=outcome_url, last_launched_at=now)
             for i, u in enumerate(users)], batch_size=batch)
        GradeReport.objects.bulk_create(
            [GradeReport(membership=m, resource=resource, score=round(rng.random(), 4), attempt_number=1,
                         version=1, state=ReportState.PENDING, due_at=now, updated_at=now)
             for m in memberships], batch_size=batch)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of a live process, or {} once it has gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, amount = line.split(":", 1)
                    values[name] = int(amount.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process so far."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_for_log(path: Path, pattern: str, *, timeout: float, process: subprocess.Popen) -> None:
    """Wait until the regular expression `pattern` appears in the log at `path`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{path.read_text()[-3000:]}")
        if re.search(pattern, path.read_text(errors="replace")):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{pattern!r} not seen in {path} within {timeout}s:\n{path.read_text()[-3000:]}")


def stop(process: subprocess.Popen | None, timeout: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grades", type=int, default=10_000)
    parser.add_argument("--fail-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=180, help="give up if not all delivered by then")
    parser.add_argument("--target-seconds", type=float, default=60)
    parser.add_argument("--worker-after-grades", action="store_true",
                        help="start the consumer after writing the grades (its start-up runs join the kick)")
    parser.add_argument("--keep-logs", type=Path, help="copy the consumer's and the stub's logs into this directory")
    parser.add_argument("--dump-batches", type=Path, help="write one CSV line per claim batch here (for analysis)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-passback-") as tmp_name:
        tmp = Path(tmp_name)
        passthrough = {k: v for k, v in os.environ.items() if k.startswith("PASSBACK_") or k == "HUEY_WORKERS"}
        print("setup: starting the production-shaped stack …", flush=True)
        began = time.perf_counter()
        stack = LocalStack(tmp / "stack", huey_replicas=0, extra_env=passthrough).start()
        print(f"setup: stack up in {time.perf_counter() - began:.1f} s (logs in {stack.logs})", flush=True)
        try:
            env = {**stack.env, "DJANGO_SETTINGS_MODULE": "numbas_lti.settings"}
            os.environ.clear()
            os.environ.update(env)  # this process's Django (setup, kick, polling) sees the same settings
            sys.path.insert(0, str(APP))
            try:
                run(args, stack, tmp)
            finally:
                try:
                    from django.db import connections

                    connections.close_all()
                except Exception:  # noqa: BLE001 — Django may not have started
                    pass
        finally:
            stack.stop()


def run(args, stack: LocalStack, tmp: Path) -> None:
    import django
    import redis

    django.setup()
    from django.conf import settings
    from django.db.models import Count, F, Max, Min, Q

    from grading import services
    from grading.models import GradeReport, GradeSend, ReportState, SendOutcome

    stub_port = free_port()
    stub_base = f"http://127.0.0.1:{stub_port}"
    env, redis_url = stack.env, stack.env["REDIS_URL"]
    stub_log, worker_log = tmp / "stub.log", stack.logs / "huey-1.log"
    stub = worker = None
    setup_seconds = 0.0

    def write_grades():
        nonlocal setup_seconds
        print(f"setup: writing {args.grades:,} pending grades …", flush=True)
        began = time.perf_counter()
        populate(args.grades, f"{stub_base}/outcomes", args.seed)
        setup_seconds += time.perf_counter() - began

    def start_worker():
        service = stack.add_huey()
        wait_for_log(worker_log, "Huey consumer started", timeout=60, process=service.process)
        return service.process

    try:
        redis.Redis.from_url(redis_url).flushdb()
        stub = subprocess.Popen(
            [sys.executable, "-m", "tests.support.lms_stub", "--host", "127.0.0.1", "--port", str(stub_port),
             "--key", KEY, "--secret", SECRET, "--fail-rate", str(args.fail_rate), "--seed", str(args.seed)],
            cwd=REPO, env=env, stdout=open(stub_log, "w"), stderr=subprocess.STDOUT,
        )
        wait_for_http(f"{stub_base}/stats", timeout=30, process=stub)
        if args.worker_after_grades:
            write_grades()
            worker = start_worker()
        else:
            worker = start_worker()
            # Huey runs periodic tasks once at start (and grading kicks a run on start-up):
            # let that sweep find the outbox empty.
            wait_for_log(worker_log, r"passback_sweep: \S+ executed in", timeout=30, process=worker)
            write_grades()
        print(f"setup: grades {setup_seconds:.1f} s; stub on {stub_base}, consumer PID {worker.pid}; "
              f"1-min load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (includes this setup; "
              f"other work on the machine skews the figures)",
              flush=True)

        from grading.tasks import passback_deliver_kick

        peak_rss_kb = 0
        delivered = 0
        timeline = []  # (seconds after the kick, delivered, worker CPU s, stub CPU s)
        worker_cpu0, stub_cpu0 = cpu_seconds(worker.pid), cpu_seconds(stub.pid)
        started_wall = time.time()
        started = time.perf_counter()
        passback_deliver_kick()
        deadline = started + args.max_seconds
        while True:
            delivered = GradeReport.objects.filter(state=ReportState.DELIVERED).count()
            timeline.append((time.perf_counter() - started, delivered, cpu_seconds(worker.pid), cpu_seconds(stub.pid)))
            peak_rss_kb = max(peak_rss_kb, proc_status(worker.pid).get("VmRSS", 0))
            if delivered >= args.grades or time.perf_counter() >= deadline:
                break
            if worker.poll() is not None:
                print(f"the Huey consumer exited with {worker.returncode}", file=sys.stderr)
                break
            time.sleep(POLL_SECONDS)
        total = time.perf_counter() - started
        done = delivered >= args.grades
        hwm_kb = proc_status(worker.pid).get("VmHWM", 0)
        worker_cpu, stub_cpu = cpu_seconds(worker.pid) - worker_cpu0, cpu_seconds(stub.pid) - stub_cpu0
        stats = get_json(f"{stub_base}/stats")
    except BaseException:
        for log in (worker_log, stub_log):
            if log.exists():
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-4000:]}", file=sys.stderr)
        raise
    finally:
        if "huey-1" in stack.services:
            stack.services["huey-1"].restart = False  # stopped on purpose: not for the supervisor
        stop(worker)
        stop(stub)
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in (worker_log, stub_log):
                if log.exists():
                    shutil.copy(log, args.keep_logs / log.name)

    # --- figures (the processes have stopped; the database is still there) -----------------
    def after_kick(moment) -> float:
        return moment.timestamp() - started_wall

    sends_by_outcome = dict(GradeSend.objects.values_list("outcome").annotate(n=Count("id")).order_by("outcome"))
    sends_total = sum(sends_by_outcome.values())
    states = dict(GradeReport.objects.values_list("state").annotate(n=Count("id")).order_by("state"))
    wrong_score = GradeReport.objects.filter(state=ReportState.DELIVERED).exclude(sent_score=F("score")).count()
    last_delivered = GradeReport.objects.aggregate(m=Max("delivered_at"))["m"]
    per_report = Counter(GradeSend.objects.values("report_id").annotate(n=Count("id")).values_list("n", flat=True))
    first_sends = list(GradeSend.objects.values("report_id").annotate(first=Min("sent_at"))
                       .values_list("first", flat=True))
    batches = list(GradeSend.objects.values("sent_at")
                   .annotate(n=Count("id"), retries=Count("id", filter=Q(outcome=SendOutcome.RETRY)),
                             longest=Max("duration_ms"))
                   .order_by("sent_at").values_list("sent_at", "n", "retries", "longest"))
    durations = list(GradeSend.objects.values_list("duration_ms", flat=True))
    send_times = [after_kick(t) for t in GradeSend.objects.values_list("sent_at", flat=True)]
    windows = Counter(int(t // 10) for t in send_times)
    worker_text = worker_log.read_text(errors="replace")
    # (task name, id) once each: the consumer may log every line twice (its handler and the root's)
    runs = [name for name, _ in set(re.findall(r"Executing grading\.tasks\.(passback_deliver|passback_sweep): (\S+)",
                                               worker_text))]
    errors = [line for line in worker_text.splitlines() if " ERROR " in line or "Traceback" in line]
    defaults = inspect.signature(services.passback_deliver_due).parameters
    if args.dump_batches:
        with open(args.dump_batches, "w") as out:
            out.write("seconds_after_kick,size,retries,max_duration_ms\n")
            for sent_at, n, retries, longest in batches:
                out.write(f"{after_kick(sent_at):.3f},{n},{retries},{longest}\n")

    requests_sent, accepted = stats.get("requests", 0), stats.get("accepted", 0)
    consumer = settings.HUEY["consumer"]
    print()
    print(f"passback benchmark: {args.grades:,} pending grades, LMS stub failing {args.fail_rate:.0%} of requests "
          f"at random (seed {args.seed}), PostgreSQL, Redis, {os.cpu_count()} CPUs")
    print(f"  stack                {stack.url}: nginx, daphne × {stack.daphne_replicas} (idle), PostgreSQL, Redis")
    print(f"  Huey consumer        1 process ({' '.join(spec.HUEY_COMMAND)}), {consumer['workers']} "
          f"{consumer.get('worker_type', 'thread')} workers (HUEY_WORKERS, default 2); "
          f"started {'after' if args.worker_after_grades else 'before'} the grades were written")
    print(f"  passback settings    PASSBACK_CONCURRENCY={settings.PASSBACK_CONCURRENCY}, "
          f"RETRY_BASE={settings.PASSBACK_RETRY_BASE_SECONDS:g} s, RETRY_MAX={settings.PASSBACK_RETRY_MAX_SECONDS:g} s, "
          f"TIMEOUT={settings.PASSBACK_TIMEOUT_SECONDS:g} s; claim batch {defaults['limit'].default}, "
          f"run budget {defaults['budget_seconds'].default:g} s")
    print(f"  time to deliver all  {total:.1f} s" + ("" if done else f"   (GAVE UP after {args.max_seconds:g} s)"))
    if first_sends and last_delivered:
        print(f"    every grade sent once by {max(after_kick(t) for t in first_sends):.1f} s (first pass); "
              f"last delivered_at {after_kick(last_delivered):.1f} s (retry tail)")
    print(f"  delivered            {delivered:,} / {args.grades:,}   report states {states}")
    print(f"  requests sent        {requests_sent:,} (stub /stats)   {sends_total:,} (GradeSend rows)")
    print(f"  requests / delivered {requests_sent / max(delivered, 1):.3f}   (1 / (1 - fail rate) = "
          f"{1 / (1 - args.fail_rate):.3f})")
    print(f"  throughput           {requests_sent / total:,.0f} requests/s, {delivered / total:,.0f} grades/s; "
          f"requests per 10 s: {[windows[w] for w in range(max(windows, default=-1) + 1)]}")
    print(f"  stub by_outcome      {stats.get('by_outcome')}   accepted {accepted:,}, "
          f"distinct_accepted {stats.get('distinct_accepted', 0):,}")
    print(f"  GradeSend outcomes   {sends_by_outcome}")
    print(f"  sends per grade      {dict(sorted(per_report.items()))}   (sends: grades)")
    if batches:
        gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(batches, batches[1:])]
        print(f"  claim batches        {len(batches)}, mean size {statistics.mean(b[1] for b in batches):.0f}; "
              f"interval p50/p90/max {percentile(gaps, 50) * 1000:.0f} / {percentile(gaps, 90) * 1000:.0f} / "
              f"{max(gaps, default=0) * 1000:.0f} ms; delivery task runs {dict(Counter(runs))}")
    if durations:
        print(f"  send duration        p50 {percentile(durations, 50)} ms, p99 {percentile(durations, 99)} ms, "
              f"max {max(durations)} ms (signing + HTTP round trip, measured in the worker)")
    usage = []  # per 10 s window: worker and stub CPU, as a share of one CPU
    for w in range(int(total // 10) + 1):
        inside = [p for p in timeline if w * 10 <= p[0] <= (w + 1) * 10]
        if len(inside) >= 2 and inside[-1][0] > inside[0][0]:
            span = inside[-1][0] - inside[0][0]
            usage.append(f"{(inside[-1][2] - inside[0][2]) / span:.0%}/{(inside[-1][3] - inside[0][3]) / span:.0%}")
    print(f"  CPU per 10 s         worker/stub: {', '.join(usage)}")
    print(f"  CPU while timed      worker {worker_cpu:.1f} s ({worker_cpu / total:.0%} of one CPU), "
          f"stub {stub_cpu:.1f} s ({stub_cpu / total:.0%})")
    print(f"  worker peak RSS      {hwm_kb / 1024:.1f} MB (VmHWM; highest sampled VmRSS {peak_rss_kb / 1024:.1f} MB)")
    if errors:
        print(f"  worker errors        {len(errors)}, e.g. {errors[0][:200]}")

    checks = {
        "all delivered": done and states.get(ReportState.DELIVERED, 0) == args.grades,
        "GradeSend delivered == N": sends_by_outcome.get(SendOutcome.DELIVERED, 0) == args.grades,
        "stub distinct_accepted == N": stats.get("distinct_accepted") == args.grades,
        "stub accepted == N (none twice)": accepted == args.grades,
        "stub requests == GradeSend rows": requests_sent == sends_total,
        "no request rejected (OAuth)": stats.get("by_outcome", {}).get("rejected", 0) == 0,
        "sent_score == score": wrong_score == 0,
    }
    failed = [name for name, ok in checks.items() if not ok]
    print("  checks               " + (f"all OK ({', '.join(checks)})" if not failed else f"FAILED: {failed}"))
    met = done and total < args.target_seconds
    print(f"  target < {args.target_seconds:g} s        {'MET' if met else 'MISSED'} ({total:.1f} s)")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
