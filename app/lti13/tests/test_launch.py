"""LTI 1.3 launches from the independent stand-in platform: accepted as the same people,
courses and activities as LTI 1.1, and refused — with a clear 4xx and nothing written — for
every way a launch can be wrong."""

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from lms.models import Context, LaunchLog, LtiIdentity, LtiVersion, Resource, ResourceMembership, Role
from lti13.models import LoginState
from lti13.tests.helpers import LAUNCH_URL, auth_params, launch, login, register
from tests.support.lti13_platform import (
    MSG_SUBMISSION_REVIEW, ROLE_INSTITUTION_ADMINISTRATOR, ROLE_INSTRUCTOR, ROLE_LEARNER, Lti13Platform, SigningKey,
)

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def lms():
    with Lti13Platform(client_id="tool-1", deployment_id="dep-1") as platform:
        platform.add_context("course-7", title="Algebra 1", label="ALG1")
        yield platform


@pytest.fixture
def platform(lms):
    return register(lms)


def student(**kwargs):
    return dict(sub="stu-1", roles=[ROLE_LEARNER], name="Ada Lovelace", email="ada@example.edu",
                context={"id": "course-7", "title": "Algebra 1", "label": "ALG1"},
                resource_link={"id": "link-1", "title": "Week 1 quiz"}, **kwargs)


def written() -> dict:
    return {m.__name__: m.objects.count() for m in (User, LtiIdentity, Context, Resource, ResourceMembership,
                                                    LaunchLog)}


def test_a_student_launch_creates_the_same_rows_as_lti_1p1_and_lands_on_the_student_page(client, lms, platform):
    response = launch(client, lms, **student(custom={"week": "1"}, locale="de-DE", ags=True, nrps=True))
    assert response.status_code == 302, response.content[:1000]
    identity = LtiIdentity.objects.get(sub="stu-1")
    assert identity.consumer == platform.consumer and identity.lti_user_id == "stu-1"
    assert identity.full_name == "Ada Lovelace" and identity.email == "ada@example.edu" and identity.locale == "de-DE"
    membership = ResourceMembership.objects.get(user=identity.user)
    resource = membership.resource
    assert (resource.lti13_id, resource.resource_link_id, resource.title) == ("link-1", "link-1", "Week 1 quiz")
    assert (resource.context.context_id, resource.context.title) == ("course-7", "Algebra 1")
    assert resource.context.nrps_url == lms.memberships_url("course-7") and resource.context.nrps_platform == platform
    assert membership.role == Role.STUDENT and membership.lti_version == LtiVersion.LTI_1P3
    assert membership.platform == platform and membership.custom == {"week": "1"}
    assert membership.ags_lineitem_url and membership.ags_lineitems_url == lms.lineitems_url("course-7")
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in membership.ags_scopes.split()
    assert response["Location"].startswith(f"/resource/{resource.pk}/?launch=")
    page = client.get(response["Location"])
    assert page.status_code == 200 and b'data-testid="student-page"' in page.content


def test_course_roles_make_instructors_and_institution_roles_do_not(client, lms, platform):
    teacher = launch(client, lms, **{**student(), "sub": "t-1", "roles": [ROLE_INSTRUCTOR]})
    admin = launch(client, lms, **{**student(), "sub": "a-1", "roles": [ROLE_INSTITUTION_ADMINISTRATOR]})
    assert teacher.status_code == admin.status_code == 302
    roles = dict(ResourceMembership.objects.values_list("user__lti_identity__sub", "role"))
    assert roles == {"t-1": Role.INSTRUCTOR, "a-1": Role.STUDENT}


def test_a_second_launch_is_the_same_person_course_and_activity(client, lms, platform):
    assert launch(client, lms, **student()).status_code == 302
    before = written()
    assert launch(client, lms, **{**student(), "name": "Ada King"}).status_code == 302
    after = written()
    assert after == {**before, "LaunchLog": before["LaunchLog"] + 1}
    assert LtiIdentity.objects.get().full_name == "Ada King"


def test_login_by_get_works_and_sends_a_correct_authentication_request(client, lms, platform):
    prepared, response = login(client, lms, method="GET", **student())
    params = auth_params(response)
    assert response["Location"].startswith(lms.auth_url + "?")
    assert params["scope"] == "openid" and params["response_type"] == "id_token"
    assert params["response_mode"] == "form_post" and params["prompt"] == "none"
    assert params["client_id"] == "tool-1" and params["redirect_uri"] == LAUNCH_URL
    assert params["login_hint"] == prepared.login_hint and params["lti_message_hint"] == prepared.lti_message_hint
    assert params["state"] and params["nonce"] and params["state"] != params["nonce"]
    # the state cookie binds the launch to this browser
    assert client.cookies[f"lti1p3-{params['state']}"].value == params["state"]


def test_the_platforms_keys_are_cached_and_fetched_again_for_a_new_kid(client, lms, platform):
    for n in range(3):
        assert launch(client, lms, **{**student(), "sub": f"s{n}"}).status_code == 302
    assert lms.jwks_fetches == 1
    lms.rotate_key()  # the platform signs with a key it has just published
    assert launch(client, lms, **{**student(), "sub": "s9"}).status_code == 302
    assert lms.jwks_fetches == 2


# --- refusals ----------------------------------------------------------------------------------


def _state_and_nonce(client, lms, **kwargs):
    _, response = login(client, lms, **student(**kwargs))
    params = auth_params(response)
    return params["state"], params["nonce"]


def _post(client, token, state):
    return client.post("/lti13/launch/", {"id_token": token, "state": state})


def _refused(response, status, code):
    assert response.status_code == status, response.content[:2000]
    assert f'data-error-code="{code}"'.encode() in response.content, response.content[:2000]
    assert b"Nothing was recorded for this launch." in response.content


FOREIGN = SigningKey.generate(kid="foreign")

BROKEN_TOKENS = {
    "signed with another key": (dict(key=FOREIGN), 403, "bad_signature"),
    "alg none": (dict(alg="none"), 403, "bad_algorithm"),
    "HS256 with the public key as secret": (dict(alg="HS256"), 403, "bad_algorithm"),
    "unknown kid": (dict(kid="no-such-key", key=FOREIGN), 403, "unknown_kid"),
    "no kid": (dict(kid=None), 403, "unknown_kid"),
    "wrong issuer": (dict(iss="https://evil.example"), 403, "unknown_platform"),
    "wrong audience": (dict(aud="another-tool"), 403, "unknown_platform"),
    "audience list without azp": (dict(aud=["tool-1", "another-tool"], azp=None), 403, "wrong_audience"),
    "azp for another tool": (dict(aud=["tool-1", "another-tool"], azp="another-tool"), 403, "wrong_audience"),
    "wrong deployment": (dict(deployment_id="dep-other"), 403, "unknown_deployment"),
    "expired": (dict(exp_offset=-600, iat_offset=-900), 403, "expired"),
    "issued in the future": (dict(iat_offset=900, exp_offset=1200), 403, "not_yet_valid"),
    "no sub": (dict(omit=["sub"]), 400, "missing_claims"),
    "no roles claim": (dict(omit=["roles"]), 400, "missing_claims"),
    "no resource link": (dict(omit=["resource_link"]), 400, "missing_claims"),
    "no version": (dict(omit=["version"]), 400, "missing_claims"),
    "no nonce": (dict(omit=["nonce"]), 403, "missing_claims"),
    "wrong message type": (dict(message_type=MSG_SUBMISSION_REVIEW), 400, "unsupported_message_type"),
    "target link elsewhere": (dict(target_link_uri="https://elsewhere.example/launch"), 400,
                              "foreign_target_link_uri"),
}


@pytest.mark.parametrize("breakage", BROKEN_TOKENS.values(), ids=BROKEN_TOKENS.keys())
def test_a_broken_id_token_is_refused_and_nothing_is_written(client, lms, platform, breakage):
    kwargs, status, code = breakage
    state, nonce = _state_and_nonce(client, lms)
    before = written()
    message_type = kwargs.pop("message_type", "LtiResourceLinkRequest")
    sign = {k: kwargs.pop(k) for k in ("key", "alg", "kid") if k in kwargs}
    token = lms.id_token(message_type, nonce=nonce, target_link_uri=kwargs.pop("target_link_uri", LAUNCH_URL),
                         **sign, **{**student(), **kwargs})
    _refused(_post(client, token, state), status, code)
    assert written() == before
    assert not LoginState.objects.filter(used_at__isnull=False).exists()


def test_the_same_token_twice_is_refused(client, lms, platform):
    state, nonce = _state_and_nonce(client, lms)
    token = lms.id_token(nonce=nonce, **student())
    assert _post(client, token, state).status_code == 302
    before = written()
    _refused(_post(client, token, state), 403, "state_mismatch")
    assert written() == before


def test_a_state_the_tool_did_not_start_or_another_logins_nonce_is_refused(client, lms, platform):
    state, nonce = _state_and_nonce(client, lms)
    other_state, other_nonce = _state_and_nonce(client, lms)
    before = written()
    _refused(_post(client, lms.id_token(nonce=nonce, **student()), "state-made-up"), 403, "state_mismatch")
    _refused(_post(client, lms.id_token(nonce=other_nonce, **student()), state), 403, "state_mismatch")
    assert written() == before


def test_a_launch_without_the_state_cookie_and_without_platform_storage_starts_again_in_a_new_window(
        client, lms, platform):
    prepared, response = login(client, lms, **student())
    redirect_uri, fields = lms.authorize_url(response["Location"])
    client.cookies.clear()  # a browser that blocks third-party cookies in the LMS's iframe
    before = written()
    page = client.post(urlsplit(redirect_uri).path, fields)
    assert page.status_code == 200 and b'data-testid="restart-link"' in page.content
    assert written() == before
    # the token cannot be used again, and the link starts a new login with the same hints
    assert _post(client, fields["id_token"], fields["state"]).status_code == 403
    link = re.search(r'<a\b[^>]*data-testid="restart-link"[^>]*>', page.content.decode()).group(0)
    restart = re.search(r'href="([^"]+)"', link).group(1).replace("&amp;", "&")
    again = client.get(restart)
    assert auth_params(again)["login_hint"] == prepared.login_hint


def test_with_platform_storage_the_launch_fetches_the_secret_from_the_platform(client, lms, platform):
    prepared, response = login(client, lms, storage_target="_parent", **student())
    assert response.status_code == 200 and b"lti.put_data" not in response.content  # the page's script does it
    storage = response.context["storage"]
    assert storage["action"] == "put" and storage["target"] == "_parent" and storage["origin"] == lms.base_url
    redirect_uri, fields = lms.authorize_url(storage["next"])
    client.cookies.clear()
    asked = client.post(urlsplit(redirect_uri).path, fields)
    assert asked.status_code == 200 and asked.context["storage"]["action"] == "get"
    assert asked.context["storage"]["key"] == storage["key"]
    before = written()
    wrong = client.post(urlsplit(redirect_uri).path, {**fields, "lti_storage_value": "guessed"})
    _refused(wrong, 403, "state_mismatch")
    assert written() == before
    right = client.post(urlsplit(redirect_uri).path, {**fields, "lti_storage_value": storage["value"]})
    assert right.status_code == 302 and LtiIdentity.objects.filter(sub="stu-1").exists()


LOGIN_REFUSALS = {
    "no issuer": (dict(omit=["iss"]), 400, "incomplete_login"),
    "no login hint": (dict(omit=["login_hint"]), 400, "incomplete_login"),
    "target link elsewhere": (dict(extra={"target_link_uri": "https://elsewhere.example/"}), 400,
                              "foreign_target_link_uri"),
    "unknown client": (dict(extra={"client_id": "who-knows"}), 403, "unknown_platform"),
    "unknown deployment": (dict(deployment_id="dep-other"), 403, "unknown_deployment"),
}


@pytest.mark.parametrize("breakage", LOGIN_REFUSALS.values(), ids=LOGIN_REFUSALS.keys())
def test_a_bad_login_is_refused_and_nothing_is_written(client, lms, platform, breakage):
    kwargs, status, code = breakage
    request = lms.prepare_launch(**student()).login_request(**kwargs)
    states = LoginState.objects.count()
    _refused(client.post(request.path, request.params), status, code)
    assert LoginState.objects.count() == states


@pytest.mark.parametrize("claims, expected", [
    ({"extra": {"https://purl.imsglobal.org/spec/lti/claim/ext": {"user_username": "alovelace"}}}, "alovelace"),
    ({"custom": {"canvas_user_login_id": "alovelace"}}, "alovelace"),
    ({"custom": {"username": "$User.username"}, "extra": {"preferred_username": "alovelace"}}, "alovelace"),
])
def test_the_lms_username_and_student_record_id_are_kept_for_the_person(client, lms, platform, claims, expected):
    lis = {"https://purl.imsglobal.org/spec/lti/claim/lis": {"person_sourcedid": "S1234567"}}
    extra = {**lis, **claims.get("extra", {})}
    response = launch(client, lms, **student(custom=claims.get("custom"), extra=extra))
    assert response.status_code == 302, response.content[:500]
    identity = LtiIdentity.objects.get(sub="stu-1")
    assert (identity.username, identity.sourcedid) == (expected, "S1234567")
