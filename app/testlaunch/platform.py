"""The demo LMS as an LTI 1.3 platform: what it signs, what it checks.

The test-launch page (`testlaunch.views`) can launch the tool as an LTI 1.3 platform would,
from inside the same Django site: a third-party-initiated login at the tool's `lti13:login`,
then this platform's OIDC authorization endpoint, which checks the tool's authentication
request and form-posts a signed id_token to the tool's launch URL. Its OAuth 2 token endpoint
and its Assignment and Grade Services (line items, scores) and Names and Role Provisioning
(memberships) endpoints are what the tool's score sends and roster reads reach, over HTTP.

It is written from the specifications (LTI 1.3 Core, LTI Security Framework, AGS 2.0, NRPS
2.0) with PyJWT and cryptography, and shares no code with the tool's side (pylti1p3): a tool
bug is not mirrored here. The tool's keys are read from the tool's own keyset
(`lti13.keys.jwks()`) in-process, and the tool knows this platform's key from its registration
(`Platform.keyset`), so no key is fetched over the network.

What the platform signs for is decided by the test-launch form, which puts the launch into
`lti_message_hint`, signed with the site's SECRET_KEY: the authorization endpoint signs an
id_token for nothing else. Its access tokens are signed the same way.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core import signing
from django.core.cache import cache
from django.utils.dateparse import parse_datetime
from jwcrypto.jwk import JWK

from lti13 import keys as tool_keys

CLIENT_ID = "numbas-lti-demo-tool"
DEPLOYMENT_ID = "demo-deployment"
PLATFORM_NAME = "Demo LMS (test launches, LTI 1.3)"

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
CLAIM_AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CLAIM_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
#: What the demo LMS grants the tool (it has no results endpoint, so not result.readonly).
GRANTED_SCOPES = frozenset({SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE, SCOPE_NRPS})
AGS_CLAIM_SCOPES = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE)

MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
MEDIA_MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
ROLE_LEARNER = LIS + "membership#Learner"
ROLE_INSTRUCTOR = LIS + "membership#Instructor"
ROLES = {
    "student": [ROLE_LEARNER, LIS + "institution/person#Student"],
    "instructor": [ROLE_INSTRUCTOR, LIS + "institution/person#Faculty"],
}
COURSE_OFFERING = LIS + "course#CourseOffering"
ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")

ID_TOKEN_LIFETIME = 300
ACCESS_TOKEN_LIFETIME = 3600
MESSAGE_HINT_LIFETIME = 600
#: Clock difference allowed on the tool's client assertions.
LEEWAY = 60
_HINT_SALT = "testlaunch.platform.message_hint"
_TOKEN_SALT = "testlaunch.platform.access_token"


def new_key_material() -> tuple[str, str, dict]:
    """A new RSA key for the platform: (kid, private PEM, public JWK)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    jwk = JWK.from_pem(pem.encode())
    public = json.loads(jwk.export_public())
    kid = "demo-" + jwk.thumbprint()[:32]
    return kid, pem, {**public, "kid": kid, "alg": "RS256", "use": "sig"}


# --- the launch the form asked for ---------------------------------------------------------------


@dataclass(frozen=True)
class LaunchHint:
    """What the test-launch form asked the platform to launch."""

    issuer: str
    resource_id: int
    role: str  # "student" or "instructor"
    sub: str
    full_name: str
    target_link_uri: str
    in_frame: bool


def message_hint_make(hint: LaunchHint) -> str:
    return signing.dumps([hint.issuer, hint.resource_id, hint.role, hint.sub, hint.full_name, hint.target_link_uri,
                          hint.in_frame], salt=_HINT_SALT, compress=True)


class AuthRequestRefused(Exception):
    def __init__(self, error: str, description: str):
        super().__init__(f"{error}: {description}")
        self.error, self.description = error, description


def auth_request_check(params, *, issuer: str, redirect_uris: tuple[str, ...]) -> tuple[LaunchHint, str, str]:
    """Check the tool's OIDC authentication request (LTI 1.3 Core 5.1.1.2; OIDC Core 3.1.2.1,
    implicit flow): returns the launch it is for, its nonce and its state."""
    if params.get("client_id") != CLIENT_ID:
        raise AuthRequestRefused("unauthorized_client", f"unknown client_id {params.get('client_id', '')[:100]!r}")
    if params.get("redirect_uri") not in redirect_uris:
        raise AuthRequestRefused("invalid_request", f"redirect_uri {params.get('redirect_uri', '')[:200]!r} is not "
                                 f"registered for this tool (registered: {', '.join(redirect_uris)})")
    if "openid" not in params.get("scope", "").split():
        raise AuthRequestRefused("invalid_scope", "scope must include openid")
    if params.get("response_type") != "id_token":
        raise AuthRequestRefused("unsupported_response_type", "response_type must be id_token")
    if params.get("response_mode") != "form_post":
        raise AuthRequestRefused("invalid_request", "response_mode must be form_post")
    if params.get("prompt") != "none":
        raise AuthRequestRefused("invalid_request", "prompt must be none")
    nonce, state = params.get("nonce", ""), params.get("state", "")
    if not nonce or not state:
        raise AuthRequestRefused("invalid_request", "nonce and state are required")
    try:
        fields = signing.loads(params.get("lti_message_hint", ""), salt=_HINT_SALT, max_age=MESSAGE_HINT_LIFETIME)
        hint = LaunchHint(*fields)
    except signing.SignatureExpired:
        raise AuthRequestRefused("login_required", "the launch was asked for too long ago; launch again") from None
    except (signing.BadSignature, TypeError, ValueError):
        raise AuthRequestRefused("login_required", "lti_message_hint is not one this LMS issued") from None
    if hint.sub != params.get("login_hint") or hint.issuer != issuer:
        raise AuthRequestRefused("login_required", "login_hint does not belong to lti_message_hint")
    return hint, nonce, state


def id_token_claims(*, hint: LaunchHint, nonce: str, resource, context, return_url: str, lineitem_url: str,
                    lineitems_url: str, memberships_url: str, now: int | None = None) -> dict:
    """The claims of a resource link launch (LTI 1.3 Core 5.3 and 5.4, AGS 3.1, NRPS 3.6.1)."""
    now = int(time.time()) if now is None else now
    given, _, family = hint.full_name.partition(" ")
    claims = {
        "iss": hint.issuer, "aud": CLIENT_ID, "azp": CLIENT_ID, "sub": hint.sub, "iat": now,
        "exp": now + ID_TOKEN_LIFETIME, "nonce": nonce, "name": hint.full_name, "given_name": given,
        "family_name": family, "locale": "en",
        LTI + "message_type": "LtiResourceLinkRequest", LTI + "version": "1.3.0",
        LTI + "deployment_id": DEPLOYMENT_ID, LTI + "target_link_uri": hint.target_link_uri,
        LTI + "resource_link": {"id": resource.lti13_id or resource.resource_link_id, "title": resource.title},
        LTI + "roles": ROLES[hint.role],
        LTI + "tool_platform": {"guid": hint.issuer, "name": PLATFORM_NAME, "product_family_code": "numbas-lti-demo"},
        LTI + "launch_presentation": {"document_target": "iframe" if hint.in_frame else "window",
                                      "return_url": return_url, "locale": "en"},
    }
    if context is not None:
        claims[LTI + "context"] = {"id": context.lti13_id or context.context_id, "label": context.label,
                                   "title": context.title, "type": [COURSE_OFFERING]}
        claims[CLAIM_AGS] = {"scope": list(AGS_CLAIM_SCOPES), "lineitems": lineitems_url, "lineitem": lineitem_url}
        claims[CLAIM_NRPS] = {"context_memberships_url": memberships_url, "service_versions": ["2.0"]}
    return claims


def sign(claims: dict, *, kid: str, private_key_pem: str) -> str:
    return jwt.encode(claims, private_key_pem, algorithm="RS256", headers={"kid": kid})


# --- the token endpoint --------------------------------------------------------------------------


class ClientRefused(Exception):
    """An OAuth 2 error (RFC 6749 5.2) with its HTTP status."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(f"{error}: {description}")
        self.status, self.error, self.description = status, error, description


def client_assertion_check(form, *, token_url: str) -> tuple[str, list[str]]:
    """A client_credentials grant with a JWT client assertion (RFC 7523; LTI Security Framework
    4.1.1), signed by one of the keys the tool publishes: returns (client id, granted scopes)."""
    if form.get("grant_type") != "client_credentials":
        raise ClientRefused(400, "unsupported_grant_type", "grant_type must be client_credentials")
    if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
        raise ClientRefused(400, "invalid_request", "client_assertion_type must be jwt-bearer")
    assertion = form.get("client_assertion", "")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError:
        raise ClientRefused(401, "invalid_client", "client_assertion is not a JWT") from None
    if header.get("alg") != "RS256":
        raise ClientRefused(401, "invalid_client", "client_assertion must be signed with RS256")
    jwk = next((k for k in tool_keys.jwks()["keys"] if k.get("kid") == header.get("kid")), None)
    if jwk is None:
        raise ClientRefused(401, "invalid_client", f"the tool publishes no key {str(header.get('kid'))[:80]!r}")
    try:
        claims = jwt.decode(assertion, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=token_url, issuer=CLIENT_ID,
                            leeway=LEEWAY, options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
    except jwt.InvalidTokenError as error:
        raise ClientRefused(401, "invalid_client", f"client_assertion: {error}") from None
    if claims["sub"] != CLIENT_ID:
        raise ClientRefused(401, "invalid_client", "client_assertion's sub must be the client id")
    jti_key = "testlaunch:platform:jti:" + hashlib.sha256(str(claims["jti"]).encode()).hexdigest()
    if not cache.add(jti_key, 1, timeout=max(int(claims["exp"] - time.time()) + LEEWAY, 1)):
        raise ClientRefused(401, "invalid_client", "client_assertion was used before (jti)")
    granted = sorted(set(form.get("scope", "").split()) & GRANTED_SCOPES)
    if not granted:
        raise ClientRefused(400, "invalid_scope", "none of the scopes asked for is granted to this tool")
    return CLIENT_ID, granted


def access_token_make(*, client_id: str, scopes: list[str]) -> str:
    return signing.dumps({"c": client_id, "s": scopes}, salt=_TOKEN_SALT)


def access_token_scopes(authorization: str) -> set[str] | None:
    """The scopes of a valid bearer token in an Authorization header, or None."""
    kind, _, token = authorization.partition(" ")
    if kind.lower() != "bearer" or not token:
        return None
    try:
        value = signing.loads(token.strip(), salt=_TOKEN_SALT, max_age=ACCESS_TOKEN_LIFETIME)
    except signing.BadSignature:
        return None
    return set(value.get("s", [])) if isinstance(value, dict) and value.get("c") == CLIENT_ID else None


# --- what the services receive -------------------------------------------------------------------


class InvalidBody(ValueError):
    pass


def _number(value, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidBody(f"{name} must be a number")
    if value < 0 or (positive and value == 0):
        raise InvalidBody(f"{name} must be {'more than' if positive else 'at least'} 0")
    return float(value)


def _text(body: dict, name: str, limit: int) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidBody(f"{name} must be text of at most {limit} characters")
    return value


def _json_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidBody("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidBody("the body is not a JSON object")
    return body


@dataclass(frozen=True)
class ScoreValues:
    user_id: str
    score_given: float | None
    score_maximum: float | None
    activity_progress: str
    grading_progress: str
    comment: str
    timestamp: datetime


def score_parse(raw: bytes) -> ScoreValues:
    """A score as AGS 2.0 section 3.4 defines it."""
    body = _json_object(raw)
    user_id = _text(body, "userId", 255)
    if not user_id:
        raise InvalidBody("userId is required")
    if body.get("activityProgress") not in ACTIVITY_PROGRESS:
        raise InvalidBody(f"activityProgress must be one of {', '.join(ACTIVITY_PROGRESS)}")
    if body.get("gradingProgress") not in GRADING_PROGRESS:
        raise InvalidBody(f"gradingProgress must be one of {', '.join(GRADING_PROGRESS)}")
    stamp = body.get("timestamp")
    when = parse_datetime(stamp) if isinstance(stamp, str) else None
    if when is None or when.utcoffset() is None:
        raise InvalidBody("timestamp must be an ISO 8601 date and time with its offset")
    given = maximum = None
    if body.get("scoreGiven") is not None:
        given = _number(body["scoreGiven"], "scoreGiven")
        maximum = _number(body.get("scoreMaximum"), "scoreMaximum", positive=True)
    elif body.get("scoreMaximum") is not None:
        maximum = _number(body["scoreMaximum"], "scoreMaximum", positive=True)
    return ScoreValues(user_id, given, maximum, body["activityProgress"], body["gradingProgress"],
                       _text(body, "comment", 5000), when)


@dataclass(frozen=True)
class LineItemValues:
    label: str
    score_maximum: float
    resource_link_id: str
    resource_id: str
    tag: str


def lineitem_parse(raw: bytes) -> LineItemValues:
    """A new line item as AGS 2.0 section 3.2 defines it."""
    body = _json_object(raw)
    label = _text(body, "label", 500).strip()
    if not label:
        raise InvalidBody("label is required")
    return LineItemValues(label, _number(body.get("scoreMaximum"), "scoreMaximum", positive=True),
                          _text(body, "resourceLinkId", 255), _text(body, "resourceId", 255), _text(body, "tag", 255))
