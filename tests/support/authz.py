"""Support for the authorisation matrix (tests/test_authz_matrix.py): enumerate every HTTP and
websocket route, build a small committed "world" (two resources, their people, an attempt, a
grade, a report file), give each actor a session, snapshot the database, and talk to the
websocket routes in-process through Channels' WebsocketCommunicator.

The world is committed once per module (like Django's setUpTestData, but committed, so that the
websocket consumers' own database threads see it); each HTTP test still runs in pytest-django's
transaction, rolled back afterwards, so mutating requests never leak into the next test.
"""

from __future__ import annotations

import asyncio
import gc
import io
import functools
import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.support import lms as test_lms

ACTORS = ("anonymous", "student", "other_student", "instructor", "other_instructor", "staff")
ACTOR_HELP = {
    "anonymous": "no session",
    "student": "S1, a student of resource A who owns the attempts, grade and report rows",
    "other_student": "S2, another student of resource A",
    "instructor": "I1, instructor of resource A (context 1)",
    "other_instructor": "I2, instructor of resource B in another context (context 2)",
    "staff": "is_staff + is_superuser, no LTI membership anywhere",
}


# --- routes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRoute:
    key: str  # "namespace:name", or the full route string when the pattern has no name
    route: str  # the full route (path converters or regex), concatenated over includes
    name: str | None  # "namespace:name" or None
    view: str  # dotted path of the view callable


def _view_path(callback) -> str:
    target = getattr(callback, "view_class", None) or callback
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', getattr(target, '__name__', '?'))}"


def http_routes() -> list[HttpRoute]:
    """Every URL pattern of the root URLconf, recursively, with namespaces."""
    found: list[HttpRoute] = []

    def walk(patterns, prefix: str, namespace: str | None):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                name = (f"{namespace}:{pattern.name}" if namespace else pattern.name) if pattern.name else None
                found.append(HttpRoute(key=name or route, route=route, name=name, view=_view_path(pattern.callback)))
            else:  # pragma: no cover - Django has only these two
                raise TypeError(f"Unknown URL pattern type {type(pattern)!r}")

    walk(get_resolver().url_patterns, "", None)
    return found


@dataclass(frozen=True)
class WsRoute:
    key: str  # the route string: websocket routes have no names
    view: str


def websocket_routes() -> list[WsRoute]:
    from numbas_lti.routing import websocket_urlpatterns

    found: list[WsRoute] = []

    def walk(patterns, prefix: str):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                consumer = getattr(pattern.callback, "consumer_class", pattern.callback)
                found.append(WsRoute(key=prefix + str(pattern.pattern), view=_view_path(consumer)))

    walk(websocket_urlpatterns, "")
    return found


# --- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    consumer: object
    resource_a: object  # context 1: S1, S2 students, I1 instructor; with the demo exam
    resource_b: object  # context 2: I2 instructor
    users: dict[str, object]  # actor -> User (anonymous: None)
    sessions: dict[str, str | None]  # actor -> committed session key
    memberships: dict[str, object]
    attempt_done: object  # S1's first attempt: completed 3/4
    attempt_open: object  # S1's second attempt: in progress, with values
    grade_report: object  # S1's grade in A (from attempt_done)
    report: object  # a finished scores CSV of A, asked for by I1
    handoff_token: str  # S1's launch hand-off token, unused
    group: object  # an auth Group, so that its admin pages have an object
    extra: dict = field(default_factory=dict)

    def client(self, actor: str) -> Client:
        """A fresh test client carrying the actor's session cookie (no new login, no writes)."""
        client = Client()
        key = self.sessions[actor]
        if key:
            client.cookies[settings.SESSION_COOKIE_NAME] = key
        return client


_user_ids = itertools.count(1)


def lti_launch(consumer, *, user_id: str, resource_link_id: str, context_id: str, roles: str = "Learner",
               client: Client | None = None):
    """A signed LTI launch through the test client, as an LMS sends it; returns the response."""
    client = client or Client()
    params = test_lms.launch_params(user_id=user_id, resource_link_id=resource_link_id, roles=roles,
                                    context_id=context_id, context_title=f"Course {context_id}",
                                    resource_link_title=f"Quiz {resource_link_id}")
    return client.post("/lti/launch/", test_lms.sign(params, key=consumer.key, secret=consumer.secret))


def _parts(attempt, parts) -> None:
    """The attempt's parts as Numbas reports them (interactions: id, question, marks, score)."""
    from attempts import services as attempt_services
    from attempts.tests.factories import batch

    changes = []
    for index, (part_id, question_id, score, marks) in enumerate(parts):
        prefix = f"cmi.interactions.{index}."
        changes += [(prefix + "id", part_id), (prefix + "objectives.0.id", question_id),
                    (prefix + "weighting", str(marks)), (prefix + "result", str(score))]
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id,
                                 batch=batch(attempt.writer_token, changes))


def build_world() -> World:
    """Create and commit the world (call with the database unblocked and not in a transaction)."""
    from attempts.tests.factories import with_exam
    from grading.models import GradeReport
    from grading.tests.helpers import answer, start
    from lms.models import ResourceMembership
    from lms.services import consumer_create_or_update
    from reports import services as report_services
    from reports.models import ReportFileState

    # The same consumer as the root conftest's `consumer` fixture (which is function-scoped).
    consumer, _, _ = consumer_create_or_update(key="moodle-key", secret="moodle-secret", name="University Moodle")

    people = {
        "student": ("authz-s1", "res-A", "course-1", "Learner"),
        "other_student": ("authz-s2", "res-A", "course-1", "Learner"),
        "instructor": ("authz-i1", "res-A", "course-1", "Instructor"),
        "other_instructor": ("authz-i2", "res-B", "course-2", "Instructor"),
    }
    users, sessions, memberships = {"anonymous": None}, {"anonymous": None}, {}
    handoff_token = ""
    for actor, (user_id, link, context, roles) in people.items():
        client = Client()
        response = lti_launch(consumer, user_id=user_id, resource_link_id=link, context_id=context, roles=roles,
                              client=client)
        assert response.status_code == 302, response.content
        membership = ResourceMembership.objects.select_related("resource__context", "user").get(
            resource__resource_link_id=link, user__lti_identity__lti_user_id=user_id
        )
        memberships[actor] = membership
        users[actor] = membership.user
        sessions[actor] = client.cookies[settings.SESSION_COOKIE_NAME].value
        if actor == "student":
            handoff_token = parse_qs(urlsplit(response["Location"]).query)["launch"][0]

    staff = get_user_model().objects.create_user(
        username=f"authz-staff-{next(_user_ids)}", email="staff@example.ac.uk", is_staff=True, is_superuser=True
    )
    staff_client = Client()
    staff_client.force_login(staff)
    users["staff"], sessions["staff"] = staff, staff_client.cookies[settings.SESSION_COOKIE_NAME].value

    resource_a = memberships["student"].resource
    resource_b = memberships["other_instructor"].resource
    assert resource_a.context_id != resource_b.context_id
    # Grades are reported only when the instructor asks (no passback while building), no e-mails.
    with_exam(resource_a, max_attempts=0, report_when="manual", email_receipt=False)

    attempt_done = start(memberships["student"])
    _parts(attempt_done, [("q0p0", "q0", 1, 1), ("q0p1", "q0", 0, 1), ("q1p0", "q1", 2, 2)])
    answer(attempt_done, 3, complete=True, questions=[("q0", 1, 2), ("q1", 2, 2)])
    attempt_open = start(memberships["student"])
    answer(attempt_open, 1, questions=[("q0", 1, 2)])
    attempt_done.refresh_from_db()
    attempt_open.refresh_from_db()
    assert attempt_done.is_ended and not attempt_open.is_ended and attempt_open.writer_token

    grade_report = GradeReport.objects.get(membership=memberships["student"])
    report = report_services.report_request(resource_id=resource_a.pk, kind="scores", user=users["instructor"])
    report.refresh_from_db()  # Huey runs the task at once in tests, after the request's commit
    if report.state == ReportFileState.QUEUED:
        report_services.report_generate(report_id=report.pk)
        report.refresh_from_db()
    assert report.state == ReportFileState.DONE, report.error

    # I1's finished test run of resource A (never counted), for the test-run pages.
    from attempts import services as attempt_services

    test_run = attempt_services.test_run_start(membership=memberships["instructor"])
    attempt_services.attempt_take_over(attempt=test_run)
    test_run.refresh_from_db()
    answer(test_run, 2, complete=True, questions=[("q0", 2, 2)])
    test_run.refresh_from_db()
    assert test_run.is_test_run and test_run.is_ended

    # An LTI 1.3 registration, the tool's key, a login in flight and a registration link, so that their
    # pages have objects.
    from datetime import timedelta

    from django.utils import timezone

    from lti13 import keys as lti13_keys
    from lti13.models import LoginState
    from lti13.services import PlatformValues, platform_create_or_update

    platform, _ = platform_create_or_update(values=PlatformValues(
        name="Authz LMS 1.3", issuer="https://lms13.example.ac.uk", client_id="authz-client",
        auth_login_url="https://lms13.example.ac.uk/auth", keyset={"keys": []}), deployment_ids=["authz-deployment"])
    lti13_keys.signing_key()
    LoginState.objects.create(state="authz-state", nonce="authz-nonce", platform=platform, target_link_uri="http://x/",
                              login_hint="h", created_at=timezone.now(), expires_at=timezone.now() + timedelta(minutes=5))
    from lti13.services import registration_link_create

    registration_link_create(note="authz")  # a dynamic registration link, for its admin pages

    from lti13.models import DeepLinkingRequest

    DeepLinkingRequest.objects.create(
        token_hash="0" * 64, platform=platform, consumer=platform.consumer, deployment_id="authz-deployment",
        sub="authz-i13", settings={"deep_link_return_url": "https://lms13.example.ac.uk/dl"},
        return_url="https://lms13.example.ac.uk/dl", created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(minutes=5))

    # A student on the course list of resource A's course who has not launched (Names and Role
    # Provisioning), for the page that changes their access ahead of their launch.
    from lti13.models import RosterMember

    roster_member = RosterMember.objects.create(context=resource_a.context, user_id="authz-s13", name="Nora Notyet",
                                                email="nora@example.ac.uk", roles="Learner", fetched_at=timezone.now())

    # An access change pasted for someone who has not launched resource A yet.
    from attempts.models import PendingAccessChange

    pending_access = PendingAccessChange.objects.create(
        resource=resource_a, kind="email", value="later@example.ac.uk", value_key="later@example.ac.uk",
        extra_attempts=1, changed_by=users["instructor"], changed_at=timezone.now())

    # A re-mark of resource A, every attempt marked (the finished one would change), not applied.
    from remarking import services as remark_services

    remark_run = remark_services.remark_run_start(resource_id=resource_a.pk, scope="all", by=users["instructor"])
    remark_services.remark_item_hand_out(run=remark_run)
    remark_services.remark_item_record(run=remark_run, attempt_id=attempt_done.pk, values={
        "cmi.interactions.1.result": "1", "cmi.objectives.0.score.raw": "2", "cmi.score.raw": "4"})
    remark_services.remark_item_hand_out(run=remark_run, after_attempt_id=attempt_done.pk)
    remark_services.remark_item_record(run=remark_run, attempt_id=attempt_open.pk, values={})

    group = Group.objects.create(name="authz-markers")
    # A failed admin login (django-axes records it), so that its admin pages have an object.
    assert Client().post("/admin/login/", {"username": "authz-guesser", "password": "guess"}).status_code == 200
    return World(
        consumer=consumer, resource_a=resource_a, resource_b=resource_b, users=users, sessions=sessions,
        memberships=memberships, attempt_done=attempt_done, attempt_open=attempt_open, grade_report=grade_report,
        report=report, handoff_token=handoff_token, group=group,
        extra={"platform": platform, "roster_member": roster_member, "test_run": test_run,
               "pending_access": pending_access, "remark_run": remark_run},
    )


def flush_database() -> None:
    """Empty every table, as pytest-django's transactional tests do after each test."""
    from django.core.management import call_command

    call_command("flush", verbosity=0, interactive=False, database="default", reset_sequences=False,
                 allow_cascade=False, inhibit_post_migrate=False)


def close_attempt_worker_connections() -> None:
    """The attempt consumer's database threads keep their connections open; close them so that
    the test database can be dropped at the end of the session."""
    from django.db import connections

    from attempts import consumers

    pool = consumers._db_threads
    parties = pool._max_workers
    barrier = threading.Barrier(parties, timeout=10)

    def close():
        try:
            barrier.wait()  # every task on a thread of its own: each thread closes its connection
        except threading.BrokenBarrierError:
            pass
        connections.close_all()

    for future in [pool.submit(close) for _ in range(parties)]:
        future.result(timeout=20)

    # and asgiref's thread for thread-sensitive sync code (Channels' session and user lookups)
    from asgiref.sync import sync_to_async

    async def close_sync_thread():
        await sync_to_async(connections.close_all, thread_sensitive=True)()

    with ThreadPoolExecutor(1) as runner:
        runner.submit(asyncio.run, close_sync_thread()).result(timeout=20)


# --- snapshots: refused requests must write nothing ---------------------------------------------

_SNAPSHOT_SKIP = {"sessions", "contenttypes", "admin"}  # sessions: logins and logouts are not data writes


@functools.cache
def snapshot_models() -> tuple:
    """The project's own tables (every app under app/), and Django's users and groups."""
    project = Path(settings.APP_DIR).resolve()
    return tuple(
        model for model in apps.get_models()
        if (Path(model._meta.app_config.path).resolve().is_relative_to(project) or model._meta.app_label == "auth")
        and model._meta.app_label not in _SNAPSHOT_SKIP
        and not model._meta.proxy and model._meta.managed and model._meta.label != "auth.Permission"
    )


@functools.cache
def _snapshot_sql() -> str:
    quote = connection.ops.quote_name
    return " UNION ALL ".join(
        f"SELECT %s::text, (SELECT coalesce(json_agg(t ORDER BY t.{quote(model._meta.pk.column)})::text, '[]') "
        f"FROM {quote(model._meta.db_table)} t)"
        for model in snapshot_models())


def snapshot() -> dict[str, list[str]]:
    """Every row of every project table (the world is a few dozen rows), in one statement."""
    tables = [model._meta.db_table for model in snapshot_models()]
    with connection.cursor() as cursor:
        cursor.execute(_snapshot_sql(), tables)
        return {table: [json.dumps(row, sort_keys=True) for row in json.loads(rows)] for table, rows in cursor.fetchall()}


def snapshot_diff(before: dict, after: dict) -> dict[str, dict]:
    changed = {}
    for table in before.keys() | after.keys():
        old, new = set(map(repr, before.get(table, []))), set(map(repr, after.get(table, [])))
        if old != new:
            changed[table] = {"removed": sorted(old - new)[:5], "added": sorted(new - old)[:5]}
    return changed


# --- websockets ---------------------------------------------------------------------------------

_application = None


def asgi_application():
    """numbas_lti.asgi.application, imported without keeping its process-wide gc tuning
    (meant for long-lived daphne processes) in the test process."""
    global _application
    if _application is None:
        threshold = gc.get_threshold()
        from numbas_lti.asgi import application

        gc.unfreeze()
        gc.set_threshold(*threshold)
        _application = application
    return _application


@dataclass
class WsResult:
    accepted: bool  # the handshake was accepted
    messages: list  # text frames received (decoded JSON where possible)
    close_code: int | None  # the code the server closed with, None if it stayed open


async def _converse(path: str, *, session_key: str | None, origin: str, send: list | None, wait: float) -> WsResult:
    import json

    from channels.testing import WebsocketCommunicator

    headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
    if session_key:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}".encode()))
    communicator = WebsocketCommunicator(asgi_application(), path, headers=headers)
    accepted, detail = await communicator.connect(timeout=10)
    if not accepted:
        return WsResult(False, [], detail if isinstance(detail, int) else None)
    messages, close_code = [], None
    for message in send or []:
        await communicator.send_json_to(message)
    while True:
        # receive_nothing waits without cancelling the application (receive_output's timeout would)
        if await communicator.receive_nothing(timeout=wait):
            break
        output = await communicator.receive_output(timeout=1)
        if output["type"] == "websocket.close":
            close_code = output.get("code", 1000)
            break
        if output["type"] == "websocket.send":
            text = output.get("text")
            try:
                messages.append(json.loads(text) if text is not None else output.get("bytes"))
            except ValueError:
                messages.append(text)
    await communicator.disconnect(timeout=2)  # the client's side of the closing handshake (or its close)
    return WsResult(True, messages, close_code)


def websocket(path: str, *, session_key: str | None, origin: str = "http://testserver", send: list | None = None,
              wait: float = 0.3) -> WsResult:
    """Connect, optionally send JSON messages, and collect what comes back until the server
    closes or `wait` seconds pass in silence. Runs in a thread of its own (asyncio.run), so
    that the consumers reach the database through their own connections, which see the
    committed world."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _converse(path, session_key=session_key, origin=origin, send=send,
                                                   wait=wait)).result(timeout=60)


def exam_zip() -> io.BytesIO:
    from exams.demo import demo_exam_zip

    upload = io.BytesIO(demo_exam_zip())
    upload.name = "exam.zip"
    return upload
