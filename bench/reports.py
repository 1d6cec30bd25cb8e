"""Report files: how long the attempts CSV takes, and how much memory the worker needs, for
one resource with many attempts — on PostgreSQL.

    scripts/bench reports [--students 5000] [--attempts-per-student 2] [--questions 30]

Setup (not timed): a fresh database, migrated; one resource whose exam has Q questions;
S students with A attempts each, every attempt with what Numbas stores (cmi.score.*, per
question cmi.objectives.N.id/score.raw/score.max, one interaction per part with id, result,
weighting, learner_response, objectives.0.id, and a 5 KB suspend_data), all bulk-inserted
with COPY. Then `reports.services.report_generate` runs in a child process of its own (the
way a Huey worker runs it), so that setup does not count towards its peak RSS (read with
os.wait4). Targets: 10,000 attempts x 30 questions in < 10 s with peak RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "app"), str(REPO / "infra")]

TARGET_SECONDS = 10.0
TARGET_RSS_MB = 150.0


def django_env(database_url: str, private_root: Path) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "numbas_lti.settings",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "DEBUG": "0",
        "EXAM_ORIGIN": "http://exams.localhost",
        "PRIVATE_ROOT": str(private_root),
        "VAR_DIR": str(private_root.parent / "var"),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)  # no queue needed: the child calls the service directly
    return env


def copy(cursor, table: str, columns: list[str], rows) -> int:
    """COPY rows (tuples of str, or None for NULL) in pieces of ~50k rows."""
    count, buffer = 0, io.StringIO()

    def flush():
        buffer.seek(0)
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)
        buffer.seek(0)
        buffer.truncate()

    import csv

    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(["\\N" if v is None else v for v in row])
        count += 1
        if count % 50_000 == 0:
            flush()
    flush()
    return count


def setup(database_url: str, *, students: int, per_student: int, questions: int) -> tuple[int, int]:
    """Create the data set; return (resource id, Element rows)."""
    os.environ.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "numbas_lti.settings",
                       "SECRET_KEY": "bench", "DB_POOL": "0", "EXAM_ORIGIN": "http://exams.localhost"})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from django.utils import timezone

    from exams.models import ExamPackage
    from lms.models import Consumer, Context, Resource

    consumer = Consumer.objects.create(name="Bench", key="bench", secret="bench-secret")
    context = Context.objects.create(consumer=consumer, context_id="bench-course", title="Bench course")
    resource = Resource.objects.create(consumer=consumer, resource_link_id="bench-res", context=context,
                                       title="Bench exam")
    structure = [{"name": f"Question {i + 1}", "parts": [{"type": "numberentry", "marks": 2}]} for i in range(questions)]
    exam = ExamPackage.objects.create(resource=resource, version=1, title="Bench exam", launch_href="index.html",
                                      structure=structure, directory=uuid.uuid4().hex, file_count=1,
                                      expanded_bytes=1, sha256="0" * 64)

    import psycopg2

    now = timezone.now().isoformat()
    connection = psycopg2.connect(database_url)
    rng = random.Random(1)
    try:
        with connection, connection.cursor() as cursor:
            copy(cursor, "auth_user",
                 ["username", "password", "first_name", "last_name", "email", "is_staff", "is_active", "is_superuser",
                  "date_joined"],
                 ((f"bench-{i}", "!", "Student", f"Number{i}", f"s{i}@example.ac.uk", "f", "t", "f", now)
                  for i in range(students)))
            cursor.execute("SELECT id, username FROM auth_user WHERE username LIKE 'bench-%' ORDER BY id")
            users = cursor.fetchall()
            copy(cursor, "lms_ltiidentity",
                 ["consumer_id", "lti_user_id", "user_id", "full_name", "email", "created_at", "updated_at"],
                 ((consumer.pk, name, uid, f"Student {name}", f"{name}@example.ac.uk", now, now) for uid, name in users))
            copy(cursor, "lms_resourcemembership",
                 ["user_id", "resource_id", "role", "lti_roles", "lis_result_sourcedid", "lis_outcome_service_url",
                  "return_url", "first_launched_at", "last_launched_at"],
                 ((uid, resource.pk, "student", "Learner", f"src-{uid}", "", "", now, now) for uid, _ in users))
            copy(cursor, "attempts_attempt",
                 ["resource_id", "user_id", "exam_id", "number", "started_at", "ended_at", "completion_status",
                  "success_status", "score_raw", "score_max", "score_scaled", "writer_token"],
                 ((resource.pk, uid, str(exam.pk), n, now, now, "completed", "unknown", None, None, None, "")
                  for uid, _ in users for n in range(1, per_student + 1)))
            cursor.execute("SELECT id FROM attempts_attempt WHERE resource_id = %s ORDER BY id", [resource.pk])
            attempt_ids = [r[0] for r in cursor.fetchall()]
            suspend = json.dumps({"bench": "x" * 5000})

            def elements():
                for attempt_id in attempt_ids:
                    scores = [rng.randint(0, 2) for _ in range(questions)]
                    values = [("cmi.completion_status", "completed"), ("cmi.suspend_data", suspend),
                              ("cmi.score.raw", str(sum(scores))), ("cmi.score.max", str(2 * questions)),
                              ("cmi.score.scaled", str(sum(scores) / (2 * questions)))]
                    for q, score in enumerate(scores):
                        values += [(f"cmi.objectives.{q}.id", f"q{q}"), (f"cmi.objectives.{q}.score.raw", str(score)),
                                   (f"cmi.objectives.{q}.score.max", "2"),
                                   (f"cmi.interactions.{q}.id", f"q{q}p0"), (f"cmi.interactions.{q}.result", str(score)),
                                   (f"cmi.interactions.{q}.weighting", "2"),
                                   (f"cmi.interactions.{q}.objectives.0.id", f"q{q}"),
                                   (f"cmi.interactions.{q}.learner_response", str(rng.randint(0, 10**6)))]
                    for sequence, (key, value) in enumerate(values, 1):
                        yield attempt_id, key, value, sequence

            element_rows = copy(cursor, "attempts_element", ["attempt_id", "key", "value", "sequence"], elements())
            # Everyone has a grade, half of them delivered (the scores CSV joins these).
            cursor.execute(
                """INSERT INTO grading_gradereport (membership_id, resource_id, score, attempt_number, version, state,
                       failures, sent_score, delivered_at, last_error, updated_at)
                   SELECT id, resource_id, 0.5, 1, 1, CASE WHEN id %% 2 = 0 THEN 'delivered' ELSE 'waiting' END, 0,
                          CASE WHEN id %% 2 = 0 THEN 0.5 END, CASE WHEN id %% 2 = 0 THEN now() END, '', now()
                   FROM lms_resourcemembership WHERE resource_id = %s""",
                [resource.pk],
            )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    finally:
        connection.close()
    return resource.pk, element_rows


def child(report_id: str) -> None:
    """Run in a process of its own: generate one queued report and print figures as JSON."""
    import resource as rusage

    import django

    django.setup()
    from reports import services

    baseline = rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    report = services.report_generate(report_id=report_id)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "state": report.state, "rows": report.rows, "bytes": report.size_bytes,
                      "error": report.error, "baseline_rss_mb": baseline}))


def run_child(env: dict, report_id: str) -> tuple[dict, float]:
    """The child's figures and its own peak RSS in MB (os.wait4: this child only)."""
    out = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen([sys.executable, __file__, "--child", report_id], env=env, cwd=REPO, stdout=out)
    deadline = time.monotonic() + 600
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read()
    if process.returncode != 0:
        raise RuntimeError(f"report child failed ({process.returncode}):\n{text}")
    return json.loads(text.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def queue_report(env: dict, resource_id: int, kind: str) -> str:
    import psycopg2

    report_id = str(uuid.uuid4())
    connection = psycopg2.connect(env["DATABASE_URL"])
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO reports_reportfile (id, resource_id, kind, state, progress, rows, relative_path, error,
                       created_at, updated_at) VALUES (%s, %s, %s, 'queued', 0, 0, '', '', now(), now())""",
                [report_id, resource_id, kind],
            )
    finally:
        connection.close()
    return report_id


def set_discounts(env: dict, resource_id: int, discounts: list[str]) -> None:
    import psycopg2

    connection = psycopg2.connect(env["DATABASE_URL"])
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("DELETE FROM grading_discount WHERE resource_id = %s", [resource_id])
            for discount in discounts:
                target, _, behaviour = discount.partition(":")
                cursor.execute("INSERT INTO grading_discount (resource_id, target, behaviour, created_at) "
                               "VALUES (%s, %s, %s, now())", [resource_id, target, behaviour or "remove"])
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=5000)
    parser.add_argument("--attempts-per-student", type=int, default=2)
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--discount", action="append", default=[], metavar="TARGET:BEHAVIOUR",
                        help="also time the attempts CSV with discounts, e.g. q3:remove or q4p0:full_marks")
    parser.add_argument("--setup", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--child", metavar="REPORT_ID", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    if args.setup:
        print(json.dumps(setup(args.setup, students=args.students, per_student=args.attempts_per_student,
                               questions=args.questions)))
        return None
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Run it against PostgreSQL: scripts/bench reports")

    from tests.support.live import fresh_database_url

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        database_url, drop = fresh_database_url(tmp)
        try:
            attempts = args.students * args.attempts_per_student
            print(f"setup: {args.students} students x {args.attempts_per_student} attempts = {attempts} attempts, "
                  f"{args.questions} questions …", flush=True)
            began = time.perf_counter()
            # Setup runs in a process of its own too, so that this one stays small.
            setup_out = subprocess.run(
                [sys.executable, __file__, "--setup", database_url, "--students", str(args.students),
                 "--attempts-per-student", str(args.attempts_per_student), "--questions", str(args.questions)],
                capture_output=True, text=True, timeout=1800, cwd=REPO,
            )
            if setup_out.returncode != 0:
                raise RuntimeError(f"setup failed:\n{setup_out.stdout}\n{setup_out.stderr}")
            resource_id, element_rows = json.loads(setup_out.stdout.strip().splitlines()[-1])
            print(f"setup: {element_rows:,} attempt values stored in {time.perf_counter() - began:.0f} s", flush=True)

            env = django_env(database_url, tmp / "private")
            results = {}
            runs = [("attempts", []), ("scores", [])] + ([("attempts", args.discount)] if args.discount else [])
            for kind, discounts in runs:
                set_discounts(env, resource_id, discounts)
                figures, peak = run_child(env, queue_report(env, resource_id, kind))
                if figures["state"] != "done":
                    raise RuntimeError(f"{kind} report {figures['state']}: {figures['error']}")
                label = f"{kind} CSV" + (f" with discounts {', '.join(discounts)}" if discounts else "")
                results.setdefault(kind, (figures, peak))
                print(f"{label}: {figures['rows']:,} rows, {figures['bytes'] / 1e6:.1f} MB in {figures['seconds']:.2f} s "
                      f"({figures['rows'] / figures['seconds']:,.0f} rows/s); worker peak RSS {peak:.0f} MB "
                      f"(after Django start-up {figures['baseline_rss_mb']:.0f} MB)", flush=True)
            figures, peak = results["attempts"]
            ok_time, ok_rss = figures["seconds"] < TARGET_SECONDS, peak < TARGET_RSS_MB
            print(f"target {attempts:,} attempts x {args.questions} questions: time < {TARGET_SECONDS:.0f} s "
                  f"{'MET' if ok_time else 'MISSED'} ({figures['seconds']:.2f} s); peak RSS < {TARGET_RSS_MB:.0f} MB "
                  f"{'MET' if ok_rss else 'MISSED'} ({peak:.0f} MB)")
            if not (ok_time and ok_rss):
                sys.exit(1)
        finally:
            drop()


if __name__ == "__main__":
    main()
