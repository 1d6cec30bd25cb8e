"""Tests of the stand-in LTI 1.3 platform (tests/support/lti13_platform.py).

The platform is checked from the outside: its id_tokens with PyJWT against the JWKS it
serves, its endpoints over HTTP with requests, and the tool's side (client assertions,
deep linking responses) is signed here with PyJWT, not with the platform's own encoder.
No Django and no database.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests

from tests.support.lti13_platform import (
    ALL_SERVICE_SCOPES, CLAIM_AGS, CLAIM_CONTEXT, CLAIM_DEPLOYMENT_ID, CLAIM_DL_SETTINGS, CLAIM_LTI1P1,
    CLAIM_MESSAGE_TYPE, CLAIM_NRPS, CLAIM_RESOURCE_LINK, CLAIM_ROLES, CLAIM_TOOL_CONFIGURATION, CLAIM_VERSION,
    MEDIA_LINEITEM, MEDIA_LINEITEM_CONTAINER, MEDIA_MEMBERSHIP_CONTAINER, MEDIA_SCORE,
    ROLE_INSTRUCTOR, ROLE_LEARNER, SCOPE_LINEITEM, SCOPE_NRPS, SCOPE_SCORE, AuthorizationRefused, DeepLinkError,
    JwksServer, Lti13Platform, SigningKey, client_assertion, deep_link_response_jwt, forged_lti1p1_sign,
    lti1p1_sign, lti1p1_sign_for_claims, parse_form, token_request_form,
)

TOOL = "http://127.0.0.1:9"  # never contacted: only its URLs are registered
LOGIN_URL = TOOL + "/lti13/login"
LAUNCH_URL = TOOL + "/lti13/launch"


@pytest.fixture(scope="module")
def tool_key():
    return SigningKey.generate("tool-key-1")


@pytest.fixture
def tool_jwks(tool_key):
    with JwksServer([tool_key]) as server:
        yield server


@pytest.fixture(scope="module")
def platform_key():
    return SigningKey.generate("platform-key-1")


@pytest.fixture
def lms(tool_jwks, platform_key):
    with Lti13Platform(client_id="tool-1", deployment_id="dep-1", signing_key=platform_key) as platform:
        platform.register_tool(LOGIN_URL, [LAUNCH_URL], tool_jwks.url)
        yield platform


def verify(token: str, jwks: dict, audience: str) -> dict:
    """Check a platform id_token with PyJWT, independently of the platform's code."""
    kid = jwt.get_unverified_header(token).get("kid")
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    return jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=audience)


def pyjwt_assertion(key: SigningKey, client_id: str, audience, **overrides) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 60,
              "jti": str(uuid.uuid4())}
    claims.update(overrides)
    return jwt.encode(claims, key.private_pem(), algorithm="RS256", headers={"kid": key.kid})


def auth_params(launch, **overrides) -> dict:
    """The authentication request a conforming tool sends after the login initiation."""
    params = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
              "client_id": launch.client_id, "redirect_uri": LAUNCH_URL, "login_hint": launch.login_hint,
              "lti_message_hint": launch.lti_message_hint, "nonce": "n-" + uuid.uuid4().hex,
              "state": "s-" + uuid.uuid4().hex}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def bearer(token: str, **headers) -> dict:
    return {"Authorization": f"Bearer {token}", **headers}


def timestamp(offset: float = 0.0) -> str:
    moment = time.time() + offset
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment * 1000) % 1000:03d}+00:00"


# ------------------------------------------------------------------------ keys and tokens


def test_id_token_verifies_with_the_published_jwks_and_not_with_a_foreign_key(lms):
    response = requests.get(lms.jwks_url, timeout=5)
    jwks = response.json()
    assert response.status_code == 200 and lms.jwks_fetches == 1
    (jwk,) = jwks["keys"]
    assert jwk["kid"] == lms.current_key.kid and jwk["alg"] == "RS256" and jwk["use"] == "sig"
    assert jwk["kty"] == "RSA" and "d" not in jwk

    token = lms.id_token(sub="student-7", roles=[ROLE_LEARNER], nonce="n-1", context="maths-101")
    claims = verify(token, jwks, "tool-1")
    assert claims["iss"] == lms.issuer == lms.base_url
    assert claims["sub"] == "student-7" and claims["nonce"] == "n-1"
    assert claims[CLAIM_MESSAGE_TYPE] == "LtiResourceLinkRequest" and claims[CLAIM_VERSION] == "1.3.0"
    assert claims[CLAIM_DEPLOYMENT_ID] == "dep-1" and claims[CLAIM_ROLES] == [ROLE_LEARNER]
    assert claims[CLAIM_CONTEXT]["id"] == "maths-101" and claims[CLAIM_RESOURCE_LINK]["id"]

    forged = lms.id_token(key=SigningKey.generate())  # claims the platform's kid
    with pytest.raises(jwt.InvalidSignatureError):
        verify(forged, jwks, "tool-1")


def test_broken_tokens_are_what_they_say(lms):
    jwks = lms.jwks()
    none_token = lms.id_token(alg="none")
    assert jwt.get_unverified_header(none_token)["alg"] == "none" and none_token.endswith(".")
    hs_token = lms.id_token(alg="HS256")
    assert jwt.get_unverified_header(hs_token)["alg"] == "HS256"
    for token in (none_token, hs_token):
        with pytest.raises(jwt.InvalidAlgorithmError):
            verify(token, jwks, "tool-1")
    assert jwt.get_unverified_header(lms.id_token(kid="no-such-kid"))["kid"] == "no-such-kid"
    assert "kid" not in jwt.get_unverified_header(lms.id_token(kid=None))

    claims = jwt.decode(lms.id_token(aud=["tool-1", "other"], exp_offset=-10, omit=["nonce", "deployment_id"]),
                        options={"verify_signature": False})
    assert claims["aud"] == ["tool-1", "other"] and claims["azp"] == "tool-1"
    assert claims["exp"] < time.time() and "nonce" not in claims and CLAIM_DEPLOYMENT_ID not in claims


def test_rotated_key_signs_and_the_old_one_stays_published(lms):
    old = lms.current_key
    new = lms.rotate_key()
    jwks = requests.get(lms.jwks_url, timeout=5).json()
    assert {k["kid"] for k in jwks["keys"]} == {old.kid, new.kid}
    token = lms.id_token()
    assert jwt.get_unverified_header(token)["kid"] == new.kid
    verify(token, jwks, "tool-1")
    lms.retire_key(old.kid)
    assert [k["kid"] for k in lms.jwks()["keys"]] == [new.kid]


# ---------------------------------------------------------------------------- the launch


def test_login_initiation_and_auth_endpoint_round_trip(lms):
    launch = lms.prepare_launch(sub="student-2", roles=[ROLE_INSTRUCTOR], ags=True, nrps=True)
    login = launch.login_request(method="GET", storage_target="_parent")
    assert login.url == LOGIN_URL and login.method == "GET"
    assert login.params == {"iss": lms.issuer, "login_hint": "student-2", "target_link_uri": LAUNCH_URL,
                            "client_id": "tool-1", "lti_deployment_id": "dep-1",
                            "lti_message_hint": launch.lti_message_hint, "lti_storage_target": "_parent"}
    assert dict(parse_qsl(urlsplit(login.full_url).query)) == login.params

    params = auth_params(launch)
    response = requests.get(lms.auth_url, params=params, timeout=5)
    assert response.status_code == 200
    action, method, fields = parse_form(response.text)
    assert (action, method) == (LAUNCH_URL, "POST")
    assert fields["state"] == params["state"] and fields["lti_storage_target"] == "_parent"
    claims = verify(fields["id_token"], lms.jwks(), "tool-1")
    assert claims["nonce"] == params["nonce"] and claims[CLAIM_ROLES] == [ROLE_INSTRUCTOR]
    assert claims[CLAIM_AGS]["lineitem"].startswith(lms.lineitems_url("course-1") + "/")
    assert claims[CLAIM_NRPS]["context_memberships_url"] == lms.memberships_url("course-1")
    assert lms.auth_requests[-1].accepted and launch.id_tokens == [fields["id_token"]]

    # The programmatic equivalent, by POST this time.
    redirect_uri, fields = lms.authorize(auth_params(launch, state="s-2"))
    assert redirect_uri == LAUNCH_URL and fields["state"] == "s-2"


@pytest.mark.parametrize("change, error", [
    ({"redirect_uri": TOOL + "/elsewhere"}, "invalid_request"),
    ({"nonce": None}, "invalid_request"),
    ({"login_hint": "someone-else"}, "login_required"),
    ({"lti_message_hint": "forged"}, "login_required"),
    ({"client_id": "not-a-client"}, "unauthorized_client"),
    ({"response_mode": "query"}, "invalid_request"),
    ({"prompt": "login"}, "invalid_request"),
    ({"scope": "profile"}, "invalid_scope"),
    ({"state": None}, "invalid_request"),
])
def test_auth_endpoint_refuses_a_wrong_request(lms, change, error):
    launch = lms.prepare_launch()
    with pytest.raises(AuthorizationRefused) as refused:
        lms.authorize(auth_params(launch, **change))
    assert refused.value.error == error
    record = lms.refused_auth_requests[-1]
    assert record.error == error and not record.accepted and record.id_token is None


def test_auth_endpoint_refusals_over_http(lms):
    launch = lms.prepare_launch()
    # An unregistered redirect_uri must not be redirected to: a 400 page.
    response = requests.get(lms.auth_url, params=auth_params(launch, redirect_uri=TOOL + "/evil"), timeout=5)
    assert response.status_code == 400 and "redirect_uri" in response.text
    # Other errors go back to the registered redirect_uri, form-posted, with the state.
    response = requests.post(lms.auth_url, data=auth_params(launch, nonce=None, state="s-9"), timeout=5)
    action, _, fields = parse_form(response.text)
    assert action == LAUNCH_URL and fields == {"error": "invalid_request", "error_description": "nonce is missing",
                                               "state": "s-9"}
    assert [r.accepted for r in lms.auth_requests] == [False, False]


# ------------------------------------------------------------------------ token endpoint


def test_token_endpoint_accepts_a_correct_client_assertion(lms, tool_key, tool_jwks):
    form = token_request_form(pyjwt_assertion(tool_key, "tool-1", lms.token_url), [SCOPE_SCORE, "urn:other"])
    response = requests.post(lms.token_url, data=form, timeout=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == lms.token_lifetime
    assert body["scope"] == SCOPE_SCORE and body["access_token"]
    assert lms.tokens_issued == 1 and tool_jwks.fetches == 1
    record = lms.token_requests[-1]
    assert record.accepted and record.granted_scopes == (SCOPE_SCORE,) and record.client_id == "tool-1"

    # The key set is cached; a token for a key the platform has not seen makes it refetch.
    requests.post(lms.token_url, data=token_request_form(pyjwt_assertion(tool_key, "tool-1", lms.token_url),
                                                         [SCOPE_SCORE]), timeout=5).raise_for_status()
    assert tool_jwks.fetches == 1
    rotated = SigningKey.generate("tool-key-2")
    tool_jwks.keys.append(rotated)
    requests.post(lms.token_url, data=token_request_form(pyjwt_assertion(rotated, "tool-1", lms.token_url),
                                                         [SCOPE_SCORE]), timeout=5).raise_for_status()
    assert tool_jwks.fetches == 2 and lms.tokens_issued == 3


def test_token_endpoint_refuses_bad_assertions(lms, tool_key):
    def ask(assertion, scopes=(SCOPE_SCORE,), **form):
        data = dict(token_request_form(assertion, scopes), **form)
        return requests.post(lms.token_url, data=data, timeout=5)

    wrong_aud = ask(pyjwt_assertion(tool_key, "tool-1", lms.issuer))
    assert wrong_aud.status_code == 401 and wrong_aud.json()["error"] == "invalid_client"
    assert "aud" in lms.token_requests[-1].reason

    assertion = pyjwt_assertion(tool_key, "tool-1", lms.token_url)
    assert ask(assertion).status_code == 200
    reused = ask(assertion)
    assert reused.status_code == 401 and "jti" in reused.json()["error_description"]

    past = int(time.time()) - 600
    expired = ask(pyjwt_assertion(tool_key, "tool-1", lms.token_url, iat=past, exp=past + 60))
    assert expired.status_code == 401 and "expired" in expired.json()["error_description"]

    foreign = ask(pyjwt_assertion(SigningKey.generate("tool-key-1"), "tool-1", lms.token_url))
    assert foreign.status_code == 401 and "signature" in foreign.json()["error_description"]
    hs256 = ask(client_assertion(tool_key, "tool-1", lms.token_url, alg="HS256"))
    assert hs256.status_code == 401 and "alg" in hs256.json()["error_description"]
    unknown = ask(pyjwt_assertion(tool_key, "someone", lms.token_url, sub="someone"))
    assert unknown.status_code == 401

    grant = ask(pyjwt_assertion(tool_key, "tool-1", lms.token_url), grant_type="authorization_code")
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    kind = ask(pyjwt_assertion(tool_key, "tool-1", lms.token_url), client_assertion_type="jwt")
    assert kind.status_code == 400
    no_scope = ask(pyjwt_assertion(tool_key, "tool-1", lms.token_url), scopes=("urn:nothing",))
    assert no_scope.status_code == 400 and no_scope.json()["error"] == "invalid_scope"
    assert lms.tokens_issued == 1


# ------------------------------------------------------------------------------------ AGS


def test_scores_are_validated_recorded_and_ordered(lms):
    lineitem = lms.add_lineitem("course-1", "Exam 1", 10, resource_link_id="rl-1")
    url = lineitem["id"] + "/scores"
    token = lms.issue_access_token([SCOPE_SCORE])
    headers = bearer(token, **{"Content-Type": MEDIA_SCORE})

    def post(body, headers=headers):
        return requests.post(url, data=json.dumps(body), headers=headers, timeout=5)

    score = {"userId": "student-1", "scoreGiven": 7.5, "scoreMaximum": 10, "activityProgress": "Completed",
             "gradingProgress": "FullyGraded", "timestamp": timestamp(-5), "comment": "Well done"}
    response = post(score)
    assert response.status_code == 200, response.text
    record = lms.wait_for_score("student-1", lineitem=lineitem, score_given=7.5, timeout=2)
    assert record is not None and record.outcome == "accepted" and record.headers["Content-Type"] == MEDIA_SCORE
    assert lms.results("course-1", lineitem["id"].rsplit("/", 1)[1])["student-1"]["scoreGiven"] == 7.5

    assert post(score).status_code == 200 and lms.scores[-1].outcome == "duplicate"  # an identical retry
    older = dict(score, scoreGiven=1, timestamp=timestamp(-60))
    assert post(older).status_code == 409 and lms.scores[-1].outcome == "stale"
    same_time = dict(score, scoreGiven=2)
    assert post(same_time).status_code == 409
    for bad in (dict(score, scoreGiven=-1), dict(score, scoreMaximum=0), {k: v for k, v in score.items()
                                                                         if k != "scoreMaximum"},
                dict(score, activityProgress="Done"), dict(score, gradingProgress="Graded"),
                dict(score, timestamp="2024-01-01T10:00:00.000"), dict(score, timestamp="2024-01-01T10:00:00Z"),
                dict(score, userId=""), dict(score, scoreGiven=True)):
        response = post(dict(bad, timestamp=bad["timestamp"] if bad["timestamp"] != score["timestamp"]
                             else timestamp()))
        assert response.status_code == 400, bad
    assert post(dict(score, timestamp=timestamp()), headers=bearer(token, **{"Content-Type": "application/json"})
                ).status_code == 415
    assert post(score, headers={"Content-Type": MEDIA_SCORE}).status_code == 401
    other = lms.issue_access_token([SCOPE_LINEITEM])
    assert post(score, headers=bearer(other, **{"Content-Type": MEDIA_SCORE})).status_code == 403
    assert [r.outcome for r in lms.scores[-3:]] == ["unsupported_media_type", "unauthorized", "forbidden"]

    newer = dict(score, scoreGiven=9, timestamp=timestamp())
    assert post(newer).status_code == 200
    assert lms.wait_for_score("student-1", score_given=9, timeout=2).outcome == "accepted"
    assert lms.wait_for_score("student-1", score_given=3, timeout=0.2) is None  # bounded


def test_programmed_failures_then_recovery(lms):
    lineitem = lms.add_lineitem("course-1", "Exam 2")
    url = lineitem["id"] + "/scores"
    token = lms.issue_access_token(ALL_SERVICE_SCOPES)
    score = {"userId": "student-3", "scoreGiven": 1, "scoreMaximum": 1, "activityProgress": "Completed",
             "gradingProgress": "FullyGraded"}
    headers = bearer(token, **{"Content-Type": MEDIA_SCORE})

    lms.fail("503", count=1)
    response = requests.post(url, data=json.dumps(dict(score, timestamp=timestamp(-2))), headers=headers, timeout=5)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    lms.fail("429")
    assert requests.post(url, data=json.dumps(dict(score, timestamp=timestamp(-1))), headers=headers,
                         timeout=5).status_code == 429
    lms.recover()
    assert requests.post(url, data=json.dumps(dict(score, timestamp=timestamp())), headers=headers,
                         timeout=5).status_code == 200
    assert [r.outcome for r in lms.scores] == ["failed", "failed", "accepted"]

    lms.fail("401", count=1)  # the token is revoked: a retry needs a new one
    assert requests.post(url, data=json.dumps(dict(score, timestamp=timestamp(1))), headers=headers,
                         timeout=5).status_code == 401
    assert requests.post(url, data=json.dumps(dict(score, timestamp=timestamp(2))), headers=headers,
                         timeout=5).status_code == 401


def test_a_slow_answer_is_held_until_released_and_results_show_the_score(lms):
    lineitem = lms.add_lineitem("course-1", "Exam 3", 10)
    token = lms.issue_access_token(ALL_SERVICE_SCOPES)
    score = {"userId": "student-4", "scoreGiven": 4, "scoreMaximum": 8, "activityProgress": "Completed",
             "gradingProgress": "FullyGraded", "timestamp": timestamp()}
    lms.slow_delay = 10
    lms.fail("slow", count=1)
    answers = []
    poster = threading.Thread(target=lambda: answers.append(requests.post(
        lineitem["id"] + "/scores", data=json.dumps(score), headers=bearer(token, **{"Content-Type": MEDIA_SCORE}),
        timeout=15)))
    started = time.monotonic()
    poster.start()
    assert lms.wait_for_score("student-4", timeout=5) is not None  # recorded while the answer is held
    assert answers == []
    lms.release()
    poster.join(timeout=5)
    assert answers[0].status_code == 200 and time.monotonic() - started < 5

    results = requests.get(lineitem["id"] + "/results", params={"user_id": "student-4"}, headers=bearer(token),
                           timeout=5).json()
    assert results == [{"id": lineitem["id"] + "/results/student-4", "scoreOf": lineitem["id"], "userId": "student-4",
                        "resultMaximum": 10, "resultScore": 5.0}]


def test_lineitem_container_filters_paging_and_creation(lms):
    token = lms.issue_access_token([SCOPE_LINEITEM])
    lms.add_resource_link("course-1", "rl-9")
    for n in range(5):
        lms.add_lineitem("course-1", f"Item {n}", tag="grade" if n % 2 else "progress")
    created = requests.post(lms.lineitems_url("course-1"), headers=bearer(token, **{"Content-Type": MEDIA_LINEITEM}),
                            data=json.dumps({"label": "Created", "scoreMaximum": 60, "resourceId": "quiz-231",
                                             "resourceLinkId": "rl-9", "tag": "grade"}), timeout=5)
    assert created.status_code == 201 and created.json()["id"] == created.headers["Location"]
    unknown_link = requests.post(lms.lineitems_url("course-1"), data=json.dumps(
        {"label": "X", "scoreMaximum": 1, "resourceLinkId": "nope"}), headers=bearer(
        token, **{"Content-Type": MEDIA_LINEITEM}), timeout=5)
    assert unknown_link.status_code == 404

    url, seen = lms.lineitems_url("course-1") + "?tag=grade&limit=2", []
    while url:
        page = requests.get(url, headers=bearer(token, Accept=MEDIA_LINEITEM_CONTAINER), timeout=5)
        assert page.status_code == 200 and page.headers["Content-Type"] == MEDIA_LINEITEM_CONTAINER
        seen += [item["label"] for item in page.json()]
        url = page.links.get("next", {}).get("url")
        assert url is None or url == url.lower()
    assert seen == ["Item 1", "Item 3", "Created"]
    by_resource = requests.get(lms.lineitems_url("course-1"), params={"resource_id": "quiz-231"},
                               headers=bearer(token), timeout=5).json()
    assert [i["label"] for i in by_resource] == ["Created"]

    item_url = created.json()["id"]
    updated = requests.put(item_url, headers=bearer(token, **{"Content-Type": MEDIA_LINEITEM}),
                           data=json.dumps({"label": "Renamed", "scoreMaximum": 50}), timeout=5)
    assert updated.status_code == 200 and updated.json()["resourceLinkId"] == "rl-9"
    assert requests.delete(item_url, headers=bearer(token), timeout=5).status_code == 204
    assert requests.get(item_url, headers=bearer(token), timeout=5).status_code == 404


# ----------------------------------------------------------------------------------- NRPS


def test_nrps_paging_returns_every_member_once(lms):
    for n in range(7):
        lms.add_member("course-1", f"user-{n}", [ROLE_INSTRUCTOR if n == 0 else ROLE_LEARNER], name=f"User {n}",
                       given_name="User", family_name=str(n), email=f"u{n}@example.com",
                       status="Inactive" if n == 6 else "Active")
    token = lms.issue_access_token([SCOPE_NRPS])
    headers = bearer(token, Accept=MEDIA_MEMBERSHIP_CONTAINER)
    url, members, pages = lms.memberships_url("course-1") + "?limit=3", [], 0
    while url:
        response = requests.get(url, headers=headers, timeout=5)
        assert response.status_code == 200 and response.headers["Content-Type"] == MEDIA_MEMBERSHIP_CONTAINER
        body = response.json()
        assert body["context"]["id"] == "course-1" and body["id"]
        members += body["members"]
        pages += 1
        url = response.links.get("next", {}).get("url")
    assert pages == 3
    assert sorted(m["user_id"] for m in members) == [f"user-{n}" for n in range(7)]
    assert members[6]["status"] == "Inactive" and members[0]["roles"] == [ROLE_INSTRUCTOR]

    learners = requests.get(lms.memberships_url("course-1"), params={"role": "Learner"}, headers=headers, timeout=5)
    assert len(learners.json()["members"]) == 6
    assert requests.get(lms.memberships_url("course-1"), headers=bearer(lms.issue_access_token([SCOPE_SCORE])),
                        timeout=5).status_code == 403
    assert requests.get(lms.memberships_url("course-1"), headers=bearer(token, Accept="text/html"),
                        timeout=5).status_code == 406


# -------------------------------------------------------------------------- deep linking


def test_deep_linking_response_is_verified_against_the_tools_jwks(lms, tool_key):
    settings = lms.deep_linking_settings(data="opaque-42")
    claims = jwt.decode(lms.id_token("LtiDeepLinkingRequest", deep_linking_settings=settings),
                        options={"verify_signature": False})
    assert claims[CLAIM_DL_SETTINGS]["deep_link_return_url"] == lms.deep_link_return_url
    assert CLAIM_RESOURCE_LINK not in claims

    items = [{"type": "ltiResourceLink", "title": "Exam", "url": LAUNCH_URL, "lineItem": {"scoreMaximum": 10,
                                                                                          "label": "Exam"}}]
    good = deep_link_response_jwt(tool_key, client_id="tool-1", issuer=[lms.issuer], deployment_id="dep-1",
                                  content_items=items, data="opaque-42")
    response = requests.post(lms.deep_link_return_url, data={"JWT": good}, timeout=5)
    assert response.status_code == 200
    record = lms.wait_for_deep_link(timeout=2)
    assert record.accepted and record.content_items == items

    with pytest.raises(DeepLinkError, match="nonce"):
        lms.verify_deep_link_response(good)  # the same nonce again
    for bad, reason in (
            (dict(data="something-else"), "data"),
            (dict(deployment_id="dep-2"), "deployment_id"),
            (dict(issuer="https://other.example"), "aud"),
            (dict(extra={"https://purl.imsglobal.org/spec/lti/claim/version": "1.1"}), "version"),
    ):
        kwargs = dict(client_id="tool-1", issuer=lms.issuer, deployment_id="dep-1", content_items=items,
                      data="opaque-42")
        kwargs.update(bad)
        with pytest.raises(DeepLinkError, match=reason):
            lms.verify_deep_link_response(deep_link_response_jwt(tool_key, **kwargs))
    foreign = deep_link_response_jwt(SigningKey.generate("tool-key-1"), client_id="tool-1", issuer=lms.issuer,
                                     deployment_id="dep-1", data="opaque-42")
    assert requests.post(lms.deep_link_return_url, data={"JWT": foreign}, timeout=5).status_code == 400
    assert not lms.deep_link_responses[-1].accepted


# ------------------------------------------------------------------ dynamic registration


def test_dynamic_registration_round_trip(lms, tool_jwks):
    start = lms.registration_start_url(TOOL + "/lti13/register?x=1")
    query = dict(parse_qsl(urlsplit(start).query))
    assert query["x"] == "1" and query["openid_configuration"] == lms.openid_configuration_url
    configuration = requests.get(query["openid_configuration"], timeout=5).json()
    assert configuration["issuer"] == lms.issuer and configuration["registration_endpoint"] == lms.registration_url
    assert configuration["token_endpoint"] == lms.token_url and configuration["jwks_uri"] == lms.jwks_url
    platform_config = configuration["https://purl.imsglobal.org/spec/lti-platform-configuration"]
    assert {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"} <= {m["type"] for m in
                                                                  platform_config["messages_supported"]}

    registration = {
        "application_type": "web", "response_types": ["id_token"], "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": TOOL + "/dr/login", "redirect_uris": [TOOL + "/dr/launch"], "client_name": "Numbas",
        "jwks_uri": tool_jwks.url, "token_endpoint_auth_method": "private_key_jwt",
        "scope": f"{SCOPE_SCORE} {SCOPE_NRPS} urn:not-offered",
        CLAIM_TOOL_CONFIGURATION: {"domain": "127.0.0.1", "target_link_uri": TOOL + "/dr/launch",
                                   "claims": ["iss", "sub", "name"],
                                   "messages": [{"type": "LtiDeepLinkingRequest",
                                                 "target_link_uri": TOOL + "/dr/launch"}]},
    }
    headers = {"Authorization": f"Bearer {query['registration_token']}", "Content-Type": "application/json"}
    response = requests.post(configuration["registration_endpoint"], json=registration, headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    body = response.json()
    client_id, deployment_id = body["client_id"], body[CLAIM_TOOL_CONFIGURATION]["deployment_id"]
    assert client_id and deployment_id and body["scope"] == f"{SCOPE_SCORE} {SCOPE_NRPS}"
    assert lms.wait_for_registration(timeout=2).accepted
    assert (lms.client_id, lms.deployment_id) == (client_id, deployment_id)

    # The token is single use; a body that is not a web client with the right grants is refused.
    assert requests.post(lms.registration_url, json=registration, headers=headers, timeout=5).status_code == 401
    token = lms.issue_registration_token()
    bad = dict(registration, grant_types=["implicit"])
    refused = requests.post(lms.registration_url, json=bad, headers=dict(headers, Authorization=f"Bearer {token}"),
                            timeout=5)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata"

    # A launch of the new registration works end to end.
    launch = lms.prepare_launch(sub="student-5")
    assert launch.login_request().url == TOOL + "/dr/login"
    redirect_uri, fields = lms.authorize(auth_params(launch, redirect_uri=TOOL + "/dr/launch"))
    claims = verify(fields["id_token"], lms.jwks(), client_id)
    assert claims[CLAIM_DEPLOYMENT_ID] == deployment_id and redirect_uri == TOOL + "/dr/launch"
    assertion = pyjwt_assertion(SigningKey.generate("unknown"), client_id, lms.token_url)
    assert requests.post(lms.token_url, data=token_request_form(assertion, [SCOPE_SCORE]),
                         timeout=5).status_code == 401


# ------------------------------------------------------------------------- LTI 1.1 claim


def test_lti1p1_sign_matches_the_migration_guide_example():
    # The worked example of the LTI 1.3 Migration Guide's lti1p1 claim section.
    sign = lti1p1_sign("179248902", "my-lti11-secret", deployment_id="689302", iss="https://lmsvendor.com",
                       client_id="PM48OJSfGDTAzAo", exp=1551290856, nonce="172we8671fd8z")
    assert sign == "lWd54kFo5qU7xshAna6v8BwoBm6tmUjc6GTax6+12ps="
    again = lti1p1_sign("179248902", "my-lti11-secret", deployment_id="689302", iss="https://lmsvendor.com",
                        client_id="PM48OJSfGDTAzAo", exp=1551290856, nonce="172we8671fd8z")
    other = lti1p1_sign("179248902", "another-secret", deployment_id="689302", iss="https://lmsvendor.com",
                        client_id="PM48OJSfGDTAzAo", exp=1551290856, nonce="172we8671fd8z")
    assert again == sign and other != sign and forged_lti1p1_sign() != sign


def test_id_token_lti1p1_claim_is_signed_over_its_own_claims(lms):
    token = lms.id_token(lti1p1={"user_id": "legacy-7", "oauth_consumer_key": "moodle-key", "secret": "moodle-secret"})
    claims = jwt.decode(token, options={"verify_signature": False})
    migration = claims[CLAIM_LTI1P1]
    assert "secret" not in migration and migration["user_id"] == "legacy-7"
    assert migration["oauth_consumer_key_sign"] == lti1p1_sign_for_claims(claims, "moodle-key", "moodle-secret")
    assert migration["oauth_consumer_key_sign"] == lti1p1_sign(
        "moodle-key", "moodle-secret", deployment_id="dep-1", iss=lms.issuer, client_id="tool-1",
        exp=claims["exp"], nonce=claims["nonce"])


# ---------------------------------------------------------------------- platform storage


def test_course_page_frames_the_login_with_platform_storage(lms):
    launch = lms.prepare_launch()
    url = lms.add_course_page("c-1", launch)
    response = requests.get(url, timeout=5)
    assert url == lms.course_url("c-1") and response.status_code == 200
    assert '<iframe name="tool"' in response.text and "lti.capabilities.response" in response.text
    src = response.text.split('src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    params = dict(parse_qsl(urlsplit(src).query))
    assert src.startswith(LOGIN_URL + "?") and params["lti_storage_target"] == "_parent"
    assert params["lti_message_hint"] == launch.lti_message_hint
    _, fields = lms.authorize(auth_params(launch))
    assert fields["lti_storage_target"] == "_parent"

    event = {"kind": "storage", "origin": TOOL, "data": {"subject": "lti.put_data", "message_id": "m1"}}
    assert requests.post(lms.events_url, data=json.dumps(event), timeout=5).status_code == 204
    assert lms.wait_for_browser_event("storage", "lti.put_data", timeout=2).origin == TOOL
