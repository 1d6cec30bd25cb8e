"""Issue 17: importing a numbas-lti-provider v4.4 installation (../shared/fixtures/reference-nlp-v4.4).

The fixture's dump is restored into a database of its own on the test PostgreSQL (dropped
afterwards); `manage.py import_reference` runs as a separate process into fresh, migrated
databases; the tests read both databases and compare them with each other and with the
fixture's expected.json.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from tests.support.live import APP, REPO, admin_sql, fresh_database_url

FIXTURE = REPO.parent / "shared" / "fixtures" / "reference-nlp-v4.4"
ON_POSTGRESQL = os.environ.get("DATABASE_URL", "").startswith("postgres")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FIXTURE.is_dir(), reason="../shared/fixtures/reference-nlp-v4.4 is not here"),
    pytest.mark.skipif(not ON_POSTGRESQL, reason="the reference fixture is a PostgreSQL dump (scripts/test)"),
]


def _query(url: str, sql: str, params=()) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        conn.close()


def _psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True):
        return str(candidate)
    pytest.skip("psql is not installed")


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((FIXTURE / "expected.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The fixture restored: (database URL, media folder)."""
    name = f"nlp_ref_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(os.environ["DATABASE_URL"])
    url = urlunsplit(parts._replace(path=f"/{name}"))
    admin_sql(f'CREATE DATABASE "{name}"')
    try:
        script = gzip.decompress((FIXTURE / "nlp.sql.gz").read_bytes())
        result = subprocess.run([_psql(), "-v", "ON_ERROR_STOP=1", "-q", "-d", url], input=script,
                                capture_output=True, timeout=300)
        if result.returncode != 0 and b"restrict" in result.stderr:  # an older psql: drop the meta-commands
            lines = [line for line in script.split(b"\n") if not line.startswith((b"\\restrict ", b"\\unrestrict "))]
            admin_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            admin_sql(f'CREATE DATABASE "{name}"')
            result = subprocess.run([_psql(), "-v", "ON_ERROR_STOP=1", "-q", "-d", url], input=b"\n".join(lines),
                                    capture_output=True, timeout=300)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        media = tmp_path_factory.mktemp("nlp-media")
        with tarfile.open(FIXTURE / "media.tar.gz") as archive:
            archive.extractall(media, filter="data")
        yield url, media
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(tmp: Path) -> dict:
    env = {**os.environ, "SECRET_KEY": "import-test-" + uuid.uuid4().hex, "DEBUG": "0", "VAR_DIR": str(tmp / "var"),
           "ALLOWED_HOSTS": "localhost,127.0.0.1", "PYTHONUNBUFFERED": "1", "EXAM_ORIGIN": "http://exams.localhost",
           "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("HUEY_IMMEDIATE", None)
    if os.environ.get("TEST_REDIS_URL"):
        env["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    return env


class Target:
    """A fresh, migrated database of ours and the environment that runs manage.py on it."""

    def __init__(self, tmp: Path):
        self.env = _env(tmp)
        # A copy of the migrated template (tests/support/live.py): nothing left to migrate.
        self.url, self.drop = fresh_database_url(tmp, prefix="import", migrate_env=self.env)
        self.env["DATABASE_URL"] = self.url

    def manage(self, *args, check=False, extra_env=None) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=APP, env={**self.env, **(extra_env or {})},
                                capture_output=True, text=True, timeout=600)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def import_(self, reference, *args, extra_env=None) -> subprocess.CompletedProcess:
        url, media = reference
        return self.manage("import_reference", "--database", url, "--media", str(media), *args, extra_env=extra_env)

    def query(self, sql: str, params=()) -> list[tuple]:
        return _query(self.url, sql, params)

    def execute(self, sql: str) -> None:
        conn = psycopg2.connect(self.url)
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()

    def python(self, code: str):
        """Run Python with Django set up on this database; its last printed line is JSON."""
        result = self.manage("shell", "-c", code, check=True)
        return json.loads(result.stdout.strip().splitlines()[-1])


def snapshot(url: str) -> dict[str, str]:
    """Every table's rows, hashed: equal snapshots mean nothing was written."""
    tables = [row[0] for row in _query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    return {table: _query(url, f'SELECT count(*) || \':\' || coalesce(md5(string_agg(t::text, \',\' ORDER BY t::text)), \'\') FROM "{table}" t')[0][0]
            for table in tables}


@pytest.fixture(scope="module")
def imported(reference, tmp_path_factory):
    """The fixture imported once into an empty database."""
    target = Target(tmp_path_factory.mktemp("import"))
    before = snapshot(reference[0])
    result = target.import_(reference)
    target.first_result = result
    target.reference = reference
    target.reference_untouched = snapshot(reference[0]) == before
    yield target
    target.drop()


def _links(target: Target, kind: str) -> dict[int, int]:
    return {ref: int(local) for ref, local in target.query(
        "SELECT reference_pk, local_pk FROM reference_import_importlink WHERE kind = %s", [kind])}


def _reference_history(reference_url: str) -> dict[int, list[tuple[str, str]]]:
    from reference_import.reference import Reference

    ref = Reference(reference_url)
    try:
        ids = [row["id"] for row in ref.rows("SELECT id FROM numbas_lti_attempt")]
        return {pk: [(key, value) for key, value, _ in rows] for pk, rows in ref.attempt_elements(ids).items()}
    finally:
        ref.close()


def test_import_passes_its_check_and_leaves_the_reference_untouched(imported):
    result = imported.first_result
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Import check passed" in result.stdout
    assert "DIFF" not in result.stdout
    assert imported.reference_untouched


def test_counts_equal_the_reference(imported, expected):
    counts = expected["counts"]
    q = imported.query
    assert q("SELECT count(*) FROM lms_consumer")[0][0] == counts["numbas_lti_lticonsumer"]
    assert q("SELECT count(*) FROM lms_context")[0][0] == counts["numbas_lti_lticontext"]
    assert q("SELECT count(*) FROM lms_resource")[0][0] == counts["numbas_lti_resource"]
    assert q("SELECT count(*) FROM exams_exampackage")[0][0] == counts["numbas_lti_exam"]
    assert q("SELECT count(*) FROM auth_user")[0][0] == counts["auth_user"]
    assert q("SELECT count(*) FROM lms_ltiidentity")[0][0] == counts["numbas_lti_lti_11_useralias"]
    assert q("SELECT count(*) FROM lms_resourcemembership")[0][0] == counts["numbas_lti_ltiuserdata"]
    assert q("SELECT count(*) FROM attempts_attempt")[0][0] == counts["numbas_lti_attempt"]
    assert q("SELECT count(*) FROM attempts_attempt WHERE deleted_at IS NOT NULL")[0][0] == \
        counts["numbas_lti_attempt (deleted=true)"]
    assert q("SELECT count(*) FROM attempts_elementchange")[0][0] == counts["numbas_lti_scormelement"]
    assert q("SELECT count(*) FROM attempts_element")[0][0] == sum(a["distinct_keys"] for a in expected["attempts"])
    assert q("SELECT count(*) FROM grading_discount")[0][0] == counts["numbas_lti_discountpart"]
    assert q("SELECT count(*) FROM attempts_partoverride")[0][0] == counts["numbas_lti_remarkpart"]
    assert q("SELECT count(*) FROM attempts_accesschange")[0][0] + q(
        "SELECT count(*) FROM attempts_pendingaccesschange")[0][0] == counts["numbas_lti_emailaccesschange"]


def test_consumers_people_and_grade_columns(imported, expected, reference):
    consumers = {key: (secret, field) for key, secret, field in imported.query(
        "SELECT key, secret, identifier_field FROM lms_consumer")}
    for consumer in expected["consumers"]:
        assert consumers[consumer["key"]][0] == consumer["secret"]
    assert consumers["moodle-maths"][1] == "sourcedid" and consumers["canvas-physics"][1] == "email"
    identities = {(key, user_id): (name, email, sourcedid) for key, user_id, name, email, sourcedid in imported.query(
        "SELECT c.key, i.lti_user_id, i.full_name, i.email, i.sourcedid FROM lms_ltiidentity i "
        "JOIN lms_consumer c ON c.id = i.consumer_id")}
    aliases = _query(reference[0], "SELECT k.key, a.consumer_user_id, u.first_name || ' ' || u.last_name, u.email "
                                   "FROM numbas_lti_lti_11_useralias a JOIN numbas_lti_lti_11_consumer k ON "
                                   "k.consumer_id = a.consumer_id JOIN auth_user u ON u.id = a.user_id")
    assert len(aliases) == 9
    for key, user_id, name, email in aliases:
        assert identities[(key, user_id)][:2] == (name, email)
    assert identities[("moodle-maths", "3101")][2] == "aarcher"
    # The grade column: each membership keeps the reference's lis_result_sourcedid and outcome URL.
    ours = {(key, user_id, link): (sourcedid, url) for key, user_id, link, sourcedid, url in imported.query(
        "SELECT c.key, i.lti_user_id, r.resource_link_id, m.lis_result_sourcedid, m.lis_outcome_service_url "
        "FROM lms_resourcemembership m JOIN lms_ltiidentity i ON i.user_id = m.user_id JOIN lms_resource r ON "
        "r.id = m.resource_id JOIN lms_consumer c ON c.id = r.consumer_id")}
    theirs = _query(reference[0], """
        SELECT k.key, a.consumer_user_id, l.resource_link_id, d.lis_result_sourcedid, d.lis_outcome_service_url
        FROM numbas_lti_ltiuserdata u JOIN numbas_lti_lti_11_userdata d ON d.user_data_id = u.id
        JOIN numbas_lti_lti_11_useralias a ON a.user_id = u.user_id JOIN numbas_lti_lti_11_consumer k
        ON k.consumer_id = a.consumer_id JOIN numbas_lti_lti_11_resourcelink l ON l.resource_id = u.resource_id""")
    assert len(theirs) == 11
    for key, user_id, link, sourcedid, url in theirs:
        assert ours[(key, user_id, link)] == (sourcedid or "", url or "")


def test_activity_settings(imported, expected):
    rows = {link: rest for link, *rest in imported.query(
        "SELECT r.resource_link_id, r.title, s.grading_method, s.include_incomplete, s.max_attempts, s.show_score, "
        "s.report_when, s.review_from, s.allow_student_reopen, s.available_from, s.due_at, s.available_until "
        "FROM lms_resource r JOIN attempts_resourcesettings s ON s.resource_id = r.id")}
    report = {"oncompletion": "completion", "immediately": "immediately", "manually": "manual"}

    def iso(value):
        return None if value is None else value.isoformat().replace("+00:00", "Z")

    for resource in expected["resources"]:
        title, method, incomplete, max_attempts, show, when, review, reopen, start, due, until = rows[
            resource["resource_link_id"]]
        assert (title, method, incomplete, max_attempts, show) == (
            resource["title"], resource["grading_method"], resource["include_incomplete_attempts"],
            resource["max_attempts"], resource["show_marks_when"])
        assert when == report[resource["report_mark_time"]]
        assert (iso(review), reopen, iso(start), iso(due), iso(until)) == (
            resource["allow_review_from"], resource["allow_student_reopen"], resource["available_from"],
            resource["due_date"], resource["available_until"])


def test_every_attempts_data_and_score(imported, expected, reference):
    links = _links(imported, "attempt")
    history = _reference_history(reference[0])
    for pk, rows in history.items():
        ours = imported.query("SELECT key, value FROM attempts_elementchange WHERE attempt_id = %s ORDER BY sequence",
                              [links[pk]])
        assert ours == rows, f"attempt {pk}: SCORM history differs"
        current = dict(imported.query("SELECT key, value FROM attempts_element WHERE attempt_id = %s", [links[pk]]))
        assert current == dict(rows), f"attempt {pk}: final SCORM values differ"
    scores = imported.python(
        "import json; from grading import selectors as g; from attempts.models import Attempt\n"
        "out = {}\n"
        "for a in Attempt.all_objects.all():\n"
        "    s = g.attempt_scores(attempt_ids=[a.pk], discounts=g.discounts_for(resource_id=a.resource_id))[a.pk]\n"
        "    out[a.pk] = [s.raw, s.max, s.scaled, a.completion_status, a.ended_at is not None, a.deleted_at is not None,"
        " a.started_at.isoformat()]\n"
        "print(json.dumps(out))")
    for attempt in expected["attempts"]:
        raw, max_, scaled, status, ended, deleted, started = scores[str(links[attempt["pk"]])]
        assert scaled == pytest.approx(attempt["scaled_score"], abs=1e-9), attempt["pk"]
        assert (raw, max_) == (pytest.approx(attempt["nlp_raw_score"]), pytest.approx(attempt["nlp_max_score"]))
        assert status == attempt["scorm_completion_status"]  # attempt 6: the data says completed
        assert ended == (attempt["scorm_completion_status"] == "completed")
        assert deleted == attempt["deleted"]
        assert datetime.fromisoformat(started) == datetime.fromisoformat(attempt["start_time"].replace("Z", "+00:00"))
        current_values = dict(history[attempt["pk"]])
        assert current_values["cmi.location"] == attempt["location"]
        assert current_values["cmi.score.raw"] == attempt["scorm_score_raw"]


def test_question_scores_of_ended_attempts(imported, expected):
    links = _links(imported, "attempt")
    discounted = {(d["resource"], d["part"][:2]) for d in expected["discounts"]}
    for attempt in expected["attempts"]:
        rows = {q: (raw, mx) for q, raw, mx in imported.query(
            "SELECT question_id, raw, max FROM grading_attemptquestionscore WHERE attempt_id = %s",
            [links[attempt["pk"]]])}
        if attempt["deleted"] or attempt["scorm_completion_status"] != "completed":
            assert rows == {}  # ours: only ended, counted attempts have question scores
            continue
        for q in attempt["question_scores"]:
            if (attempt["resource"], f"q{q['n']}") in discounted:
                continue
            assert rows[f"q{q['n']}"] == (q["raw"], q["max"]), (attempt["pk"], q)


def test_discounts_remarks_and_access_changes(imported, expected):
    resources = _links(imported, "resource")
    attempts = _links(imported, "attempt")
    assert imported.query("SELECT resource_id, target, behaviour FROM grading_discount") == [
        (resources[d["resource"]], d["part"], d["behaviour"]) for d in expected["discounts"]]
    assert imported.query("SELECT attempt_id, part_id, score FROM attempts_partoverride") == [
        (attempts[r["attempt"]], r["part"], r["score"]) for r in expected["remarks"]]
    change = expected["access_changes"][0]
    rows = imported.query(
        "SELECT c.resource_id, i.email, c.extra_attempts + s.max_attempts, c.due_at, c.reason FROM attempts_accesschange c "
        "JOIN lms_ltiidentity i ON i.user_id = c.user_id JOIN attempts_resourcesettings s ON s.resource_id = c.resource_id")
    assert len(rows) == 1
    resource_id, email, max_attempts, due_at, reason = rows[0]
    assert (resource_id, email, max_attempts, reason) == (
        resources[change["resource"]], change["emails"][0], change["max_attempts"], change["description"])
    assert due_at.isoformat().replace("+00:00", "Z") == change["effective_due_date"]


def test_what_the_lms_has_is_not_sent_again(imported, expected):
    last = {(g["student"], g["resource_key"]): float(g["last_score"]) for g in expected["lms_receiver"]["last_grades"]}
    rows = imported.query(
        "SELECT lower(split_part(i.full_name, ' ', 1)), r.title, g.sent_score, g.state FROM grading_gradereport g "
        "JOIN lms_resourcemembership m ON m.id = g.membership_id JOIN lms_ltiidentity i ON i.user_id = m.user_id "
        "JOIN lms_resource r ON r.id = g.resource_id")
    titles = {r["title"]: f"R{r['pk']}" for r in expected["resources"]}
    ours = {(name.replace("chloé", "chloe"), titles[title]): (sent, state) for name, title, sent, state in rows}
    assert {k: v[0] for k, v in ours.items()} == pytest.approx(last)
    assert {state for _, state in ours.values()} == {"delivered"}  # every grade equals what the LMS has


def test_second_run_changes_nothing(imported):
    before = snapshot(imported.url)
    result = imported.import_(imported.reference)
    assert result.returncode == 0, result.stdout + result.stderr
    assert snapshot(imported.url) == before
    assert "Import check passed" in result.stdout


def test_open_attempts_come_under_this_services_deadlines(imported):
    """The reference enforced no time limit or closing time on the server. Imported attempts still
    open get their deadline as any attempt here: Chloé's attempt 4 (Week 5 quiz, a 60-minute limit)
    ends 60 minutes after it started plus the minute of grace for saving. The minute task then ends
    it at that deadline with everything it stored kept (run here in a transaction rolled back, so
    the module's import stays as it was)."""
    chloe = _links(imported, "attempt")[4]
    [(started, deadline)] = imported.query("SELECT started_at, deadline_at FROM attempts_attempt WHERE id = %s",
                                           [chloe])
    assert deadline == started + timedelta(minutes=60, seconds=60)
    ended = imported.python(f"""
import json
from django.db import transaction
from attempts.models import Attempt, Element
from attempts.services import attempts_end_past_deadline
def values():
    return dict(Element.objects.filter(attempt_id={chloe}).values_list("key", "value"))
with transaction.atomic():
    before = values()
    count = attempts_end_past_deadline()
    attempt = Attempt.objects.get(pk={chloe})
    after = values()
    result = {{"count": count, "at_deadline": attempt.ended_at == attempt.deadline_at,
              "status": attempt.completion_status, "exit": after.get("cmi.exit"),
              "kept": all(after[k] == v for k, v in before.items() if k not in ("cmi.completion_status", "cmi.exit"))}}
    transaction.set_rollback(True)
print(json.dumps(result))
""")
    assert ended["count"] >= 1 and ended["at_deadline"] and ended["kept"]
    assert ended["status"] == "completed" and ended["exit"] == "time-out"


def test_lti13_registrations_and_their_deployments_come_over(reference, tmp_path):
    """The fixture's installation has no LTI 1.3 registration. A copy of it gets one, as its admin
    would have registered a Canvas for the "moodle-maths" consumer (pylti1p3's tables: the tool,
    its key, two deployments): the import brings it over as a platform of the imported consumer,
    with its issuer, client id, endpoints, key set and both deployments; a second run adds nothing."""
    source = urlsplit(reference[0]).path.lstrip("/")
    name = f"nlp_ref13_{uuid.uuid4().hex[:12]}"
    admin_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    url = urlunsplit(urlsplit(reference[0])._replace(path=f"/{name}"))
    target = Target(tmp_path)
    try:
        conn = psycopg2.connect(url)
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute("INSERT INTO lti1p3_tool_key (id, name, private_key, public_key) "
                               "VALUES (1, 'nlp key', '-----BEGIN PRIVATE KEY-----', NULL)")
                cursor.execute(
                    "INSERT INTO lti1p3_tool (id, title, is_active, issuer, client_id, use_by_default, auth_login_url, "
                    "auth_token_url, auth_audience, key_set_url, tool_key_id, deployment_ids, key_set) VALUES "
                    "(1, 'Canvas (maths)', true, 'https://canvas.instructure.com', '10000000000042', false, "
                    "'https://sso.canvaslms.com/api/lti/authorize_redirect', 'https://sso.canvaslms.com/login/oauth2/token', "
                    "NULL, 'https://sso.canvaslms.com/api/lti/security/jwks', 1, '[\"42:abc\", \"43:def\"]', NULL)")
                cursor.execute("INSERT INTO numbas_lti_lti_13_consumer (id, consumer_id, tool_id) SELECT 1, consumer_id, 1 "
                               "FROM numbas_lti_lti_11_consumer WHERE key = 'moodle-maths'")
        finally:
            conn.close()
        first = target.import_((url, reference[1]))
        assert first.returncode == 0, first.stdout + first.stderr
        [(reference_consumer,)] = _query(url, "SELECT consumer_id FROM numbas_lti_lti_11_consumer WHERE key = 'moodle-maths'")
        ours = _links(target, "consumer")[reference_consumer]
        platforms = target.query(
            "SELECT p.id, p.consumer_id, p.issuer, p.client_id, p.auth_login_url, p.auth_token_url, p.keyset_url, p.active "
            "FROM lti13_platform p")
        assert [row[1:] for row in platforms] == [(
            ours, "https://canvas.instructure.com", "10000000000042", "https://sso.canvaslms.com/api/lti/authorize_redirect",
            "https://sso.canvaslms.com/login/oauth2/token", "https://sso.canvaslms.com/api/lti/security/jwks", True)]
        assert sorted(r[0] for r in target.query("SELECT deployment_id FROM lti13_deployment")) == ["42:abc", "43:def"]
        assert _links(target, "platform") == {1: platforms[0][0]}
        assert "LTI 1.3 registrations" in first.stdout
        second = target.import_((url, reference[1]))
        assert second.returncode == 0, second.stdout + second.stderr
        assert target.query("SELECT count(*) FROM lti13_platform")[0][0] == 1
        assert target.query("SELECT count(*) FROM lti13_deployment")[0][0] == 2
    finally:
        target.drop()
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_dry_run_writes_nothing(reference, tmp_path):
    target = Target(tmp_path)
    try:
        before = snapshot(target.url)
        result = target.import_(reference, "--dry-run")
        assert result.returncode == 0, result.stderr
        assert snapshot(target.url) == before
        counts = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[2:] if len(line.split()) == 3}
        assert counts["attempt"] == ["10", "0"] and counts["user"] == ["10", "0"] and counts["exam"] == ["3", "0"]
    finally:
        target.drop()


def test_interrupted_run_completes_and_differences_fail_loudly(reference, tmp_path, expected):
    target = Target(tmp_path)
    try:
        # 2 consumers, 2 courses, 3 activities, 1 unit of people, 3 of memberships, then the first 3 attempts:
        # the process dies (os._exit, like a kill) right after that commit.
        killed = target.import_(reference, extra_env={"IMPORT_REFERENCE_STOP_AFTER_UNITS": "12",
                                                      "IMPORT_REFERENCE_ATTEMPTS_PER_UNIT": "3"})
        assert killed.returncode == 75, killed.stdout + killed.stderr
        assert target.query("SELECT count(*) FROM attempts_attempt")[0][0] == 3
        assert target.query("SELECT count(*) FROM grading_gradereport")[0][0] == 0
        resumed = target.import_(reference, extra_env={"IMPORT_REFERENCE_ATTEMPTS_PER_UNIT": "3"})
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "Import check passed" in resumed.stdout
        assert target.query("SELECT count(*) FROM attempts_attempt")[0][0] == expected["counts"]["numbas_lti_attempt"]
        assert target.query("SELECT count(*) FROM attempts_elementchange")[0][0] == \
            expected["counts"]["numbas_lti_scormelement"]
        assert target.query("SELECT count(*) FROM exams_exampackage")[0][0] == 3

        # A difference between the two systems (a lost value here) fails the check, loudly.
        target.execute("DELETE FROM attempts_elementchange WHERE id = (SELECT min(id) FROM attempts_elementchange)")
        broken = target.import_(reference)
        assert broken.returncode != 0
        assert "IMPORT CHECK FAILED" in broken.stderr
        assert "stored values" in broken.stderr
    finally:
        target.drop()


def test_a_grade_change_reaches_the_lms_under_the_imported_sourcedid(imported, reference):
    """Alice (Moodle user 3101) on the "Week 5 quiz": an instructor lowers a part of her best attempt; her
    new grade goes to the LMS under the lis_result_sourcedid the reference had, signed with the imported
    consumer's key and secret. (The LMS's outcome URL is pointed at the stub: the fixture's receiver is gone.)"""
    from tests.support.lms_stub import LmsStub

    sourcedid = _query(reference[0], "SELECT d.lis_result_sourcedid FROM numbas_lti_ltiuserdata u JOIN "
                                     "numbas_lti_lti_11_userdata d ON d.user_data_id = u.id WHERE u.user_id = 4 AND "
                                     "u.resource_id = 1")[0][0]
    secret = _query(reference[0], "SELECT secret FROM numbas_lti_lti_11_consumer WHERE key = 'moodle-maths'")[0][0]
    attempt = _links(imported, "attempt")[3]  # Alice's second attempt, 9/9 with the discount
    with LmsStub(consumers={"moodle-maths": secret}) as stub:
        imported.execute(f"UPDATE lms_resourcemembership SET lis_outcome_service_url = '{stub.url}'")
        stats = imported.python(
            "import json; from attempts.models import Attempt; from grading import services\n"
            f"services.part_remark(attempt=Attempt.objects.get(pk={attempt}), part_id='q0p0g0', score=0, by=None)\n"
            "stats = services.passback_deliver_due(budget_seconds=15)\n"
            "print(json.dumps(stats.delivered))")
        assert stats == 1
        assert stub.wait_for_grade(sourcedid, timeout=10)
        assert stub.accepted_for(sourcedid) == [pytest.approx(8 / 9, abs=1e-4)]  # the LMS gets 4 decimals
        assert [r.sourcedid for r in stub.requests] == [sourcedid]  # no one else's grade was sent again


def test_a_launch_as_the_lms_signed_it_finds_the_same_person_and_their_attempts(reference, tmp_path):
    """After the import, Alice's LMS launches the "Week 5 quiz" as it did for the reference (same consumer
    key and secret, user_id, resource_link_id): she is the imported person, on the imported activity,
    and sees her two attempts — no new account, no new activity."""
    import requests

    from tests.support.lms import launch_params, sign
    from tests.support.live import start_live_server

    server = start_live_server(tmp_path)
    try:
        server.manage("import_reference", "--database", reference[0], "--media", str(reference[1]))
        secret = _query(reference[0], "SELECT secret FROM numbas_lti_lti_11_consumer WHERE key = 'moodle-maths'")[0][0]
        sourcedid = _query(reference[0], "SELECT d.lis_result_sourcedid FROM numbas_lti_ltiuserdata u JOIN "
                                         "numbas_lti_lti_11_userdata d ON d.user_data_id = u.id WHERE u.user_id = 4 "
                                         "AND u.resource_id = 1")[0][0]
        people_before = server.query("SELECT count(*) FROM auth_user")[0][0]
        url = f"{server.url}/lti_entry"  # the reference's launch path, where the LMS still points
        params = launch_params(user_id="3101", resource_link_id="41", context_id="2187", roles="Learner",
                               context_title="MATH2011 Number Theory (2026/27)", context_label="MATH2011",
                               lis_person_name_full="Alice Archer", lis_person_name_given="Alice",
                               lis_person_name_family="Archer", lis_person_sourcedid="aarcher",
                               lis_person_contact_email_primary="alice.archer@students.example.ac.uk",
                               lis_result_sourcedid=sourcedid,
                               resource_link_title="Week 5 quiz: Bezout and modular inverses",
                               tool_consumer_instance_guid="moodle.example.ac.uk")
        response = requests.Session().post(url, data=sign(params, key="moodle-maths", secret=secret, url=url),
                                           timeout=30)
        assert response.status_code == 200, response.text[:500]
        assert "Week 5 quiz: Bezout and modular inverses" in response.text
        assert server.query("SELECT count(*) FROM auth_user")[0][0] == people_before
        assert server.query("SELECT count(*) FROM lms_resource")[0][0] == 3
        alice = int(server.query("SELECT local_pk FROM reference_import_importlink WHERE kind = 'user' AND "
                                 "reference_pk = 4")[0][0])
        launched = server.query(
            "SELECT m.user_id, r.resource_link_id, m.lis_result_sourcedid FROM lms_launchlog l JOIN "
            "lms_resourcemembership m ON m.id = l.membership_id JOIN lms_resource r ON r.id = m.resource_id")
        assert launched == [(alice, "41", sourcedid)]
        assert server.query("SELECT count(*) FROM attempts_attempt a JOIN lms_resource r ON r.id = a.resource_id "
                            "WHERE a.user_id = %s AND r.resource_link_id = '41'", [alice])[0][0] == 2
        page = " ".join(re.sub(r"<[^>]+>", " ", response.text).split())
        assert "4 / 9" in page and "9 / 9" in page  # her two attempts, scored as the reference scored them
        assert "It is in your course's gradebook" in page
    finally:
        server.stop()


@pytest.mark.browser
def test_an_imported_attempt_in_progress_resumes_in_chromium_with_its_answers(reference, tmp_path, page):
    """Chloé left attempt 4 of the "Week 5 quiz" on question 3 after answering questions 1 and 2 in
    the reference. After the import her LMS launches her here as it did there; she resumes the attempt
    in Chromium: the real Numbas exam opens where she was, with her answers and score."""
    from tests.support import lms as test_lms
    from tests.support.lms_page import iframe_launch_html, serve_html
    from tests.support.live import start_live_server
    from tests.test_real_exams_browser import EXAM_JS, LocalOnly, numbas_frame, wait_for_numbas

    typed = {a["attempt_pk"]: a for a in json.loads((FIXTURE / "browser_attempts.json").read_text())["attempts"]}[4]
    server = start_live_server(tmp_path)
    try:
        server.manage("import_reference", "--database", reference[0], "--media", str(reference[1]))
        # Her 60-minute limit ran out long ago (the fixture is from 2026-12-01): her instructor lifts it here.
        chloe = int(server.query("SELECT local_pk FROM reference_import_importlink WHERE kind = 'user' AND "
                                 "reference_pk = 6")[0][0])
        server.manage("shell", "-c", "from attempts.services import access_change_set; from lms.models import Resource\n"
                      "access_change_set(resource_id=Resource.objects.get(resource_link_id='41').pk, "
                      f"user_id={chloe}, changed_by=None, time_limit_off=True, reason='test')")
        secret = _query(reference[0], "SELECT secret FROM numbas_lti_lti_11_consumer WHERE key = 'moodle-maths'")[0][0]
        local = LocalOnly(page.context, server.exam_origin)
        url = f"{server.url}/lti_entry"  # the reference's launch path, where the LMS still points
        signed = test_lms.sign(test_lms.launch_params(
            user_id="3103", resource_link_id="41", context_id="2187", roles="Learner",
            lis_person_name_full="Chloé Dawson", lis_person_contact_email_primary="chloe.dawson@students.example.ac.uk",
            resource_link_title="Week 5 quiz: Bezout and modular inverses"), key="moodle-maths", secret=secret, url=url)
        with serve_html(iframe_launch_html(url, signed).replace('target="tool"', "")) as lms_url:
            page.goto(lms_url)
            page.get_by_test_id("student-page").wait_for(timeout=30000)
        page.get_by_test_id("resume").click()
        frame = numbas_frame(page)
        wait_for_numbas(frame, f"{EXAM_JS}.currentQuestion && {EXAM_JS}.currentQuestion.number === 2")
        state = frame.evaluate(f"""() => {{
            const exam = {EXAM_JS};
            const gaps = (q) => exam.questionList[q].parts[0].gaps.map((g) => String(g.studentAnswer));
            return {{score: exam.score, q1: gaps(0), q2: gaps(1)}};
        }}""")
        assert state["score"] == typed["exam_score"][0]
        assert state["q1"] == typed["answers"][0]["typed"]
        assert state["q2"] == typed["answers"][1]["typed"]
        local.assert_stayed_local()
    finally:
        server.stop()
