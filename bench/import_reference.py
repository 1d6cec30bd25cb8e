"""Import time of a numbas-lti-provider installation, per 10,000 attempts with their data.

    scripts/bench import_reference [--attempts 10000] [--max-seconds 1200]

Setup (not timed): the reference fixture (../shared/fixtures/reference-nlp-v4.4) restored into a
database of its own; its 10 attempts cloned with new ids — every SCORM value, every suspend-data
diff (re-pointed at the clone's own values) and re-marked part — until there are N attempts
(same people, activities and exams); a fresh, migrated database of ours. Timed: `manage.py
import_reference` from that reference into ours (its closing check included, which reads both
systems' counts and recomputes every attempt's score), then a second run (which finds everything
imported). Printed: attempts, stored values, seconds, seconds per 10,000 attempts, values/s.
Bounded by --attempts (at most 50,000) and --max-seconds (for each run).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "infra"), str(REPO / "app")]
from tests.support.live import APP, admin_sql, fresh_database_url  # noqa: E402

FIXTURE = REPO.parent / "shared" / "fixtures" / "reference-nlp-v4.4"
MAX_ATTEMPTS = 50_000

ATTEMPT_COLUMNS = ("start_time, exam_id, resource_id, user_id, completion_status, scaled_score, deleted, broken, "
                   "end_time, receipt_time, sent_receipt, all_data_received, diffed")

CLONE = """
CREATE TEMP TABLE amap AS
  SELECT a.id AS old_id, g AS copy, nextval(pg_get_serial_sequence('numbas_lti_attempt', 'id')) AS new_id
  FROM (SELECT id FROM numbas_lti_attempt ORDER BY id) a, generate_series(1, %(copies)s) g
  ORDER BY g, a.id LIMIT %(limit)s;
INSERT INTO numbas_lti_attempt (id, {cols}, completion_status_element_id, scaled_score_element_id)
  SELECT m.new_id, {a_cols}, NULL, NULL FROM amap m JOIN numbas_lti_attempt a ON a.id = m.old_id;
UPDATE numbas_lti_attempt a SET start_time = a.start_time + m.copy * interval '1 millisecond'
  FROM amap m WHERE a.id = m.new_id;
CREATE TEMP TABLE emap AS
  SELECT e.id AS old_id, m.new_id AS attempt_id, nextval(pg_get_serial_sequence('numbas_lti_scormelement', 'id')) AS new_id
  FROM amap m JOIN numbas_lti_scormelement e ON e.attempt_id = m.old_id;
CREATE INDEX ON emap (old_id, attempt_id);
INSERT INTO numbas_lti_scormelement (id, key, value, time, current, attempt_id, counter)
  SELECT em.new_id, e.key, e.value, e.time, e.current, em.attempt_id, e.counter
  FROM emap em JOIN numbas_lti_scormelement e ON e.id = em.old_id;
INSERT INTO numbas_lti_scormelementdiff (diff_of_id, element_id)
  SELECT newer.new_id, older.new_id FROM numbas_lti_scormelementdiff d
  JOIN emap older ON older.old_id = d.element_id JOIN emap newer ON newer.old_id = d.diff_of_id
  AND newer.attempt_id = older.attempt_id;
INSERT INTO numbas_lti_remarkpart (part, score, attempt_id)
  SELECT r.part, r.score, m.new_id FROM numbas_lti_remarkpart r JOIN amap m ON m.old_id = r.attempt_id;
""".format(cols=ATTEMPT_COLUMNS, a_cols=", ".join(f"a.{c.strip()}" for c in ATTEMPT_COLUMNS.split(",")))


def restore_reference(attempts: int) -> str:
    import psycopg2

    name = f"nlp_ref_bench_{uuid.uuid4().hex[:10]}"
    url = urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}"))
    admin_sql(f'CREATE DATABASE "{name}"')
    script = gzip.decompress((FIXTURE / "nlp.sql.gz").read_bytes())
    result = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", "-d", url], input=script, capture_output=True)
    if result.returncode != 0:
        raise SystemExit(f"restoring the fixture failed: {result.stderr.decode()[-1000:]}")
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM numbas_lti_attempt")
            have = cursor.fetchone()[0]
            extra = attempts - have
            if extra > 0:
                cursor.execute(CLONE, {"copies": -(-extra // have), "limit": extra})
            cursor.execute("ANALYZE")
    finally:
        conn.close()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--max-seconds", type=float, default=1200)
    args = parser.parse_args()
    if not FIXTURE.is_dir():
        raise SystemExit(f"The reference fixture is not here: {FIXTURE}")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Run it with scripts/bench (PostgreSQL).")
    attempts = max(10, min(args.attempts, MAX_ATTEMPTS))
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    media = tmp / "media"
    media.mkdir()
    with tarfile.open(FIXTURE / "media.tar.gz") as archive:
        archive.extractall(media, filter="data")
    started = time.monotonic()
    reference = restore_reference(attempts)
    print(f"reference: {attempts} attempts synthesised in {time.monotonic() - started:.1f} s (not timed)", flush=True)
    env = {**os.environ, "SECRET_KEY": "bench-" + uuid.uuid4().hex, "DEBUG": "0", "VAR_DIR": str(tmp / "var"),
           "EXAM_ORIGIN": "http://exams.localhost", "ALLOWED_HOSTS": "localhost"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if os.environ.get("TEST_REDIS_URL"):
        env["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    target, drop = fresh_database_url(tmp, prefix="bench_import")
    env["DATABASE_URL"] = target
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=APP, env=env, check=True)
        for label in ("first run", "second run"):
            started = time.monotonic()
            result = subprocess.run([sys.executable, "manage.py", "import_reference", "--database", reference,
                                     "--media", str(media)], cwd=APP, env=env, capture_output=True, text=True,
                                    timeout=args.max_seconds)
            elapsed = time.monotonic() - started
            if result.returncode != 0:
                print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
                raise SystemExit(f"{label}: the import failed ({result.returncode})")
            values = re.search(r"stored values.*?here (\d+)", result.stdout)
            values_total = sum(int(n) for n in re.findall(r"stored values \(SCORM data history\): reference \d+, here (\d+)",
                                                         result.stdout))
            print(f"{label}: {attempts} attempts, {values_total} stored values, {elapsed:.1f} s "
                  f"({elapsed * 10_000 / attempts:.1f} s per 10,000 attempts, {values_total / elapsed:,.0f} values/s)"
                  + ("" if values else " [no check output]"), flush=True)
    finally:
        drop()
        name = urlsplit(reference).path.lstrip("/")
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
