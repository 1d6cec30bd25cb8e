"""numbas-lti-provider's addresses, after moving from it: an LMS configured for the reference
launches here exactly as through our own launch URL; every address in the documented list
answers (never a 404 for a listed address, never a 500)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import resolve

from compat import links, reference
from lms.models import Context, LaunchLog, LtiIdentity, Resource, ResourceMembership, UsedNonce
from tests.support import lms as test_lms

User = get_user_model()
OURS = "/lti/launch/"
REFERENCE = "/lti_entry"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "reference-urls.md"

# What the fixture's Moodle and Canvas sent (../shared/fixtures/reference-nlp-v4.4): the gradebook
# column's address and the student's result id in it, in each LMS's own form.
MOODLE_SOURCEDID = ('{"data":{"instanceid":"41","userid":"3101","typeid":"2","launchid":1234567},'
                    '"hash":"5d1a0f5f8e2b3c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5"}')
MOODLE_OUTCOMES = "https://moodle.example.ac.uk/mod/lti/service.php"
CANVAS_SOURCEDID = "42-7-1173-3b9c4d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c"
CANVAS_OUTCOMES = "https://canvas.example.edu/api/lti/v1/tools/42/grade_passback"


def row_counts():
    return {m.__name__: m.objects.count()
            for m in (User, LtiIdentity, Context, Resource, ResourceMembership, LaunchLog, UsedNonce, Session)}


def signed_for(consumer, url, **overrides):
    return test_lms.sign(test_lms.launch_params(**overrides), key=consumer.key, secret=consumer.secret, url=url)


def landing(response) -> str:
    assert response.status_code == 302, response.content[:800]
    return response["Location"].split("?")[0]


# --- LTI 1.1: /lti_entry is our launch --------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("roles, page", [("Learner", "/resource/{pk}/"), ("Instructor", "/resource/{pk}/instructor/")])
def test_a_launch_signed_for_lti_entry_lands_exactly_like_our_own_launch(consumer, roles, page):
    ours, theirs = Client(), Client()
    a = ours.post(OURS, signed_for(consumer, "http://testserver" + OURS, user_id="via-ours", roles=roles))
    b = theirs.post(REFERENCE, signed_for(consumer, "http://testserver" + REFERENCE, user_id="via-ref", roles=roles))

    resource = Resource.objects.get(consumer=consumer, resource_link_id="res-1")  # one activity for both
    assert landing(a) == landing(b) == page.format(pk=resource.pk)
    one, two = (ResourceMembership.objects.get(resource=resource, user__lti_identity__lti_user_id=u)
                for u in ("via-ours", "via-ref"))
    assert one.role == two.role == ("student" if roles == "Learner" else "instructor")
    assert LaunchLog.objects.filter(membership=two).count() == 1
    for client, membership in ((ours, one), (theirs, two)):
        shown = client.get(landing(a))
        assert shown.status_code == 200
        assert shown.context["membership"] == membership


@pytest.mark.django_db
def test_the_next_launch_through_lti_entry_finds_the_same_person_and_activity(client, consumer):
    """What an LMS does after the move: the same consumer key, user id and resource link id,
    now to the reference's launch path. Nothing new is made but the launch's own log."""
    first = client.post(OURS, signed_for(consumer, "http://testserver" + OURS, user_id="3101",
                                         resource_link_id="41", lis_result_sourcedid="old"))
    before = row_counts()

    again = Client().post(REFERENCE, signed_for(consumer, "http://testserver" + REFERENCE, user_id="3101",
                                                resource_link_id="41", lis_result_sourcedid="old"))

    assert landing(again) == landing(first)
    after = row_counts()
    for model in ("User", "LtiIdentity", "Context", "Resource", "ResourceMembership"):
        assert after[model] == before[model], model
    assert after["LaunchLog"] == before["LaunchLog"] + 1


@pytest.mark.django_db
@pytest.mark.parametrize("sourcedid, outcomes", [(MOODLE_SOURCEDID, MOODLE_OUTCOMES),
                                                  (CANVAS_SOURCEDID, CANVAS_OUTCOMES)], ids=["moodle", "canvas"])
def test_lti_entry_keeps_the_gradebook_column_like_our_launch(consumer, sourcedid, outcomes):
    """Grades go back under lis_result_sourcedid to lis_outcome_service_url: a launch to the
    reference's path stores both exactly as our own launch path does."""
    for path, user in ((OURS, "u-ours"), (REFERENCE, "u-ref")):
        response = Client().post(path, signed_for(consumer, "http://testserver" + path, user_id=user,
                                                  lis_result_sourcedid=sourcedid, lis_outcome_service_url=outcomes))
        assert response.status_code == 302
    stored = {m.user.lti_identity.lti_user_id: (m.lis_result_sourcedid, m.lis_outcome_service_url)
              for m in ResourceMembership.objects.select_related("user__lti_identity")}
    assert stored["u-ref"] == stored["u-ours"] == (sourcedid, outcomes)


@pytest.mark.django_db
def test_a_launch_signed_for_https_lti_entry_behind_the_tls_proxy_is_accepted(client, consumer, settings):
    """The LMS signed https://HOST/lti_entry; nginx passes X-Forwarded-Proto."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    data = signed_for(consumer, "https://testserver/lti_entry", user_id="3102", roles="Learner")
    # what nginx passes on: the original Host and the scheme
    response = client.post(REFERENCE, data, HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="testserver")
    assert landing(response) == f"/resource/{Resource.objects.get().pk}/"

    # Without the proxy's word that it was HTTPS, the address is http://… and the signature fails.
    settings.SECURE_PROXY_SSL_HEADER = None
    data = signed_for(consumer, "https://testserver/lti_entry", user_id="3102")
    refused = Client().post(REFERENCE, data, HTTP_HOST="testserver")
    assert refused.status_code == 403 and 'data-error-code="bad_signature"' in refused.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["tampered", "other_secret", "signed_for_our_path", "unsigned"])
def test_a_bad_launch_to_lti_entry_is_refused_with_our_clear_error_and_writes_nothing(client, consumer, case):
    url = "http://testserver" + REFERENCE
    data, status, code = {
        "tampered": ({**signed_for(consumer, url), "roles": "Instructor"}, 403, "bad_signature"),
        "other_secret": (test_lms.sign(test_lms.launch_params(), key=consumer.key, secret="x", url=url), 403,
                         "bad_signature"),
        # The signature covers the address: one made for /lti/launch/ is not valid at /lti_entry.
        "signed_for_our_path": (signed_for(consumer, "http://testserver" + OURS), 403, "bad_signature"),
        "unsigned": (test_lms.launch_params(), 400, "not_signed"),
    }[case]
    before = row_counts()

    response = client.post(REFERENCE, data)

    assert response.status_code == status
    body = response.content.decode()
    assert f'data-error-code="{code}"' in body and "Nothing was recorded" in body
    if code == "bad_signature":
        assert "http://testserver/lti_entry" in body  # the address the LMS must have used
    assert row_counts() == before
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_opening_lti_entry_in_a_browser_says_it_takes_launches_only(client, consumer):
    response = client.get(REFERENCE)
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert b"signed POST" in response.content


@pytest.mark.django_db
def test_the_configuration_addresses_give_our_configuration(client):
    assert client.get("/config.xml").content == client.get("/lti/config.xml").content
    xml = client.get("/config.xml")
    assert xml["Content-Type"].startswith("application/xml") and b"http://testserver/lti/launch/" in xml.content
    canvas = client.get("/lti13/register/canvas_config.json?iss=https%3A%2F%2Fcanvas.instructure.com")
    assert canvas.status_code == 200 and canvas.json() == client.get("/lti13/canvas.json").json()


# --- LTI 1.3: the reference's paths are ours ------------------------------------------------------


@pytest.mark.django_db
def test_the_lti13_login_launch_and_keys_paths_of_the_reference_are_ours(client):
    from lti13 import keys, views

    expected = {"lti13/login/": views.oidc_login, "lti13/launch/": views.launch, "lti13/jwks/": views.jwks,
                "lti13/register/": views.register}
    same = {a.route: a for a in reference.ADDRESSES if a.kind == reference.SAME and a.route.startswith("lti13/")}
    assert set(same) == set(expected)
    for route, view in expected.items():
        assert resolve("/" + route).func is view
    keys.signing_key()
    # The reference's Canvas configuration points Canvas at /lti13/jwks/?iss=…: the same keys.
    assert client.get("/lti13/jwks/?iss=https%3A%2F%2Fcanvas.instructure.com").json() == keys.jwks()


@pytest.mark.django_db
def test_an_lti13_platform_configured_with_the_reference_urls_launches_here():
    """A platform registered for the reference: OIDC login /lti13/login/, redirect URI and target
    link URI /lti13/launch/, keys from /lti13/jwks/ (the reference's registration values)."""
    from lti13.tests.helpers import launch, register
    from tests.support.lti13_platform import ROLE_LEARNER, Lti13Platform

    with Lti13Platform(client_id="nlp-tool", deployment_id="1") as lms:
        lms.add_context("course-7", title="Algebra 1", label="ALG1")
        register(lms, client_id="nlp-tool", deployment_id="1")
        client = Client()
        response = launch(client, lms, sub="stu-13", roles=[ROLE_LEARNER], name="Ada Lovelace",
                          context={"id": "course-7", "title": "Algebra 1"},
                          resource_link={"id": "link-1", "title": "Week 1 quiz"},
                          target_link_uri="http://testserver/lti13/launch/")
    resource = Resource.objects.get(lti13_id="link-1")
    assert landing(response) == f"/resource/{resource.pk}/"
    assert client.get(response["Location"]).status_code == 200


# --- every address in the documented list answers ----------------------------------------------------


def sample_path(address: reference.OldAddress, ref: int) -> str:
    path = re.sub(r"<id:[a-z_]+>", str(ref), address.route)
    path = re.sub(r"<uuid:[a-z_]+>", str(uuid.UUID(int=ref)), path)
    return "/" + path


@pytest.fixture
def imported(consumer, monkeypatch):
    """A world as the import leaves it: reference row 7 of every kind became one of ours."""
    from attempts.tests.factories import with_exam
    from exams.models import ExamPackage
    from grading.tests.helpers import answer, start

    instructor, student = Client(), Client()
    instructor.post(OURS, signed_for(consumer, "http://testserver" + OURS, user_id="i1", roles="Instructor"))
    student.post(OURS, signed_for(consumer, "http://testserver" + OURS, user_id="s1"))
    resource = Resource.objects.get()
    with_exam(resource, max_attempts=0, email_receipt=False)
    membership = ResourceMembership.objects.get(user__lti_identity__lti_user_id="s1")
    attempt = start(membership)
    answer(attempt, 1, questions=[("q0", 1, 2)])
    staff = User.objects.create_user(username="admin", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(staff)
    ours = {links.RESOURCE: resource.pk, links.ATTEMPT: attempt.pk, links.CONSUMER: consumer.pk,
            links.CONTEXT: resource.context_id, links.USER: membership.user_id,
            links.EXAM: ExamPackage.objects.filter(resource=resource).values_list("pk", flat=True).first()}

    def find(kind, ref):
        if ref != 7 or kind not in ours:
            return None
        return links.Found(pk=ours[kind], resource_id=attempt.resource_id if kind == links.ATTEMPT else resource.pk)

    monkeypatch.setattr(links, "find", find)
    return {"anonymous": Client(), "instructor": instructor, "student": student, "staff": admin,
            "resource": resource, "attempt": attempt}


def _caller(address, world):
    if address.route == "login":
        return world["anonymous"]
    if address.target and address.route.startswith(("run_attempt",)):
        return world["student"]
    if address.route.startswith(("resource/", "attempt/", "exam/")):
        return world["instructor"]
    return world["staff"]


@pytest.mark.django_db
@pytest.mark.parametrize("address", reference.ADDRESSES, ids=lambda a: "/" + a.route)
def test_every_listed_address_answers_and_never_404s_or_500s(imported, address):
    caller = _caller(address, imported)
    for method in address.methods:
        path = sample_path(address, 7)
        response = caller.get(path) if method == "GET" else caller.post(path, {})
        assert response.status_code not in (404, 500), (method, path, response.status_code)
        if address.kind == reference.GONE:
            assert response.status_code == 410
            body = response.content.decode()
            assert f'data-gone="{address.gone.code}"' in body and str(address.gone.title) in body
        elif address.kind == reference.REDIRECT:
            assert response.status_code == 302, response.content[:500]
            target = response["Location"]
            assert resolve(re.split("[?#]", target)[0]).namespace != "compat"
            # ... to a page that answers the person it is for.
            assert caller.get(target).status_code == 200, (path, target)
        elif address.kind == reference.SAME:
            assert resolve(path).view_name == address.same_as


@pytest.mark.django_db
@pytest.mark.parametrize("address", [a for a in reference.ADDRESSES if a.kind == reference.REDIRECT
                                     and "<id:" in a.route], ids=lambda a: "/" + a.route)
def test_an_address_naming_something_not_imported_says_so_with_a_404(client, address):
    response = client.get(sample_path(address, 424242))
    assert response.status_code == 404
    assert b"data-not-imported" in response.content and b"not brought over" in response.content


@pytest.mark.django_db
def test_a_redirected_bookmark_still_needs_the_right_person(imported, client):
    """The redirect changes no rights: a student's bookmark of an instructor page is refused there."""
    response = imported["student"].get("/resource/7/stats")
    assert imported["student"].get(response["Location"]).status_code == 403
    assert client.get(client.get("/run_attempt/7")["Location"]).status_code == 401


def test_the_documented_list_is_the_routed_list():
    """docs/reference-urls.md lists every address of compat.reference (and no other)."""
    text = DOCS.read_text()
    documented = set(re.findall(r"^\| `/([^`]*)` \|", text, re.M))
    listed = {re.sub(r"<(?:id|uuid):([a-z_]+)>", r"<\1>", a.route) for a in reference.ADDRESSES}
    assert documented == listed


def test_our_own_routes_win_over_the_reference_addresses():
    """compat is routed last: a path that is ours is never answered by it."""
    for path in ("/", "/lti/launch/", "/resource/1/", "/attempt/1/", "/lti13/login/", "/lti13/register/x/"):
        assert resolve(path).namespace != "compat", path
