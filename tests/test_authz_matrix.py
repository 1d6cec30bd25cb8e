"""Authorisation matrix: every URL pattern and websocket route × every kind of caller.

Routes are enumerated from the URL configuration (django.urls.get_resolver(), recursively, with
namespaces) and from numbas_lti.routing.websocket_urlpatterns. Each must be classified in the
tables below — HTTP_TABLE (explicit, per route) plus the Django admin's standard model routes,
which are generated from admin.site._registry — or `test_every_http_route_is_classified` /
`test_every_websocket_route_is_classified` fail: a new endpoint cannot escape the matrix.

Each table entry says who may use the route and why, and gives one or more probes: how to fill
the URL from the fixture world, the method (the one the view accepts), the body, and the outcome
expected for each actor (tests/support/authz.py: ACTORS):

    anonymous          no session
    student            S1, student of resource A (context 1), owns the attempts, grade and report rows
    other_student      S2, another student of resource A
    instructor         I1, instructor of resource A
    other_instructor   I2, instructor of resource B in another context (context 2)
    staff              is_staff + is_superuser, no LTI membership anywhere

"allow": the status given (2xx, or a 3xx to the right place), and for mutating requests the
intended effect. "refuse": the exact 401/403/404/410 given (400 only for the unsigned LTI launch;
in the admin, a 302 to its login page) — never a 405 for a wrong method — and the database must be
exactly as before (every row of every project table is compared), for GETs as much as POSTs.
Websocket cells: the owner gets {"type": "ready"}; others are closed with 4401 (not authenticated)
or 4403 (forbidden), or refused at the handshake (another site's Origin).

Known bugs are listed in KNOWN_BUGS: their cells are xfail(strict=True), so they stay visible and
the suite tells when they are fixed.

Staff have no membership in any resource: the resource pages (portal.access.resource_view)
refuse them like any outsider; they act through the admin (and the staff-only test-launch page,
which can sign a launch into any resource — that is its purpose).

The world is committed once for the module; every HTTP cell runs in its own rolled-back
transaction, so mutating cells cannot affect others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.test import override_settings
from django.urls import reverse

from tests.support import lms as test_lms
from tests.support.authz import (
    ACTORS,
    World,
    build_world,
    close_attempt_worker_connections,
    exam_zip,
    flush_database,
    http_routes,
    snapshot,
    snapshot_diff,
    websocket,
    websocket_routes,
)

# --- expectations -------------------------------------------------------------------------------

# 400 only where the table says so: an unsigned LTI launch is "not signed" (lms.launch); another
# student's receipt code is "not for one of your attempts" (attempts:receipt_check).
REFUSED_STATUSES = {400, 401, 403, 404, 410}


@dataclass(frozen=True)
class Expect:
    kind: str  # "allow" | "refuse"
    status: int
    to: Callable[[World, str], str] | str | None = None  # redirect target (path prefix) for 3xx


def allow(status: int = 200, to=None) -> Expect:
    return Expect("allow", status, to)


def refuse(status: int) -> Expect:
    assert status in REFUSED_STATUSES, status
    return Expect("refuse", status)


TO_ADMIN_LOGIN = Expect("refuse", 302, "/admin/login/?next=")
DR_CONFIG = "https://lms.example/.well-known/openid-configuration"
DR_PRIVATE_CONFIG = "https://10.20.30.40/.well-known/openid-configuration"
TO_ADMIN_INDEX = Expect("refuse", 302, "/admin/")  # admin_view's answer to a non-staff logout


def cells(**by_actor: Expect) -> dict[str, Expect]:
    missing = set(ACTORS) - set(by_actor)
    assert not missing, f"no expectation for {sorted(missing)}"
    return by_actor


def everyone(expect: Expect) -> dict[str, Expect]:
    return {actor: expect for actor in ACTORS}


def members_of_a(ok: Expect) -> dict[str, Expect]:
    """Any member of resource A (students and its instructor)."""
    return cells(anonymous=refuse(401), student=ok, other_student=ok, instructor=ok,
                 other_instructor=refuse(403), staff=refuse(403))


def instructor_of_a(ok: Expect) -> dict[str, Expect]:
    return cells(anonymous=refuse(401), student=refuse(403), other_student=refuse(403), instructor=ok,
                 other_instructor=refuse(403), staff=refuse(403))


def staff_only(ok: Expect) -> dict[str, Expect]:
    return {**everyone(TO_ADMIN_LOGIN), "staff": ok}


# --- probes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    method: str
    url: Callable[[World, str], str]  # (world, actor) -> path with query string
    expect: dict[str, Expect]  # actor -> outcome (a probe may cover some actors only)
    label: str = ""  # distinguishes several probes of one route in test ids
    data: Callable[[World, str], dict] | None = None
    json_body: Callable[[World, str], dict] | None = None
    headers: dict = field(default_factory=dict)
    check: Callable[[World, str, object], None] | None = None  # the allowed request did what it should
    settings: dict = field(default_factory=dict)  # overridden for this probe (a feature an operator turns on)


@dataclass(frozen=True)
class Route:
    access: str  # public | member | instructor | owner | staff | capability
    why: str
    probes: tuple[Probe, ...]
    present: bool = True  # False: only in some configurations (then not probed when absent)


A = lambda w: w.resource_a.pk  # noqa: E731
B = lambda w: w.resource_b.pk  # noqa: E731
OPEN_ATTEMPT = lambda w: w.attempt_open.pk  # noqa: E731
GRADE = lambda w: w.grade_report.pk  # noqa: E731
REPORT = lambda w: w.report.pk  # noqa: E731
S1 = lambda w: w.memberships["student"].pk  # noqa: E731
LISTED = lambda w: w.extra["roster_member"].pk  # noqa: E731
PENDING = lambda w: w.extra["pending_access"].pk  # noqa: E731
ATTEMPT_DONE = lambda w: w.attempt_done.pk  # noqa: E731
EXAM_A = lambda w: w.attempt_done.exam_id  # noqa: E731
REMARK_RUN = lambda w: w.extra["remark_run"].pk  # noqa: E731
TO_ATTEMPT = lambda w, a: reverse("dashboard:attempt", args=[w.resource_a.pk, w.attempt_done.pk])  # noqa: E731


def _demo_lms_bearer() -> dict:
    """A valid bearer token of the test-launch page's demo LMS, with every scope it grants."""
    from testlaunch import platform as demo_platform

    token = demo_platform.access_token_make(client_id=demo_platform.CLIENT_ID,
                                            scopes=sorted(demo_platform.GRANTED_SCOPES))
    return {"Authorization": "Bearer " + token}


DEMO_LMS_BEARER = _demo_lms_bearer()


def to_path(name: str, **kwargs: Callable[[World], object]) -> Callable[[World, str], str]:
    return lambda world, actor: reverse(name, kwargs={k: f(world) for k, f in kwargs.items()})


# --- checks for allowed cells (the intended effect happened) --------------------------------------


def _models():
    from attempts.models import Attempt, ElementChange, ResourceSettings
    from exams.models import ExamPackage
    from grading.models import Discount, GradeReport
    from lms.models import LaunchLog
    from reports.models import ReportFile

    return SimpleNamespace(Attempt=Attempt, ElementChange=ElementChange, ResourceSettings=ResourceSettings,
                           ExamPackage=ExamPackage, Discount=Discount, GradeReport=GradeReport,
                           LaunchLog=LaunchLog, ReportFile=ReportFile)


def logged_in_as(client_response, user) -> bool:
    return str(client_response.wsgi_request.session.get("_auth_user_id")) == str(user.pk)


def check_launch(world, actor, response):
    assert response.wsgi_request.user.is_authenticated and not response.wsgi_request.user.is_staff
    assert _models().LaunchLog.objects.count() == 5  # the world's four launches and this one


def check_handoff(world, actor, response):
    assert logged_in_as(response, world.users["student"])  # the token's owner, whoever holds it
    assert _models().LaunchLog.objects.filter(handoff_used_at__isnull=False).count() == 1


def check_upload(world, actor, response):
    assert response.json()["version"] == 2
    assert _models().ExamPackage.objects.filter(resource=world.resource_a).count() == 2


def check_version_download(world, actor, response):
    body = b"".join(response.streaming_content)
    assert body.startswith(b"PK") and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment;") and response["X-Content-Type-Options"] == "nosniff"


def check_settings(world, actor, response):
    assert _models().ResourceSettings.objects.get(resource=world.resource_a).grading_method == "last"


def check_discount(world, actor, response):
    assert _models().Discount.objects.filter(resource=world.resource_a, target="q1", behaviour="remove").exists()


def check_resource_settings(world, actor, response):
    assert _models().ResourceSettings.objects.get(resource=world.resource_a).max_attempts == 7


def check_remark(world, actor, response):
    from attempts.models import PartOverride

    assert PartOverride.objects.filter(attempt=world.attempt_done, part_id="q1p0", score=1).exists()


def check_remark_next(world, actor, response):
    assert response.json()["next"] is None and response.json()["progress"]["pending"] == 0  # all marked


def check_remark_recorded(world, actor, response):
    from remarking.models import RemarkItem

    item = RemarkItem.objects.get(run=world.extra["remark_run"], attempt=world.attempt_done)
    assert (item.new_raw, item.changed) == (2, True)


def check_remark_applied(world, actor, response):
    from attempts.models import AttemptEvent

    assert AttemptEvent.objects.filter(attempt=world.attempt_done, kind="remarked", by=world.users[actor]).count() == 1
    assert _models().Attempt.objects.get(pk=world.attempt_done.pk).score_raw == 4


def check_remark_discarded(world, actor, response):
    from remarking.models import RemarkRun

    assert RemarkRun.objects.get(pk=world.extra["remark_run"].pk).status == "discarded"


def check_attempt_deleted(world, actor, response):
    assert _models().Attempt.all_objects.get(pk=world.attempt_done.pk).deleted_at is not None


def check_attempt_reopened(world, actor, response):
    assert _models().Attempt.objects.get(pk=world.attempt_done.pk).ended_at is None


def check_access_change(world, actor, response):
    from attempts.models import AccessChange

    assert AccessChange.objects.filter(resource=world.resource_a, user=world.users["student"], extra_attempts=2).exists()


def check_access_list(world, actor, response):
    from attempts.models import AccessChange, PendingAccessChange

    assert AccessChange.objects.filter(resource=world.resource_a, user=world.users["student"], extra_attempts=2).exists()
    assert PendingAccessChange.objects.filter(resource=world.resource_a, value="new@example.ac.uk").exists()


def check_pending_removed(world, actor, response):
    from attempts.models import PendingAccessChange

    assert not PendingAccessChange.objects.filter(pk=world.extra["pending_access"].pk).exists()


def check_roster_access_change(world, actor, response):
    from attempts.models import AccessChange
    from lms.models import ResourceMembership

    member = world.extra["roster_member"]
    member.refresh_from_db()
    assert member.identity is not None and member.identity.sub == member.user_id
    assert AccessChange.objects.filter(resource=world.resource_a, user_id=member.identity.user_id,
                                       extra_attempts=2).exists()
    assert not ResourceMembership.objects.filter(user_id=member.identity.user_id).exists()


def check_grade_pending(world, actor, response):
    assert _models().GradeReport.objects.get(pk=world.grade_report.pk).state == "pending"


def check_report_requested(world, actor, response):
    assert _models().ReportFile.objects.filter(resource=world.resource_a).count() == 2


def check_report_status(world, actor, response):
    assert response.json()["id"] == str(world.report.pk) and response.json()["state"] == "done"


def check_download(world, actor, response):
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert body.startswith("name,identifier,email,lms_user_id") and "attachment" in response["Content-Disposition"]


def check_started(world, actor, response):
    attempt = _models().Attempt.objects.filter(resource=world.resource_a, user=world.users[actor]).latest("pk")
    assert response["Location"] == reverse("attempts:run", kwargs={"attempt_id": attempt.pk})
    assert attempt.number == (2 if actor == "instructor" else 1)  # a first attempt of S2 / I1 (I1 has a test run)


TEST_RUN = lambda w: w.extra["test_run"].pk  # noqa: E731


def _receipt_code(world) -> str:
    from attempts.receipts import receipt_code

    return receipt_code(world.attempt_done)
TO_TEST_RUNS = lambda w, a: reverse("attempts:test_runs", args=[w.resource_a.pk])  # noqa: E731


def check_test_run_started(world, actor, response):
    run = _models().Attempt.test_runs.filter(resource=world.resource_a, user=world.users["instructor"]).latest("pk")
    assert run.pk != world.extra["test_run"].pk and not run.is_ended
    assert response["Location"] == reverse("attempts:run", kwargs={"attempt_id": run.pk})


def check_test_run_removed(world, actor, response):
    from attempts.models import TestRunRemoval

    assert not _models().Attempt.all_objects.filter(pk=world.extra["test_run"].pk).exists()
    assert TestRunRemoval.objects.filter(attempt_id=world.extra["test_run"].pk, by=world.users["instructor"]).exists()


def check_not_started_twice(world, actor, response):
    # S1 has an attempt in progress: refused by the rules, not by authorisation, and nothing is created
    assert _models().Attempt.objects.filter(user=world.users["student"]).count() == 2


def check_run(mode: str):
    def check(world, actor, response):
        html = response.content.decode()
        assert f'"mode": "{mode}"' in html
        # Opening the page hands out no writer token and takes nothing over (that is a POST).
        assert '"token"' not in html and world.attempt_open.writer_token not in html
        assert _models().Attempt.objects.get(pk=world.attempt_open.pk).writer_token == world.attempt_open.writer_token
    return check


def _check_still_ended(world):
    assert _models().Attempt.objects.get(pk=world.attempt_done.pk).ended_at is not None


def check_taken_over(world, actor, response):
    token = response.json()["token"]
    assert token and token != world.attempt_open.writer_token
    assert _models().Attempt.objects.get(pk=world.attempt_open.pk).writer_token == token


def check_state(mode: str, role: str):
    def check(world, actor, response):
        body = response.json()
        assert body["mode"] == mode and body["numbas"]["user_role"] == role
        assert body["learner_id"] == "authz-s1"  # the LMS's user id, not our row id
    return check


def check_batch_stored(world, actor, response):
    assert response.json() == {"ack": "authz-batch", "stored": True, "ended": False}
    assert _models().ElementChange.objects.filter(attempt=world.attempt_open, value="authz").count() == 1


def check_contains(text: str):
    def check(world, actor, response):
        assert text in response.content.decode()
    return check


# --- request bodies -----------------------------------------------------------------------------


def signed_launch(world, actor):
    params = test_lms.launch_params(user_id="authz-newcomer", resource_link_id="res-A", context_id="course-1")
    return test_lms.sign(params, key=world.consumer.key, secret=world.consumer.secret)


def unsigned_launch(world, actor):
    return test_lms.launch_params(user_id="authz-intruder", resource_link_id="res-A", context_id="course-1",
                                  roles="Instructor", oauth_consumer_key=world.consumer.key)


def forged_launch(world, actor):
    params = test_lms.launch_params(user_id="authz-intruder", resource_link_id="res-A", context_id="course-1",
                                    roles="Instructor")
    return test_lms.sign(params, key=world.consumer.key, secret="not-the-secret")


def batch_body(world, actor):
    """A well-formed batch carrying S1's current writer token (as if it had leaked)."""
    return {"type": "batch", "batch": "authz-batch", "token": world.attempt_open.writer_token, "terminate": False,
            "changes": [{"seq": 1000, "key": "cmi.location", "value": "authz", "t": 1764000000000}]}


# --- the HTTP table -----------------------------------------------------------------------------

_launch_to_a = lambda w, a: reverse("portal:student", kwargs={"resource_id": w.resource_a.pk})  # noqa: E731

HTTP_TABLE: dict[str, Route] = {
    # core
    "home": Route("public", "The landing page; says what the tool is.", (
        Probe("GET", lambda w, a: "/", everyone(allow(200))),)),
    "javascript-catalog": Route("public", "The translations of the pages' JavaScript strings; nothing private.", (
        Probe("GET", to_path("javascript-catalog"), everyone(allow(200))),)),
    "favicon": Route("public", "The site's icon, which browsers ask for on every page.", (
        Probe("GET", to_path("favicon"), everyone(allow(200))),)),
    "health": Route("public", "Load balancers and monitoring; reveals only ok/error per backing service.", (
        Probe("GET", to_path("health"), everyone(allow(200))),)),
    # people: a signed-in person's own preferences (whoever they are); nobody else's
    "people:preferences": Route("member", "Anyone signed in sees and sets their own time zone; nothing of others.", (
        Probe("GET", to_path("people:preferences"),
              {**everyone(allow(200)), "anonymous": refuse(401)}),
        Probe("POST", to_path("people:preferences"),
              {**everyone(allow(302, to="/resource/preferences/")), "anonymous": refuse(401)}, label="choose",
              data=lambda w, a: {"time_zone": "Europe/Berlin"}),
    )),
    "people:browser_zone": Route("member", "The browser's zone, kept in the caller's own session only.", (
        Probe("POST", to_path("people:browser_zone"),
              {**everyone(allow(200)), "anonymous": refuse(401)}, data=lambda w, a: {"zone": "Europe/Berlin"}),
    )),
    # lms
    "lti:launch": Route("public", "Authenticated by the consumer's OAuth1 signature, not by a session.", (
        Probe("POST", to_path("lti:launch"), everyone(allow(302, to=_launch_to_a)), label="signed",
              data=signed_launch, check=check_launch),
        Probe("POST", to_path("lti:launch"), everyone(refuse(400)), label="unsigned", data=unsigned_launch),
        Probe("POST", to_path("lti:launch"), everyone(refuse(403)), label="bad-signature", data=forged_launch),
    )),
    "lti:handoff": Route(
        "capability",
        "The launch's one-time hand-off token (15 min, single use) is the credential: whoever holds it "
        "continues as the launched user, which is the point of 'continue in a new window'.", (
            Probe("GET", lambda w, a: reverse("lti:handoff", kwargs={"token": w.handoff_token}),
                  everyone(allow(302, to=_launch_to_a)), label="valid-token", check=check_handoff),
            Probe("GET", lambda w, a: reverse("lti:handoff", kwargs={"token": "not-a-token"}),
                  everyone(refuse(410)), label="bogus-token"),
        )),
    # lti13
    "lti13:login": Route("public", "OIDC login initiation: the platform's signed launch comes later, to lti13:launch.", (
        Probe("POST", to_path("lti13:login"), everyone(refuse(400)), label="incomplete"),
        Probe("GET", to_path("lti13:login"), everyone(refuse(400)), label="incomplete-get"),
    )),
    "lti13:launch": Route("public", "Authenticated by the platform's signed id_token and the one-time login state.", (
        Probe("POST", to_path("lti13:launch"), everyone(refuse(400)), label="no-token"),
    )),
    "lti13:deep_linking": Route(
        "capability", "The deep linking picker's answer: its one-time token (from a checked instructor's request, "
        "30 minutes, single use) is the credential; without one nothing is signed or written.", (
            Probe("POST", to_path("lti13:deep_linking"), everyone(refuse(403)), label="no-token",
                  data=lambda w, a: {"token": "not-a-token", "title": "Quiz"}),)),
    "lti13:jwks": Route("public", "The tool's public keys, for platforms to check what it signs.", (
        Probe("GET", to_path("lti13:jwks"), everyone(allow(200))),)),
    "lti13:platform_setup": Route("staff", "The URLs an LMS administrator gives their LMS, per registration.", (
        Probe("GET", lambda w, a: reverse("lti13:platform_setup", args=[w.extra["platform"].pk]),
              staff_only(allow(200))),)),
    "lti:language": Route("public", "The language switch: it changes only the caller's own session and cookie.", (
        Probe("POST", to_path("lti:language"), everyone(allow(302, to="/")), label="chosen",
              data=lambda w, a: {"language": "de", "next": "/"}),
        Probe("POST", to_path("lti:language"), everyone(refuse(400)), label="unknown",
              data=lambda w, a: {"language": "xx", "next": "/"}),
    )),
    "lti:config_xml": Route("public", "The LTI configuration cartridge an LMS administrator imports.", (
        Probe("GET", to_path("lti:config_xml"), everyone(allow(200))),)),
    # lti13: registering the tool with a platform
    "lti13:register": Route(
        "staff", "LTI Dynamic Registration, confirmed by a tool administrator (a CSRF-protected POST on a page no "
        "other site may frame); everyone else is asked to sign in, and nothing is fetched or written for them.", (
            Probe("GET", lambda w, a: reverse("lti13:register") + "?" + urlencode({"openid_configuration": DR_CONFIG}),
                  {**everyone(refuse(403)), "staff": allow(200)}, label="confirm-page"),
            # the staff's POST gets as far as the platform's address, which is private: refused, unfetched
            Probe("POST", to_path("lti13:register"), {**everyone(refuse(403)), "staff": allow(400)},
                  label="register", data=lambda w, a: {"openid_configuration": DR_PRIVATE_CONFIG}),
        )),
    "lti13:register_link": Route(
        "capability", "LTI Dynamic Registration through a one-time link an operator made "
        "(manage.py lti13_registration_link): the token in the address is the permission.", (
            Probe("GET", lambda w, a: reverse("lti13:register_link", args=["not-a-token"]) + "?"
                  + urlencode({"openid_configuration": DR_CONFIG}), everyone(refuse(403)), label="bogus-token"),
            Probe("POST", lambda w, a: reverse("lti13:register_link", args=["not-a-token"]), everyone(refuse(403)),
                  label="bogus-token-post", data=lambda w, a: {"openid_configuration": DR_CONFIG}),
        )),
    "lti13:canvas_config": Route("public", "Canvas's JSON configuration of the tool: its public addresses.", (
        Probe("GET", to_path("lti13:canvas_config"), everyone(allow(200))),)),
    # portal
    "portal:student": Route("member", "The activity page; each member sees only their own attempts.", (
        Probe("GET", to_path("portal:student", resource_id=A), members_of_a(allow(200))),)),
    "portal:instructor": Route("instructor", "Instructor page of the resource.", (
        Probe("GET", to_path("portal:instructor", resource_id=A), instructor_of_a(allow(200))),)),
    # exams
    "exams:upload": Route("instructor", "Uploads a new exam version for the resource (confirmed: A has attempts).", (
        Probe("POST", to_path("exams:upload", resource_id=A), instructor_of_a(allow(201)),
              data=lambda w, a: {"package": exam_zip(), "confirm_replace": "yes"}, check=check_upload),)),
    "exams:version_download": Route("instructor", "Downloads a version of the exam as a zip attachment.", (
        Probe("GET", to_path("exams:version_download", resource_id=A, exam_id=EXAM_A), instructor_of_a(allow(200)),
              check=check_version_download),
        Probe("GET", to_path("exams:version_download", resource_id=B, exam_id=EXAM_A),
              {"other_instructor": refuse(404)}, label="via-own-resource"),
    )),
    "exams:version_make_current": Route("instructor", "Makes a version current again (audited).", (
        # A has one version, already current: refused (400) with a message, nothing written.
        Probe("POST", to_path("exams:version_make_current", resource_id=A, exam_id=EXAM_A),
              instructor_of_a(refuse(400))),
        Probe("POST", to_path("exams:version_make_current", resource_id=B, exam_id=EXAM_A),
              {"other_instructor": refuse(404)}, label="via-own-resource"),
    )),
    "exams:attempts_move": Route("instructor", "Moves attempts to the current exam version (after a confirmation).", (
        Probe("GET", to_path("exams:attempts_move", resource_id=A), instructor_of_a(allow(200)),
              check=check_contains("Every attempt already uses the current version.")),
        # A's attempts are all on its only version: nothing to move (400, nothing written).
        Probe("POST", to_path("exams:attempts_move", resource_id=A), instructor_of_a(refuse(400)), label="all",
              data=lambda w, a: {"all": "yes", "confirm": "yes", "to": str(w.attempt_done.exam_id)}),
        Probe("POST", to_path("exams:attempts_move", resource_id=B), {"other_instructor": refuse(404)},
              data=lambda w, a: {"attempt": [str(w.attempt_done.pk)], "confirm": "yes"}, label="via-own-resource"),
    )),
    # grading
    "grading:grades": Route("instructor", "Every student's grade and passback state.", (
        Probe("GET", to_path("grading:grades", resource_id=A), instructor_of_a(allow(200))),)),
    "grading:settings": Route("instructor", "Changes how grades are computed and reported.", (
        Probe("POST", to_path("grading:settings", resource_id=A),
              instructor_of_a(allow(302, to=lambda w, a: reverse("grading:grades", args=[w.resource_a.pk]))),
              data=lambda w, a: {"grading_method": "last", "report_when": "manual"}, check=check_settings),)),
    "grading:discount": Route("instructor", "Discounts a question, which changes every grade.", (
        Probe("POST", to_path("grading:discount", resource_id=A),
              instructor_of_a(allow(302, to=lambda w, a: reverse("grading:grades", args=[w.resource_a.pk]))),
              data=lambda w, a: {"target": "q1", "behaviour": "remove"}, check=check_discount),)),
    "grading:report_all": Route("instructor", "Queues every student's grade for the LMS.", (
        Probe("POST", to_path("grading:report_all", resource_id=A),
              instructor_of_a(allow(302, to=lambda w, a: reverse("grading:grades", args=[w.resource_a.pk]))),
              check=check_grade_pending),)),
    "grading:resend": Route("instructor", "Sends one student's grade again; the grade must be of this resource.", (
        Probe("POST", to_path("grading:resend", resource_id=A, report_id=GRADE),
              instructor_of_a(allow(302, to=lambda w, a: reverse("grading:grades", args=[w.resource_a.pk]))),
              check=check_grade_pending),
        Probe("POST", to_path("grading:resend", resource_id=B, report_id=GRADE), {"other_instructor": refuse(404)},
              label="via-own-resource"),
    )),
    "insights:statistics": Route("instructor", "Score, completion and per-question statistics of the resource.", (
        Probe("GET", to_path("insights:statistics", resource_id=A), instructor_of_a(allow(200))),)),
    "portal:settings": Route("instructor", "Changes how students take the activity.", (
        Probe("POST", to_path("portal:settings", resource_id=A),
              instructor_of_a(allow(302, to=lambda w, a: reverse("portal:instructor", args=[w.resource_a.pk]))),
              data=lambda w, a: {"max_attempts": "7", "show_score": "always", "grading_method": "highest",
                                 "report_when": "completion"}, check=check_resource_settings),)),
    # the students pages
    "dashboard:students": Route("instructor", "Everyone who opened the resource, with grades and activity.", (
        Probe("GET", to_path("dashboard:students", resource_id=A), instructor_of_a(allow(200))),)),
    "dashboard:roster_refresh": Route("instructor", "Reads the course list from the LMS now (NRPS); the world's "
                                      "LTI 1.1 courses offer none, so it says so.", (
        Probe("POST", to_path("dashboard:roster_refresh", resource_id=A),
              instructor_of_a(allow(302, to=lambda w, a: reverse("dashboard:students", args=[w.resource_a.pk])))),)),
    "dashboard:student": Route("instructor", "One person's attempts and access; the person must be of this resource.", (
        Probe("GET", to_path("dashboard:student", resource_id=A, membership_id=S1), instructor_of_a(allow(200))),
        Probe("GET", to_path("dashboard:student", resource_id=B, membership_id=S1), {"other_instructor": refuse(404)},
              label="via-own-resource"),
    )),
    "dashboard:access": Route("instructor", "Changes one student's attempts, closing time and exam time.", (
        Probe("POST", to_path("dashboard:access", resource_id=A, membership_id=S1),
              instructor_of_a(allow(302, to=lambda w, a: reverse("dashboard:student",
                                                                  args=[w.resource_a.pk, w.memberships["student"].pk]))),
              data=lambda w, a: {"extra_attempts": "2"}, check=check_access_change),
        Probe("POST", to_path("dashboard:access", resource_id=B, membership_id=S1), {"other_instructor": refuse(404)},
              data=lambda w, a: {"extra_attempts": "2"}, label="via-own-resource"),
    )),
    "dashboard:access_list": Route("instructor", "One access change for students ticked on the Students page and a "
                                   "pasted list (pending for those not launched yet); the ticked must be of this "
                                   "resource.", (
        Probe("POST", to_path("dashboard:access_list", resource_id=A), instructor_of_a(allow(200)),
              data=lambda w, a: {"students": [str(w.memberships["student"].pk)], "entries": "new@example.ac.uk",
                                 "extra_attempts": "2"}, check=check_access_list),
        Probe("POST", to_path("dashboard:access_list", resource_id=B), {"other_instructor": refuse(400)},
              data=lambda w, a: {"students": [str(w.memberships["student"].pk)], "extra_attempts": "2"},
              label="via-own-resource"),
    )),
    "dashboard:pending_remove": Route("instructor", "Removes a pending access change of this resource.", (
        Probe("POST", to_path("dashboard:pending_remove", resource_id=A, pending_id=PENDING),
              instructor_of_a(allow(302, to=lambda w, a: reverse("dashboard:students", args=[w.resource_a.pk]))),
              check=check_pending_removed),
        Probe("POST", to_path("dashboard:pending_remove", resource_id=B, pending_id=PENDING),
              {"other_instructor": refuse(404)}, label="via-own-resource"),
    )),
    "dashboard:roster_student": Route("instructor", "A course-list student who has not launched yet, and their "
                                      "access; they must be on the list of this resource's course.", (
        Probe("GET", to_path("dashboard:roster_student", resource_id=A, member_id=LISTED), instructor_of_a(allow(200))),
        Probe("GET", to_path("dashboard:roster_student", resource_id=B, member_id=LISTED),
              {"other_instructor": refuse(404)}, label="via-own-resource"),
    )),
    "dashboard:roster_access": Route("instructor", "Changes a course-list student's access ahead of their first "
                                     "launch (provisioning them from the list).", (
        Probe("POST", to_path("dashboard:roster_access", resource_id=A, member_id=LISTED),
              instructor_of_a(allow(302, to=lambda w, a: reverse("dashboard:roster_student",
                                                                  args=[w.resource_a.pk, w.extra["roster_member"].pk]))),
              data=lambda w, a: {"extra_attempts": "2"}, check=check_roster_access_change),
        Probe("POST", to_path("dashboard:roster_access", resource_id=B, member_id=LISTED),
              {"other_instructor": refuse(404)}, data=lambda w, a: {"extra_attempts": "2"}, label="via-own-resource"),
    )),
    "dashboard:attempt": Route("instructor", "One attempt: marks, timeline, state as at; it must be of this resource.", (
        Probe("GET", to_path("dashboard:attempt", resource_id=A, attempt_id=ATTEMPT_DONE), instructor_of_a(allow(200))),
        Probe("GET", to_path("dashboard:attempt", resource_id=B, attempt_id=ATTEMPT_DONE),
              {"other_instructor": refuse(404)}, label="via-own-resource"),
    )),
    "dashboard:remark": Route("instructor", "Re-marks a part of an attempt (audited).", (
        Probe("POST", to_path("dashboard:remark", resource_id=A, attempt_id=ATTEMPT_DONE),
              instructor_of_a(allow(302, to=TO_ATTEMPT)), data=lambda w, a: {"part": "q1p0", "score": "1"},
              check=check_remark),
        Probe("POST", to_path("dashboard:remark", resource_id=B, attempt_id=ATTEMPT_DONE),
              {"other_instructor": refuse(404)}, data=lambda w, a: {"part": "q1p0", "score": "1"},
              label="via-own-resource"),
    )),
    "dashboard:delete": Route("instructor", "Soft-deletes an attempt (audited).", (
        Probe("POST", to_path("dashboard:delete", resource_id=A, attempt_id=ATTEMPT_DONE),
              instructor_of_a(allow(302, to=TO_ATTEMPT)), data=lambda w, a: {"confirmed": "on"},
              check=check_attempt_deleted),
        Probe("POST", to_path("dashboard:delete", resource_id=B, attempt_id=ATTEMPT_DONE),
              {"other_instructor": refuse(404)}, label="via-own-resource"),
    )),
    "dashboard:restore": Route("instructor", "Restores a deleted attempt; refused (400) when it is not deleted.", (
        Probe("POST", to_path("dashboard:restore", resource_id=A, attempt_id=ATTEMPT_DONE),
              instructor_of_a(refuse(400))),
        Probe("POST", to_path("dashboard:restore", resource_id=B, attempt_id=ATTEMPT_DONE),
              {"other_instructor": refuse(404)}, label="via-own-resource"),
    )),
    "dashboard:reopen": Route("instructor", "Reopens an ended attempt so the student can carry on (audited).", (
        Probe("POST", to_path("dashboard:reopen", resource_id=A, attempt_id=ATTEMPT_DONE),
              instructor_of_a(allow(302, to=TO_ATTEMPT)), check=check_attempt_reopened),
        Probe("POST", to_path("dashboard:reopen", resource_id=B, attempt_id=ATTEMPT_DONE),
              {"other_instructor": refuse(404)}, label="via-own-resource"),
    )),
    # re-marking every attempt (the world's run of resource A: every attempt marked, not applied)
    "remarking:page": Route("instructor", "The re-mark page: its progress and preview.", (
        Probe("GET", to_path("remarking:page", resource_id=A), instructor_of_a(allow(200))),)),
    "remarking:start": Route("instructor", "Starts a re-mark; refused (400) while the world's run is not finished.", (
        Probe("POST", to_path("remarking:start", resource_id=A), instructor_of_a(refuse(400)),
              data=lambda w, a: {"scope": "all"}),)),
    "remarking:next": Route("instructor", "Hands out the next attempt of a run to mark (with its values).", (
        Probe("POST", to_path("remarking:next", resource_id=A, run_id=REMARK_RUN), instructor_of_a(allow(200)),
              check=check_remark_next),
        Probe("POST", to_path("remarking:next", resource_id=B, run_id=REMARK_RUN), {"other_instructor": refuse(404)},
              label="via-own-resource"),
    )),
    "remarking:record": Route("instructor", "Keeps what the exam reported for one attempt of a run.", (
        Probe("POST", to_path("remarking:record", resource_id=A, run_id=REMARK_RUN, attempt_id=ATTEMPT_DONE),
              instructor_of_a(allow(200)), json_body=lambda w, a: {"values": {"cmi.score.raw": "2"}},
              check=check_remark_recorded),
        Probe("POST", to_path("remarking:record", resource_id=B, run_id=REMARK_RUN, attempt_id=ATTEMPT_DONE),
              {"other_instructor": refuse(404)}, json_body=lambda w, a: {"values": {"cmi.score.raw": "2"}},
              label="via-own-resource"),
    )),
    "remarking:apply": Route("instructor", "Applies a run's new marks (audited; grades recomputed).", (
        Probe("POST", to_path("remarking:apply", resource_id=A, run_id=REMARK_RUN),
              instructor_of_a(allow(302, to=lambda w, a: reverse("remarking:page", args=[w.resource_a.pk]))),
              check=check_remark_applied),
        Probe("POST", to_path("remarking:apply", resource_id=B, run_id=REMARK_RUN), {"other_instructor": refuse(404)},
              label="via-own-resource"),
    )),
    "remarking:discard": Route("instructor", "Discards a run that was not applied.", (
        Probe("POST", to_path("remarking:discard", resource_id=A, run_id=REMARK_RUN),
              instructor_of_a(allow(302, to=lambda w, a: reverse("remarking:page", args=[w.resource_a.pk]))),
              data=lambda w, a: {"confirmed": "on"}, check=check_remark_discarded),
        Probe("POST", to_path("remarking:discard", resource_id=B, run_id=REMARK_RUN), {"other_instructor": refuse(404)},
              label="via-own-resource"),
    )),
    "insights:live": Route("instructor", "The live view of the resource (its numbers come over ws/resource/…/live/).", (
        Probe("GET", to_path("insights:live", resource_id=A), instructor_of_a(allow(200))),)),
    # reports
    "reports:list": Route("instructor", "Lists and asks for the resource's CSV reports.", (
        Probe("GET", to_path("reports:list", resource_id=A), instructor_of_a(allow(200))),
        Probe("POST", to_path("reports:list", resource_id=A),
              instructor_of_a(allow(302, to=lambda w, a: reverse("reports:list", args=[w.resource_a.pk]))),
              label="request", data=lambda w, a: {"kind": "attempts"}, check=check_report_requested),
    )),
    "reports:status": Route("instructor", "A report's progress; the report must be of this resource.", (
        Probe("GET", to_path("reports:status", resource_id=A, report_id=REPORT), instructor_of_a(allow(200)),
              check=check_report_status),
        Probe("GET", to_path("reports:status", resource_id=B, report_id=REPORT), {"other_instructor": refuse(404)},
              label="via-own-resource"),
    )),
    "reports:download": Route("instructor", "The CSV of every student's grade: instructors of its resource only.", (
        Probe("GET", to_path("reports:download", resource_id=A, report_id=REPORT), instructor_of_a(allow(200)),
              check=check_download),
        Probe("GET", to_path("reports:download", resource_id=B, report_id=REPORT), {"other_instructor": refuse(404)},
              label="via-own-resource"),
    )),
    # attempts
    "attempts:start": Route("member", "Any member may start an attempt (instructors try their exam).", (
        Probe("POST", to_path("attempts:start", resource_id=A), {
            **members_of_a(allow(302, to="/attempt/")),
            # S1 has one in progress: the rules send them back to the activity page (no new attempt)
            "student": allow(302, to=_launch_to_a),
        }, check=lambda w, a, r: (check_not_started_twice if a == "student" else check_started)(w, a, r)),)),
    "attempts:receipt_check": Route("member", "Checks a receipt code: instructors any of the resource's attempts, a "
                                              "student only their own (another's is refused with a 400 and a message).", (
        Probe("GET", to_path("attempts:receipt_check", resource_id=A), members_of_a(allow(200))),
        Probe("POST", to_path("attempts:receipt_check", resource_id=A), cells(
            anonymous=refuse(401), student=allow(200), other_student=refuse(400), instructor=allow(200),
            other_instructor=refuse(403), staff=refuse(403)), label="code",
            data=lambda w, a: {"code": _receipt_code(w)}, check=check_contains("This receipt is genuine")),
    )),
    "attempts:test_runs": Route("instructor", "An instructor's own test runs of the resource.", (
        Probe("GET", to_path("attempts:test_runs", resource_id=A), instructor_of_a(allow(200))),)),
    "attempts:test_run_start": Route("instructor", "Starts a test run (sandbox attempt) of the resource's exam.", (
        Probe("POST", to_path("attempts:test_run_start", resource_id=A), instructor_of_a(allow(302, to="/attempt/")),
              check=check_test_run_started),)),
    "attempts:test_run_remove": Route("instructor", "Removes one of the instructor's own test runs for good "
                                                    "(audited); it must be of this resource.", (
        Probe("POST", to_path("attempts:test_run_remove", resource_id=A, attempt_id=TEST_RUN),
              instructor_of_a(allow(302, to=TO_TEST_RUNS)), check=check_test_run_removed),
        Probe("POST", to_path("attempts:test_run_remove", resource_id=B, attempt_id=TEST_RUN),
              {"other_instructor": refuse(404)}, label="via-own-resource"),
        Probe("POST", to_path("attempts:test_run_remove", resource_id=A, attempt_id=ATTEMPT_DONE),
              {"instructor": refuse(404)}, label="not-a-test-run"),
    )),
    "attempts:run": Route("owner", "The owner writes; instructors of the resource review read-only.", (
        Probe("GET", to_path("attempts:run", attempt_id=OPEN_ATTEMPT), cells(
            anonymous=refuse(401), student=allow(200), other_student=refuse(403), instructor=allow(200),
            other_instructor=refuse(403), staff=refuse(403)),
            check=lambda w, a, r: check_run("normal" if a == "student" else "review")(w, a, r)),)),
    "attempts:take_over": Route("owner", "Only the owner takes the attempt over (a new writer token), by POST.", (
        Probe("POST", to_path("attempts:take_over", attempt_id=OPEN_ATTEMPT), cells(
            anonymous=refuse(401), student=allow(200), other_student=refuse(403), instructor=refuse(403),
            other_instructor=refuse(403), staff=refuse(403)), check=check_taken_over),)),
    "attempts:reopen": Route("owner", "Only the owner re-opens their own finished attempt, by POST, and only when "
                                      "the activity allows it (here it does not: back to the activity page).", (
        Probe("POST", to_path("attempts:reopen", attempt_id=ATTEMPT_DONE), cells(
            anonymous=refuse(401), student=allow(302, to=_launch_to_a), other_student=refuse(403),
            instructor=refuse(403), other_instructor=refuse(403), staff=refuse(403)),
            check=lambda w, a, r: _check_still_ended(w)),)),
    "attempts:state": Route("owner", "The attempt's values; owner, or an instructor of the resource (review).", (
        Probe("GET", to_path("attempts:state", attempt_id=OPEN_ATTEMPT), cells(
            anonymous=refuse(401), student=allow(200), other_student=refuse(403), instructor=allow(200),
            other_instructor=refuse(403), staff=refuse(403)),
            check=lambda w, a, r: (check_state("normal", "learner") if a == "student"
                                   else check_state("review", "instructor"))(w, a, r)),)),
    "attempts:batches": Route("owner", "Only the owner, with the current writer token, may write.", (
        Probe("POST", to_path("attempts:batches", attempt_id=OPEN_ATTEMPT), cells(
            anonymous=refuse(401), student=allow(200), other_student=refuse(403), instructor=refuse(403),
            other_instructor=refuse(403), staff=refuse(403)),
            json_body=batch_body, check=check_batch_stored),)),
    # testlaunch
    "testlaunch:launch": Route("staff", "A local stand-in LMS; outside DEBUG off for everyone unless an operator "
                                        "sets TEST_LAUNCH_ENABLED, and then staff only.", (
        Probe("GET", to_path("testlaunch:launch"), everyone(refuse(404)), label="off"),
        Probe("GET", to_path("testlaunch:launch"), {**everyone(refuse(404)), "staff": allow(200)}, label="enabled",
              settings={"TEST_LAUNCH_ENABLED": True}),
        Probe("POST", to_path("testlaunch:launch"), {**everyone(refuse(404)), "staff": allow(200)}, label="sign",
              data=lambda w, a: {"resource": w.resource_a.pk, "role": "instructor", "user_id": "authz-demo",
                                 "full_name": "Demo"}, check=check_contains("oauth_signature"),
              settings={"TEST_LAUNCH_ENABLED": True}),
    )),
    "testlaunch:gradebook": Route("staff", "The demo LMS's gradebook (grades the tool sent it): under the "
                                           "test-launch page's rule, staff only outside DEBUG.", (
        Probe("GET", to_path("testlaunch:gradebook"), everyone(refuse(404)), label="off"),
        Probe("GET", to_path("testlaunch:gradebook"), {**everyone(refuse(404)), "staff": allow(200)},
              label="enabled", settings={"TEST_LAUNCH_ENABLED": True}),
    )),
    "testlaunch:outcomes": Route("capability", "The demo LMS's LTI 1.1 outcome service: a request signed with a "
                                               "consumer's secret, for that consumer's results only.", (
        Probe("POST", to_path("testlaunch:outcomes"), everyone(refuse(404)), label="off"),
        Probe("POST", to_path("testlaunch:outcomes"), everyone(refuse(401)), label="unsigned",
              settings={"TEST_LAUNCH_ENABLED": True}),
    )),
    # testlaunch: the demo LMS as an LTI 1.3 platform (testlaunch.platform), only when the page is on.
    # Its authorization endpoint answers browsers under the page's own rule; the other endpoints answer
    # the tool's server: the public keys and a description, the token endpoint (the tool's signed
    # assertion is the permission) and the services (a bearer token from it, for the demo LMS's courses).
    "testlaunch:platform": Route("public", "What the demo LMS is (issuer, endpoints); when the page is on.", (
        Probe("GET", to_path("testlaunch:platform"), everyone(refuse(404)), label="off"),
        Probe("GET", to_path("testlaunch:platform"), everyone(allow(200)), label="enabled",
              settings={"TEST_LAUNCH_ENABLED": True}),
    )),
    "testlaunch:platform_jwks": Route("public", "The demo LMS's public key; when the page is on.", (
        Probe("GET", to_path("testlaunch:platform_jwks"), everyone(refuse(404)), label="off"),
        Probe("GET", to_path("testlaunch:platform_jwks"), everyone(allow(200)), label="enabled",
              settings={"TEST_LAUNCH_ENABLED": True}),
    )),
    "testlaunch:platform_auth": Route("staff", "The demo LMS signs id_tokens only for launches its page asked for "
                                               "(a signed lti_message_hint), under the page's rule: staff outside DEBUG.", (
        Probe("GET", to_path("testlaunch:platform_auth"), everyone(refuse(404)), label="off"),
        Probe("GET", to_path("testlaunch:platform_auth"), {**everyone(refuse(404)), "staff": allow(400)},
              label="enabled", settings={"TEST_LAUNCH_ENABLED": True}),
    )),
    "testlaunch:platform_token": Route("capability", "Access tokens for a client assertion signed with the tool's "
                                                     "key; nobody else gets one.", (
        Probe("POST", to_path("testlaunch:platform_token"), everyone(refuse(404)), label="off"),
        Probe("POST", to_path("testlaunch:platform_token"), everyone(refuse(401)), label="not-the-tool",
              data=lambda w, a: {"grant_type": "client_credentials", "client_assertion": "not.a.jwt",
                                 "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
              settings={"TEST_LAUNCH_ENABLED": True}),
    )),
    **{name: Route("capability", "An AGS or NRPS service of the demo LMS: a bearer token from its token endpoint, "
                                 "for its own courses only.", (
        Probe(method, url, everyone(refuse(404)), label="off"),
        Probe(method, url, everyone(refuse(401)), label="no-token", settings={"TEST_LAUNCH_ENABLED": True}),
        Probe(method, url, everyone(refuse(404)), label="not-a-demo-course", settings={"TEST_LAUNCH_ENABLED": True},
              headers=DEMO_LMS_BEARER),
    )) for name, method, url in (
        ("testlaunch:platform_lineitems", "GET", lambda w, a: reverse("testlaunch:platform_lineitems",
                                                                      args=[w.resource_a.context_id])),
        ("testlaunch:platform_lineitem", "GET", lambda w, a: reverse("testlaunch:platform_lineitem",
                                                                     args=[w.resource_a.context_id, 1])),
        ("testlaunch:platform_scores", "POST", lambda w, a: reverse("testlaunch:platform_scores",
                                                                    args=[w.resource_a.context_id, 1])),
        ("testlaunch:platform_memberships", "GET", lambda w, a: reverse("testlaunch:platform_memberships",
                                                                        args=[w.resource_a.context_id])),
    )},
    # media (only with SERVE_FILES, i.e. development; nginx serves /media/ in production)
    # Its document root is fixed when the URLconf is imported (the real MEDIA_ROOT, which tests never
    # write to), so the probe asks for a file that is not there: the same 404 for everyone, no login.
    # admin site (the per-model routes are generated below from admin.site._registry)
    "admin:index": Route("staff", "The admin.", (Probe("GET", to_path("admin:index"), staff_only(allow(200))),)),
    "admin:login": Route("public", "The admin's login form (staff already logged in are sent on to the index).", (
        Probe("GET", to_path("admin:login"), {**everyone(allow(200)), "staff": allow(302, to="/admin/")}),)),
    "admin:logout": Route("staff", "Behind admin_view like the rest: others are sent to the admin index "
                                   "(then its login page), their session untouched.", (
        Probe("POST", to_path("admin:logout"), {**everyone(TO_ADMIN_INDEX), "staff": allow(200)},
              check=lambda w, a, r: r.wsgi_request.user.is_anonymous),)),
    "admin:password_change": Route("staff", "Staff change their own password.", (
        Probe("GET", to_path("admin:password_change"), staff_only(allow(200))),)),
    "admin:password_change_done": Route("staff", "After changing the password.", (
        Probe("GET", to_path("admin:password_change_done"), staff_only(allow(200))),)),
    "admin:autocomplete": Route("staff", "Search for related objects in admin forms.", (
        Probe("GET", lambda w, a: reverse("admin:autocomplete")
              + "?app_label=lms&model_name=resourcemembership&field_name=resource&term=", staff_only(allow(200))),)),
    "admin:jsi18n": Route("staff", "The admin's JavaScript translations.", (
        Probe("GET", to_path("admin:jsi18n"), staff_only(allow(200))),)),
    "admin:view_on_site": Route(
        "staff", "Django's 'view on site' redirect, behind the admin login; no model defines get_absolute_url, "
        "so even staff get a 404.", (
            Probe("GET", lambda w, a: reverse("admin:view_on_site", args=[
                ContentType.objects.get_for_model(type(w.resource_a)).pk, w.resource_a.pk]), staff_only(refuse(404))),)),
    "admin:app_list": Route("staff", "The admin's page of one app.", tuple(
        Probe("GET", lambda w, a, label=label: reverse("admin:app_list", kwargs={"app_label": label}),
              staff_only(allow(200)), label=label)
        for label in sorted({model._meta.app_label for model in admin.site._registry}))),
    r"admin/(?P<url>.*)$": Route("staff", "The admin's catch-all: login first, then 404 for unknown pages.", (
        Probe("GET", lambda w, a: "/admin/no-such-page/", staff_only(refuse(404))),)),
    "admin:auth_user_password_change": Route("staff", "Set another user's password (UserAdmin's own URL).", (
        Probe("GET", lambda w, a: reverse("admin:auth_user_password_change", args=[w.users["student"].pk]),
              staff_only(allow(200))),)),
    # staff dashboard (staff_member_required: the admin's login for everyone else)
    "staff:dashboard": Route("staff", "The operators' dashboard: health, grade delivery, activity, consumers.", (
        Probe("GET", to_path("staff:dashboard"), staff_only(allow(200))),)),
    "staff:health": Route("staff", "The dashboard's health checks and grade backlog as JSON, for monitoring.", (
        Probe("GET", to_path("staff:health"), staff_only(allow(200))),)),
}


# --- numbas-lti-provider's addresses (compat.reference) ---------------------------------------------


def signed_reference_launch(world, actor):
    """Signed as an LMS configured for the reference signs it: for its launch path."""
    params = test_lms.launch_params(user_id="authz-newcomer", resource_link_id="res-A", context_id="course-1")
    return test_lms.sign(params, key=world.consumer.key, secret=world.consumer.secret,
                         url="http://testserver/lti_entry")


def reference_routes() -> dict[str, Route]:
    """The reference's launch URL is our launch and its configuration documents are ours; every other
    address is a redirect (the page it leads to checks who may see it) or a 410, the same for everyone.
    The world has no imported rows: an address naming a reference id is a 404 for everyone."""
    import re

    from compat import reference

    def sample(address):
        path = re.sub(r"<id:[a-z_]+>", "1", address.route)
        return "/" + re.sub(r"<uuid:[a-z_]+>", "00000000-0000-4000-8000-000000000001", path)

    routes: dict[str, Route] = {
        "compat:lti_entry": Route("public", "The reference's LTI 1.1 launch URL: our launch (OAuth1 signature).", (
            Probe("POST", lambda w, a: "/lti_entry", everyone(allow(302, to=_launch_to_a)), label="signed",
                  data=signed_reference_launch, check=check_launch),
            Probe("POST", lambda w, a: "/lti_entry", everyone(refuse(400)), label="unsigned", data=unsigned_launch),
            Probe("POST", lambda w, a: "/lti_entry", everyone(refuse(403)), label="bad-signature",
                  data=forged_launch),
        )),
        "compat:config_xml": Route("public", "The reference's address of our LTI configuration cartridge.", (
            Probe("GET", lambda w, a: "/config.xml", everyone(allow(200))),)),
        "compat:canvas_config_json": Route("public", "The reference's address of our Canvas JSON configuration.", (
            Probe("GET", lambda w, a: "/lti13/register/canvas_config.json", everyone(allow(200))),)),
    }
    for address in reference.routed():
        key = f"compat:{address.name}"
        if key in routes:
            continue
        path = sample(address)
        method = address.methods[0]
        if address.kind == reference.GONE:
            routes[key] = Route("public", "A reference address that is gone: 410 and what to do instead.", (
                Probe(method, lambda w, a, path=path: path, everyone(refuse(410))),))
        elif "<id:" in address.route:
            routes[key] = Route("public", "A reference bookmark naming a reference id: a redirect to our page for "
                                "what the import made of it; nothing imported here, so 404.", (
                Probe(method, lambda w, a, path=path: path, everyone(refuse(404))),))
        else:
            target = address.target(None)
            routes[key] = Route("public", "A reference bookmark: a redirect to our page, which checks who may see it.", (
                Probe(method, lambda w, a, path=path: path, everyone(allow(302, to=target))),))
    return routes


HTTP_TABLE.update(reference_routes())

def _first_pk(model):
    def pk(world, actor):
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"the world has no {model._meta.label} for its admin pages"
        return obj.pk
    return pk


def _staff_may_add(model_admin) -> bool:
    superuser = SimpleNamespace(is_active=True, is_staff=True, is_superuser=True, has_perm=lambda perm, obj=None: True)
    return bool(model_admin.has_add_permission(SimpleNamespace(user=superuser, method="GET")))


def admin_model_routes() -> dict[str, Route]:
    """The standard routes of every ModelAdmin (all behind AdminSite.admin_view: staff only).
    Extra URLs a ModelAdmin adds with get_urls are not generated: they must be listed above."""
    routes: dict[str, Route] = {}
    for model, model_admin in admin.site._registry.items():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        pk = _first_pk(model)
        why = f"Admin for {model._meta.label}."
        routes[f"admin:{info}_changelist"] = Route("staff", why, (
            Probe("GET", lambda w, a, info=info: reverse(f"admin:{info}_changelist"), staff_only(allow(200))),))
        routes[f"admin:{info}_add"] = Route("staff", why + " (Some models cannot be added, even by staff.)", (
            Probe("GET", lambda w, a, info=info: reverse(f"admin:{info}_add"),
                  staff_only(allow(200) if _staff_may_add(model_admin) else refuse(403))),))
        for action in ("change", "history", "delete"):
            routes[f"admin:{info}_{action}"] = Route("staff", why, (
                Probe("GET", lambda w, a, info=info, action=action, pk=pk: reverse(f"admin:{info}_{action}",
                                                                                   args=[pk(w, a)]),
                      staff_only(allow(200))),))
        prefix = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        routes[prefix + "<path:object_id>/"] = Route("staff", why + " (Old-style object URL, redirects.)", (
            Probe("GET", lambda w, a, prefix=prefix, pk=pk: f"/{prefix}{pk(w, a)}/",
                  staff_only(allow(302, to=lambda w, a, prefix=prefix, pk=pk: f"/{prefix}{pk(w, a)}/change/"))),))
    return routes


TABLE: dict[str, Route] = {**admin_model_routes(), **HTTP_TABLE}


# --- the websocket table ------------------------------------------------------------------------


@dataclass(frozen=True)
class WsExpect:
    accepted: bool  # the handshake completes (our consumers accept, then close with a code)
    close_code: int | None  # None: stays open
    first: Callable[[World, str, dict], None] | None = None


@dataclass(frozen=True)
class WsProbe:
    path: Callable[[World, str], str]
    expect: dict[str, WsExpect]
    label: str = ""
    origin: str = "http://testserver"
    send: Callable[[World, str], list] | None = None


def _whoami(world, actor, message):
    assert message["user"] == world.users[actor].get_username()


def _ready(world, actor, message):
    assert message == {"type": "ready"}


LIVE_SOCKET = lambda w, a: f"/ws/resource/{w.resource_a.pk}/live/"  # noqa: E731


def _summary(world, actor, message):
    assert message["type"] == "summary" and message["in_progress"] == 1 and message["completed"] == 1, message


def _not_found(world, actor, message):
    assert message["type"] == "error" and message["code"] == "not_found", message


def everyone_ws(expect: WsExpect) -> dict[str, WsExpect]:
    return {actor: expect for actor in ACTORS}


ATTEMPT_SOCKET = lambda w, a: f"/ws/attempt/{w.attempt_open.pk}/?token={w.attempt_open.writer_token}"  # noqa: E731

WS_TABLE: dict[str, tuple[str, tuple[WsProbe, ...]]] = {
    "ws/whoami/": ("Tells an authenticated browser who it is (close 4401 otherwise).", (
        WsProbe(lambda w, a: "/ws/whoami/", {**{a: WsExpect(True, None, _whoami) for a in ACTORS},
                                              "anonymous": WsExpect(True, 4401)}),
        WsProbe(lambda w, a: "/ws/whoami/", {"student": WsExpect(False, None)}, label="cross-origin",
                origin="http://evil.example"),
    )),
    "ws/attempt/<id:attempt_id>/": ("Only the owner, with the current writer token, may connect and write "
                                     "(4401 not authenticated, 4403 not the owner).", (
        # every caller presents S1's current writer token (as if it had leaked)
        WsProbe(ATTEMPT_SOCKET, {
            "anonymous": WsExpect(True, 4401), "student": WsExpect(True, None, _ready),
            "other_student": WsExpect(True, 4403), "instructor": WsExpect(True, 4403),
            "other_instructor": WsExpect(True, 4403), "staff": WsExpect(True, 4403),
        }),
        # ... and sends a batch at once, as the browser test does (tests/test_attempt_websocket.py): daphne
        # still delivers frames that arrive before the closing handshake completes
        WsProbe(ATTEMPT_SOCKET, {
            "anonymous": WsExpect(True, 4401), "other_student": WsExpect(True, 4403),
            "instructor": WsExpect(True, 4403), "other_instructor": WsExpect(True, 4403),
            "staff": WsExpect(True, 4403),
        }, label="then-writes", send=lambda w, a: [batch_body(w, a)]),
        WsProbe(ATTEMPT_SOCKET, {"student": WsExpect(False, None)}, label="cross-origin", origin="http://evil.example"),
    )),
    "ws/resource/<id:resource_id>/live/": ("Only the resource's instructors may watch it live (4401 not "
                                            "authenticated, 4403 anyone else).", (
        WsProbe(LIVE_SOCKET, {
            "anonymous": WsExpect(True, 4401), "student": WsExpect(True, 4403), "other_student": WsExpect(True, 4403),
            "instructor": WsExpect(True, None, _summary), "other_instructor": WsExpect(True, 4403),
            "staff": WsExpect(True, 4403),
        }),
        WsProbe(LIVE_SOCKET, {"instructor": WsExpect(False, None)}, label="cross-origin", origin="http://evil.example"),
    )),
    "^.*$": ("Any other address — an unknown path, an id beyond a bigint — is refused for everyone (4404).", (
        WsProbe(lambda w, a: f"/ws/attempt/{2**63}/?token={w.attempt_open.writer_token}",
                everyone_ws(WsExpect(True, 4404, _not_found)), label="attempt-beyond-bigint"),
        WsProbe(lambda w, a: f"/ws/resource/{10**20}/live/", everyone_ws(WsExpect(True, 4404, _not_found)),
                label="resource-beyond-64-bits"),
        WsProbe(lambda w, a: "/ws/nothing-here/", everyone_ws(WsExpect(True, 4404, _not_found)), label="unknown"),
    )),
}


# --- bugs found (xfail, strict: they must stay visible until fixed) -------------------------------

# test id -> (reason, exception the cell fails with). Found and fixed: a refused attempt websocket
# used to crash on frames that arrived before its close (AttemptConsumer.receive_json).
KNOWN_BUGS: dict[str, tuple[str, type[BaseException] | None]] = {}


# --- the world ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    root = tmp_path_factory.mktemp("authz")
    from django.test import override_settings

    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=str(root / "media"),
                                                       PRIVATE_ROOT=str(root / "private")):
        built = build_world()
    built.extra["root"] = root
    yield built
    with django_db_blocker.unblock():
        close_attempt_worker_connections()
        flush_database()


@pytest.fixture(autouse=True)
def _media_in_tmp(request, tmp_path):
    """Overrides the root conftest's: the module's world keeps its files (exams, report CSVs) in
    one folder for all its tests."""
    if "world" in request.fixturenames:
        settings_ = request.getfixturevalue("settings")
        root = request.getfixturevalue("world").extra["root"]
        settings_.MEDIA_ROOT = str(root / "media")
        settings_.PRIVATE_ROOT = str(root / "private")


# --- the cells ----------------------------------------------------------------------------------


def _probe_id(key: str, label: str) -> str:
    return f"{key}+{label}" if label else key


def _cell(key: str, probe, actor: str, expect):
    cell_id = f"{_probe_id(key, probe.label)}-{actor}"
    marks = []
    if cell_id in KNOWN_BUGS:
        reason, raises = KNOWN_BUGS[cell_id]
        marks.append(pytest.mark.xfail(strict=True, reason=reason, raises=raises))
    return pytest.param(key, probe, actor, expect, id=cell_id, marks=marks)


HTTP_CELLS = [
    _cell(key, probe, actor, expect)
    for key, route in TABLE.items() if route.present
    for probe in route.probes
    for actor, expect in probe.expect.items()
]

WS_CELLS = [
    _cell(key, probe, actor, expect)
    for key, (_, probes) in WS_TABLE.items()
    for probe in probes
    for actor, expect in probe.expect.items()
]


def _location_target(expect: Expect, world: World, actor: str) -> str:
    return expect.to(world, actor) if callable(expect.to) else expect.to


@pytest.mark.django_db
# the admin's autocomplete pages through Resource, which has no default ordering (harmless here)
@pytest.mark.filterwarnings("ignore::django.core.paginator.UnorderedObjectListWarning")
@pytest.mark.parametrize("key, probe, actor, expect", HTTP_CELLS)
def test_http(world, key, probe: Probe, actor, expect: Expect):
    client = world.client(actor)
    path = probe.url(world, actor)
    kwargs = {}
    if probe.data is not None:
        kwargs["data"] = probe.data(world, actor)
    if probe.json_body is not None:
        kwargs["data"] = json.dumps(probe.json_body(world, actor))
        kwargs["content_type"] = "application/json"
    before = snapshot() if expect.kind == "refuse" else None

    with override_settings(**probe.settings):
        response = getattr(client, probe.method.lower())(path, headers=probe.headers, **kwargs)

    try:
        assert response.status_code != 405, f"{probe.method} is not a method {key} accepts: no evidence"
        assert response.status_code == expect.status, (
            f"{actor} {probe.method} {path}: expected {expect.kind} ({expect.status}), got {response.status_code} "
            f"{response.get('Location', '')}"
        )
        if 300 <= expect.status < 400:
            target = _location_target(expect, world, actor)
            assert response["Location"].startswith(target), (response["Location"], target)
        if expect.kind == "refuse":
            assert response.status_code in REFUSED_STATUSES or (
                (key.startswith("admin") or TABLE[key].access == "staff") and response.status_code == 302
                and (response["Location"].startswith("/admin/login/") or response["Location"] == "/admin/")
            ), "only the admin and staff pages refuse with a redirect (to the admin's login page)"
            changed = snapshot_diff(before, snapshot())
            assert not changed, f"a refused {probe.method} by {actor} wrote to the database: {changed}"
        elif probe.check is not None:
            probe.check(world, actor, response)
    finally:
        response.close()


@pytest.mark.django_db
@pytest.mark.parametrize("key, probe, actor, expect", WS_CELLS)
def test_websocket(world, key, probe: WsProbe, actor, expect: WsExpect):
    refused = expect.close_code is not None or not expect.accepted
    before = snapshot() if refused else None
    result = websocket(probe.path(world, actor), session_key=world.sessions[actor], origin=probe.origin,
                       send=probe.send(world, actor) if probe.send else None)
    assert result.accepted == expect.accepted, result
    if expect.accepted:
        assert result.close_code == expect.close_code, result
    if expect.first is not None:
        assert result.messages, result
        expect.first(world, actor, result.messages[0])
    if refused:
        assert not any(isinstance(m, dict) and m.get("type") in ("ack", "ready") for m in result.messages), result
        changed = snapshot_diff(before, snapshot())
        assert not changed, f"a refused websocket of {actor} wrote to the database: {changed}"


# --- nothing escapes ----------------------------------------------------------------------------


def test_every_http_route_is_classified():
    routes = http_routes()
    keys = [route.key for route in routes]
    duplicates = {key for key in keys if keys.count(key) > 1}
    assert not duplicates, f"two URL patterns share a key (name them): {sorted(duplicates)}"
    unclassified = [f"{r.key}  ({r.route} -> {r.view})" for r in routes if r.key not in TABLE]
    assert not unclassified, (
        "Routes missing from the authorisation matrix (add them to HTTP_TABLE in tests/test_authz_matrix.py "
        "with who may use them and a probe per actor):\n  " + "\n  ".join(unclassified)
    )
    stale = sorted(key for key, route in TABLE.items() if route.present and key not in keys)
    assert not stale, f"Table entries for routes that no longer exist: {stale}"


def test_every_websocket_route_is_classified():
    routes = websocket_routes()
    unclassified = [f"{r.key} -> {r.view}" for r in routes if r.key not in WS_TABLE]
    assert not unclassified, f"Websocket routes missing from WS_TABLE: {unclassified}"
    assert not set(WS_TABLE) - {r.key for r in routes}, "WS_TABLE lists websocket routes that no longer exist"


def test_every_route_is_probed_for_every_actor():
    gaps = {}
    for key, route in TABLE.items():
        covered = {actor for probe in route.probes for actor in probe.expect}
        if set(ACTORS) - covered:
            gaps[key] = sorted(set(ACTORS) - covered)
        assert route.probes and route.why and route.access, key
    for key, (why, probes) in WS_TABLE.items():
        covered = {actor for probe in probes for actor in probe.expect}
        if set(ACTORS) - covered:
            gaps[key] = sorted(set(ACTORS) - covered)
    assert not gaps, f"actors without a cell: {gaps}"


def test_known_bugs_name_real_cells():
    ids = {p.id for p in HTTP_CELLS + WS_CELLS}
    assert not set(KNOWN_BUGS) - ids, set(KNOWN_BUGS) - ids
