"""The test-launch page as an LTI 1.3 platform: a real OIDC login at the tool, the demo LMS's
authorization endpoint signing the id_token, its token endpoint, AGS and NRPS."""

from __future__ import annotations

import json
import re
import time
import uuid
from html import unescape
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client
from django.utils import timezone

from lms.models import Context, LaunchLog, LtiIdentity, ResourceMembership
from lti13 import keys as tool_keys
from lti13.models import Platform
from testlaunch import platform as demo_platform
from testlaunch.models import DemoLineItem, DemoScore
from testlaunch.services import demo_data_ensure, demo_platform_ensure

HOST = "localhost"  # the test client's host: the demo LMS's addresses must be URLs a registration accepts
BASE = f"http://{HOST}"
TOKEN_URL = f"{BASE}/test-launch/platform/token"


def form_of(html: str, form_id: str) -> tuple[str, dict[str, str]]:
    action = re.search(rf'<form id="{form_id}" method="post" action="([^"]+)"', html).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    return unescape(action), {k: unescape(v) for k, v in fields.items()}


@pytest.fixture
def staff_client(admin_user, settings):
    settings.DEBUG, settings.TEST_LAUNCH_ENABLED = False, True  # an operator's explicit choice: staff only
    client = Client(HTTP_HOST=HOST)
    client.force_login(admin_user)
    return client


@pytest.fixture
def demo():
    return demo_data_ensure(secret="demo-secret")


def login_request(client, resource, *, role="student", user_id="demo-1", full_name="Demo Person", in_frame=False,
                  host=HOST) -> tuple[str, dict]:
    form = {"lti_version": "1.3", "resource": resource.pk, "role": role, "user_id": user_id, "full_name": full_name}
    if in_frame:
        form["in_frame"] = "on"
    response = client.post("/test-launch/", form, HTTP_HOST=host)
    assert response.status_code == 200, response.content.decode()[:2000]
    return form_of(response.content.decode(), "lti-launch")


def auth_url_of(client, fields, host=HOST) -> str:
    """The tool's login: where it sends the browser (the demo LMS's authorization endpoint)."""
    response = client.post("/lti13/login/", fields, HTTP_HOST=host)
    if response.status_code == 302:
        return response["Location"]
    assert response.status_code == 200  # platform storage offered: the page puts the secret there, then goes on
    storage = json.loads(re.search(r'id="lti-storage" type="application/json">(.*?)</script>',
                                   response.content.decode()).group(1))
    return storage["next"]


def launch(client, resource, host=HOST, **options):
    action, fields = login_request(client, resource, host=host, **options)
    assert action == f"http://{host}/lti13/login/"
    auth = client.get(auth_url_of(client, fields, host=host), HTTP_HOST=host)
    assert auth.status_code == 200, auth.content.decode()[:2000]
    action, fields = form_of(auth.content.decode(), "lti-auth-response")
    assert action == f"http://{host}/lti13/launch/" and set(fields) == {"id_token", "state"}
    return client.post(urlsplit(action).path, fields, HTTP_HOST=host)


def tool_assertion(*, audience=TOKEN_URL, key_pem=None, kid=None, jti=None, **changes) -> str:
    key = tool_keys.signing_key()
    now = int(time.time())
    claims = {"iss": demo_platform.CLIENT_ID, "sub": demo_platform.CLIENT_ID, "aud": audience, "iat": now,
              "exp": now + 60, "jti": jti or uuid.uuid4().hex, **changes}
    return jwt.encode(claims, key_pem or key.private_key_pem, algorithm="RS256", headers={"kid": kid or key.kid})


def token_form(assertion: str, scope=demo_platform.SCOPE_SCORE) -> dict:
    return {"grant_type": "client_credentials", "client_assertion": assertion, "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}


def access_token(client, scope=demo_platform.SCOPE_SCORE) -> str:
    response = client.post("/test-launch/platform/token", token_form(tool_assertion(), scope))
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


# --- the launch -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role, page", [("student", "/resource/{}/"), ("instructor", "/resource/{}/instructor/")])
def test_a_13_launch_lands_on_the_same_demo_activity_as_11(staff_client, admin_user, demo, role, page):
    # First as LTI 1.1, then as 1.3: the same person, course and activity.
    action, fields = form_of(staff_client.post("/test-launch/", {
        "resource": demo.pk, "role": role, "user_id": "demo-1", "full_name": "Demo Person"}).content.decode(),
        "lti-launch")
    assert urlsplit(action).path == "/lti/launch/" and staff_client.post("/lti/launch/", fields).status_code == 302
    staff_client.force_login(admin_user)  # the 1.1 launch signed the student in

    launched = launch(staff_client, demo, role=role)
    assert launched.status_code == 302, launched.content.decode()[:2000]
    assert launched["Location"].split("?")[0] == page.format(demo.pk)
    membership = ResourceMembership.objects.get()  # the one from the 1.1 launch, now launched with 1.3
    assert membership.resource_id == demo.pk and membership.role == role and membership.lti_version == "1.3"
    assert LtiIdentity.objects.get().sub == "demo-1" and LaunchLog.objects.count() == 2
    platform = Platform.objects.get(issuer=f"{BASE}/test-launch/platform")
    assert membership.platform_id == platform.pk and platform.consumer_id == demo.consumer_id
    assert platform.keyset and not platform.keyset_url  # its key is stored: nothing is fetched
    lineitem = DemoLineItem.objects.get()
    assert membership.ags_lineitem_url == f"{BASE}/test-launch/platform/courses/{demo.context_id}/lineitems/{lineitem.pk}"
    assert membership.ags_lineitems_url == f"{BASE}/test-launch/platform/courses/{demo.context_id}/lineitems"
    assert set(membership.ags_scopes.split()) == set(demo_platform.AGS_CLAIM_SCOPES)
    assert Context.objects.get(pk=demo.context_id).nrps_url.endswith(f"/courses/{demo.context_id}/memberships")
    # the tool's page follows in the window (the session is the student's now)
    assert staff_client.get(launched["Location"]).status_code == 200


@pytest.mark.django_db
def test_in_a_frame_the_page_offers_its_storage_and_the_tool_uses_it(staff_client, demo):
    response = staff_client.post("/test-launch/", {"lti_version": "1.3", "resource": demo.pk, "role": "student",
                                                   "user_id": "demo-1", "full_name": "D P", "in_frame": "on"})
    html = response.content.decode()
    assert 'target="tool-frame"' in html and 'src="/static/testlaunch/platform_storage.js"' in html
    assert json.loads(re.search(r'id="platform-storage" type="application/json">(.*?)</script>', html).group(1)) \
        == {"toolOrigin": BASE}
    _, fields = form_of(html, "lti-launch")
    assert fields["lti_storage_target"] == "_parent"
    login = staff_client.post("/lti13/login/", fields)
    assert b'id="lti-storage"' in login.content  # the tool puts its secret into this page's storage
    auth = staff_client.get(auth_url_of(staff_client, fields))
    # the authorization endpoint answers inside the frame of the test-launch page: its own site may frame it
    assert auth["Content-Security-Policy"] == "frame-ancestors 'self'" and auth["X-Frame-Options"] == "SAMEORIGIN"
    assert launch(staff_client, demo, in_frame=True).status_code == 302


@pytest.mark.django_db
def test_13_launches_open_the_demo_lms_activities_only(staff_client, demo):
    from lms.services import consumer_create_or_update
    from lms.models import Resource

    other, _, _ = consumer_create_or_update(key="moodle", secret="s", name="Moodle")
    foreign = Resource.objects.create(consumer=other, resource_link_id="x", title="Other LMS's exam")
    response = staff_client.post("/test-launch/", {"lti_version": "1.3", "resource": foreign.pk, "role": "student",
                                                   "user_id": "u", "full_name": "U"})
    assert response.status_code == 200 and b"lti-launch" not in response.content
    assert "come from the demo LMS" in response.content.decode()


@pytest.mark.django_db
def test_the_demo_platform_is_registered_once_per_address(demo):
    first = demo_platform_ensure(base_url="http://127.0.0.1:8000")
    assert demo_platform_ensure(base_url="http://127.0.0.1:8000/") == first
    assert first.issuer == "http://127.0.0.1:8000/test-launch/platform"
    assert list(first.deployments.values_list("deployment_id", flat=True)) == [demo_platform.DEPLOYMENT_ID]
    assert first.auth_token_url == "http://127.0.0.1:8000/test-launch/platform/token"
    other = demo_platform_ensure(base_url="http://localhost:8001")
    assert other.pk != first.pk and other.keyset == first.keyset and Platform.objects.count() == 2


# --- the authorization endpoint -------------------------------------------------------------------


def _auth_params(client, demo) -> dict:
    _, fields = login_request(client, demo)
    return dict(parse_qsl(urlsplit(auth_url_of(client, fields)).query))


@pytest.mark.django_db
@pytest.mark.parametrize("change, said", [
    ({"redirect_uri": "https://evil.example/lti13/launch/"}, "redirect_uri"),
    ({"redirect_uri": f"{BASE}/lti/launch/"}, "redirect_uri"),
    ({"client_id": "someone-else"}, "unauthorized_client"),
    ({"response_type": "code"}, "unsupported_response_type"),
    ({"lti_message_hint": "forged"}, "login_required"),
    ({"login_hint": "someone-else"}, "login_required"),
    ({"nonce": ""}, "nonce"),
])
def test_the_authorization_endpoint_refuses_a_bad_request(staff_client, demo, change, said):
    params = _auth_params(staff_client, demo)
    response = staff_client.get("/test-launch/platform/auth?" + urlencode({**params, **change}))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="auth-refused"' in html and said in html
    assert 'name="id_token"' not in html and "lti-auth-response" not in html


@pytest.mark.django_db
def test_the_authorization_endpoint_follows_the_pages_access_rules(staff_client, demo, settings):
    params = _auth_params(staff_client, demo)
    staff_client.logout()
    assert staff_client.get("/test-launch/platform/auth?" + urlencode(params)).status_code == 404
    settings.DEBUG = True  # scripts/dev: open to everyone
    assert staff_client.get("/test-launch/platform/auth?" + urlencode(params)).status_code == 200
    settings.TEST_LAUNCH_ENABLED = False
    assert staff_client.get("/test-launch/platform/auth?" + urlencode(params)).status_code == 404
    assert staff_client.get("/test-launch/platform/jwks").status_code == 404
    assert staff_client.post("/test-launch/platform/token", {}).status_code == 404


@pytest.mark.django_db
def test_the_id_token_is_signed_with_the_published_key(staff_client, demo):
    params = _auth_params(staff_client, demo)
    _, fields = form_of(staff_client.get("/test-launch/platform/auth?" + urlencode(params)).content.decode(),
                        "lti-auth-response")
    jwks = staff_client.get("/test-launch/platform/jwks").json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(fields["id_token"], key, algorithms=["RS256"], audience=demo_platform.CLIENT_ID,
                        issuer=f"{BASE}/test-launch/platform")
    assert claims["nonce"] == params["nonce"] and claims["sub"] == "demo-1"
    assert claims[demo_platform.LTI + "target_link_uri"] == f"{BASE}/lti13/launch/"
    assert claims[demo_platform.LTI + "resource_link"]["id"] == "demo-exam"
    assert claims[demo_platform.LTI + "context"]["id"] == "demo-course"
    assert jwt.get_unverified_header(fields["id_token"])["kid"] == jwks["keys"][0]["kid"]


# --- the token endpoint ---------------------------------------------------------------------------


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.mark.django_db
@pytest.mark.parametrize("assertion", [
    lambda: tool_assertion(key_pem=_rsa_pem()),  # the tool's kid, someone else's key
    lambda: tool_assertion(kid="not-a-tool-key"),
    lambda: tool_assertion(audience="https://elsewhere.example/token"),
    lambda: tool_assertion(iss="another-client"),
    lambda: tool_assertion(exp=int(time.time()) - 600),
    lambda: "not.a.jwt",
])
def test_the_token_endpoint_refuses_an_assertion_not_from_the_tool(staff_client, assertion):
    response = staff_client.post("/test-launch/platform/token", token_form(assertion()))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()


@pytest.mark.django_db
def test_the_token_endpoint_grants_what_the_tool_may_have_once_per_assertion(staff_client):
    assertion = tool_assertion()
    response = staff_client.post("/test-launch/platform/token", token_form(
        assertion, f"{demo_platform.SCOPE_SCORE} {demo_platform.SCOPE_NRPS} https://example.com/scope/other"))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert set(body["scope"].split()) == {demo_platform.SCOPE_SCORE, demo_platform.SCOPE_NRPS}
    replayed = staff_client.post("/test-launch/platform/token", token_form(assertion))
    assert replayed.status_code == 401 and "jti" in replayed.json()["error_description"]
    wrong_grant = staff_client.post("/test-launch/platform/token", {**token_form(tool_assertion()),
                                                                    "grant_type": "password"})
    assert wrong_grant.status_code == 400 and wrong_grant.json()["error"] == "unsupported_grant_type"


# --- AGS and NRPS ---------------------------------------------------------------------------------


def _score(user_id="demo-1", given=7, maximum=10) -> bytes:
    return json.dumps({"userId": user_id, "scoreGiven": given, "scoreMaximum": maximum,
                       "activityProgress": "Completed", "gradingProgress": "FullyGraded",
                       "timestamp": timezone.now().isoformat(timespec="milliseconds")}).encode()


@pytest.mark.django_db
def test_a_score_posted_with_the_right_token_is_recorded_and_shown(staff_client, admin_user, demo):
    assert launch(staff_client, demo).status_code == 302
    lineitem_url = ResourceMembership.objects.get().ags_lineitem_url
    scores = urlsplit(lineitem_url).path + "/scores"
    anonymous = Client(HTTP_HOST=HOST)  # the tool's server: no session, its bearer token only

    for authorization, status in (("", 401), ("Bearer forged", 401),
                                  ("Bearer " + access_token(anonymous, demo_platform.SCOPE_NRPS), 403)):
        refused = anonymous.post(scores, _score(), content_type=demo_platform.MEDIA_SCORE,
                                 HTTP_AUTHORIZATION=authorization)
        assert refused.status_code == status
    token = access_token(anonymous)
    assert anonymous.post(scores, b'{"userId": "demo-1"}', content_type=demo_platform.MEDIA_SCORE,
                          HTTP_AUTHORIZATION="Bearer " + token).status_code == 400
    assert not DemoScore.objects.exists()

    accepted = anonymous.post(scores, _score(), content_type=demo_platform.MEDIA_SCORE,
                              HTTP_AUTHORIZATION="Bearer " + token)
    assert accepted.status_code == 204
    score = DemoScore.objects.get()
    assert (score.user_id, score.score_given, score.score_maximum, score.activity_progress) == \
        ("demo-1", 7, 10, "Completed")

    staff_client.force_login(admin_user)  # the launch signed the student in
    page = staff_client.get("/test-launch/").content.decode()
    row = re.search(r'<tr data-testid="demo-lms-grade">(.*?)</tr>', page, re.S).group(1)
    assert "Demo Person" in row and "demo-1" in row and "Demo exam" in row
    assert re.search(r'data-testid="demo-lms-score">7 / 10<', row)


@pytest.mark.django_db
def test_line_items_can_be_listed_and_created(staff_client, demo):
    assert launch(staff_client, demo).status_code == 302
    container = urlsplit(ResourceMembership.objects.get().ags_lineitems_url).path
    client = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION="Bearer " + access_token(
        Client(HTTP_HOST=HOST), demo_platform.SCOPE_LINEITEM))
    listed = client.get(container, {"resource_link_id": "demo-exam"})
    assert listed.status_code == 200 and listed["Content-Type"] == demo_platform.MEDIA_LINEITEM_CONTAINER
    assert [item["resourceLinkId"] for item in listed.json()] == ["demo-exam"]
    created = client.post(container, {"label": "Quiz", "scoreMaximum": 4, "resourceLinkId": "l2", "tag": "t"},
                          content_type=demo_platform.MEDIA_LINEITEM)
    assert created.status_code == 201
    item = client.get(urlsplit(created.json()["id"]).path).json()
    assert (item["label"], item["scoreMaximum"], item["tag"]) == ("Quiz", 4, "t")
    assert [i["label"] for i in client.get(container, {"tag": "t"}).json()] == ["Quiz"]
    bad = client.post(container, {"label": "No maximum"}, content_type=demo_platform.MEDIA_LINEITEM)
    assert bad.status_code == 400


@pytest.mark.django_db
def test_the_course_list_has_the_demo_students_and_whoever_launched(staff_client, demo):
    assert launch(staff_client, demo, user_id="demo-teacher-9", full_name="Tess Teacher",
                  role="instructor").status_code == 302
    url = urlsplit(Context.objects.get().nrps_url).path
    client = Client(HTTP_HOST=HOST)
    assert client.get(url).status_code == 401
    token = access_token(client, demo_platform.SCOPE_NRPS)
    answer = client.get(url, HTTP_AUTHORIZATION="Bearer " + token)
    assert answer.status_code == 200 and answer["Content-Type"] == demo_platform.MEDIA_MEMBERSHIP_CONTAINER
    members = {m["user_id"]: m for m in answer.json()["members"]}
    assert {"demo-student-1", "demo-student-2", "demo-student-3", "demo-student-4"} <= set(members)
    assert members["demo-teacher-9"]["name"] == "Tess Teacher"
    assert members["demo-teacher-9"]["roles"] == [demo_platform.ROLE_INSTRUCTOR]
    assert answer.json()["context"]["id"] == "demo-course"
    learners = client.get(url, {"role": "Learner"}, HTTP_AUTHORIZATION="Bearer " + token).json()["members"]
    assert "demo-teacher-9" not in {m["user_id"] for m in learners} and len(learners) == 4


# --- the tool's own score send, over HTTP --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_tools_outbox_delivers_a_grade_to_the_demo_lms_over_http(live_server, settings, admin_user):
    from grading.models import GradeReport, ReportState
    from grading.services import passback_deliver_due

    settings.DEBUG, settings.TEST_LAUNCH_ENABLED = False, True
    host = "127.0.0.1:" + live_server.url.rsplit(":", 1)[1]
    demo = demo_data_ensure(secret="demo-secret")
    client = Client(HTTP_HOST=host)
    client.force_login(admin_user)
    assert launch(client, demo, host=host).status_code == 302
    membership = ResourceMembership.objects.get()
    now = timezone.now()
    GradeReport.objects.create(membership=membership, resource=demo, score=0.75, state=ReportState.PENDING,
                               due_at=now, updated_at=now)

    passback_deliver_due(wait_for_retries=False)

    report = GradeReport.objects.get()
    assert report.state == ReportState.DELIVERED, report.last_error
    score = DemoScore.objects.get()
    assert (score.user_id, score.score_given, score.score_maximum) == ("demo-1", 75, 100)
    assert score.lineitem.resource_link_id == "demo-exam"
