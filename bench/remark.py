"""Re-mark all attempts of the demo exam through the real page, in headless Chromium, against
one live daphne on PostgreSQL.

    scripts/bench remark [--attempts 1000] [--max-seconds 900]

Setup (not timed): a fresh database, migrated, with the demo resource and exam; N students'
finished attempts stored as the demo exam stores them (parts, questions, total, suspend data
with the answers), half of them with a part marked wrongly, so that the exam's marking changes
them. Timed: an instructor (launched over LTI in Chromium) starts "Re-mark all attempts" and the
page marks every attempt — each loaded into the exam on the exam-content origin, marked by the
exam's own code, and sent back at once (the page runs two marking frames side by side) — until
the preview shows. Printed: attempts/s, the
attempts that would change (checked: exactly the wrongly marked half), and peak RSS of the
browser's processes (summed, sampled every 0.2 s) and of the server (VmHWM). Bounded by
--attempts (at most 5,000) and --max-seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "infra")]
from tests.support.attempt_page import DEMO_SECRET, launch_instructor  # noqa: E402
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.live import start_live_server  # noqa: E402

MAX_ATTEMPTS = 5000

# Run inside the server's environment (manage.py shell): N finished attempts on the demo exam.
POPULATE = r"""
import json
from django.contrib.auth import get_user_model
from django.utils import timezone
from attempts.models import Attempt, Batch, Element, ElementChange
from exams.selectors import exam_current
from lms.models import Resource, ResourceMembership

N = {n}
resource = Resource.objects.get(resource_link_id="demo-exam")
exam = exam_current(resource_id=resource.pk)
User = get_user_model()
users = User.objects.bulk_create(User(username=f"bench-remark-{{i}}", first_name="Bench", last_name=str(i))
                                 for i in range(N))
ResourceMembership.objects.bulk_create(ResourceMembership(user=u, resource=resource, role="student",
                                                          last_launched_at=timezone.now()) for u in users)
now = timezone.now()
attempts = Attempt.objects.bulk_create(Attempt(resource=resource, user=u, exam=exam, number=1, ended_at=now,
                                               completion_status="completed", score_raw=0, score_max=4)
                                       for u in users)
PARTS = [("q0p0", 0, "4", 1), ("q0p1", 0, "42", 1), ("q1p0", 1, "11", 2)]
batches = Batch.objects.bulk_create(Batch(attempt=a, batch_id="bench", content_hash="0" * 64, element_count=0,
                                          received_at=now) for a in attempts)
changes, elements = [], []
for i, (attempt, batch) in enumerate(zip(attempts, batches)):
    answers = {{"q0p0": "4", "q0p1": "42", "q1p0": "13"}}
    scores = {{"q0p0": 1, "q0p1": 1, "q1p0": 0}}
    if i % 2:  # marked by a faulty version that took 41 for 6 x 7: the student's 42 got nothing
        scores["q0p1"] = 0
    values = {{"cmi.completion_status": "completed", "cmi.score.min": "0", "cmi.score.max": "4",
              "cmi.suspend_data": json.dumps({{"answers": answers, "started": 0}}), "cmi.exit": "normal"}}
    for index, (pid, q, answer, marks) in enumerate(PARTS):
        values.update({{f"cmi.interactions.{{index}}.id": pid, f"cmi.interactions.{{index}}.objectives.0.id": f"q{{q}}",
                       f"cmi.interactions.{{index}}.weighting": str(marks), f"cmi.interactions.{{index}}.type": "numeric",
                       f"cmi.interactions.{{index}}.learner_response": answers[pid],
                       f"cmi.interactions.{{index}}.result": str(scores[pid])}})
    for q, (qid, parts) in enumerate((("q0", ["q0p0", "q0p1"]), ("q1", ["q1p0"]))):
        raw = sum(scores[p] for p in parts)
        values.update({{f"cmi.objectives.{{q}}.id": qid, f"cmi.objectives.{{q}}.score.raw": str(raw),
                       f"cmi.objectives.{{q}}.score.max": str(2)}})
    total = sum(scores.values())
    values.update({{"cmi.score.raw": str(total), "cmi.score.scaled": str(total / 4)}})
    for seq, (key, value) in enumerate(sorted(values.items()), start=1):
        changes.append(ElementChange(attempt=attempt, key=key, value=value, sequence=seq, batch=batch))
        elements.append(Element(attempt=attempt, key=key, value=value, sequence=seq))
    Attempt.objects.filter(pk=attempt.pk).update(score_raw=total, score_scaled=total / 4)
ElementChange.objects.bulk_create(changes, batch_size=5000)
Element.objects.bulk_create(elements, batch_size=5000)
print(json.dumps({{"attempts": len(attempts), "elements": len(elements)}}))
"""


def proc_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def browser_pids() -> list[int]:
    pids = []
    for pid in descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"chromium" in cmdline.read().split(b"\0")[0]:
                    pids.append(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


class Sampler(threading.Thread):
    """The highest sum of the browser processes' RSS, sampled every 0.2 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_kb = 0
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.2):
            self.peak_kb = max(self.peak_kb, sum(proc_kb(pid, "VmRSS") for pid in browser_pids()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    if not 1 <= args.attempts <= MAX_ATTEMPTS:
        parser.error(f"--attempts must be between 1 and {MAX_ATTEMPTS}")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("run it with scripts/bench remark (PostgreSQL)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-remark-") as tmp:
        server = start_live_server(Path(tmp))
        try:
            server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
            made = json.loads(server.manage("shell", "-c", POPULATE.format(n=args.attempts)).strip().splitlines()[-1])
            print(f"setup: {made['attempts']} finished attempts ({made['elements']} stored values) on the demo exam")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                launch_instructor(page, server.url, "bench-remark-teacher")
                page.goto(page.url.split("/instructor/")[0] + "/instructor/remark/")
                sampler = Sampler()
                sampler.start()
                started = time.perf_counter()
                page.get_by_test_id("start").click()
                page.get_by_test_id("summary").wait_for(timeout=args.max_seconds * 1000)
                elapsed = time.perf_counter() - started
                sampler.stopped.set()
                sampler.join()
                summary = page.get_by_test_id("summary").inner_text()
                browser.close()
            [(marked, changed, failed)] = server.query(
                "SELECT count(*) FILTER (WHERE status = 'marked'), count(*) FILTER (WHERE changed), "
                "count(*) FILTER (WHERE status = 'failed') FROM remarking_remarkitem")
            errors = server.query("SELECT error, count(*) FROM remarking_remarkitem WHERE error <> '' GROUP BY error")
            server_hwm_kb = proc_kb(server.process.pid, "VmHWM")
        finally:
            server.stop()
    print(f"re-marked {marked} attempts in {elapsed:.1f} s: {marked / elapsed:.1f} attempts/s "
          f"(through the page: its marking frames side by side, each attempt loaded into the exam afresh)")
    print(f"  would change          {changed} (expected {args.attempts // 2}); could not be marked: {failed}")
    print(f"  page says             {summary}")
    print(f"  browser peak RSS      {sampler.peak_kb / 1024:.0f} MB (all Chromium processes, summed)")
    print(f"  server peak RSS       {server_hwm_kb / 1024:.0f} MB (daphne, VmHWM)")
    for error, count in errors:
        print(f"  {count} x {error}")
    ok = marked == args.attempts and changed == args.attempts // 2 and failed == 0
    print("OK" if ok else "FAILED: not every attempt was marked as expected")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
