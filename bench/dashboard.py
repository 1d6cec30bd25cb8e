"""Instructor pages of one big resource: server time and queries per page — on PostgreSQL.

    scripts/bench dashboard [--students 5000] [--attempts 20000] [--questions 6] [--requests 20]
                            [--remarked N] [--discount]

Setup (not timed): a fresh database, migrated; `populate()` creates one resource whose exam has
Q questions, S students who launched it and A attempts among them (spread over 60 days, most
completed), every attempt with what Numbas stores — cmi.score.*, per question
cmi.objectives.N.* and one interaction per question, a 5 KB suspend_data — bulk-inserted with
COPY, then VACUUM ANALYZE. An instructor of the resource then requests each page in PAGES with
Django's test Client (in this process, so the time is the server's: middleware, views, queries,
templates): warm-up requests first, then N timed ones. Target: every page < 300 ms (p95).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "app"), str(REPO / "infra")]

TARGET_MS = 300.0


def _copy(cursor, table: str, columns: list[str], rows) -> int:
    """COPY rows (tuples; None for NULL) into `table` in pieces of 50,000 rows."""
    count, buffer = 0, io.StringIO()
    writer = csv.writer(buffer)

    def flush():
        buffer.seek(0)
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)
        buffer.seek(0)
        buffer.truncate()

    for row in rows:
        writer.writerow(["\\N" if v is None else v for v in row])
        count += 1
        if count % 50_000 == 0:
            flush()
    flush()
    return count


def populate(resource_students: int = 5000, attempts: int = 20000, *, questions: int = 6, seed: int = 1) -> dict:
    """One resource with `resource_students` students and `attempts` attempts spread among them,
    in the configured database (PostgreSQL: it uses COPY). Returns the resource's id, its
    instructor's user id and how many rows were made."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from exams.models import ExamPackage
    from lms.models import Consumer, Context, Resource, ResourceMembership

    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:8]
    consumer = Consumer.objects.create(name=f"Bench {tag}", key=f"bench-{tag}", secret="bench-secret")
    context = Context.objects.create(consumer=consumer, context_id=f"course-{tag}", title="Bench course")
    resource = Resource.objects.create(consumer=consumer, resource_link_id=f"res-{tag}", context=context,
                                       title="Bench exam")
    structure = [{"name": f"Bench question {i + 1}", "marks": 2, "parts": [{"type": "numberentry", "marks": 2}]}
                 for i in range(questions)]
    exam = ExamPackage.objects.create(resource=resource, version=1, title="Bench exam", launch_href="index.html",
                                      structure=structure, directory=uuid.uuid4().hex, file_count=1,
                                      expanded_bytes=1, sha256="0" * 64)
    teacher = get_user_model().objects.create(username=f"bench-teacher-{tag}", first_name="Bench", last_name="Teacher")
    ResourceMembership.objects.create(user=teacher, resource=resource, role="instructor",
                                      last_launched_at=timezone.now())

    now = timezone.now()
    start = now - datetime.timedelta(days=60)
    stamp = now.isoformat()
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # the driver's cursor, for COPY
        _copy(cursor, "auth_user",
              ["username", "password", "first_name", "last_name", "email", "is_staff", "is_active", "is_superuser",
               "date_joined"],
              ((f"bench-{tag}-{i}", "!", "Student", f"Number{i}", f"s{i}@example.ac.uk", "f", "t", "f", stamp)
               for i in range(resource_students)))
        cursor.execute("SELECT id FROM auth_user WHERE username LIKE %s ORDER BY id", [f"bench-{tag}-%"])
        users = [r[0] for r in cursor.fetchall()]
        _copy(cursor, "lms_resourcemembership",
              ["user_id", "resource_id", "role", "lti_roles", "lis_result_sourcedid", "lis_outcome_service_url",
               "return_url", "first_launched_at", "last_launched_at", "lti_version", "ags_lineitem_url",
               "ags_lineitems_url", "ags_scopes", "custom"],
              ((uid, resource.pk, "student", "Learner", f"src-{uid}", "", "", stamp, stamp, "1.1", "", "", "", "{}")
               for uid in users))

        # Attempts go round the students: with 20,000 for 5,000 students, four each.
        owners = [users[i % len(users)] for i in range(attempts)] if users else []
        numbers: dict[int, int] = {}
        attempt_rows, scores = [], []
        for uid in owners:
            numbers[uid] = numbers.get(uid, 0) + 1
            begun = start + datetime.timedelta(seconds=rng.uniform(0, 60 * 86400))
            completed = rng.random() < 0.85
            marks = [rng.choice((0, 1, 2, 2)) for _ in range(questions)]
            scaled = sum(marks) / (2 * questions) if questions else None
            ended = (begun + datetime.timedelta(minutes=rng.uniform(5, 90))).isoformat() if completed else None
            scores.append(marks)
            attempt_rows.append((resource.pk, uid, str(exam.pk), numbers[uid], begun.isoformat(), ended,
                                 "completed" if completed else "incomplete", "unknown", sum(marks), 2 * questions,
                                 scaled, "", "f"))
        _copy(cursor, "attempts_attempt",
              ["resource_id", "user_id", "exam_id", "number", "started_at", "ended_at", "completion_status",
               "success_status", "score_raw", "score_max", "score_scaled", "writer_token", "late"], attempt_rows)
        cursor.execute("SELECT id FROM attempts_attempt WHERE resource_id = %s ORDER BY id", [resource.pk])
        attempt_ids = [r[0] for r in cursor.fetchall()]
        suspend = json.dumps({"bench": "x" * 5000})

        def elements():
            for attempt_id, marks, row in zip(attempt_ids, scores, attempt_rows):
                values = [("cmi.completion_status", row[6]), ("cmi.suspend_data", suspend), ("cmi.location", "3"),
                          ("cmi.score.raw", str(row[8])), ("cmi.score.max", str(row[9])),
                          ("cmi.score.scaled", str(row[10])), ("cmi.objectives._count", str(questions))]
                for q, mark in enumerate(marks):
                    values += [(f"cmi.objectives.{q}.id", f"q{q}"), (f"cmi.objectives.{q}.score.raw", str(mark)),
                               (f"cmi.objectives.{q}.score.max", "2"), (f"cmi.objectives.{q}.score.min", "0"),
                               (f"cmi.objectives.{q}.success_status", "unknown"),
                               (f"cmi.objectives.{q}.completion_status", "completed"),
                               (f"cmi.interactions.{q}.id", f"q{q}p0"), (f"cmi.interactions.{q}.result", str(mark)),
                               (f"cmi.interactions.{q}.weighting", "2"),
                               (f"cmi.interactions.{q}.objectives.0.id", f"q{q}"),
                               (f"cmi.interactions.{q}.learner_response", str(rng.randint(0, 10**6)))]
                for sequence, (key, value) in enumerate(values, 1):
                    yield attempt_id, key, value, sequence

        element_rows = _copy(cursor, "attempts_element", ["attempt_id", "key", "value", "sequence"], elements())
        # What the app records when an attempt ends (grading.services.question_scores_record).
        _copy(cursor, "grading_attemptquestionscore", ["attempt_id", "resource_id", "question_id", "raw", "max"],
              ((attempt_id, resource.pk, f"q{q}", mark, 2)
               for attempt_id, marks, row in zip(attempt_ids, scores, attempt_rows)
               if row[5] is not None for q, mark in enumerate(marks)))
        # Every student's grade (their best completed attempt) and where it is with the LMS.
        best: dict[int, float] = {}
        for row in attempt_rows:
            if row[5] is not None:
                best[row[1]] = max(best.get(row[1], 0.0), row[10])
        cursor.execute("SELECT id, user_id FROM lms_resourcemembership WHERE resource_id = %s AND role = 'student'",
                       [resource.pk])
        now_text = timezone.now().isoformat()
        _copy(cursor, "grading_gradereport",
              ["membership_id", "resource_id", "score", "version", "state", "failures", "last_error", "updated_at",
               "due_at"],
              ((membership_id, resource.pk, best[uid], 1, state, 0, "", now_text,
                now_text if state == "pending" else None)
               for membership_id, uid in cursor.fetchall() if uid in best
               for state in [rng.choice(("delivered", "delivered", "pending", "failed"))]))
    if connection.vendor == "postgresql":
        # As autovacuum would leave a settled table: statistics and the visibility map.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return {"resource_id": resource.pk, "instructor_id": teacher.pk, "students": len(users),
            "attempts": len(attempt_ids), "elements": element_rows}


def remark(resource_id: int, *, attempts: int, discount: bool) -> None:
    """Instructors' marks for the first part of `attempts` attempts, and with `discount` the
    last question removed from the total."""
    from django.utils import timezone

    from attempts.models import Attempt, PartOverride
    from grading.models import Discount

    ids = Attempt.objects.filter(resource_id=resource_id).order_by("pk").values_list("pk", flat=True)[:attempts]
    PartOverride.objects.bulk_create(PartOverride(attempt_id=pk, part_id="q0p0", score=1, at=timezone.now())
                                     for pk in ids)
    if discount:
        Discount.objects.create(resource_id=resource_id, target="q0", behaviour="remove")
    if attempts or discount:
        print(f"re-marked {len(ids):,} attempts{', one question discounted' if discount else ''}", flush=True)


def pages(resource_id: int) -> list[tuple[str, str]]:
    """What is measured: (name, URL). Pages whose app is not installed yet are left out."""
    from django.urls import NoReverseMatch, reverse

    wanted = [
        ("statistics", "insights:statistics", {}),
        ("statistics (all attempts)", "insights:statistics", {"all": "1"}),
        ("students", "dashboard:students", {}),
        ("students, by grade, page 40", "dashboard:students", {"sort": "grade", "page": "40"}),
        ("students, by last activity", "dashboard:students", {"sort": "activity"}),
        ("students, search", "dashboard:students", {"q": "student"}),
    ]
    result = []
    for name, view, query in wanted:
        try:
            url = reverse(view, kwargs={"resource_id": resource_id})
        except NoReverseMatch:
            print(f"{name}: skipped ({view} is not in the URL configuration)", flush=True)
            continue
        result.append((name, url + (f"?{'&'.join(f'{k}={v}' for k, v in query.items())}" if query else "")))
    return result


def measure(client, url: str, *, requests: int, warmup: int = 3) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = len(captured)  # now: the log is cleared by the next request
    slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:3]
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
    times.sort()
    return {"p50": statistics.median(times), "p95": times[max(0, round(0.95 * len(times)) - 1)], "max": times[-1],
            "queries": queries, "bytes": len(response.content),
            "slowest": [(float(q["time"]) * 1000, q["sql"][:160]) for q in slowest]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="print each page's three slowest queries")
    parser.add_argument("--attempts", type=int, default=20000)
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--remarked", type=int, default=0,
                        help="attempts with an instructor's mark for a part (their scores computed by grading)")
    parser.add_argument("--discount", action="store_true",
                        help="discount one question (every attempt's score is then computed by grading)")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Run it against PostgreSQL: scripts/bench dashboard")

    from tests.support.live import fresh_database_url

    with tempfile.TemporaryDirectory() as tmp:
        database_url, drop = fresh_database_url(Path(tmp), prefix="bench")
        try:
            os.environ.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "numbas_lti.settings",
                               "SECRET_KEY": "bench-" + uuid.uuid4().hex, "DEBUG": "0", "DB_POOL": "0",
                               "ALLOWED_HOSTS": "testserver", "EXAM_ORIGIN": "http://exams.localhost", "LOG_LEVEL": "WARNING",
                               "VAR_DIR": str(Path(tmp) / "var"), "PRIVATE_ROOT": str(Path(tmp) / "private")})
            os.environ.pop("REDIS_URL", None)
            import django

            django.setup()
            from django.contrib.auth import get_user_model
            from django.core.management import call_command
            from django.test import Client

            call_command("migrate", verbosity=0, interactive=False)
            print(f"setup: {args.students} students, {args.attempts} attempts x {args.questions} questions …",
                  flush=True)
            began = time.perf_counter()
            made = populate(args.students, args.attempts, questions=args.questions)
            print(f"setup: {made['students']:,} students, {made['attempts']:,} attempts, "
                  f"{made['elements']:,} attempt values in {time.perf_counter() - began:.0f} s", flush=True)

            remark(made["resource_id"], attempts=args.remarked, discount=args.discount)
            client = Client()
            client.force_login(get_user_model().objects.get(pk=made["instructor_id"]))
            missed = []
            for name, url in pages(made["resource_id"]):
                figures = measure(client, url, requests=args.requests)
                met = figures["p95"] < TARGET_MS
                missed += [] if met else [name]
                print(f"{name} ({url}): p50 {figures['p50']:.0f} ms, p95 {figures['p95']:.0f} ms, "
                      f"max {figures['max']:.0f} ms over {args.requests} requests; {figures['queries']} queries, "
                      f"{figures['bytes'] / 1000:.0f} kB; < {TARGET_MS:.0f} ms {'MET' if met else 'MISSED'}",
                      flush=True)
                if args.profile:
                    for ms, sql in figures["slowest"]:
                        print(f"    {ms:6.1f} ms  {sql}", flush=True)
            if missed:
                sys.exit(f"missed the target: {', '.join(missed)}")
        finally:
            from django.db import connections

            connections.close_all()
            drop()


if __name__ == "__main__":
    main()
