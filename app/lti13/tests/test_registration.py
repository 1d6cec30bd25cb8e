"""Registering the tool with a platform: IMS LTI Dynamic Registration 1.0 driven by the
independent test platform (tests/support/lti13_platform.py: its openid configuration and its
/register endpoint), then an OIDC launch through the registration it made; and Canvas's JSON
configuration."""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from lms.launch import LaunchRejected
from lti13 import keys, services
from lti13.models import Deployment, Platform, RegistrationLink
from lti13.registration import issuer_matches
from lti13.setup import endpoints, tool_urls
from tests.support.lti13_platform import (
    CLAIM_TOOL_CONFIGURATION, MSG_DEEP_LINKING, MSG_RESOURCE_LINK, ROLE_LEARNER, SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY, SCOPE_NRPS, SCOPE_RESULT_READONLY, SCOPE_SCORE, Lti13Platform, parse_form,
    verify_jwt_signature)

TOOL = "http://testserver"
ALL_SCOPES = {SCOPE_SCORE, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_NRPS}


@pytest.fixture
def lms():
    with Lti13Platform() as platform:
        yield platform


def registration_link(base_url: str = TOOL, *args: str) -> str:
    out = io.StringIO()
    call_command("lti13_registration_link", "--base-url", base_url, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def local(url: str) -> str:
    """Path and query of a URL, for Django's test client."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def confirm_and_register(client: Client, start_url: str):
    """What the administrator's browser does in the platform's frame: open the URL the platform
    made, press Register. Returns the answer to the POST."""
    confirm = client.get(local(start_url))
    assert confirm.status_code == 200, confirm.content[:1000]
    action, method, fields = parse_form(confirm.content)
    assert (action, method) == ("", "POST")  # back to the same address, query and all
    return client.post(local(start_url), fields)


def error_code(response) -> str:
    match = re.search(rb'data-error-code="([^"]+)"', response.content)
    return match.group(1).decode() if match else ""


def assert_nothing_written(lms: Lti13Platform, *, posted: bool = False):
    assert not Platform.objects.exists() and not Deployment.objects.exists()
    assert bool(lms.registrations) is posted


# --- the whole way: registration, then a launch, against a live tool ---------------------------


@pytest.mark.django_db(transaction=True)
def test_a_registration_link_registers_the_platform_and_launches_then_work(live_server, lms):
    tool = live_server.url
    link = registration_link(tool, "--note", "Test LMS")
    start = lms.registration_start_url(link)
    token = parse_qs(urlsplit(start).query)["registration_token"][0]
    browser = requests.Session()

    confirm = browser.get(start, timeout=10)
    assert confirm.status_code == 200 and b'data-testid="register-form"' in confirm.content
    assert not Platform.objects.exists() and not lms.registrations  # nothing happens before Register
    _, _, fields = parse_form(confirm.content)
    done = browser.post(start, data=fields, timeout=10)
    assert done.status_code == 200, done.content[:2000]
    assert b"data-lti-close-now" in done.content  # the page tells the platform to close its dialog
    assert "org.imsglobal.lti.close" in open(finders.find("lti13/registration.js")).read()

    [record] = lms.registrations
    assert record.accepted and record.headers["Authorization"] == f"Bearer {token}"
    body = record.body
    assert body["initiate_login_uri"] == tool + "/lti13/login/"
    assert body["redirect_uris"] == [tool + "/lti13/launch/"]
    assert body["jwks_uri"] == tool + "/lti13/jwks/"
    assert set(body["scope"].split()) == ALL_SCOPES  # all the platform offers
    config = body[CLAIM_TOOL_CONFIGURATION]
    assert config["domain"] == urlsplit(tool).netloc and config["target_link_uri"] == tool + "/lti13/launch/"
    assert [m["type"] for m in config["messages"]] == [MSG_RESOURCE_LINK, MSG_DEEP_LINKING]
    assert config["messages"][1]["placements"] == ["ContentArea"]  # the platform lists none
    assert {"sub", "name", "email"} <= set(config["claims"])

    platform = Platform.objects.get()
    assert (platform.issuer, platform.client_id) == (lms.issuer, record.client_id)
    assert (platform.auth_login_url, platform.auth_token_url, platform.keyset_url) == (
        lms.auth_url, lms.token_url, lms.jwks_url)
    assert list(platform.deployments.values_list("deployment_id", flat=True)) == [record.deployment_id]
    used = RegistrationLink.objects.get()
    assert used.used_at is not None and used.platform == platform and used.note == "Test LMS"
    assert record.client_id.encode() in done.content and record.deployment_id.encode() in done.content

    # An OIDC launch through the new registration: login → the platform's /auth → the launch.
    prepared = lms.prepare_launch(sub="student-7", roles=[ROLE_LEARNER], name="Ada Lovelace",
                                  context={"id": "course-1", "title": "Algebra"},
                                  resource_link={"id": "link-1", "title": "Week 1 quiz"})
    login = prepared.login_request()
    assert login.url == tool + "/lti13/login/"
    answer = browser.post(login.url, data=login.params, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(lms.auth_url), answer.content[:1000]
    redirect_uri, form = lms.authorize_url(answer.headers["Location"])
    assert redirect_uri == tool + "/lti13/launch/"
    launched = browser.post(redirect_uri, data=form, allow_redirects=False, timeout=10)
    assert launched.status_code == 302, launched.content[:2000]
    assert re.match(r"^/resource/\d+/", launched.headers["Location"])

    # The keyset the platform was given publishes the key the tool signs with.
    key = keys.signing_key()
    signed = jwt.encode({"iss": record.client_id, "sub": record.client_id}, key.private_key_pem, algorithm="RS256",
                        headers={"kid": key.kid})
    verify_jwt_signature(signed, requests.get(body["jwks_uri"], timeout=10).json())


@pytest.mark.django_db
def test_a_dynamic_registration_can_then_be_tied_to_the_lms_lti_1_1_consumer(lms, consumer):
    """The README's upgrade step: `lti13_platform` with the registration's issuer and client id
    and `--consumer-key` moves it onto the LMS's LTI 1.1 consumer, keeping what it knows."""
    assert confirm_and_register(Client(), lms.registration_start_url(registration_link())).status_code == 200
    registered = Platform.objects.get()
    assert registered.consumer != consumer
    call_command("lti13_platform", "--issuer", lms.issuer, "--client-id", registered.client_id,
                 "--consumer-key", consumer.key, stdout=io.StringIO())
    tied = Platform.objects.get()
    assert tied.consumer == consumer
    assert (tied.name, tied.auth_login_url, tied.keyset_url) == (
        registered.name, registered.auth_login_url, registered.keyset_url)


# --- who may register -------------------------------------------------------------------------


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user("operator", password="x", is_staff=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_signed_in_tool_administrator_confirms_in_a_window_of_its_own(staff, lms, settings):
    start = lms.registration_start_url(TOOL + "/lti13/register/")
    token = parse_qs(urlsplit(start).query)["registration_token"][0]

    framed = staff.get(local(start), HTTP_SEC_FETCH_DEST="iframe")
    assert framed.status_code == 200 and b"<form" not in framed.content
    assert re.search(rb'href="[^"]*/lti13/register/\?openid_configuration=[^"]*" target="_blank" rel="opener"',
                     framed.content)
    assert framed["Content-Security-Policy"] == f"frame-ancestors {settings.FRAME_ANCESTORS}"

    confirm = staff.get(local(start), HTTP_SEC_FETCH_DEST="document")
    assert confirm.status_code == 200
    assert confirm["Content-Security-Policy"] == "frame-ancestors 'none'" and confirm["X-Frame-Options"] == "DENY"
    _, _, fields = parse_form(confirm.content)
    assert fields["csrfmiddlewaretoken"]
    without_csrf = {k: v for k, v in fields.items() if k != "csrfmiddlewaretoken"}
    assert staff.post(local(start), without_csrf).status_code == 403
    assert_nothing_written(lms)

    done = staff.post(local(start), fields)
    assert done.status_code == 200, done.content[:2000]
    assert done["Content-Security-Policy"] == "frame-ancestors 'none'"
    [record] = lms.registrations
    assert record.headers["Authorization"] == f"Bearer {token}"
    assert Platform.objects.get().client_id == record.client_id
    assert b"/lti13/platforms/" in done.content  # the staff's link to the registration's page


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "not staff"])
def test_anyone_else_is_sent_to_sign_in_and_nothing_is_written(who, lms, django_user_model, settings):
    client = Client()
    if who == "not staff":
        client.force_login(django_user_model.objects.create_user("student", password="x"))
    start = lms.registration_start_url(TOOL + "/lti13/register/")

    page = client.get(local(start))
    assert page.status_code == 403 and error_code(page) == "registration_needs_administrator"
    login = re.search(rb'href="(/admin/login/\?next=[^"]+)" target="_blank" rel="opener"', page.content)
    assert login and parse_qs(urlsplit(login.group(1).decode().replace("&amp;", "&")).query)["next"] == [local(start)]
    assert page["Content-Security-Policy"] == f"frame-ancestors {settings.FRAME_ANCESTORS}"  # in the LMS's frame

    query = parse_qs(urlsplit(start).query)
    refused = client.post("/lti13/register/", {k: v[0] for k, v in query.items()})
    assert refused.status_code == 403 and error_code(refused) == "registration_needs_administrator"
    assert_nothing_written(lms)


@pytest.mark.django_db
def test_a_registration_link_registers_one_platform_once(lms):
    link = registration_link()
    token = urlsplit(link).path.rstrip("/").rsplit("/", 1)[1]
    stored = RegistrationLink.objects.get()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in stored.token_hash
    assert timedelta(days=6.9) < stored.expires_at - timezone.now() <= timedelta(days=7)

    client = Client()
    start = lms.registration_start_url(link)
    assert confirm_and_register(client, start).status_code == 200
    # A registration that checked the link before the first one used it up (a race) is refused
    # when it comes to write, even though the platform registered it.
    with pytest.raises(LaunchRejected) as raced:
        services.platform_register(configuration_url=lms.openid_configuration_url,
                                   registration_token=lms.issue_registration_token(),
                                   urls=endpoints(base_url=TOOL), link=stored)
    assert raced.value.code == "registration_link_unusable" and len(lms.registrations) == 2
    again = lms.registration_start_url(link)
    page = client.get(local(again))
    assert page.status_code == 403 and error_code(page) == "registration_link_unusable"
    repost = client.post(local(again), {k: v[0] for k, v in parse_qs(urlsplit(again).query).items()})
    assert repost.status_code == 403 and error_code(repost) == "registration_link_unusable"
    assert Platform.objects.count() == 1 and len(lms.registrations) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("link", ["expired", "unknown"])
def test_an_expired_or_unknown_link_is_refused(link, lms):
    url = registration_link()
    if link == "expired":
        RegistrationLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1),
                                        created_at=timezone.now() - timedelta(days=8))
    else:
        url = TOOL + "/lti13/register/not-a-token/"
    start = lms.registration_start_url(url)
    for response in (Client().get(local(start)),
                     Client().post(local(start), {k: v[0] for k, v in parse_qs(urlsplit(start).query).items()})):
        assert response.status_code == 403 and error_code(response) == "registration_link_unusable"
    assert_nothing_written(lms)


# --- what is refused --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_configuration_whose_issuer_does_not_begin_its_address_is_refused():
    with Lti13Platform(issuer="https://lms.example.edu") as lms:
        response = confirm_and_register(Client(), lms.registration_start_url(registration_link()))
        assert response.status_code == 400 and error_code(response) == "issuer_mismatch"
        assert b"https://lms.example.edu" in response.content
        assert_nothing_written(lms)
    assert RegistrationLink.objects.get().used_at is None  # the link can be used again


def test_the_issuer_must_begin_the_configuration_address_as_a_url():
    assert issuer_matches("https://lms.example", "https://lms.example/.well-known/openid-configuration")
    assert issuer_matches("https://LMS.example/", "https://lms.example/mod/lti/openid-configuration.php")
    assert issuer_matches("https://lms.example/moodle", "https://lms.example/moodle/mod/lti/openid-configuration.php")
    assert not issuer_matches("https://lms.example", "https://lms.example.evil/.well-known/openid-configuration")
    assert not issuer_matches("https://lms.example", "https://lms.example@evil.example/openid-configuration")
    assert not issuer_matches("https://lms.example/moodle", "https://lms.example/moodle2/openid-configuration")
    assert not issuer_matches("https://lms.example", "http://lms.example/.well-known/openid-configuration")
    assert not issuer_matches("https://lms.example:8443", "https://lms.example/.well-known/openid-configuration")
    assert not issuer_matches("https://canvas.instructure.com",
                              "https://school.instructure.com/api/lti/security/openid-configuration")


@pytest.mark.django_db
def test_a_platform_refusing_the_registration_is_explained_and_nothing_is_written(lms):
    lms.issue_registration_token()  # the platform wants a token; the start URL carries none
    link = registration_link()
    response = confirm_and_register(Client(), lms.registration_start_url(link, token=False))
    assert response.status_code == 400 and error_code(response) == "registration_refused"
    assert b"HTTP 401" in response.content and b"a registration token is required" in response.content
    assert_nothing_written(lms, posted=True)
    assert RegistrationLink.objects.get().used_at is None


@pytest.mark.django_db
def test_a_registration_answered_with_an_error_status_writes_nothing(lms):
    lms.registration_status = 400
    response = confirm_and_register(Client(), lms.registration_start_url(registration_link()))
    assert response.status_code == 400 and error_code(response) == "registration_refused"
    assert_nothing_written(lms, posted=True)


@pytest.mark.django_db
def test_an_address_that_is_not_a_configuration_is_refused(lms):
    link = registration_link()
    start = lms.registration_start_url(link).replace("openid-configuration", "no-such-document")
    response = confirm_and_register(Client(), start)
    assert response.status_code == 400 and error_code(response) == "bad_platform_configuration"
    assert_nothing_written(lms)
    missing = Client().get(local(link))
    assert missing.status_code == 400 and error_code(missing) == "registration_not_started"


@pytest.mark.django_db
def test_only_the_services_the_platform_offers_are_asked_for_in_its_placements(lms):
    offered = lms.openid_configuration()
    offered["scopes_supported"] = ["openid", SCOPE_SCORE, SCOPE_LINEITEM, "https://example.com/other"]
    offered["https://purl.imsglobal.org/spec/lti-platform-configuration"]["messages_supported"] = [
        {"type": MSG_RESOURCE_LINK, "placements": ["course_navigation"]},
        {"type": MSG_DEEP_LINKING, "placements": ["assignment_selection", "editor_button", "link_selection"]}]
    lms.openid_configuration = lambda: offered
    done = confirm_and_register(Client(), lms.registration_start_url(registration_link()))
    assert done.status_code == 200, done.content[:2000]
    [record] = lms.registrations
    assert record.body["scope"].split() == [SCOPE_SCORE, SCOPE_LINEITEM]
    messages = record.body[CLAIM_TOOL_CONFIGURATION]["messages"]
    assert messages[1]["placements"] == ["assignment_selection", "link_selection"]
    assert "placements" not in messages[0]


# --- Canvas -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_canvas_json_configuration_names_the_tools_addresses(client):
    response = client.get("/lti13/canvas.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    config = json.loads(response.content)
    urls = list(tool_urls(base_url=TOOL).values())
    launch, login, jwks = urls[0], urls[1], urls[3]
    assert {"title", "description", "oidc_initiation_url", "target_link_uri", "scopes", "extensions"} <= set(config)
    assert (config["oidc_initiation_url"], config["target_link_uri"], config["public_jwk_url"]) == (login, launch, jwks)
    assert set(config["scopes"]) == ALL_SCOPES
    [extension] = config["extensions"]
    assert (extension["platform"], extension["privacy_level"], extension["domain"]) == (
        "canvas.instructure.com", "public", "testserver")
    placements = {p["placement"]: p for p in extension["settings"]["placements"]}
    assert set(placements) == {"link_selection", "assignment_selection"}
    for placement in placements.values():
        assert (placement["message_type"], placement["target_link_uri"]) == (MSG_DEEP_LINKING, launch)
