"""An independent LTI 1.3 / LTI Advantage platform (a stand-in LMS) for tests.

`Lti13Platform` plays the LMS side of LTI 1.3 so tests can drive the tool through real
OIDC launches, Assignment and Grade Services (AGS 2.0), Names and Role Provisioning
Services (NRPS 2.0), Deep Linking 2.0, LTI Dynamic Registration 1.0 and the 1EdTech
client-side postMessage platform storage.  It is written from the IMS/1EdTech specs with
PyJWT, cryptography and the standard library only -- it shares no code with the tool's
LTI library (pylti1p3) -- so the two sides can disagree, which is the point.

It runs a threaded HTTP server on a loopback address (127.0.0.1, port 0 by default) and
talks to nothing outside 127.0.0.0/8: the tool's JWKS is fetched only from loopback URLs.
Everything it receives is recorded, with thread-safe accessors and bounded waits, and the
service endpoints can be made to fail on demand.

Quick start (a Django test-client launch)::

    with Lti13Platform(client_id="tool-1", deployment_id="dep-1") as lms:
        lms.register_tool(login_url=TOOL + "/lti13/login", redirect_uris=[TOOL + "/lti13/launch"],
                          jwks_url=TOOL + "/lti13/jwks")
        launch = lms.prepare_launch(sub="student-1", roles=[ROLE_LEARNER], ags=True)
        login = launch.login_request()                      # what the LMS POSTs to the tool
        response = client.post(login.path, login.params)   # tool answers 302 to lms.auth_url
        redirect_uri, fields = lms.authorize_url(response["Location"])
        client.post(urlsplit(redirect_uri).path, fields)   # id_token + state to the launch URL

Keys and signing
----------------
* ``SigningKey.generate(kid=None)`` -- an RSA 2048 key with a ``kid``; ``public_jwk()``,
  ``private_pem()``, ``public_pem()``.
* ``encode_jwt(claims, key, alg="RS256", kid=..., headers=None, secret=None)`` -- a compact
  JWS, also with ``alg="none"`` or HMAC (``HS256`` etc. with `secret`), for broken tokens.
* ``decode_jwt_unverified(token)`` -> (header, claims); ``verify_jwt_signature(token, jwks)``.
* ``platform.current_key``, ``platform.keys``, ``rotate_key(kid=None)`` (a new key signs from
  then on, the old one stays published), ``retire_key(kid)`` (stop publishing it),
  ``jwks()``; ``GET /jwks`` counts ``jwks_fetches``; ``jwks_max_age`` adds Cache-Control.

The launch (LTI 1.3 Core section 5, OIDC third-party-initiated login)
-------------------------------------------------------------------
* ``Lti13Platform(issuer=None, client_id="numbas-lti-tool", deployment_id="deployment-1", *,
  host="127.0.0.1", port=0, url_host=None, signing_key=None, ...)``; ``start()``/``stop()`` or
  ``with``; ``base_url``, ``issuer`` and the endpoint URLs (``jwks_url``, ``auth_url``,
  ``token_url``, ``registration_url``, ``openid_configuration_url``, ``deep_link_return_url``,
  ``return_url``, ``lineitems_url(ctx)``, ``lineitem_url(ctx, id)``, ``memberships_url(ctx)``...).
* ``register_tool(login_url, redirect_uris, jwks_url=None, *, client_id=None, deployment_ids=None,
  target_link_uri=None, allowed_scopes=ALL_SERVICE_SCOPES, jwks=None)`` -> `ToolRegistration`;
  ``tool(client_id=None)``, ``tools``.  The tool's key set is fetched from `jwks_url` over HTTP
  (cached; ``tool_jwks_fetches``, ``forget_tool_keys()``).  `jwks` (a static key set) replaces
  the fetch -- the simplest choice for a tool served only by Django's test client, whose views
  should not be called from the platform's server thread; ``platform.jwks_fetcher`` (a
  callable url -> dict) replaces HTTP for every tool.
* ``id_token(message_type="LtiResourceLinkRequest", **kw)`` -> a signed id_token;
  ``id_token_claims(...)`` -> the claims only; ``sign(claims, ...)`` signs any claims.  The
  keyword arguments (all optional) are: ``sub, roles, nonce, client_id, deployment_id,
  target_link_uri, resource_link, context, name, given_name, family_name, email, locale,
  custom, ags, nrps, deep_linking_settings, lti1p1, launch_presentation, tool_platform, extra``
  and, to break things: ``iss, aud`` (str or list), ``azp, iat_offset, exp_offset, omit``
  (claim names, short names such as "deployment_id" allowed), ``alg`` ("none", "HS256" signed
  with the platform's public key PEM as the HMAC secret unless ``hs_secret`` is given),
  ``kid`` (None drops it; the default is the platform's current kid even with a foreign
  ``key``), ``key`` (sign with another `SigningKey`/RSA key), ``headers``.  Defaults come
  from the context's configured member with user_id == sub when there is one.
  ``ags=True`` builds the AGS claim with a line item bound to the resource link (created on
  first use), ``nrps=True`` the NRPS claim, ``deep_linking_settings=True`` the default
  settings; ``lti1p1={"user_id": ..., "oauth_consumer_key": ..., "secret": S}`` computes
  ``oauth_consumer_key_sign`` with S over the final claims (give ``oauth_consumer_key_sign``
  instead of ``secret`` to send a forged one).
* ``prepare_launch(message_type=..., *, login_hint=None, lti_message_hint=<random>, storage_target=None,
  **id_token_kwargs)`` -> `PreparedLaunch`: stores what the id_token will contain under its
  hints (login_hint defaults to `sub`).  The nonce is the one the tool sends to /auth, unless
  the launch was prepared with an explicit ``nonce``.
* ``login_request(target_link_uri=None, login_hint=None, lti_message_hint=None, *, launch=None,
  method="POST", storage_target=None, client_id=None, deployment_id=None, omit=(), extra=None)``
  and ``PreparedLaunch.login_request(...)`` -> `LoginRequest` (``url``, ``method``, ``params``,
  ``full_url``, ``path``): iss, login_hint, target_link_uri, lti_message_hint, client_id,
  lti_deployment_id and, when platform storage is offered, lti_storage_target.
* ``GET|POST /auth`` (``auth_url``) and ``authorize(params) -> (redirect_uri, fields)`` /
  ``authorize_url(url)``: check scope=openid, response_type=id_token,
  response_mode=form_post, prompt=none, a registered client_id and redirect_uri, a
  login_hint/lti_message_hint pair this platform issued for that client, nonce and state.  The
  answer is an auto-submitting form POSTing id_token and state (and lti_storage_target when the
  launch offered platform storage) to the redirect_uri.  Refusals raise `AuthorizationRefused`
  (programmatic) or answer with an OIDC error form-posted to a registered redirect_uri, or 400
  when the client or redirect_uri is not trusted.  All recorded in ``auth_requests``.
* ``parse_form(html) -> (action, method, fields)`` and ``form_post_html(action, fields)``.

Services (LTI Advantage)
------------------------
* ``POST /token`` (``token_url``; ``token_response(form)`` programmatically): OAuth 2
  client_credentials with a JWT client assertion (RFC 7523, LTI Security Framework 4.1.1):
  RS256 only, verified against the tool's JWKS by kid (refetched once on an unknown kid),
  iss = sub = a registered client_id, aud = ``token_url`` (or one of ``token_audiences``),
  exp in the future, iat not in the future, jti never seen before.  Grants the requested scopes
  the tool is allowed; ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``.
  Refusals follow RFC 6749 5.2: 401 ``invalid_client`` for a bad assertion, 400
  ``invalid_request``, ``unsupported_grant_type`` or ``invalid_scope``.  ``tokens_issued``,
  ``token_requests``, ``expire_tokens()``, ``token_lifetime``, ``issue_access_token(scopes)``
  (a token without the OAuth exchange, for testing the services themselves).
* AGS: ``lineitems_url(ctx)`` = ``/contexts/<ctx>/lineitems`` (GET with resource_link_id,
  resource_id, tag, limit; POST creates), ``/contexts/<ctx>/lineitems/<id>`` (GET, PUT,
  DELETE), ``.../<id>/scores`` (POST, application/vnd.ims.lis.v1.score+json), ``.../<id>/results``
  (GET, user_id, limit).  Scores are validated (AGS 3.4) and a score older than the last one
  accepted for that (line item, user) is refused with ``stale_score_status`` (409); an
  identical re-post with the same timestamp is answered 200 as a duplicate, a different body
  with the same timestamp 409.  Helpers: ``add_context``, ``add_lineitem``, ``lineitem``,
  ``lineitems``, ``lineitem_for_resource_link``, ``add_resource_link``, ``results``,
  ``ags_claim(context_id, lineitem=None, scopes=...)``; records ``scores`` (`ScoreRecord`),
  ``wait_for_score(user_id=None, *, lineitem=None, score_given=None, outcome="accepted",
  timeout=10)``.
* NRPS: ``memberships_url(ctx)`` = ``/contexts/<ctx>/memberships`` (GET, role, limit, rlid
  accepted and ignored) -> ``{"id", "context", "members"}``.  ``add_member``, ``set_members``,
  ``members``, ``nrps_claim(context_id)``.
* Paging: ``Link: <.../pages/<token>>; rel="next"`` -- an opaque, all-lowercase URL that
  carries the filters (pylti1p3 lowercases the Link header before reading it).
* Bearer tokens: missing/unknown/expired -> 401 ``WWW-Authenticate: Bearer error="invalid_token"``,
  a token without the scope -> 403 ``insufficient_scope``.  ``strict_media_types`` (default
  True): a wrong Content-Type -> 415, an Accept that admits neither the media type nor
  JSON -> 406.  Every service request is recorded in ``service_requests``.
* ``fail(mode, count=None, *, on="scores")`` / ``recover()`` / ``release()``: modes
  "500", "503" and "429" (both with Retry-After: 1), "401" (the token presented is revoked and
  refused), "timeout" (stall ``timeout_delay`` s, then 503) and "slow" (handled normally, the
  answer held ``slow_delay`` s or until ``release()``).  `on`: "scores", "lineitems", "results",
  "memberships", "token", a list of them, "services" (all but token) or "all"; `count` is per
  endpoint.

Deep linking
------------
* ``deep_linking_settings(accept_types=("ltiResourceLink",), ...)`` -> the settings claim, with
  ``deep_link_return_url`` = ``POST /deep_link/return`` and a fresh random ``data`` by default.
* The return URL receives the tool's auto-posted ``JWT`` form field; ``deep_link_responses``
  (`DeepLinkRecord`), ``wait_for_deep_link(timeout)``.
* ``verify_deep_link_response(jwt, expected_data=...)`` -> the content items, checked against
  the tool's JWKS: iss = a registered client_id, aud = issuer (str or list), exp, iat, a nonce
  never seen before, a deployment_id of that tool, message_type LtiDeepLinkingResponse,
  version 1.3.0, data echoed (one this platform issued), each item an object with a type.
  Raises `DeepLinkError`.

Dynamic registration (LTI DR 1.0)
---------------------------------
* ``GET /.well-known/openid-configuration`` (``openid_configuration_url``; ``openid_configuration()``).
* ``registration_start_url(tool_registration_url, token=True)`` -> the URL an LMS admin opens:
  ``?openid_configuration=...&registration_token=...`` (a new one-time token; or pass one;
  ``issue_registration_token()`` makes one).
* ``POST /register`` (``registration_url``): a one-time Bearer registration token is required
  once any was issued; the client metadata is checked (application_type web, grant_types
  implicit + client_credentials, response_types id_token, redirect_uris, initiate_login_uri,
  jwks_uri, token_endpoint_auth_method private_key_jwt, the lti-tool-configuration with domain,
  target_link_uri, claims and messages; URLs within domain/secondary_domains).  It assigns a
  client_id and deployment_id, registers the tool (it becomes the default tool for launches)
  and answers the registration with client_id and the tool configuration with deployment_id.
  ``registrations``, ``wait_for_registration(timeout)``.
* ``registration_page_url(tool_registration_url)`` serves a page framing the tool's
  registration UI and recording the tool's ``{subject: "org.imsglobal.lti.close"}`` message.

Platform storage (1EdTech client-side postMessages, for Chromium)
-----------------------------------------------------------------
``frame_page_html(login_url, login_params, *, tool_origin=None, method="GET")`` is a page that
frames the tool (``<iframe name="tool">`` loading the login URL with the params, including
``lti_storage_target=_parent``) and answers the tool's postMessages sent to its parent:

* ``{subject: "lti.capabilities", message_id}`` -> ``{subject: "lti.capabilities.response",
  message_id, supported_messages: [{subject: "lti.capabilities"}, {subject: "lti.put_data"},
  {subject: "lti.get_data"}]}`` (no ``frame``: the parent itself answers);
* ``{subject: "lti.put_data", message_id, key, value}`` -> ``{subject: "lti.put_data.response",
  message_id, key, value}``, stored per sending origin;
* ``{subject: "lti.get_data", message_id, key}`` -> ``{subject: "lti.get_data.response",
  message_id, key, value}`` (value null when nothing is stored, or an error with
  ``get_data_missing="error"``);
* failures: ``{subject: "<subject>.response", message_id, error: {code, message}}`` with code
  "bad_request" (no message_id, no key, a value that is not a string) or
  "unsupported_subject".

Replies go to ``event.source`` with the sender's origin as target origin.  Messages from any
origin but the tool's are ignored (and recorded as refused).  Each message and reply is
reported to ``POST /events`` and so lands in ``browser_events`` (`BrowserEvent`),
``wait_for_browser_event(kind, subject=None, timeout)``; the page also keeps them in
``window.__ltiPlatformLog``.  ``add_course_page(course_id, launch, method="GET")`` serves such a
page at ``/course/<id>`` and returns its URL; ``serve_html(path, html)`` serves any page.

Stand-in tool helpers (for testing this platform itself)
--------------------------------------------------------
``JwksServer(keys)`` serves a key set on loopback (``url``, ``fetches``);
``client_assertion(key, client_id, audience, ...)``, ``token_request_form(assertion, scopes)``
and ``deep_link_response_jwt(key, client_id=..., issuer=..., deployment_id=..., ...)``.

Everything received is kept in lists of frozen dataclasses (``auth_requests``,
``token_requests``, ``service_requests``, ``scores``, ``deep_link_responses``,
``registrations``, ``browser_events``); each property returns a copy taken under the lock.
``wait_for(predicate, timeout)`` waits for anything (the predicate runs under the lock; the
waits return None after `timeout` seconds); ``wait_for_auth_request(n)`` and the waits above.
``stats()`` counts them; ``reset_records()`` forgets them.
"""

from __future__ import annotations

import base64
import calendar
import copy
import hashlib
import hmac
import html
import ipaddress
import itertools
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# ----------------------------------------------------------------------------- vocabulary

LTI_VERSION = "1.3.0"
_LTI = "https://purl.imsglobal.org/spec/lti/claim/"
CLAIM_MESSAGE_TYPE = _LTI + "message_type"
CLAIM_VERSION = _LTI + "version"
CLAIM_DEPLOYMENT_ID = _LTI + "deployment_id"
CLAIM_TARGET_LINK_URI = _LTI + "target_link_uri"
CLAIM_RESOURCE_LINK = _LTI + "resource_link"
CLAIM_ROLES = _LTI + "roles"
CLAIM_ROLE_SCOPE_MENTOR = _LTI + "role_scope_mentor"
CLAIM_CONTEXT = _LTI + "context"
CLAIM_TOOL_PLATFORM = _LTI + "tool_platform"
CLAIM_LAUNCH_PRESENTATION = _LTI + "launch_presentation"
CLAIM_LIS = _LTI + "lis"
CLAIM_CUSTOM = _LTI + "custom"
CLAIM_LTI1P1 = _LTI + "lti1p1"
CLAIM_FOR_USER = _LTI + "for_user"
CLAIM_AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CLAIM_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
_DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
CLAIM_DL_SETTINGS = _DL + "deep_linking_settings"
CLAIM_DL_CONTENT_ITEMS = _DL + "content_items"
CLAIM_DL_DATA = _DL + "data"
CLAIM_DL_MSG = _DL + "msg"
CLAIM_DL_LOG = _DL + "log"
CLAIM_DL_ERRORMSG = _DL + "errormsg"
CLAIM_DL_ERRORLOG = _DL + "errorlog"
CLAIM_PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
CLAIM_TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"

#: Short names accepted by ``omit=`` for the namespaced claims.
CLAIM_ALIASES = {
    "message_type": CLAIM_MESSAGE_TYPE, "version": CLAIM_VERSION, "deployment_id": CLAIM_DEPLOYMENT_ID,
    "target_link_uri": CLAIM_TARGET_LINK_URI, "resource_link": CLAIM_RESOURCE_LINK, "roles": CLAIM_ROLES,
    "context": CLAIM_CONTEXT, "tool_platform": CLAIM_TOOL_PLATFORM,
    "launch_presentation": CLAIM_LAUNCH_PRESENTATION, "custom": CLAIM_CUSTOM, "lti1p1": CLAIM_LTI1P1,
    "ags": CLAIM_AGS, "nrps": CLAIM_NRPS, "deep_linking_settings": CLAIM_DL_SETTINGS, "lis": CLAIM_LIS,
}

MSG_RESOURCE_LINK = "LtiResourceLinkRequest"
MSG_DEEP_LINKING = "LtiDeepLinkingRequest"
MSG_DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"
MSG_SUBMISSION_REVIEW = "LtiSubmissionReviewRequest"

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_SCOPES = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE)
ALL_SERVICE_SCOPES = frozenset(AGS_SCOPES + (SCOPE_NRPS,))

MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
MEDIA_RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"
MEDIA_MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"

_LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
ROLE_LEARNER = _LIS + "membership#Learner"
ROLE_INSTRUCTOR = _LIS + "membership#Instructor"
ROLE_TEACHING_ASSISTANT = _LIS + "membership/Instructor#TeachingAssistant"
ROLE_CONTENT_DEVELOPER = _LIS + "membership#ContentDeveloper"
ROLE_MENTOR = _LIS + "membership#Mentor"
ROLE_CONTEXT_ADMINISTRATOR = _LIS + "membership#Administrator"
ROLE_INSTITUTION_ADMINISTRATOR = _LIS + "institution/person#Administrator"
ROLE_INSTITUTION_STUDENT = _LIS + "institution/person#Student"
ROLE_SYSTEM_ADMINISTRATOR = _LIS + "system/person#Administrator"
CONTEXT_TYPE_COURSE_OFFERING = _LIS + "course#CourseOffering"

#: AGS 2.0 section 3.4.7 and 3.4.8.
ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")
MEMBER_STATUSES = ("Active", "Inactive", "Deleted")

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

FAIL_MODES = ("500", "503", "429", "401", "timeout", "slow")
FAIL_TARGETS = ("scores", "lineitems", "results", "memberships", "token")
_SERVICE_TARGETS = ("scores", "lineitems", "results", "memberships")

_SIGN_KWARGS = ("alg", "kid", "key", "headers", "hs_secret")
_DEFAULT: Any = object()  # "argument not given" where None means something
_MAX_BODY = 1024 * 1024
_HTML = "text/html; charset=utf-8"
_JSON = "application/json"


# --------------------------------------------------------------------------- JWT and keys


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def _uint_b64(value: int) -> str:
    return b64url_encode(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _b64_uint(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")


class SigningKey:
    """An RSA private key and its key id, as published in a JWKS."""

    def __init__(self, private_key: rsa.RSAPrivateKey, kid: str):
        self.private_key = private_key
        self.kid = kid

    @classmethod
    def generate(cls, kid: str | None = None, *, bits: int = 2048) -> "SigningKey":
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        return cls(key, kid or "key-" + secrets.token_hex(6))

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def public_jwk(self, alg: str = "RS256") -> dict:
        numbers = self.public_key.public_numbers()
        return {"kty": "RSA", "kid": self.kid, "alg": alg, "use": "sig",
                "n": _uint_b64(numbers.n), "e": _uint_b64(numbers.e)}

    def private_pem(self) -> str:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode("ascii")

    def public_pem(self) -> str:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"


_RSA_HASHES = {"RS256": hashes.SHA256, "RS384": hashes.SHA384, "RS512": hashes.SHA512}
_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _json_bytes(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=False).encode("utf-8")


def encode_jwt(claims: dict, key: "SigningKey | rsa.RSAPrivateKey | None" = None, *, alg: str = "RS256",
               kid: Any = _DEFAULT, headers: dict | None = None, secret: bytes | str | None = None) -> str:
    """A compact JWS of `claims`.

    RS256/RS384/RS512 sign with `key`; HS256/HS384/HS512 with `secret`; "none" has an empty
    signature.  `kid` defaults to the key's kid (None: no kid header).  `headers` are merged
    into the header last, so they can override anything.
    """
    header: dict = {"typ": "JWT", "alg": alg}
    if kid is _DEFAULT:
        kid = key.kid if isinstance(key, SigningKey) else None
    if kid is not None:
        header["kid"] = kid
    header.update(headers or {})
    signing_input = (b64url_encode(_json_bytes(header)) + "." + b64url_encode(_json_bytes(claims))).encode("ascii")
    if alg in _RSA_HASHES:
        private = key.private_key if isinstance(key, SigningKey) else key
        if private is None:
            raise ValueError(f"{alg} needs a key")
        signature = private.sign(signing_input, padding.PKCS1v15(), _RSA_HASHES[alg]())
    elif alg in _HMAC_HASHES:
        if secret is None:
            raise ValueError(f"{alg} needs a secret")
        secret_bytes = secret.encode("utf-8") if isinstance(secret, str) else secret
        signature = hmac.new(secret_bytes, signing_input, _HMAC_HASHES[alg]).digest()
    elif alg == "none":
        signature = b""
    else:
        raise ValueError(f"unsupported alg {alg!r}")
    return signing_input.decode("ascii") + "." + b64url_encode(signature)


class JwtError(Exception):
    """A JWT is malformed, badly signed or has unacceptable claims; the message says why."""


def decode_jwt_unverified(token: str) -> tuple[dict, dict]:
    """(header, claims) of a compact JWS, without checking anything."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise JwtError("not a compact JWS (three dot-separated parts)")
    head, body, _ = token.split(".")
    try:
        header = json.loads(b64url_decode(head))
        claims = json.loads(b64url_decode(body))
    except (ValueError, UnicodeDecodeError) as error:
        raise JwtError(f"undecodable JWT: {error}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtError("JWT header and payload must be JSON objects")
    return header, claims


def _public_key_from_jwk(jwk: dict) -> rsa.RSAPublicKey:
    if jwk.get("kty") != "RSA" or "n" not in jwk or "e" not in jwk:
        raise JwtError(f"JWK {jwk.get('kid')!r} is not an RSA public key")
    return rsa.RSAPublicNumbers(_b64_uint(jwk["e"]), _b64_uint(jwk["n"])).public_key()


def verify_jwt_signature(token: str, jwks: dict | list, *, algorithms: Iterable[str] = ("RS256",)) -> tuple[dict, dict]:
    """Check `token`'s signature against the key set; (header, claims) or JwtError.

    The key is chosen by the header's kid; without a kid, only a set of exactly one key works.
    """
    header, claims = decode_jwt_unverified(token)
    alg = header.get("alg")
    if alg not in tuple(algorithms) or alg not in _RSA_HASHES:
        raise JwtError(f"alg {alg!r} is not accepted (only {', '.join(algorithms)})")
    jwk = _select_jwk(jwks, header.get("kid"))
    if jwk is None:
        raise JwtError(f"no key with kid {header.get('kid')!r} in the key set")
    signing_input, _, signature = token.rpartition(".")
    try:
        _public_key_from_jwk(jwk).verify(b64url_decode(signature), signing_input.encode("ascii"),
                                         padding.PKCS1v15(), _RSA_HASHES[alg]())
    except (InvalidSignature, ValueError):
        raise JwtError("bad signature") from None
    return header, claims


def _select_jwk(jwks: dict | list, kid: str | None) -> dict | None:
    keys = jwks.get("keys", []) if isinstance(jwks, dict) else list(jwks)
    keys = [k for k in keys if isinstance(k, dict)]
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((k for k in keys if k.get("kid") == kid), None)


# --------------------------------------------------------------------- LTI 1.1 migration


def lti1p1_base_string(oauth_consumer_key: str, deployment_id: str, iss: str, client_id: str,
                       exp: int | str, nonce: str) -> str:
    """The string the lti1p1 claim's oauth_consumer_key_sign signs (LTI 1.3 Migration Guide,
    "LTI 1.1 migration claim"): the values joined by '&', unescaped."""
    return "&".join(str(part) for part in (oauth_consumer_key, deployment_id, iss, client_id, exp, nonce))


def lti1p1_sign(oauth_consumer_key: str, secret: str, *, deployment_id: str, iss: str, client_id: str,
                exp: int | str, nonce: str) -> str:
    """base64(HMAC-SHA256(key=the LTI 1.1 secret, the base string)), standard alphabet, padded."""
    base = lti1p1_base_string(oauth_consumer_key, deployment_id, iss, client_id, exp, nonce)
    digest = hmac.new(secret.encode("utf-8"), base.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def lti1p1_sign_for_claims(claims: dict, oauth_consumer_key: str, secret: str) -> str:
    """oauth_consumer_key_sign for an id_token's claims; client_id is aud, or azp when aud is a list."""
    aud = claims.get("aud")
    client_id = claims.get("azp") if isinstance(aud, list) else aud
    if isinstance(aud, list) and client_id is None and len(aud) == 1:
        client_id = aud[0]
    return lti1p1_sign(oauth_consumer_key, secret, deployment_id=claims.get(CLAIM_DEPLOYMENT_ID, ""),
                       iss=claims.get("iss", ""), client_id=client_id or "", exp=claims.get("exp", ""),
                       nonce=claims.get("nonce", ""))


def forged_lti1p1_sign() -> str:
    """A well-formed oauth_consumer_key_sign that no secret produced."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


# ----------------------------------------------------------------------- time and forms

_ISO_8601 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}(?::?\d{2})?)$")


def parse_iso8601(text: str, *, require_fraction: bool = False) -> Decimal:
    """Seconds since the epoch (exact) of an ISO 8601 date-time with a time zone designator.

    Raises ValueError for anything else; `require_fraction` also insists on sub-second digits.
    """
    if not isinstance(text, str):
        raise ValueError("not a string")
    match = _ISO_8601.match(text)
    if not match:
        raise ValueError("not an ISO 8601 date-time with a time zone designator")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    if require_fraction and not fraction:
        raise ValueError("no sub-second precision")
    import datetime  # local: only needed to validate the calendar fields

    datetime.datetime(year, month, day, hour, minute, second)  # raises ValueError when out of range
    offset = 0
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            raise ValueError("bad time zone offset")
        offset = sign * (hours * 3600 + minutes * 60)
    seconds = calendar.timegm((year, month, day, hour, minute, second)) - offset
    return Decimal(seconds) + (Decimal("0." + fraction) if fraction else Decimal(0))


def form_post_html(action: str, fields: dict, *, title: str = "Continuing", target: str | None = None,
                   auto_submit: bool = True) -> str:
    """An HTML page holding a POST form to `action` with `fields` as hidden inputs, submitted on load."""
    inputs = "\n".join(f'    <input type="hidden" name="{html.escape(str(k))}" value="{html.escape(str(v))}">'
                       for k, v in fields.items())
    target_attr = f' target="{html.escape(target)}"' if target else ""
    script = "<script>document.getElementById('lti13-form').submit();</script>" if auto_submit else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title></head>\n<body>\n"
        f'  <form id="lti13-form" method="post" action="{html.escape(action)}"{target_attr}>\n{inputs}\n'
        '    <noscript><button type="submit">Continue</button></noscript>\n  </form>\n'
        f"  {script}\n</body>\n</html>\n"
    )


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            if "language-switch" in attributes.get("class", "").split():
                # The tool's language switch in its page header, not the page's own form.
                self.forms.append({"skip": True, "fields": {}})
                return
            self.forms.append({"action": attributes.get("action", ""),
                               "method": attributes.get("method", "get").upper(), "fields": {}})
        elif tag in ("input", "textarea", "button") and self.forms and attributes.get("name"):
            if tag == "input" and attributes.get("type", "text").lower() in ("submit", "button", "image"):
                return
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")


def parse_form(page: str | bytes, index: int = 0) -> tuple[str, str, dict[str, str]]:
    """(action, method, fields) of the `index`-th form of an HTML page (entities decoded)."""
    parser = _FormParser()
    parser.feed(page.decode("utf-8") if isinstance(page, bytes) else page)
    parser.forms = [form for form in parser.forms if not form.get("skip")]
    if len(parser.forms) <= index:
        raise ValueError("no such form in the page")
    form = parser.forms[index]
    return form["action"], form["method"], form["fields"]


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        return False


def _check_loopback_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not _is_loopback_host(parts.hostname):
        raise ValueError(f"refusing to fetch {url!r}: only http(s) on 127.0.0.0/8 or localhost")


def _http_get_json(url: str, timeout: float = 5.0) -> dict:
    """GET a JSON document from a loopback URL (no proxies, bounded time)."""
    import requests  # local: the platform's server side never needs it otherwise

    _check_loopback_url(url)
    with requests.Session() as session:
        session.trust_env = False  # never through an HTTP(S)_PROXY from the environment
        response = session.get(url, timeout=timeout, headers={"Accept": _JSON})
        response.raise_for_status()
        return response.json()


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def _accepts(accept: str | None, media_type: str) -> bool:
    if not accept or not accept.strip():
        return True
    for part in accept.split(","):
        if _media_type(part) in (media_type, "*/*", "application/*", _JSON):
            return True
    return False


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_url(value) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# -------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class AuthRequest:
    """One OIDC authentication request the tool sent to /auth (or to `authorize`)."""

    time: float
    method: str  # "GET", "POST" or "CALL" (programmatic)
    params: dict
    accepted: bool
    error: str = ""  # the OAuth/OIDC error code when refused
    reason: str = ""
    redirect_uri: str | None = None
    id_token: str | None = None
    launch: "PreparedLaunch | None" = None


@dataclass(frozen=True)
class TokenRequest:
    """One request to the OAuth 2 token endpoint."""

    time: float
    params: dict
    status: int
    accepted: bool
    reason: str = ""
    client_id: str | None = None
    requested_scopes: tuple = ()
    granted_scopes: tuple = ()
    access_token: str | None = None
    assertion_claims: dict | None = None


@dataclass(frozen=True)
class ServiceRequest:
    """One request to an AGS or NRPS endpoint, whatever became of it."""

    time: float
    kind: str  # "lineitems", "scores", "results" or "memberships"
    method: str
    path: str
    headers: dict
    body: bytes
    status: int
    reason: str = ""
    client_id: str | None = None


@dataclass(frozen=True)
class ScoreRecord:
    """One POST to a line item's scores endpoint.

    outcome: "accepted", "duplicate" (same timestamp and body as the last accepted one),
    "stale" (older or same-timestamp-different-body), "invalid", "unauthorized", "forbidden",
    "not_found", "unsupported_media_type" or "failed" (a programmed failure; `reason` says which).
    """

    time: float
    context_id: str
    lineitem_id: str
    lineitem_url: str
    user_id: str | None
    score: dict | None
    headers: dict
    status: int
    outcome: str
    reason: str = ""

    @property
    def score_given(self):
        return (self.score or {}).get("scoreGiven")

    @property
    def score_maximum(self):
        return (self.score or {}).get("scoreMaximum")

    @property
    def timestamp(self):
        return (self.score or {}).get("timestamp")


@dataclass(frozen=True)
class DeepLinkRecord:
    """One deep linking response POSTed to the return URL."""

    time: float
    form: dict
    jwt: str | None
    accepted: bool
    reason: str = ""
    claims: dict | None = None
    content_items: list | None = None


@dataclass(frozen=True)
class RegistrationRecord:
    """One POST to the dynamic registration endpoint."""

    time: float
    headers: dict
    body: Any
    status: int
    accepted: bool
    reason: str = ""
    client_id: str | None = None
    deployment_id: str | None = None
    response: dict | None = None
    warnings: tuple = ()


@dataclass(frozen=True)
class BrowserEvent:
    """Something a platform page saw in the browser and reported to /events (or a /return visit).

    kind: "storage" (a postMessage to the platform-storage frame page), "registration_close"
    (the tool's org.imsglobal.lti.close), "window_message" (any other message on a
    registration page) or "return" (a visit to the launch_presentation return_url).
    """

    time: float
    kind: str
    origin: str | None
    data: Any
    response: Any = None
    accepted: bool = True
    reason: str = ""
    page: str = ""

    @property
    def subject(self) -> str | None:
        return self.data.get("subject") if isinstance(self.data, dict) else None


@dataclass
class ToolRegistration:
    """What the platform knows about a tool: its OAuth client and endpoints."""

    client_id: str
    login_url: str | None
    redirect_uris: list[str]
    jwks_url: str | None
    deployment_ids: list[str]
    target_link_uri: str | None = None
    allowed_scopes: frozenset = ALL_SERVICE_SCOPES
    jwks: dict | None = None  # a static key set, used instead of fetching jwks_url
    name: str = ""
    registration: dict | None = None  # the dynamic registration request, when registered that way

    @property
    def deployment_id(self) -> str:
        return self.deployment_ids[0]


@dataclass(frozen=True)
class LoginRequest:
    """A third-party-initiated login request: what the platform sends to the tool's login URL."""

    url: str
    method: str
    params: dict

    @property
    def full_url(self) -> str:
        """The URL with the params as query string (how a GET login is sent)."""
        return self.url + ("&" if "?" in self.url else "?") + urlencode(self.params)

    @property
    def path(self) -> str:
        """Path (and, for GET, query) of the login URL, for Django's test client."""
        parts = urlsplit(self.full_url if self.method == "GET" else self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class PreparedLaunch:
    """A launch set up on the platform, waiting for the tool's authentication request.

    The id_token is built from `token_kwargs` (see `Lti13Platform.id_token`) when the tool
    comes to /auth with these hints; every token issued for it is appended to `id_tokens`.
    """

    platform: "Lti13Platform" = field(repr=False)
    message_type: str
    login_hint: str
    lti_message_hint: str | None
    client_id: str
    deployment_id: str
    target_link_uri: str
    token_kwargs: dict
    storage_target: str | None = None
    id_tokens: list = field(default_factory=list)

    def login_request(self, method: str = "POST", *, storage_target: Any = _DEFAULT, **kwargs) -> LoginRequest:
        """The login initiation for this launch (see `Lti13Platform.login_request`)."""
        if storage_target is not _DEFAULT:
            self.storage_target = storage_target
        return self.platform.login_request(launch=self, method=method, storage_target=self.storage_target, **kwargs)

    def claims(self, nonce: str) -> dict:
        kwargs = {k: v for k, v in self.token_kwargs.items() if k not in _SIGN_KWARGS}
        kwargs.setdefault("nonce", nonce)
        return self.platform.id_token_claims(self.message_type, client_id=self.client_id,
                                             deployment_id=self.deployment_id,
                                             target_link_uri=self.target_link_uri, **kwargs)


class AuthorizationRefused(Exception):
    """The platform refused an authentication request.

    `error` is the OIDC/OAuth error code; `redirect_uri` is set when the refusal may be sent to
    the tool (the client and redirect_uri are registered), None when it must not.
    """

    def __init__(self, error: str, description: str, redirect_uri: str | None = None, state: str | None = None):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state


class DeepLinkError(Exception):
    """A deep linking response failed verification; the message says why."""


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    held: bool = False  # a "slow" reply: release() sends it early


def _json_reply(status: int, value, content_type: str = _JSON, headers: dict | None = None) -> _Reply:
    return _Reply(status, json.dumps(value).encode("utf-8"), content_type, dict(headers or {}))


def _oauth_error(status: int, error: str, description: str) -> _Reply:
    return _json_reply(status, {"error": error, "error_description": description},
                       headers={"Cache-Control": "no-store"})


class _Refused(Exception):
    """A service request is refused; carries the reply and a short outcome name."""

    def __init__(self, reply: _Reply, reason: str, outcome: str):
        super().__init__(reason)
        self.reply = reply
        self.reason = reason
        self.outcome = outcome


# ------------------------------------------------------------------------------ platform


class Lti13Platform:
    """A stand-in LTI 1.3 platform on loopback; see the module docstring.

    `issuer` defaults to the platform's own base URL (known once started).  `client_id` and
    `deployment_id` name the default tool, the one launches are for unless told otherwise
    (dynamic registration replaces them with the ones it assigns).  `host` is the address
    bound (127.0.0.0/8); `url_host` the host name used in URLs ("localhost" makes the
    platform another site than a tool on 127.0.0.1).  `signing_key` is the first key (default:
    a new one; generating an RSA key takes a noticeable fraction of a second).
    """

    def __init__(self, issuer: str | None = None, client_id: str = "numbas-lti-tool",
                 deployment_id: str = "deployment-1", *, host: str = "127.0.0.1", port: int = 0,
                 url_host: str | None = None, token_lifetime: int = 3600, id_token_lifetime: int = 300,
                 leeway: int = 60, timeout_delay: float = 3.0, slow_delay: float = 3.0,
                 stale_score_status: int = 409, require_subsecond_timestamps: bool = True,
                 strict_media_types: bool = True, registration_status: int = 200,
                 name: str = "Numbas Test LMS", product_family_code: str = "numbas-test-platform",
                 version: str = "1.0", signing_key: SigningKey | None = None):
        if not _is_loopback_host(host) or host == "localhost":
            raise ValueError("host must be an address in 127.0.0.0/8")
        if url_host is not None and not _is_loopback_host(url_host):
            raise ValueError("url_host must be localhost or an address in 127.0.0.0/8")
        self.host = host
        self.port = port
        self.url_host = url_host or host
        self._issuer = issuer
        self.client_id = client_id
        self.deployment_id = deployment_id
        #: Seconds an access token is valid.
        self.token_lifetime = token_lifetime
        #: Seconds from iat to exp of the id_tokens built.
        self.id_token_lifetime = id_token_lifetime
        #: Clock skew allowed when checking the tool's JWTs (exp, iat).
        self.leeway = leeway
        self.timeout_delay = timeout_delay
        self.slow_delay = slow_delay
        #: HTTP status for a score older than the last accepted one (AGS 3.4.9: not applied).
        self.stale_score_status = stale_score_status
        #: AGS 3.4.9: "Timestamp values MUST be formatted using ISO 8601 with a sub-second precision".
        self.require_subsecond_timestamps = require_subsecond_timestamps
        self.strict_media_types = strict_media_types
        self.registration_status = registration_status
        #: Extra audiences accepted in client assertions besides token_url.
        self.token_audiences: set[str] = set()
        #: Cache-Control max-age sent with /jwks (None: no header).
        self.jwks_max_age: int | None = None
        #: Replaces HTTP for fetching the tool's JWKS: a callable url -> key set dict.
        self.jwks_fetcher: Callable[[str], dict] | None = None
        #: The most items a page of lineitems/results/members holds (None: as the tool asks).
        self.max_page_size: int | None = None
        #: Whether dynamic registration makes the new tool the default one.
        self.registration_becomes_default = True
        #: Whether a registration token is required by /register once any has been issued.
        self.require_registration_token = True
        self.name = name
        self.product_family_code = product_family_code
        self.version = version
        self.guid = "platform-" + secrets.token_hex(6)

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._current_key = signing_key or SigningKey.generate()
        self._keys: list[SigningKey] = [self._current_key]
        self._jwks_fetches = 0
        self._tools: dict[str, ToolRegistration] = {}
        self._tool_jwks_cache: dict[str, dict] = {}
        self._tool_jwks_fetches = 0
        self._launches: list[PreparedLaunch] = []
        self._contexts: dict[str, dict] = {}
        self._resource_links: dict[str, set] = {}
        self._lineitems: dict[str, dict[str, dict]] = {}
        self._lineitem_ids = itertools.count(1)
        self._results: dict[tuple, dict] = {}  # (ctx, lineitem id, user) -> {"key": Decimal, "score": dict}
        self._members: dict[str, list[dict]] = {}
        self._access_tokens: dict[str, dict] = {}  # token -> {"client_id", "scopes", "expires"}
        self._tokens_issued = 0
        self._seen_jti: dict[str, float] = {}
        self._seen_dl_nonces: set[str] = set()
        self._dl_data_issued: list[Any] = []
        self._registration_tokens: dict[str, bool] = {}  # token -> used
        self._pages: dict[str, dict] = {}
        self._html_pages: dict[str, str] = {}
        self._failures: dict[str, list] = {}  # target -> [mode, remaining or None]

        self._auth_requests: list[AuthRequest] = []
        self._token_requests: list[TokenRequest] = []
        self._service_requests: list[ServiceRequest] = []
        self._scores: list[ScoreRecord] = []
        self._deep_link_responses: list[DeepLinkRecord] = []
        self._registrations: list[RegistrationRecord] = []
        self._browser_events: list[BrowserEvent] = []

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._released = threading.Event()

    # ------------------------------------------------------------------------ lifecycle

    def start(self) -> "Lti13Platform":
        if self._server is not None:
            raise RuntimeError("the platform is already running")
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.platform = self
        self._server = server
        self.port = server.server_address[1]
        # A short poll: shutdown() waits for the serving loop to notice, up to this long.
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"lti13-platform-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "Lti13Platform":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ----------------------------------------------------------------------------- URLs

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("the platform has no port yet: start() it first (or pass port=)")
        return f"http://{self.url_host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self._issuer or self.base_url

    @issuer.setter
    def issuer(self, value: str | None) -> None:
        self._issuer = value

    @property
    def origin(self) -> str:
        return self.base_url

    jwks_url = property(lambda self: self.base_url + "/jwks")
    auth_url = property(lambda self: self.base_url + "/auth")
    token_url = property(lambda self: self.base_url + "/token")
    registration_url = property(lambda self: self.base_url + "/register")
    openid_configuration_url = property(lambda self: self.base_url + "/.well-known/openid-configuration")
    deep_link_return_url = property(lambda self: self.base_url + "/deep_link/return")
    return_url = property(lambda self: self.base_url + "/return")
    events_url = property(lambda self: self.base_url + "/events")

    def context_url(self, context_id: str) -> str:
        return f"{self.base_url}/contexts/{quote(str(context_id), safe='')}"

    def lineitems_url(self, context_id: str) -> str:
        return self.context_url(context_id) + "/lineitems"

    def lineitem_url(self, context_id: str, lineitem_id: str) -> str:
        return f"{self.lineitems_url(context_id)}/{quote(str(lineitem_id), safe='')}"

    def scores_url(self, context_id: str, lineitem_id: str) -> str:
        return self.lineitem_url(context_id, lineitem_id) + "/scores"

    def results_url(self, context_id: str, lineitem_id: str) -> str:
        return self.lineitem_url(context_id, lineitem_id) + "/results"

    def memberships_url(self, context_id: str) -> str:
        return self.context_url(context_id) + "/memberships"

    def course_url(self, course_id: str) -> str:
        return f"{self.base_url}/course/{quote(str(course_id), safe='')}"

    # ----------------------------------------------------------------------------- keys

    @property
    def current_key(self) -> SigningKey:
        with self._lock:
            return self._current_key

    @property
    def keys(self) -> list[SigningKey]:
        """The published keys (the current one among them)."""
        with self._lock:
            return list(self._keys)

    def rotate_key(self, kid: str | None = None) -> SigningKey:
        """A new key signs from now on; the previous ones stay published until retired."""
        key = SigningKey.generate(kid)
        with self._lock:
            self._keys.append(key)
            self._current_key = key
        return key

    def retire_key(self, kid: str) -> None:
        """Stop publishing the key `kid` (not the current one)."""
        with self._lock:
            if self._current_key.kid == kid:
                raise ValueError("the current signing key cannot be retired; rotate_key() first")
            self._keys = [k for k in self._keys if k.kid != kid]

    def jwks(self) -> dict:
        with self._lock:
            return {"keys": [k.public_jwk() for k in self._keys]}

    @property
    def jwks_fetches(self) -> int:
        """How many times GET /jwks was answered."""
        with self._lock:
            return self._jwks_fetches

    # ---------------------------------------------------------------------------- tools

    def register_tool(self, login_url: str | None, redirect_uris: Iterable[str] | str, jwks_url: str | None = None,
                      *, client_id: str | None = None, deployment_ids: Iterable[str] | None = None,
                      target_link_uri: str | None = None, allowed_scopes: Iterable[str] = ALL_SERVICE_SCOPES,
                      jwks: dict | None = None, name: str = "", registration: dict | None = None) -> ToolRegistration:
        """Register (or replace) a tool's OAuth client; client_id defaults to the platform's default."""
        if isinstance(redirect_uris, str):
            redirect_uris = [redirect_uris]
        tool = ToolRegistration(
            client_id=client_id or self.client_id, login_url=login_url, redirect_uris=list(redirect_uris),
            jwks_url=jwks_url, deployment_ids=list(deployment_ids or [self.deployment_id]),
            target_link_uri=target_link_uri, allowed_scopes=frozenset(allowed_scopes), jwks=jwks, name=name,
            registration=registration)
        with self._lock:
            self._tools[tool.client_id] = tool
        return tool

    def tool(self, client_id: str | None = None) -> ToolRegistration:
        """The registration of `client_id` (default: the default tool); KeyError when unknown."""
        with self._lock:
            return self._tools[client_id or self.client_id]

    @property
    def tools(self) -> dict[str, ToolRegistration]:
        with self._lock:
            return dict(self._tools)

    @property
    def tool_jwks_fetches(self) -> int:
        """How many times the platform fetched a tool's JWKS."""
        with self._lock:
            return self._tool_jwks_fetches

    def forget_tool_keys(self) -> None:
        """Drop cached tool key sets (the next verification fetches again)."""
        with self._lock:
            self._tool_jwks_cache.clear()

    def _tool_jwks(self, tool: ToolRegistration, refresh: bool = False) -> dict:
        if tool.jwks is not None:
            return tool.jwks
        if not tool.jwks_url:
            raise JwtError(f"tool {tool.client_id!r} has no jwks_url")
        with self._lock:
            cached = self._tool_jwks_cache.get(tool.jwks_url)
        if cached is not None and not refresh:
            return cached
        try:
            fetched = (self.jwks_fetcher or _http_get_json)(tool.jwks_url)
        except Exception as error:  # network, HTTP status, JSON
            raise JwtError(f"could not fetch the tool's JWKS from {tool.jwks_url}: {error}") from None
        if not isinstance(fetched, dict) or not isinstance(fetched.get("keys"), list):
            raise JwtError("the tool's JWKS is not a {\"keys\": [...]} object")
        with self._lock:
            self._tool_jwks_fetches += 1
            self._tool_jwks_cache[tool.jwks_url] = fetched
        return fetched

    def _verify_tool_jwt(self, token: str) -> tuple[ToolRegistration, dict, dict]:
        """Signature check of a JWT the tool signed (iss = its client_id): (tool, header, claims)."""
        header, claims = decode_jwt_unverified(token)
        client_id = claims.get("iss")
        with self._lock:
            tool = self._tools.get(client_id) if isinstance(client_id, str) else None
        if tool is None:
            raise JwtError(f"iss {client_id!r} is not a registered client_id")
        if header.get("alg") != "RS256":
            raise JwtError(f"alg {header.get('alg')!r} is not accepted (only RS256)")
        jwks = self._tool_jwks(tool)
        if _select_jwk(jwks, header.get("kid")) is None and tool.jwks is None:
            jwks = self._tool_jwks(tool, refresh=True)  # the tool may have rotated its key
        verify_jwt_signature(token, jwks, algorithms=("RS256",))
        return tool, header, claims

    # ------------------------------------------------------------------------- contexts

    def add_context(self, context_id: str, title: str | None = None, label: str | None = None,
                    types: Iterable[str] = (CONTEXT_TYPE_COURSE_OFFERING,)) -> dict:
        """Create (or update) a context; returns its claim."""
        with self._lock:
            context = self._contexts.setdefault(str(context_id), {"id": str(context_id)})
            context.setdefault("label", label or str(context_id))
            context.setdefault("title", title or f"Course {context_id}")
            context.setdefault("type", list(types))
            if title is not None:
                context["title"] = title
            if label is not None:
                context["label"] = label
            self._lineitems.setdefault(str(context_id), {})
            self._members.setdefault(str(context_id), [])
            self._resource_links.setdefault(str(context_id), set())
            return dict(context)

    def add_resource_link(self, context_id: str, resource_link_id: str) -> None:
        self.add_context(context_id)
        with self._lock:
            self._resource_links[str(context_id)].add(str(resource_link_id))

    def add_lineitem(self, context_id: str, label: str, score_maximum: float = 100, *,
                     resource_link_id: str | None = None, resource_id: str | None = None, tag: str | None = None,
                     **extra) -> dict:
        """Create a line item; returns it (with its URL as "id")."""
        self.add_context(context_id)
        if resource_link_id is not None:
            self.add_resource_link(context_id, resource_link_id)
        with self._lock:
            lineitem_id = str(next(self._lineitem_ids))
            item = {"id": self.lineitem_url(context_id, lineitem_id), "label": label, "scoreMaximum": score_maximum}
            if resource_link_id is not None:
                item["resourceLinkId"] = resource_link_id
            if resource_id is not None:
                item["resourceId"] = resource_id
            if tag is not None:
                item["tag"] = tag
            item.update(extra)
            self._lineitems[str(context_id)][lineitem_id] = item
            return copy.deepcopy(item)

    def lineitems(self, context_id: str) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._lineitems.get(str(context_id), {}).values()))

    def lineitem(self, context_id: str, lineitem_id: str) -> dict | None:
        with self._lock:
            item = self._lineitems.get(str(context_id), {}).get(str(lineitem_id))
            return copy.deepcopy(item) if item is not None else None

    def lineitem_for_resource_link(self, context_id: str, resource_link_id: str, *, label: str | None = None,
                                   score_maximum: float = 100, create: bool = True) -> dict | None:
        """The (first) line item bound to a resource link, created when there is none."""
        with self._lock:
            for item in self._lineitems.get(str(context_id), {}).values():
                if item.get("resourceLinkId") == resource_link_id:
                    return copy.deepcopy(item)
        if not create:
            return None
        return self.add_lineitem(context_id, label or f"Grade for {resource_link_id}", score_maximum,
                                 resource_link_id=resource_link_id)

    def results(self, context_id: str, lineitem_id: str) -> dict[str, dict]:
        """user_id -> the last accepted score body for that line item."""
        with self._lock:
            return {user: copy.deepcopy(entry["score"]) for (ctx, li, user), entry in self._results.items()
                    if ctx == str(context_id) and li == str(lineitem_id)}

    def add_member(self, context_id: str, user_id: str, roles: Iterable[str] = (ROLE_LEARNER,), *,
                   name: str | None = None, given_name: str | None = None, family_name: str | None = None,
                   email: str | None = None, status: str = "Active", **extra) -> dict:
        """Add (or replace) a member of a context, as NRPS will list it."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"status must be one of {MEMBER_STATUSES}")
        member = {"user_id": str(user_id), "roles": list(roles), "status": status}
        for key, value in (("name", name), ("given_name", given_name), ("family_name", family_name),
                           ("email", email)):
            if value is not None:
                member[key] = value
        member.update(extra)
        self.add_context(context_id)
        with self._lock:
            members = self._members[str(context_id)]
            members[:] = [m for m in members if m["user_id"] != member["user_id"]] + [member]
        return dict(member)

    def set_members(self, context_id: str, members: Iterable[dict]) -> None:
        """Replace a context's members with dicts of `add_member`'s keyword arguments (user_id first)."""
        self.add_context(context_id)
        with self._lock:
            self._members[str(context_id)] = []
        for member in members:
            member = dict(member)
            self.add_member(context_id, member.pop("user_id"), member.pop("roles", (ROLE_LEARNER,)), **member)

    def members(self, context_id: str) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._members.get(str(context_id), []))

    def _member(self, context_id: str | None, user_id) -> dict | None:
        with self._lock:
            for member in self._members.get(str(context_id), []) if context_id is not None else []:
                if member["user_id"] == user_id:
                    return dict(member)
        return None

    # --------------------------------------------------------------------- claim helpers

    def ags_claim(self, context_id: str, lineitem: "str | dict | None" = None, *,
                  scopes: Iterable[str] = AGS_SCOPES, lineitems: bool = True) -> dict:
        """The AGS endpoint claim for a context; `lineitem` is a line item, its id or its URL."""
        self.add_context(context_id)
        claim: dict = {"scope": list(scopes)}
        if lineitems:
            claim["lineitems"] = self.lineitems_url(context_id)
        if lineitem is not None:
            if isinstance(lineitem, dict):
                claim["lineitem"] = lineitem["id"]
            elif _is_url(lineitem):
                claim["lineitem"] = lineitem
            else:
                claim["lineitem"] = self.lineitem_url(context_id, lineitem)
        return claim

    def nrps_claim(self, context_id: str) -> dict:
        self.add_context(context_id)
        return {"context_memberships_url": self.memberships_url(context_id), "service_versions": ["2.0"]}

    def deep_linking_settings(self, *, accept_types: Iterable[str] = ("ltiResourceLink",),
                              accept_presentation_document_targets: Iterable[str] = ("iframe", "window"),
                              accept_multiple: bool = True, auto_create: bool = True, accept_lineitem: bool = True,
                              data: Any = _DEFAULT, title: str | None = None, text: str | None = None,
                              accept_media_types: str | None = None, return_url: str | None = None) -> dict:
        """The deep_linking_settings claim; `data` defaults to a fresh random string (None: none)."""
        if data is _DEFAULT:
            data = "dl-" + secrets.token_hex(8)
        settings: dict = {
            "deep_link_return_url": return_url or self.deep_link_return_url,
            "accept_types": list(accept_types),
            "accept_presentation_document_targets": list(accept_presentation_document_targets),
            "accept_multiple": accept_multiple, "auto_create": auto_create, "accept_lineitem": accept_lineitem,
        }
        for key, value in (("data", data), ("title", title), ("text", text), ("accept_media_types", accept_media_types)):
            if value is not None:
                settings[key] = value
        if data is not None:
            with self._lock:
                self._dl_data_issued.append(data)
        return settings

    # -------------------------------------------------------------------------- id_token

    def id_token_claims(self, message_type: str = MSG_RESOURCE_LINK, *, sub: Any = "student-1",
                        roles: Any = _DEFAULT, nonce: str | None = None, client_id: str | None = None,
                        deployment_id: str | None = None, target_link_uri: str | None = None,
                        resource_link: Any = _DEFAULT, context: Any = _DEFAULT, name: Any = _DEFAULT,
                        given_name: Any = _DEFAULT, family_name: Any = _DEFAULT, email: Any = _DEFAULT,
                        locale: str | None = "en", custom: dict | None = None, ags: Any = None, nrps: Any = None,
                        deep_linking_settings: Any = None, lti1p1: dict | None = None,
                        launch_presentation: Any = _DEFAULT, tool_platform: Any = _DEFAULT,
                        extra: dict | None = None, iss: str | None = None, aud: Any = None, azp: Any = _DEFAULT,
                        iat_offset: int = 0, exp_offset: int | None = None, omit: Iterable[str] = ()) -> dict:
        """The claims of an id_token; see `id_token` and the module docstring."""
        client_id = client_id or self.client_id
        with self._lock:
            tool = self._tools.get(client_id)
        deployment_id = deployment_id or (tool.deployment_id if tool else self.deployment_id)
        if target_link_uri is None and tool is not None:
            target_link_uri = tool.target_link_uri or (tool.redirect_uris[0] if tool.redirect_uris else None)

        # Context and resource link.
        context_claim = None
        if context is _DEFAULT:
            context = "course-1"
        if isinstance(context, dict):
            context_claim = dict(context)
            self.add_context(context_claim["id"])
        elif context is not None:
            context_claim = self.add_context(str(context))
        context_id = context_claim["id"] if context_claim else None

        link_claim = None
        if resource_link is _DEFAULT:
            resource_link = {"id": "resource-link-1", "title": "Numbas exam"} if message_type == MSG_RESOURCE_LINK else None
        if isinstance(resource_link, dict):
            link_claim = dict(resource_link)
        elif resource_link is not None:
            link_claim = {"id": str(resource_link)}
        if link_claim is not None and context_id is not None and "id" in link_claim:
            self.add_resource_link(context_id, link_claim["id"])

        member = self._member(context_id, sub)
        if roles is _DEFAULT:
            roles = member["roles"] if member else [ROLE_LEARNER]

        def person(value, key, default):
            if value is not _DEFAULT:
                return value
            if member and key in member:
                return member[key]
            return default

        now = int(time.time())
        claims: dict = {
            "iss": iss or self.issuer,
            "sub": sub,
            "aud": aud if aud is not None else client_id,
            "iat": now + iat_offset,
            "exp": now + (exp_offset if exp_offset is not None else self.id_token_lifetime),
            "nonce": nonce if nonce is not None else "nonce-" + secrets.token_hex(8),
        }
        if azp is _DEFAULT:
            azp = client_id if isinstance(claims["aud"], list) else None
        if azp is not None:
            claims["azp"] = azp
        for key, value in (("name", person(name, "name", f"User {sub}")),
                           ("given_name", person(given_name, "given_name", "User")),
                           ("family_name", person(family_name, "family_name", str(sub))),
                           ("email", person(email, "email", f"{sub}@example.com")), ("locale", locale)):
            if value is not None:
                claims[key] = value
        claims.update({
            CLAIM_MESSAGE_TYPE: message_type,
            CLAIM_VERSION: LTI_VERSION,
            CLAIM_DEPLOYMENT_ID: deployment_id,
            CLAIM_ROLES: list(roles),
        })
        if target_link_uri is not None:
            claims[CLAIM_TARGET_LINK_URI] = target_link_uri
        if link_claim is not None:
            claims[CLAIM_RESOURCE_LINK] = link_claim
        if context_claim is not None:
            claims[CLAIM_CONTEXT] = context_claim
        if tool_platform is _DEFAULT:
            tool_platform = {"guid": self.guid, "name": self.name, "product_family_code": self.product_family_code,
                             "version": self.version}
        if tool_platform is not None:
            claims[CLAIM_TOOL_PLATFORM] = tool_platform
        if launch_presentation is _DEFAULT:
            launch_presentation = {"document_target": "iframe", "return_url": self.return_url}
            if locale:
                launch_presentation["locale"] = locale
        if launch_presentation is not None:
            claims[CLAIM_LAUNCH_PRESENTATION] = launch_presentation
        if custom is not None:
            claims[CLAIM_CUSTOM] = dict(custom)

        if ags is True:
            if context_id is None:
                raise ValueError("ags=True needs a context")
            lineitem = None
            if link_claim is not None:
                lineitem = self.lineitem_for_resource_link(context_id, link_claim["id"],
                                                           label=link_claim.get("title"))
            ags = self.ags_claim(context_id, lineitem)
        if ags:
            claims[CLAIM_AGS] = ags
        if nrps is True:
            if context_id is None:
                raise ValueError("nrps=True needs a context")
            nrps = self.nrps_claim(context_id)
        if nrps:
            claims[CLAIM_NRPS] = nrps
        if deep_linking_settings is True or (deep_linking_settings is None and message_type == MSG_DEEP_LINKING):
            deep_linking_settings = self.deep_linking_settings()
        if deep_linking_settings:
            claims[CLAIM_DL_SETTINGS] = deep_linking_settings

        claims.update(extra or {})
        for name_ in omit:
            claims.pop(CLAIM_ALIASES.get(name_, name_), None)
        if lti1p1 is not None:
            migration = dict(lti1p1)
            secret = migration.pop("secret", None)
            if secret is not None:
                migration["oauth_consumer_key_sign"] = lti1p1_sign_for_claims(
                    claims, migration.get("oauth_consumer_key", ""), secret)
            claims[CLAIM_LTI1P1] = migration
        return claims

    def sign(self, claims: dict, *, alg: str = "RS256", kid: Any = _DEFAULT, key: Any = None,
             headers: dict | None = None, hs_secret: bytes | str | None = None) -> str:
        """Sign claims as the platform (by default with the current key and its kid).

        `key` signs with another key but keeps the current kid unless `kid` is given; HMAC
        algs use `hs_secret`, by default the current public key's PEM (the key confusion attack).
        """
        current = self.current_key
        if kid is _DEFAULT:
            kid = current.kid
        if alg in _HMAC_HASHES and hs_secret is None:
            hs_secret = current.public_pem()
        return encode_jwt(claims, key if key is not None else current, alg=alg, kid=kid, headers=headers,
                          secret=hs_secret)

    def id_token(self, message_type: str = MSG_RESOURCE_LINK, *, alg: str = "RS256", kid: Any = _DEFAULT,
                 key: Any = None, headers: dict | None = None, hs_secret: bytes | str | None = None,
                 **claim_kwargs) -> str:
        """A signed id_token; claim_kwargs as for `id_token_claims`."""
        claims = self.id_token_claims(message_type, **claim_kwargs)
        return self.sign(claims, alg=alg, kid=kid, key=key, headers=headers, hs_secret=hs_secret)

    # ------------------------------------------------------------------- OIDC launches

    def prepare_launch(self, message_type: str = MSG_RESOURCE_LINK, *, login_hint: str | None = None,
                       lti_message_hint: Any = _DEFAULT, client_id: str | None = None,
                       deployment_id: str | None = None, target_link_uri: str | None = None,
                       storage_target: str | None = None, **token_kwargs) -> PreparedLaunch:
        """Set up a launch: the id_token the tool will get for these hints (see module docstring)."""
        client_id = client_id or self.client_id
        with self._lock:
            tool = self._tools.get(client_id)
        if tool is None:
            raise KeyError(f"no tool registered with client_id {client_id!r}: register_tool() first")
        if target_link_uri is None:
            target_link_uri = tool.target_link_uri or tool.redirect_uris[0]
        if lti_message_hint is _DEFAULT:
            lti_message_hint = "msg-" + secrets.token_hex(8)
        sub = token_kwargs.get("sub", "student-1")
        launch = PreparedLaunch(
            platform=self, message_type=message_type, login_hint=str(login_hint or sub),
            lti_message_hint=lti_message_hint, client_id=client_id,
            deployment_id=deployment_id or tool.deployment_id, target_link_uri=target_link_uri,
            token_kwargs=dict(token_kwargs), storage_target=storage_target)
        with self._lock:
            self._launches.append(launch)
        return launch

    @property
    def launches(self) -> list[PreparedLaunch]:
        with self._lock:
            return list(self._launches)

    def login_request(self, target_link_uri: str | None = None, login_hint: str | None = None,
                      lti_message_hint: str | None = None, *, launch: PreparedLaunch | None = None,
                      method: str = "POST", storage_target: str | None = None, client_id: str | None = None,
                      deployment_id: str | None = None, omit: Iterable[str] = (),
                      extra: dict | None = None) -> LoginRequest:
        """The third-party-initiated login request to send to the tool's login URL (Core 5.1.1.1)."""
        method = method.upper()
        if method not in ("GET", "POST"):
            raise ValueError("method must be GET or POST")
        if launch is not None:
            target_link_uri = target_link_uri or launch.target_link_uri
            login_hint = login_hint or launch.login_hint
            lti_message_hint = lti_message_hint if lti_message_hint is not None else launch.lti_message_hint
            client_id = client_id or launch.client_id
            deployment_id = deployment_id or launch.deployment_id
            if storage_target is not None:
                launch.storage_target = storage_target
        tool = self.tool(client_id)
        if not tool.login_url:
            raise ValueError(f"tool {tool.client_id!r} has no login_url")
        if login_hint is None:
            raise ValueError("login_hint is required")
        params = {"iss": self.issuer, "login_hint": login_hint,
                  "target_link_uri": target_link_uri or tool.target_link_uri or tool.redirect_uris[0],
                  "client_id": tool.client_id, "lti_deployment_id": deployment_id or tool.deployment_id}
        if lti_message_hint is not None:
            params["lti_message_hint"] = lti_message_hint
        if storage_target is not None:
            params["lti_storage_target"] = storage_target
        for key in omit:
            params.pop(key, None)
        params.update(extra or {})
        return LoginRequest(tool.login_url, method, params)

    def authorize(self, params: dict) -> tuple[str, dict]:
        """Handle an authentication request's parameters: (redirect_uri, form fields) or AuthorizationRefused."""
        return self._authorize(dict(params), "CALL")

    def authorize_url(self, url: str) -> tuple[str, dict]:
        """`authorize` with the query of a URL (e.g. the Location the tool's login answered with)."""
        return self.authorize(dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)))

    def _find_launch(self, login_hint, lti_message_hint) -> PreparedLaunch | None:
        with self._lock:
            for launch in reversed(self._launches):
                if launch.login_hint == login_hint and launch.lti_message_hint == (lti_message_hint or None):
                    return launch
        return None

    def _authorize(self, params: dict, method: str) -> tuple[str, dict]:
        redirect_uri = params.get("redirect_uri")
        state = params.get("state")
        trusted_redirect: str | None = None
        launch = None
        try:
            client_id = params.get("client_id")
            with self._lock:
                tool = self._tools.get(client_id) if client_id else None
            if tool is None:
                raise AuthorizationRefused("unauthorized_client", f"unknown client_id {client_id!r}")
            if redirect_uri not in tool.redirect_uris:
                raise AuthorizationRefused("invalid_request", f"redirect_uri {redirect_uri!r} is not registered")
            trusted_redirect = redirect_uri
            if "openid" not in (params.get("scope") or "").split():
                raise AuthorizationRefused("invalid_scope", "scope must be openid")
            if params.get("response_type") != "id_token":
                raise AuthorizationRefused("unsupported_response_type", "response_type must be id_token")
            if params.get("response_mode") != "form_post":
                raise AuthorizationRefused("invalid_request", "response_mode must be form_post")
            if params.get("prompt") != "none":
                raise AuthorizationRefused("invalid_request", "prompt must be none")
            if not params.get("nonce"):
                raise AuthorizationRefused("invalid_request", "nonce is missing")
            if not state:
                raise AuthorizationRefused("invalid_request", "state is missing")
            if not params.get("login_hint"):
                raise AuthorizationRefused("invalid_request", "login_hint is missing")
            launch = self._find_launch(params["login_hint"], params.get("lti_message_hint"))
            if launch is None:
                raise AuthorizationRefused("login_required", "login_hint/lti_message_hint were not issued by this "
                                           "platform (or do not belong together)")
            if launch.client_id != client_id:
                raise AuthorizationRefused("unauthorized_client", "the launch was prepared for another client_id")
            token = self.sign(launch.claims(params["nonce"]), **self._sign_kwargs(launch.token_kwargs))
        except AuthorizationRefused as refused:
            refused.redirect_uri = trusted_redirect
            refused.state = state
            self._record_auth(method, params, False, refused.error, refused.description, trusted_redirect, None, launch)
            raise
        fields = {"id_token": token, "state": state}
        if launch.storage_target:
            fields["lti_storage_target"] = launch.storage_target
        with self._lock:
            launch.id_tokens.append(token)
        self._record_auth(method, params, True, "", "", redirect_uri, token, launch)
        return redirect_uri, fields

    @staticmethod
    def _sign_kwargs(token_kwargs: dict) -> dict:
        return {k: token_kwargs[k] for k in _SIGN_KWARGS if k in token_kwargs}

    def _record_auth(self, method, params, accepted, error, reason, redirect_uri, token, launch) -> None:
        entry = AuthRequest(time.time(), method, dict(params), accepted, error, reason, redirect_uri, token, launch)
        with self._changed:
            self._auth_requests.append(entry)
            self._changed.notify_all()

    # ------------------------------------------------------------------- token endpoint

    def token_response(self, form: dict) -> tuple[int, dict]:
        """Handle a token request's form fields: (HTTP status, JSON body)."""
        reply = self._token(dict(form), form_encoded=True)
        return reply.status, json.loads(reply.body)

    def _token(self, params: dict, form_encoded: bool) -> _Reply:
        requested = tuple((params.get("scope") or "").split())
        state = {"client_id": None, "claims": None}

        def refuse(status, error, description) -> _Reply:
            self._record_token(params, status, False, f"{error}: {description}", state["client_id"], requested, (),
                               None, state["claims"])
            return _oauth_error(status, error, description)

        if not form_encoded:
            return refuse(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        if params.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if params.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return refuse(400, "invalid_request", f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}")
        assertion = params.get("client_assertion")
        if not assertion:
            return refuse(400, "invalid_request", "client_assertion is missing")
        try:
            tool, _, claims = self._verify_tool_jwt(assertion)
        except JwtError as error:
            return refuse(401, "invalid_client", str(error))
        state["client_id"], state["claims"] = tool.client_id, claims
        now = time.time()
        audiences = claims.get("aud")
        audiences = audiences if isinstance(audiences, list) else [audiences]
        if claims.get("sub") != tool.client_id:
            return refuse(401, "invalid_client", "sub must equal iss (the client_id)")
        if not ({self.token_url} | self.token_audiences) & set(a for a in audiences if isinstance(a, str)):
            return refuse(401, "invalid_client", f"aud {claims.get('aud')!r} does not name the token endpoint "
                          f"{self.token_url}")
        if not _is_number(claims.get("exp")):
            return refuse(401, "invalid_client", "exp is missing")
        if claims["exp"] < now - self.leeway:
            return refuse(401, "invalid_client", "the client assertion has expired")
        if not _is_number(claims.get("iat")):
            return refuse(401, "invalid_client", "iat is missing")
        if claims["iat"] > now + self.leeway:
            return refuse(401, "invalid_client", "iat is in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            return refuse(401, "invalid_client", "jti is missing")
        with self._lock:
            self._seen_jti = {k: t for k, t in self._seen_jti.items() if t > now - 2 * self.leeway} \
                if len(self._seen_jti) > 10_000 else self._seen_jti
            replayed = (tool.client_id, jti) in self._seen_jti
            if not replayed:
                self._seen_jti[(tool.client_id, jti)] = float(claims["exp"])
        if replayed:
            return refuse(401, "invalid_client", "jti has been used before")
        granted = tuple(s for s in dict.fromkeys(requested) if s in tool.allowed_scopes)
        if not granted:
            return refuse(400, "invalid_scope", f"none of the requested scopes {list(requested)} is allowed")
        failure = self._next_failure("token")
        if failure is not None and failure != "slow":
            reply = self._failure_reply(failure, None)
            self._record_token(params, reply.status, False, f"programmed failure {failure}", tool.client_id,
                               requested, (), None, claims)
            return reply
        access_token = "at-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[access_token] = {"client_id": tool.client_id, "scopes": frozenset(granted),
                                                 "expires": now + self.token_lifetime}
            self._tokens_issued += 1
        self._record_token(params, 200, True, "", tool.client_id, requested, granted, access_token, claims)
        reply = _json_reply(200, {"access_token": access_token, "token_type": "Bearer",
                                  "expires_in": self.token_lifetime, "scope": " ".join(granted)},
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
        if failure == "slow":
            reply.delay, reply.held = self.slow_delay, True
        return reply

    def _record_token(self, params, status, accepted, reason, client_id, requested, granted, token, claims) -> None:
        entry = TokenRequest(time.time(), dict(params), status, accepted, reason, client_id, tuple(requested),
                             tuple(granted), token, claims)
        with self._changed:
            self._token_requests.append(entry)
            self._changed.notify_all()

    @property
    def tokens_issued(self) -> int:
        with self._lock:
            return self._tokens_issued

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired."""
        with self._lock:
            for info in self._access_tokens.values():
                info["expires"] = 0

    def issue_access_token(self, scopes: Iterable[str] = ALL_SERVICE_SCOPES, client_id: str | None = None) -> str:
        """An access token without the OAuth dance (for tests of the services themselves)."""
        token = "at-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[token] = {"client_id": client_id or self.client_id, "scopes": frozenset(scopes),
                                          "expires": time.time() + self.token_lifetime}
        return token

    # ------------------------------------------------------------- programmed failures

    def fail(self, mode: str, count: int | None = None, *, on: "str | Iterable[str]" = "scores") -> None:
        """Answer the next `count` requests (None: all until recover()) of the `on` endpoints in `mode`."""
        if mode not in FAIL_MODES:
            raise ValueError(f"unknown fail mode {mode!r}; expected one of {FAIL_MODES}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None)")
        targets = self._fail_targets(on)
        with self._lock:
            for target in targets:
                self._failures[target] = [mode, count]

    def recover(self, on: "str | Iterable[str]" = "all") -> None:
        """Stop failing requests on purpose (and release held answers)."""
        with self._lock:
            for target in self._fail_targets(on):
                self._failures.pop(target, None)

    def release(self) -> None:
        """Send the answers held back by the "slow" mode now (a later "slow" failure holds again)."""
        self._released.set()

    @staticmethod
    def _fail_targets(on) -> tuple[str, ...]:
        names = [on] if isinstance(on, str) else list(on)
        targets: list[str] = []
        for name in names:
            if name == "all":
                targets += FAIL_TARGETS
            elif name == "services":
                targets += _SERVICE_TARGETS
            elif name in FAIL_TARGETS:
                targets.append(name)
            else:
                raise ValueError(f"unknown failure target {name!r}; expected {FAIL_TARGETS}, 'services' or 'all'")
        return tuple(dict.fromkeys(targets))

    def _next_failure(self, target: str) -> str | None:
        with self._lock:
            programme = self._failures.get(target)
            if programme is None:
                return None
            mode, remaining = programme
            if remaining is not None:
                remaining -= 1
                if remaining <= 0:
                    del self._failures[target]
                else:
                    programme[1] = remaining
            if mode == "slow":
                self._released.clear()
            return mode

    def _failure_reply(self, mode: str, access_token: str | None) -> _Reply:
        if mode == "500":
            return _json_reply(500, {"error": "server_error", "error_description": "programmed 500"})
        if mode == "503":
            return _json_reply(503, {"error": "temporarily_unavailable"}, headers={"Retry-After": "1"})
        if mode == "429":
            return _json_reply(429, {"error": "too_many_requests"}, headers={"Retry-After": "1"})
        if mode == "401":
            if access_token is not None:
                with self._lock:
                    self._access_tokens.pop(access_token, None)
            return _json_reply(401, {"error": "invalid_token", "error_description": "the access token was revoked"},
                               headers={"WWW-Authenticate": 'Bearer realm="lti13-platform", error="invalid_token"'})
        if mode == "timeout":
            return _Reply(503, b'{"error": "temporarily_unavailable"}', _JSON, {"Retry-After": "1"},
                          delay=self.timeout_delay)
        return _Reply(200)  # "slow": the caller handles the request and holds the answer

    # ------------------------------------------------------------------ service requests

    def _bearer(self, headers, any_of_scopes: Iterable[str]) -> tuple[str, dict]:
        """(token, info) of a valid access token with one of the scopes, or _Refused (401/403)."""
        authorization = headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        challenge = 'Bearer realm="lti13-platform"'
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused(_json_reply(401, {"error": "invalid_request", "error_description": "no Bearer token"},
                                       headers={"WWW-Authenticate": challenge}), "no Bearer token", "unauthorized")
        token = token.strip()
        with self._lock:
            info = self._access_tokens.get(token)
            info = dict(info) if info else None
        if info is None or info["expires"] <= time.time():
            reason = "unknown access token" if info is None else "expired access token"
            raise _Refused(_json_reply(401, {"error": "invalid_token", "error_description": reason},
                                       headers={"WWW-Authenticate": challenge + ', error="invalid_token"'}),
                           reason, "unauthorized")
        if not set(any_of_scopes) & info["scopes"]:
            reason = f"the token lacks the scope ({' or '.join(any_of_scopes)})"
            raise _Refused(_json_reply(403, {"error": "insufficient_scope", "error_description": reason},
                                       headers={"WWW-Authenticate": challenge + ', error="insufficient_scope"'}),
                           reason, "forbidden")
        return token, info

    def _record_service(self, kind, method, path, headers, body, status, reason, client_id) -> None:
        entry = ServiceRequest(time.time(), kind, method, path, dict(headers), body, status, reason, client_id)
        with self._changed:
            self._service_requests.append(entry)
            self._changed.notify_all()

    def _check_content_type(self, headers, media_type: str) -> None:
        if self.strict_media_types and _media_type(headers.get("Content-Type")) != media_type:
            raise _Refused(_json_reply(415, {"error": "unsupported_media_type",
                                             "error_description": f"Content-Type must be {media_type}"}),
                           f"Content-Type {headers.get('Content-Type')!r} is not {media_type}", "unsupported_media_type")

    def _check_accept(self, headers, media_type: str) -> None:
        if self.strict_media_types and not _accepts(headers.get("Accept"), media_type):
            raise _Refused(_json_reply(406, {"error": "not_acceptable",
                                             "error_description": f"this answers {media_type}"}),
                           f"Accept {headers.get('Accept')!r} excludes {media_type}", "not_acceptable")

    @staticmethod
    def _json_body(body: bytes) -> Any:
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _Refused(_json_reply(400, {"error": "invalid_request", "error_description": "malformed JSON"}),
                           "malformed JSON body", "invalid") from None

    def _page_link(self, state: dict, offset: int, limit: int | None, total: int) -> dict:
        """The Link header to the next page, if there is one."""
        if limit is None or offset + limit >= total:
            return {}
        token = secrets.token_hex(12)  # lowercase hex: survives a client lowercasing the header
        with self._lock:
            self._pages[token] = dict(state, offset=offset + limit, limit=limit)
        return {"Link": f'<{self.base_url}/pages/{token}>; rel="next"'}

    def _limit(self, query: dict) -> int | None:
        limit = query.get("limit")
        if limit is None or limit == "":
            limit = None
        else:
            try:
                limit = int(limit)
            except ValueError:
                raise _Refused(_json_reply(400, {"error": "invalid_request", "error_description": "bad limit"}),
                               f"bad limit {limit!r}", "invalid") from None
            if limit < 1:
                raise _Refused(_json_reply(400, {"error": "invalid_request", "error_description": "bad limit"}),
                               f"bad limit {limit}", "invalid")
        if self.max_page_size is not None:
            limit = min(limit or self.max_page_size, self.max_page_size)
        return limit

    def _service(self, kind: str, method: str, path: str, headers, body: bytes, ctx: str, lineitem_id: str | None,
                 query: dict, offset: int = 0) -> _Reply:
        """Handle an AGS/NRPS request; records it whatever happens."""
        client_id = None
        score_user = None
        score_body = None
        try:
            if kind == "memberships":
                allowed, scopes = {"GET"}, (SCOPE_NRPS,)
            elif kind == "scores":
                allowed, scopes = {"POST"}, (SCOPE_SCORE,)
            elif kind == "results":
                allowed, scopes = {"GET"}, (SCOPE_RESULT_READONLY,)
            elif lineitem_id is None:
                allowed = {"GET", "POST"}
                scopes = (SCOPE_LINEITEM,) if method == "POST" else (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
            else:
                allowed = {"GET", "PUT", "DELETE"}
                scopes = (SCOPE_LINEITEM,) if method != "GET" else (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
            if method not in allowed:
                raise _Refused(_Reply(405, b"Method Not Allowed\n", headers={"Allow": ", ".join(sorted(allowed))}),
                               f"{method} is not allowed here", "invalid")
            token, info = self._bearer(headers, scopes)
            client_id = info["client_id"]
            if kind == "scores":
                # Parsed early only so that the record names the user even when refused below.
                try:
                    score_body = json.loads(body.decode("utf-8"))
                    score_user = score_body.get("userId") if isinstance(score_body, dict) else None
                except (UnicodeDecodeError, ValueError):
                    score_body = None
            failure = self._next_failure(kind)
            delay, held = 0.0, False
            if failure is not None and failure != "slow":
                raise _Refused(self._failure_reply(failure, token), f"programmed failure {failure}", "failed")
            if failure == "slow":
                delay, held = self.slow_delay, True
            with self._lock:
                known_context = ctx in self._contexts
            if not known_context:
                raise _Refused(_json_reply(404, {"error": "not_found", "error_description": "no such context"}),
                               f"unknown context {ctx!r}", "not_found")
            if kind == "memberships":
                reply, reason = self._memberships(headers, ctx, query, offset, path), ""
            else:
                reply, reason = self._ags(kind, method, headers, body, ctx, lineitem_id, query, offset, path,
                                          client_id)
            reply.delay, reply.held = delay, held
        except _Refused as refused:
            self._record_service(kind, method, path, headers, body, refused.reply.status, refused.reason, client_id)
            if kind == "scores":
                self._record_score(ctx, lineitem_id, score_user, score_body, headers, refused.reply.status,
                                   refused.outcome, refused.reason)
            return refused.reply
        self._record_service(kind, method, path, headers, body, reply.status, reason, client_id)
        return reply

    # ----------------------------------------------------------------------------- AGS

    def _ags(self, kind, method, headers, body, ctx, lineitem_id, query, offset, path, client_id):
        not_found = _Refused(_json_reply(404, {"error": "not_found", "error_description": "no such line item"}),
                             f"unknown line item {lineitem_id!r}", "not_found")
        if lineitem_id is not None and self.lineitem(ctx, lineitem_id) is None:
            raise not_found
        if kind == "scores":
            return self._post_score(headers, body, ctx, lineitem_id)
        if kind == "results":
            self._check_accept(headers, MEDIA_RESULT_CONTAINER)
            limit = self._limit(query)
            item = self.lineitem(ctx, lineitem_id)
            results = []
            for user, score in sorted(self.results(ctx, lineitem_id).items()):
                if query.get("user_id") not in (None, user):
                    continue
                result = {"id": f"{item['id']}/results/{quote(user, safe='')}", "scoreOf": item["id"], "userId": user,
                          "resultMaximum": item["scoreMaximum"]}
                if _is_number(score.get("scoreGiven")) and _is_number(score.get("scoreMaximum")):
                    result["resultScore"] = score["scoreGiven"] / score["scoreMaximum"] * item["scoreMaximum"]
                if score.get("comment") is not None:
                    result["comment"] = score["comment"]
                results.append(result)
            page = results[offset:offset + limit] if limit else results[offset:]
            link = self._page_link({"kind": "results", "ctx": ctx, "lineitem_id": lineitem_id, "query": query},
                                   offset, limit, len(results))
            return _json_reply(200, page, MEDIA_RESULT_CONTAINER, link), ""
        if lineitem_id is None and method == "GET":
            self._check_accept(headers, MEDIA_LINEITEM_CONTAINER)
            limit = self._limit(query)
            items = [i for i in self.lineitems(ctx)
                     if all(query.get(param) is None or i.get(key) == query[param]
                            for param, key in (("resource_link_id", "resourceLinkId"), ("resource_id", "resourceId"),
                                               ("tag", "tag")))]
            page = items[offset:offset + limit] if limit else items[offset:]
            link = self._page_link({"kind": "lineitems", "ctx": ctx, "lineitem_id": None, "query": query},
                                   offset, limit, len(items))
            return _json_reply(200, page, MEDIA_LINEITEM_CONTAINER, link), ""
        if lineitem_id is None:  # POST: create
            self._check_content_type(headers, MEDIA_LINEITEM)
            item = self._validated_lineitem(self._json_body(body), ctx, None)
            created = self.add_lineitem(ctx, item.pop("label"), item.pop("scoreMaximum"), **item)
            return _json_reply(201, created, MEDIA_LINEITEM, {"Location": created["id"]}), ""
        if method == "GET":
            self._check_accept(headers, MEDIA_LINEITEM)
            return _json_reply(200, self.lineitem(ctx, lineitem_id), MEDIA_LINEITEM), ""
        if method == "PUT":
            self._check_content_type(headers, MEDIA_LINEITEM)
            current = self.lineitem(ctx, lineitem_id)
            item = self._validated_lineitem(self._json_body(body), ctx, current)
            item["id"] = current["id"]
            if "resourceLinkId" in current:
                item["resourceLinkId"] = current["resourceLinkId"]
            with self._lock:
                self._lineitems[ctx][lineitem_id] = item
            return _json_reply(200, copy.deepcopy(item), MEDIA_LINEITEM), ""
        # DELETE
        with self._lock:
            self._lineitems[ctx].pop(lineitem_id, None)
            for key in [k for k in self._results if k[0] == ctx and k[1] == lineitem_id]:
                del self._results[key]
        return _Reply(204), ""

    def _validated_lineitem(self, item, ctx: str, current: dict | None) -> dict:
        """AGS 3.2.5-3.2.14 checks of a POSTed/PUT line item; a copy without "id"."""
        def bad(reason, status=400):
            return _Refused(_json_reply(status, {"error": "invalid_request", "error_description": reason}), reason,
                            "invalid" if status == 400 else "not_found")

        if not isinstance(item, dict):
            raise bad("a line item must be a JSON object")
        item = copy.deepcopy(item)
        if not isinstance(item.get("label"), str) or not item["label"].strip():
            raise bad("label must be a non-blank string")
        if not _is_number(item.get("scoreMaximum")) or item["scoreMaximum"] <= 0:
            raise bad("scoreMaximum must be a number greater than 0")
        for key in ("resourceId", "tag"):
            if item.get(key) is not None and not isinstance(item[key], str):
                raise bad(f"{key} must be a string")
        for key in ("startDateTime", "endDateTime"):
            if item.get(key) not in (None, ""):
                try:
                    parse_iso8601(item[key])
                except ValueError as error:
                    raise bad(f"{key}: {error}") from None
        if "gradesReleased" in item and not isinstance(item["gradesReleased"], bool):
            raise bad("gradesReleased must be a boolean")
        given_id = item.pop("id", None)
        if current is not None:
            if given_id is not None and given_id != current["id"]:
                raise bad("id cannot be changed")
            if "resourceLinkId" in item and item["resourceLinkId"] != current.get("resourceLinkId"):
                raise bad("resourceLinkId cannot be changed")
        elif item.get("resourceLinkId") is not None:
            with self._lock:
                known = str(item["resourceLinkId"]) in self._resource_links.get(ctx, set())
            if not known:
                raise bad(f"resource link {item['resourceLinkId']!r} does not exist in this context", 404)
        return item

    def _post_score(self, headers, body, ctx, lineitem_id):
        """AGS 3.4: validate, apply (unless older than the last one) and record a score."""
        self._check_content_type(headers, MEDIA_SCORE)
        score = self._json_body(body)

        def bad(reason):
            return _Refused(_json_reply(400, {"error": "invalid_request", "error_description": reason}), reason,
                            "invalid")

        if not isinstance(score, dict):
            raise bad("a score must be a JSON object")
        user = score.get("userId")
        if not isinstance(user, str) or not user:
            raise bad("userId must be a non-empty string")
        if "scoringUserId" in score and (not isinstance(score["scoringUserId"], str) or not score["scoringUserId"]):
            raise bad("scoringUserId, when present, must be a non-empty string")
        if score.get("activityProgress") not in ACTIVITY_PROGRESS:
            raise bad(f"activityProgress must be one of {', '.join(ACTIVITY_PROGRESS)}")
        if score.get("gradingProgress") not in GRADING_PROGRESS:
            raise bad(f"gradingProgress must be one of {', '.join(GRADING_PROGRESS)}")
        given = score.get("scoreGiven")
        maximum = score.get("scoreMaximum")
        if given is not None:
            if not _is_number(given) or given < 0:
                raise bad("scoreGiven must be a number of at least 0")
            if maximum is None:
                raise bad("scoreMaximum must be present when scoreGiven is")
        if maximum is not None and (not _is_number(maximum) or maximum <= 0):
            raise bad("scoreMaximum must be a number greater than 0")
        if score.get("comment") is not None and not isinstance(score["comment"], str):
            raise bad("comment must be a string")
        try:
            key = parse_iso8601(score.get("timestamp"), require_fraction=self.require_subsecond_timestamps)
        except ValueError as error:
            raise bad(f"timestamp {score.get('timestamp')!r}: {error}") from None
        submission = score.get("submission")
        if submission is not None:
            if not isinstance(submission, dict):
                raise bad("submission must be an object")
            for field_ in ("startedAt", "submittedAt"):
                if submission.get(field_) is not None:
                    try:
                        parse_iso8601(submission[field_])
                    except ValueError as error:
                        raise bad(f"submission.{field_}: {error}") from None
        with self._lock:
            last = self._results.get((ctx, lineitem_id, user))
            if last is not None and key < last["key"]:
                stale = f"timestamp {score['timestamp']} is older than the last score's {last['score']['timestamp']}"
            elif last is not None and key == last["key"] and last["score"] != score:
                stale = f"another score with the same timestamp {score['timestamp']} was already accepted"
            else:
                stale = None
            duplicate = last is not None and key == last["key"] and last["score"] == score
            if stale is None and not duplicate:
                self._results[(ctx, lineitem_id, user)] = {"key": key, "score": copy.deepcopy(score)}
        if stale is not None:
            raise _Refused(_json_reply(self.stale_score_status, {"error": "conflict", "error_description": stale}),
                           stale, "stale")
        result_url = f"{self.results_url(ctx, lineitem_id)}?user_id={quote(user, safe='')}"
        outcome = "duplicate" if duplicate else "accepted"
        self._record_score(ctx, lineitem_id, user, score, headers, 200, outcome, "")
        return _json_reply(200, {"resultUrl": result_url}), ""

    def _record_score(self, ctx, lineitem_id, user, score, headers, status, outcome, reason) -> None:
        url = self.lineitem_url(ctx, lineitem_id) if lineitem_id is not None else ""
        entry = ScoreRecord(time.time(), ctx, lineitem_id, url, user, copy.deepcopy(score) if isinstance(score, dict)
                            else None, dict(headers), status, outcome, reason)
        with self._changed:
            self._scores.append(entry)
            self._changed.notify_all()

    # ---------------------------------------------------------------------------- NRPS

    def _memberships(self, headers, ctx, query, offset, path) -> _Reply:
        self._check_accept(headers, MEDIA_MEMBERSHIP_CONTAINER)
        limit = self._limit(query)
        role = query.get("role")
        members = self.members(ctx)
        if role:
            members = [m for m in members
                       if any(r == role or r.rsplit("#", 1)[-1] == role for r in m.get("roles", []))]
        page = members[offset:offset + limit] if limit else members[offset:]
        with self._lock:
            context = {k: v for k, v in self._contexts[ctx].items() if k in ("id", "label", "title")}
        link = self._page_link({"kind": "memberships", "ctx": ctx, "lineitem_id": None, "query": query},
                               offset, limit, len(members))
        container = {"id": self.base_url + path, "context": context, "members": page}
        return _json_reply(200, container, MEDIA_MEMBERSHIP_CONTAINER, link)

    # --------------------------------------------------------------------- deep linking

    def verify_deep_link_response(self, token: str, *, expected_data: Any = _DEFAULT) -> list:
        """Verify a deep linking response JWT (Deep Linking 2.0 section 4.2); its content items.

        `expected_data`: the data the response must echo (default: any this platform issued
        in deep_linking_settings; when it issued none, data is not checked).  Raises DeepLinkError.
        """
        return self._verify_deep_link(token, expected_data)[1]

    def _verify_deep_link(self, token, expected_data=_DEFAULT) -> tuple[dict, list]:
        try:
            tool, _, claims = self._verify_tool_jwt(token)
        except JwtError as error:
            raise DeepLinkError(str(error)) from None
        now = time.time()
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.issuer not in audiences:
            raise DeepLinkError(f"aud {aud!r} does not name the platform issuer {self.issuer}")
        if not _is_number(claims.get("exp")) or claims["exp"] < now - self.leeway:
            raise DeepLinkError("exp is missing or past")
        if not _is_number(claims.get("iat")) or claims["iat"] > now + self.leeway:
            raise DeepLinkError("iat is missing or in the future")
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise DeepLinkError("nonce is missing")
        if claims.get(CLAIM_DEPLOYMENT_ID) not in tool.deployment_ids:
            raise DeepLinkError(f"deployment_id {claims.get(CLAIM_DEPLOYMENT_ID)!r} is not one of the tool's")
        if claims.get(CLAIM_MESSAGE_TYPE) != MSG_DEEP_LINKING_RESPONSE:
            raise DeepLinkError(f"message_type {claims.get(CLAIM_MESSAGE_TYPE)!r} is not {MSG_DEEP_LINKING_RESPONSE}")
        if claims.get(CLAIM_VERSION) != LTI_VERSION:
            raise DeepLinkError(f"version {claims.get(CLAIM_VERSION)!r} is not {LTI_VERSION}")
        data = claims.get(CLAIM_DL_DATA, _DEFAULT)
        with self._lock:
            issued = list(self._dl_data_issued)
        if expected_data is not _DEFAULT:
            if expected_data is not None and data != expected_data:
                raise DeepLinkError(f"data {None if data is _DEFAULT else data!r} is not the expected {expected_data!r}")
        elif issued and (data is _DEFAULT or data not in issued):
            raise DeepLinkError(f"data {None if data is _DEFAULT else data!r} does not echo any data this platform sent")
        items = claims.get(CLAIM_DL_CONTENT_ITEMS, [])
        if not isinstance(items, list):
            raise DeepLinkError("content_items must be an array")
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                raise DeepLinkError(f"content item {index} is not an object with a type")
            line_item = item.get("lineItem")
            if line_item is not None and (not isinstance(line_item, dict) or not _is_number(line_item.get("scoreMaximum"))
                                          or line_item["scoreMaximum"] <= 0):
                raise DeepLinkError(f"content item {index}: lineItem needs a scoreMaximum greater than 0")
        with self._lock:
            if nonce in self._seen_dl_nonces:
                raise DeepLinkError("nonce has been used before")
            self._seen_dl_nonces.add(nonce)
        return claims, items

    def _deep_link_return(self, form: dict) -> _Reply:
        token = form.get("JWT")
        try:
            if not token:
                raise DeepLinkError("no JWT form field")
            claims, items = self._verify_deep_link(token)
        except DeepLinkError as error:
            self._record_deep_link(form, token, False, str(error), None, None)
            page = f"<!DOCTYPE html><title>Deep linking refused</title><p id=\"result\">Refused: {html.escape(str(error))}</p>"
            return _Reply(400, page.encode("utf-8"), _HTML)
        self._record_deep_link(form, token, True, "", claims, items)
        message = claims.get(CLAIM_DL_MSG) or claims.get(CLAIM_DL_ERRORMSG) or ""
        page = (f"<!DOCTYPE html><title>Deep linking received</title><p id=\"result\">Received {len(items)} "
                f"item(s).</p><p id=\"message\">{html.escape(str(message))}</p>")
        return _Reply(200, page.encode("utf-8"), _HTML)

    def _record_deep_link(self, form, token, accepted, reason, claims, items) -> None:
        entry = DeepLinkRecord(time.time(), dict(form), token, accepted, reason, claims, items)
        with self._changed:
            self._deep_link_responses.append(entry)
            self._changed.notify_all()

    # ------------------------------------------------------------- dynamic registration

    def openid_configuration(self) -> dict:
        """The platform's OpenID configuration (LTI Dynamic Registration 1.0 section 3.4)."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.auth_url,
            "token_endpoint": self.token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "jwks_uri": self.jwks_url,
            "registration_endpoint": self.registration_url,
            "scopes_supported": ["openid", *AGS_SCOPES, SCOPE_NRPS],
            "response_types_supported": ["id_token"],
            "response_modes_supported": ["form_post"],
            "grant_types_supported": ["implicit", "client_credentials"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["iss", "aud", "sub", "iat", "exp", "nonce", "azp", "name", "given_name",
                                 "family_name", "email", "locale"],
            CLAIM_PLATFORM_CONFIGURATION: {
                "product_family_code": self.product_family_code,
                "version": self.version,
                "messages_supported": [{"type": MSG_RESOURCE_LINK}, {"type": MSG_DEEP_LINKING}],
                "variables": ["ResourceLink.id", "Context.id", "User.id", "Person.email.primary"],
            },
        }

    def issue_registration_token(self) -> str:
        token = "reg-" + secrets.token_urlsafe(18)
        with self._lock:
            self._registration_tokens[token] = False
        return token

    def registration_start_url(self, tool_registration_url: str, token: "bool | str" = True) -> str:
        """The URL an LMS admin opens to start dynamic registration with the tool (DR 1.0 section 3.3)."""
        params = {"openid_configuration": self.openid_configuration_url}
        if token is True:
            token = self.issue_registration_token()
        if token:
            with self._lock:
                self._registration_tokens.setdefault(token, False)
            params["registration_token"] = token
        return tool_registration_url + ("&" if "?" in tool_registration_url else "?") + urlencode(params)

    def _register(self, headers, body: bytes) -> _Reply:
        warnings: list[str] = []

        def refuse(status, error, description, parsed=None):
            self._record_registration(headers, parsed, status, False, f"{error}: {description}", None, None, None,
                                      warnings)
            return _json_reply(status, {"error": error, "error_description": description})

        with self._lock:
            require = self.require_registration_token and bool(self._registration_tokens)
        if require:
            scheme, _, token = headers.get("Authorization", "").partition(" ")
            token = token.strip()
            with self._lock:
                used = self._registration_tokens.get(token) if scheme.lower() == "bearer" else None
                if used is False:
                    self._registration_tokens[token] = True
            if used is None:
                return refuse(401, "invalid_token", "a registration token is required (Bearer)")
            if used:
                return refuse(401, "invalid_token", "the registration token has been used already")
        if _media_type(headers.get("Content-Type")) != _JSON:
            return refuse(400, "invalid_client_metadata", "Content-Type must be application/json")
        try:
            request = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return refuse(400, "invalid_client_metadata", "malformed JSON")
        problem = self._registration_problem(request, warnings)
        if problem is not None:
            return refuse(400, problem[0], problem[1], request)
        tool_config = request[CLAIM_TOOL_CONFIGURATION]
        client_id = "client-" + secrets.token_hex(8)
        deployment_id = "deployment-" + secrets.token_hex(4)
        scopes = [s for s in (request.get("scope") or "").split() if s in ALL_SERVICE_SCOPES]
        self.register_tool(request["initiate_login_uri"], request["redirect_uris"], request["jwks_uri"],
                           client_id=client_id, deployment_ids=[deployment_id],
                           target_link_uri=tool_config["target_link_uri"], allowed_scopes=scopes,
                           name=str(request.get("client_name", "")), registration=request)
        if self.registration_becomes_default:
            self.client_id, self.deployment_id = client_id, deployment_id
        response = copy.deepcopy(request)
        response["client_id"] = client_id
        response["scope"] = " ".join(scopes)
        response[CLAIM_TOOL_CONFIGURATION]["deployment_id"] = deployment_id
        self._record_registration(headers, request, self.registration_status, True, "", client_id, deployment_id,
                                  response, warnings)
        return _json_reply(self.registration_status, response)

    def _registration_problem(self, request, warnings: list) -> tuple[str, str] | None:
        """The (error, description) that makes a client registration unacceptable, or None."""
        metadata = "invalid_client_metadata"
        if not isinstance(request, dict):
            return metadata, "the registration must be a JSON object"
        if request.get("application_type") != "web":
            return metadata, "application_type must be web"
        grant_types = request.get("grant_types")
        if not isinstance(grant_types, list) or not {"implicit", "client_credentials"} <= set(grant_types):
            return metadata, "grant_types must include implicit and client_credentials"
        if not isinstance(request.get("response_types"), list) or "id_token" not in request["response_types"]:
            return metadata, "response_types must include id_token"
        redirect_uris = request.get("redirect_uris")
        if not isinstance(redirect_uris, list) or not redirect_uris or not all(_is_url(u) for u in redirect_uris):
            return "invalid_redirect_uri", "redirect_uris must be a non-empty array of URLs"
        for key in ("initiate_login_uri", "jwks_uri"):
            if not _is_url(request.get(key)):
                return metadata, f"{key} must be a URL"
        if request.get("token_endpoint_auth_method") != "private_key_jwt":
            return metadata, "token_endpoint_auth_method must be private_key_jwt"
        if not isinstance(request.get("client_name"), str) or not request["client_name"]:
            warnings.append("no client_name")
        if "scope" in request and not isinstance(request["scope"], str):
            return metadata, "scope must be a space-separated string"
        config = request.get(CLAIM_TOOL_CONFIGURATION)
        if not isinstance(config, dict):
            return metadata, f"{CLAIM_TOOL_CONFIGURATION} is missing"
        domain = config.get("domain")
        if not isinstance(domain, str) or not domain:
            return metadata, "the tool configuration needs a domain"
        if not _is_url(config.get("target_link_uri")):
            return metadata, "the tool configuration needs a target_link_uri URL"
        secondary = config.get("secondary_domains", [])
        if not isinstance(secondary, list) or not all(isinstance(d, str) for d in secondary):
            return metadata, "secondary_domains must be an array of strings"
        if "claims" in config and (not isinstance(config["claims"], list)
                                   or not all(isinstance(c, str) for c in config["claims"])):
            return metadata, "claims must be an array of strings"
        messages = config.get("messages", [])
        if not isinstance(messages, list) or not all(isinstance(m, dict) and isinstance(m.get("type"), str)
                                                     for m in messages):
            return metadata, "messages must be an array of objects with a type"
        if "custom_parameters" in config and (not isinstance(config["custom_parameters"], dict) or not all(
                isinstance(v, str) for v in config["custom_parameters"].values())):
            return metadata, "custom_parameters must map names to strings"
        domains = {d.lower() for d in [domain, *secondary]}
        urls = [*redirect_uris, request["initiate_login_uri"], config["target_link_uri"]]
        urls += [m["target_link_uri"] for m in messages if m.get("target_link_uri")]
        for url in urls:
            parts = urlsplit(url)
            if (parts.hostname or "").lower() not in domains and parts.netloc.lower() not in domains:
                return "invalid_redirect_uri", f"{url} is not within the tool's domain(s) {sorted(domains)}"
        return None

    def _record_registration(self, headers, body, status, accepted, reason, client_id, deployment_id, response,
                             warnings) -> None:
        entry = RegistrationRecord(time.time(), dict(headers), body, status, accepted, reason, client_id, deployment_id,
                                   response, tuple(warnings))
        with self._changed:
            self._registrations.append(entry)
            self._changed.notify_all()

    # ---------------------------------------------------------------- pages for browsers

    def serve_html(self, path: str, page: str) -> str:
        """Serve `page` at `path` (GET); returns its URL."""
        if not path.startswith("/"):
            raise ValueError("path must start with /")
        with self._lock:
            self._html_pages[path] = page
        return self.base_url + path

    def frame_page_html(self, login_url: str, login_params: dict, *, tool_origin: str | None = None,
                        method: str = "GET", title: str = "Course page", get_data_missing: str = "null") -> str:
        """A platform page framing the tool's login and serving platform storage; see the module docstring."""
        parts = urlsplit(login_url)
        origin = tool_origin or f"{parts.scheme}://{parts.netloc}"
        if method.upper() == "GET":
            src = login_url + ("&" if "?" in login_url else "?") + urlencode(login_params)
            launcher = (f'<iframe name="tool" id="tool" title="Tool" src="{html.escape(src)}" '
                        'style="width:100%;height:80vh;border:1px solid #888"></iframe>')
        else:
            launcher = ('<iframe name="tool" id="tool" title="Tool" style="width:100%;height:80vh;border:1px solid #888">'
                        '</iframe>\n' + form_post_html(login_url, login_params, target="tool", auto_submit=False)
                        .split("<body>\n", 1)[1].split("</body>", 1)[0]
                        + "<script>document.getElementById('lti13-form').submit();</script>")
        config = json.dumps({"toolOrigins": [origin], "eventsUrl": self.events_url,
                             "getDataMissing": get_data_missing}).replace("</", "<\\/")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f"<script>var LTI_PLATFORM_CONFIG = {config};</script>\n<script>{_STORAGE_JS}</script>\n"
            f"{launcher}\n</body>\n</html>\n"
        )

    def add_course_page(self, course_id: str, launch: "PreparedLaunch | LoginRequest", *, method: str = "GET",
                        storage_target: str = "_parent", **page_kwargs) -> str:
        """Serve a platform-storage frame page for a launch at /course/<id>; returns its URL."""
        if isinstance(launch, PreparedLaunch):
            login = launch.login_request(method=method, storage_target=storage_target)
        else:
            login = launch
        page = self.frame_page_html(login.url, login.params, method=method, **page_kwargs)
        return self.serve_html(urlsplit(self.course_url(course_id)).path, page)

    def registration_page_url(self, tool_registration_url: str, token: "bool | str" = True) -> str:
        """Serve a page framing the tool's registration start (records org.imsglobal.lti.close); its URL."""
        start = self.registration_start_url(tool_registration_url, token)
        parts = urlsplit(tool_registration_url)
        config = json.dumps({"toolOrigins": [f"{parts.scheme}://{parts.netloc}"], "eventsUrl": self.events_url}
                            ).replace("</", "<\\/")
        page = (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Register a tool</title></head>\n"
            "<body>\n<h1>Register a tool</h1>\n<p id=\"status\">Registering…</p>\n"
            f"<script>var LTI_PLATFORM_CONFIG = {config};</script>\n<script>{_REGISTRATION_JS}</script>\n"
            f'<iframe name="registration" id="registration" title="Tool registration" src="{html.escape(start)}" '
            'style="width:100%;height:80vh;border:1px solid #888"></iframe>\n</body>\n</html>\n')
        return self.serve_html("/admin/register-" + secrets.token_hex(4), page)

    def _browser_event(self, body: bytes) -> _Reply:
        try:
            event = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _Reply(400, b"malformed JSON\n")
        if not isinstance(event, dict):
            return _Reply(400, b"not an object\n")
        self._record_browser_event(str(event.get("kind", "storage")), event.get("origin"), event.get("data"),
                                   event.get("response"), bool(event.get("accepted", True)),
                                   str(event.get("reason", "")), str(event.get("page", "")))
        return _Reply(204)

    def _record_browser_event(self, kind, origin, data, response=None, accepted=True, reason="", page="") -> None:
        entry = BrowserEvent(time.time(), kind, origin, data, response, accepted, reason, page)
        with self._changed:
            self._browser_events.append(entry)
            self._changed.notify_all()

    # ----------------------------------------------------------------------- records

    def _copy(self, name: str) -> list:
        with self._lock:
            return list(getattr(self, name))

    auth_requests = property(lambda self: self._copy("_auth_requests"), doc="Every authentication request.")
    token_requests = property(lambda self: self._copy("_token_requests"), doc="Every token request.")
    service_requests = property(lambda self: self._copy("_service_requests"), doc="Every AGS/NRPS request.")
    scores = property(lambda self: self._copy("_scores"), doc="Every score POST (ScoreRecord).")
    deep_link_responses = property(lambda self: self._copy("_deep_link_responses"), doc="Every deep linking response.")
    registrations = property(lambda self: self._copy("_registrations"), doc="Every dynamic registration request.")
    browser_events = property(lambda self: self._copy("_browser_events"), doc="Everything pages reported.")

    @property
    def refused_auth_requests(self) -> list[AuthRequest]:
        return [r for r in self.auth_requests if not r.accepted]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10) -> Any:
        """Wait until predicate() (called under the lock) is truthy; its value, or None after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    return None
                self._changed.wait(min(remaining, 0.5))

    def wait_for_score(self, user_id: str | None = None, *, lineitem: "str | dict | None" = None,
                       score_given: float | None = None, outcome: str | None = "accepted",
                       timeout: float = 10) -> ScoreRecord | None:
        """The latest score record matching (user, line item id/URL, scoreGiven, outcome), waiting up to `timeout` s."""
        lineitem_ref = lineitem["id"] if isinstance(lineitem, dict) else lineitem

        def match():
            for record in reversed(self._scores):
                if user_id is not None and record.user_id != user_id:
                    continue
                if lineitem_ref is not None and lineitem_ref not in (record.lineitem_id, record.lineitem_url):
                    continue
                if outcome is not None and record.outcome != outcome:
                    continue
                if score_given is not None and not (_is_number(record.score_given) and math.isclose(
                        record.score_given, score_given, rel_tol=1e-9, abs_tol=1e-9)):
                    continue
                return record
            return None

        return self.wait_for(match, timeout)

    def wait_for_auth_request(self, count: int = 1, timeout: float = 10) -> AuthRequest | None:
        """The `count`-th authentication request, waiting for it."""
        return self.wait_for(lambda: self._auth_requests[count - 1] if len(self._auth_requests) >= count else None,
                             timeout)

    def wait_for_deep_link(self, count: int = 1, timeout: float = 10) -> DeepLinkRecord | None:
        return self.wait_for(lambda: self._deep_link_responses[count - 1]
                             if len(self._deep_link_responses) >= count else None, timeout)

    def wait_for_registration(self, count: int = 1, timeout: float = 10) -> RegistrationRecord | None:
        return self.wait_for(lambda: self._registrations[count - 1] if len(self._registrations) >= count else None,
                             timeout)

    def wait_for_browser_event(self, kind: str = "storage", subject: str | None = None,
                               timeout: float = 10) -> BrowserEvent | None:
        """The latest browser event of `kind` (and data subject), waiting for it."""
        return self.wait_for(lambda: next((e for e in reversed(self._browser_events) if e.kind == kind and (
            subject is None or e.subject == subject)), None), timeout)

    def stats(self) -> dict:
        with self._lock:
            return {
                "jwks_fetches": self._jwks_fetches, "tool_jwks_fetches": self._tool_jwks_fetches,
                "auth_requests": len(self._auth_requests),
                "auth_refused": sum(1 for r in self._auth_requests if not r.accepted),
                "token_requests": len(self._token_requests), "tokens_issued": self._tokens_issued,
                "service_requests": len(self._service_requests), "scores": len(self._scores),
                "scores_accepted": sum(1 for s in self._scores if s.outcome == "accepted"),
                "deep_link_responses": len(self._deep_link_responses), "registrations": len(self._registrations),
                "browser_events": len(self._browser_events),
            }

    def reset_records(self) -> None:
        """Forget what was recorded (not the state: line items, results, tokens, seen jti/nonces stay)."""
        with self._lock:
            for name in ("_auth_requests", "_token_requests", "_service_requests", "_scores",
                         "_deep_link_responses", "_registrations", "_browser_events"):
                getattr(self, name).clear()
            self._jwks_fetches = self._tool_jwks_fetches = self._tokens_issued = 0

    # ------------------------------------------------------------------------ dispatch

    _SERVICE_PATH = re.compile(r"^/contexts/([^/]+)/(?:(memberships)|lineitems(?:/([^/]+)(?:/(scores|results))?)?)/?$")

    def _dispatch(self, method: str, target: str, headers, body: bytes) -> _Reply:
        split = urlsplit(target)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if path == "/jwks" and method == "GET":
            with self._lock:
                self._jwks_fetches += 1
            extra = {"Cache-Control": f"max-age={self.jwks_max_age}"} if self.jwks_max_age is not None else {}
            return _json_reply(200, self.jwks(), headers=extra)
        if path == "/.well-known/openid-configuration" and method == "GET":
            return _json_reply(200, self.openid_configuration())
        if path == "/auth" and method in ("GET", "POST"):
            params = query if method == "GET" else dict(parse_qsl(body.decode("utf-8", "replace"),
                                                                  keep_blank_values=True))
            return self._auth_http(method, params)
        if path == "/token" and method == "POST":
            form_encoded = _media_type(headers.get("Content-Type")) == "application/x-www-form-urlencoded"
            params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)) if form_encoded else {}
            return self._token(params, form_encoded)
        if path == "/register" and method == "POST":
            return self._register(headers, body)
        if path == "/deep_link/return" and method == "POST":
            return self._deep_link_return(dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
        if path == "/events" and method == "POST":
            return self._browser_event(body)
        if path == "/return" and method == "GET":
            self._record_browser_event("return", None, query, page=target)
            return _Reply(200, b"<!DOCTYPE html><title>Back in the LMS</title><p id=\"result\">Back in the LMS</p>",
                          _HTML)
        if path.startswith("/pages/") and method == "GET":
            with self._lock:
                state = self._pages.get(path[len("/pages/"):])
            if state is None:
                return _Reply(404, b"Not Found\n")
            return self._service(state["kind"], "GET", target, headers, body, state["ctx"], state["lineitem_id"],
                                 dict(state["query"], limit=str(state["limit"])), state["offset"])
        match = self._SERVICE_PATH.match(path)
        if match:
            ctx, memberships, lineitem_id, sub = (unquote(g) if g else g for g in match.groups())
            kind = "memberships" if memberships else (sub or "lineitems")
            return self._service(kind, method, target, headers, body, ctx, lineitem_id, query)
        with self._lock:
            page = self._html_pages.get(path)
        if page is not None and method == "GET":
            return _Reply(200, page.encode("utf-8"), _HTML, {"Cache-Control": "no-store"})
        return _Reply(404, b"Not Found\n")

    def _auth_http(self, method: str, params: dict) -> _Reply:
        try:
            redirect_uri, fields = self._authorize(params, method)
        except AuthorizationRefused as refused:
            if refused.redirect_uri is None:
                page = (f"<!DOCTYPE html><title>Launch refused</title><p id=\"error\">{html.escape(refused.error)}: "
                        f"{html.escape(refused.description)}</p>")
                return _Reply(400, page.encode("utf-8"), _HTML)
            fields = {"error": refused.error, "error_description": refused.description}
            if refused.state:
                fields["state"] = refused.state
            return _Reply(200, form_post_html(refused.redirect_uri, fields, title="Launch refused").encode("utf-8"),
                          _HTML, {"Cache-Control": "no-store"})
        return _Reply(200, form_post_html(redirect_uri, fields, title="Launching").encode("utf-8"), _HTML,
                      {"Cache-Control": "no-store"})


# ------------------------------------------------------------------------ page scripts

# The platform-storage side of the 1EdTech client-side postMessages (lti.capabilities,
# lti.put_data, lti.get_data), reporting every message to the platform's /events.
_STORAGE_JS = r"""
(function () {
  "use strict";
  var config = window.LTI_PLATFORM_CONFIG;
  var store = {};  // origin -> {key: value}
  var log = window.__ltiPlatformLog = [];
  function report(entry) {
    entry.page = location.pathname;
    log.push(entry);
    try {
      fetch(config.eventsUrl, {method: "POST", body: JSON.stringify(entry), keepalive: true,
                               headers: {"Content-Type": "text/plain"}});
    } catch (e) { /* the log above still has it */ }
  }
  function answer(event, message) {
    if (event.source) { event.source.postMessage(message, event.origin); }
    return message;
  }
  function failure(event, data, code, text) {
    return answer(event, {subject: String(data.subject) + ".response", message_id: data.message_id,
                          error: {code: code, message: text}});
  }
  window.addEventListener("message", function (event) {
    var data = event.data;
    var entry = {kind: "storage", origin: event.origin, data: data};
    if (config.toolOrigins.indexOf(event.origin) < 0) {
      entry.accepted = false; entry.reason = "origin not allowed"; report(entry); return;
    }
    if (!data || typeof data !== "object" || typeof data.subject !== "string") {
      entry.accepted = false; entry.reason = "not an LTI message"; report(entry); return;
    }
    if (/\.response$/.test(data.subject)) {
      entry.accepted = false; entry.reason = "a response, not a request"; report(entry); return;
    }
    var response;
    var hasId = (typeof data.message_id === "string" && data.message_id !== "") || typeof data.message_id === "number";
    if (!hasId) {
      response = failure(event, data, "bad_request", "message_id is missing");
    } else if (data.subject === "lti.capabilities") {
      response = answer(event, {subject: "lti.capabilities.response", message_id: data.message_id,
                                supported_messages: [{subject: "lti.capabilities"}, {subject: "lti.put_data"},
                                                     {subject: "lti.get_data"}]});
    } else if (data.subject === "lti.put_data") {
      if (typeof data.key !== "string" || data.key === "") {
        response = failure(event, data, "bad_request", "key is missing");
      } else if (typeof data.value !== "string") {
        response = failure(event, data, "bad_request", "value must be a string");
      } else {
        (store[event.origin] = store[event.origin] || {})[data.key] = data.value;
        response = answer(event, {subject: "lti.put_data.response", message_id: data.message_id, key: data.key,
                                  value: data.value});
      }
    } else if (data.subject === "lti.get_data") {
      var stored = store[event.origin] || {};
      if (typeof data.key !== "string" || data.key === "") {
        response = failure(event, data, "bad_request", "key is missing");
      } else if (!Object.prototype.hasOwnProperty.call(stored, data.key) && config.getDataMissing === "error") {
        response = failure(event, data, "bad_request", "nothing is stored under that key");
      } else {
        response = answer(event, {subject: "lti.get_data.response", message_id: data.message_id, key: data.key,
                                  value: Object.prototype.hasOwnProperty.call(stored, data.key) ? stored[data.key] : null});
      }
    } else {
      response = failure(event, data, "unsupported_subject", "unsupported subject " + data.subject);
    }
    entry.response = response;
    entry.accepted = !response.error;
    report(entry);
  });
})();
"""

# A registration page: records the tool's org.imsglobal.lti.close (LTI DR 1.0 section 3.7).
_REGISTRATION_JS = r"""
(function () {
  "use strict";
  var config = window.LTI_PLATFORM_CONFIG;
  var log = window.__ltiPlatformLog = [];
  window.addEventListener("message", function (event) {
    var data = event.data;
    var close = data && typeof data === "object" && data.subject === "org.imsglobal.lti.close";
    var entry = {kind: close ? "registration_close" : "window_message", origin: event.origin, data: data,
                 page: location.pathname, accepted: config.toolOrigins.indexOf(event.origin) >= 0};
    if (!entry.accepted) { entry.reason = "origin not allowed"; }
    log.push(entry);
    try {
      fetch(config.eventsUrl, {method: "POST", body: JSON.stringify(entry), keepalive: true,
                               headers: {"Content-Type": "text/plain"}});
    } catch (e) { /* the log above still has it */ }
    if (close && entry.accepted) {
      var frame = document.getElementById("registration");
      if (frame) { frame.remove(); }
      document.getElementById("status").textContent = "Registration closed";
    }
  });
})();
"""


# ----------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    platform: "Lti13Platform"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Open keep-alive connections, so stop() can end them (a stopped platform must not
        # go on answering over a client's pooled socket).
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client vanishing mid-request is routine here
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format, *args) -> None:  # noqa: A002 - inherited signature
        pass

    def _handle(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._send(_Reply(411, b"Content-Length required\n"))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self.close_connection = True
            self._send(_Reply(413 if length > _MAX_BODY else 400, b"Bad Content-Length\n"))
            return
        body = self.rfile.read(length) if length else b""
        platform = self.server.platform
        try:
            reply = platform._dispatch(self.command, self.path, self.headers, body)
        except Exception as error:  # a bug here should show as a 500 the test can see, not a hang
            reply = _Reply(500, f"platform error: {error!r}\n".encode("utf-8"))
            self.server.handle_error(self.request, self.client_address)
        if reply.delay:
            deadline = time.monotonic() + reply.delay
            while time.monotonic() < deadline and not platform._stopping.is_set() \
                    and not (reply.held and platform._released.is_set()):
                platform._stopping.wait(0.05)
        self._send(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def _send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            if reply.status != 204:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


# ----------------------------------------------------------------- stand-in tool helpers


class JwksServer:
    """A tiny key set server on loopback, standing in for a tool's JWKS endpoint.

    ``keys`` (a list of SigningKey) may be changed while running; ``url`` is the key set's
    URL, ``fetches`` how many times it was served.
    """

    def __init__(self, keys: Iterable[SigningKey] = (), *, host: str = "127.0.0.1", path: str = "/jwks"):
        if not _is_loopback_host(host):
            raise ValueError("host must be on loopback")
        self.keys = list(keys)
        self.host = host
        self.path = path
        self.fetches = 0
        self._fetches_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def jwks(self) -> dict:
        return {"keys": [k.public_jwk() for k in self.keys]}

    def start(self) -> "JwksServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002
                pass

            def do_GET(self):
                if urlsplit(self.path).path == owner.path:
                    with owner._fetches_lock:
                        owner.fetches += 1
                    status, body = 200, json.dumps(owner.jwks()).encode("utf-8")
                else:
                    status, body = 404, b"{}"
                self.send_response(status)
                self.send_header("Content-Type", _JSON)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="jwks-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> "JwksServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("not started")
        return f"http://{self.host}:{self._server.server_address[1]}{self.path}"


def client_assertion(key: SigningKey, client_id: str, audience: "str | list", *, jti: str | None = None,
                     iat: int | None = None, exp: int | None = None, lifetime: int = 60, kid: Any = _DEFAULT,
                     alg: str = "RS256", extra: dict | None = None) -> str:
    """A tool's JWT client assertion for the token endpoint (iss = sub = client_id)."""
    now = int(time.time())
    iat = now if iat is None else iat
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": iat,
              "exp": iat + lifetime if exp is None else exp, "jti": jti or "jti-" + secrets.token_hex(12)}
    claims.update(extra or {})
    return encode_jwt(claims, key, alg=alg, kid=kid, secret=key.public_pem() if alg in _HMAC_HASHES else None)


def token_request_form(assertion: str, scopes: Iterable[str]) -> dict:
    """The form a tool POSTs to the token endpoint."""
    return {"grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion, "scope": " ".join(scopes)}


def deep_link_response_jwt(key: SigningKey, *, client_id: str, issuer: "str | list", deployment_id: str,
                           content_items: Iterable[dict] = (), data: Any = None, nonce: str | None = None,
                           lifetime: int = 600, msg: str | None = None, extra: dict | None = None,
                           kid: Any = _DEFAULT) -> str:
    """A tool's deep linking response JWT (Deep Linking 2.0 section 4.2)."""
    now = int(time.time())
    claims = {"iss": client_id, "aud": issuer, "iat": now, "exp": now + lifetime,
              "nonce": nonce or "nonce-" + secrets.token_hex(8), CLAIM_DEPLOYMENT_ID: deployment_id,
              CLAIM_MESSAGE_TYPE: MSG_DEEP_LINKING_RESPONSE, CLAIM_VERSION: LTI_VERSION,
              CLAIM_DL_CONTENT_ITEMS: list(content_items)}
    if data is not None:
        claims[CLAIM_DL_DATA] = data
    if msg is not None:
        claims[CLAIM_DL_MSG] = msg
    claims.update(extra or {})
    return encode_jwt(claims, key, kid=kid)
