"""Checking LTI 1.3 logins and launches: everything that can be decided before writing.

pylti1p3 does the protocol work: the OIDC authentication request (`OIDCLogin`), and for the
id_token its format, the registration (iss + client id), the signature against the platform's
keyset, the deployment and the message's required claims (`MessageLaunch`). Around it, this
module adds what the library leaves to the tool:

- registrations, deployments and our keys come from the database (`ToolConf`);
- `aud`, `azp`, `iss`, `exp`, `iat` and `nonce` are verified by PyJWT in the same decode as
  the signature (the library decodes with `verify_aud` off), and only RS256 is accepted;
- the platform's keyset is fetched through `core.outbound` (never a private address, no
  redirects), cached, and fetched again when a token names a `kid` it does not have;
- the state and nonce live in the database (`LoginState`), used once, instead of the library's
  session store (which accepts a replayed id_token);
- every refusal is a `lms.launch.LaunchRejected` with words for the student and checks for the
  LMS administrator, as for LTI 1.1.

`lti13.services` writes an accepted launch.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

import jwt
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext
from pylti1p3.contrib.django import DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.contrib.django.cookie import DjangoCookieService
from pylti1p3.contrib.django.request import DjangoRequest
from pylti1p3.deployment import Deployment as LibDeployment
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.registration import Registration
from pylti1p3.session import SessionService
from pylti1p3.tool_config import ToolConfAbstract

from core import outbound
from lms.launch import (MAX_ID_LENGTH, LaunchData, LaunchRejected, _valid_email_or_blank, _valid_url_or_blank,
                        custom_parameters, role_from_lti_roles, valid_locale)
from lms.models import Consumer, LtiVersion
from lti13 import keys
from lti13.models import Deployment, Platform

logger = logging.getLogger(__name__)

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = LTI + "message_type"
VERSION = LTI + "version"
DEPLOYMENT_ID = LTI + "deployment_id"
TARGET_LINK_URI = LTI + "target_link_uri"
RESOURCE_LINK = LTI + "resource_link"
CONTEXT = LTI + "context"
ROLES = LTI + "roles"
CUSTOM = LTI + "custom"
LAUNCH_PRESENTATION = LTI + "launch_presentation"
LTI1P1 = LTI + "lti1p1"
LIS = LTI + "lis"
#: Moodle's extension claim (user_username), as in its 1.1 launches' ext_user_username.
EXT = LTI + "ext"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DEEP_LINKING = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
MESSAGE_TYPES = (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST)
ALGORITHMS = ("RS256",)
#: How far a token's iat/exp may be off our clock (platforms' clocks drift a little).
LEEWAY_SECONDS = 60
KEYSET_CACHE_SECONDS = 3600
#: At most one fetch of a platform's keyset per this many seconds for an unknown kid.
KEYSET_REFRESH_SECONDS = 10
STATE_COOKIE_PREFIX = "lti1p3-"


def _rejected(status: int, code: str, title: str, detail: str, *checks: str) -> LaunchRejected:
    return LaunchRejected(status=status, code=code, title=title, detail=detail, admin_checks=list(checks))


def _bad_token(detail: str, *checks: str, code: str = "bad_token") -> LaunchRejected:
    return _rejected(403, code, gettext("The launch could not be verified"), detail, *checks)


# --- registrations, deployments and our keys, from the database --------------------------------


def registration_for(platform: Platform) -> Registration:
    """The library's view of a platform registration, with the tool's current signing key."""
    key = keys.signing_key()
    public_pem = _public_pem(key.private_key_pem)
    registration = (
        Registration()
        .set_issuer(platform.issuer)
        .set_client_id(platform.client_id)
        .set_auth_login_url(platform.auth_login_url)
        .set_auth_token_url(platform.auth_token_url)
        .set_key_set_url(platform.keyset_url or None)
        .set_key_set(platform.keyset or None)
        .set_tool_private_key(key.private_key_pem)
        .set_tool_public_key(public_pem)
    )
    if platform.auth_audience:
        registration.set_auth_audience(platform.auth_audience)
    return registration


@functools.lru_cache(maxsize=16)
def _public_pem(private_pem: str) -> str:
    """The public half of a tool key. Cached: loading an RSA private key checks it, which takes
    about 0.1 s of CPU, and every launch asks for the registration."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def platform_find(*, issuer: str, client_id: str | None) -> Platform | None:
    """The active registration of this issuer with this client id; without a client id (the
    login request may omit it), the issuer's only active registration."""
    platforms = Platform.objects.select_related("consumer").filter(issuer=issuer, active=True)
    if client_id:
        return platforms.filter(client_id=client_id).first()
    found = list(platforms[:2])
    return found[0] if len(found) == 1 else None


class ToolConf(ToolConfAbstract):
    """pylti1p3's tool configuration, read from `Platform` and `Deployment` rows. Every issuer
    may have several client ids. The platform found is kept in `platform`."""

    def __init__(self):
        super().__init__()
        self.platform: Platform | None = None

    def check_iss_has_one_client(self, iss):
        return False

    def check_iss_has_many_clients(self, iss):
        return True

    def find_registration_by_issuer(self, iss, *args, **kwargs):
        return self.find_registration_by_params(iss, None)

    def find_registration_by_params(self, iss, client_id, *args, **kwargs):
        known = self.platform
        if known is None or known.issuer != iss or (client_id and known.client_id != client_id):
            self.platform = platform_find(issuer=iss, client_id=client_id)  # else: found already, this request
        return registration_for(self.platform) if self.platform else None

    def find_deployment(self, iss, deployment_id):
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        platform = self.platform or platform_find(issuer=iss, client_id=client_id)
        if platform is None or not Deployment.objects.filter(platform=platform, deployment_id=deployment_id).exists():
            return None
        return LibDeployment().set_deployment_id(deployment_id)


# --- OIDC login initiation ----------------------------------------------------------------------


class _LoginCookies(DjangoCookieService):
    """The library's state cookie (SameSite=None; Secure over HTTPS), noting the state it sets."""

    state = ""

    def set_cookie(self, name, value, exp=3600):
        self.state = str(value)
        super().set_cookie(name, value, exp)


class _LoginSession(SessionService):
    """Keeps the nonce the library generates for the LoginState row, instead of a session."""

    def __init__(self):  # noqa: D107 — no session storage at all
        self.nonce = ""

    def save_nonce(self, nonce):
        self.nonce = nonce

    def save_state_params(self, state, params):
        pass


class _OIDCLogin(DjangoOIDCLogin):
    def _get_uuid(self):
        return secrets.token_urlsafe(24)

    def _generate_nonce(self):
        return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class LoginStart:
    platform: Platform
    redirect_url: str  # the platform's authorization endpoint with the authentication request
    state: str
    nonce: str
    cookies: _LoginCookies  # apply to the response: cookies.update_response(response)
    params: dict[str, str]  # what the platform sent (for LoginState)


def _target_link_checked(target_link_uri: str, *, own_origin: str, own_paths: tuple[str, ...]) -> str:
    parts = urlsplit(target_link_uri)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if origin != own_origin.lower() or (parts.path or "/") not in own_paths:
        raise _rejected(
            400, "foreign_target_link_uri", gettext("This launch is meant for another tool"),
            gettext("The LMS asked to launch %(uri)s, which is not an address of this tool.")
            % {"uri": target_link_uri[:200]},
            gettext("The tool's target link URI (and redirect URI) in the LMS is this tool's launch URL, %(url)s.")
            % {"url": own_origin + own_paths[0]},
        )
    return target_link_uri


def login_start(request, *, launch_url: str, own_paths: tuple[str, ...]) -> LoginStart:
    """Check a third-party-initiated login (GET or POST) and build the authentication request.
    Writes nothing; `services.login_state_create` records the state."""
    params = request.GET if request.method == "GET" else request.POST
    wanted = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id", "lti_deployment_id",
              "lti_storage_target")
    given = {name: params.get(name, "").strip() for name in wanted}
    missing = [name for name in ("iss", "login_hint", "target_link_uri") if not given[name]]
    if missing:
        raise _rejected(
            400, "incomplete_login", gettext("This address starts LTI 1.3 launches"),
            gettext("The request has no %(names)s. An LTI 1.3 launch starts here when the learning platform sends "
                    "you; open the activity from your course page.") % {"names": ", ".join(missing)},
            gettext("The LMS's OIDC login initiation URL for this tool is this address."),
        )
    for name, value in given.items():
        if len(value) > (2000 if name in ("login_hint", "lti_message_hint", "target_link_uri") else MAX_ID_LENGTH):
            raise _rejected(400, "invalid_parameter", gettext("The launch contains a value that is too long"),
                            gettext("%(name)s is longer than this tool accepts.") % {"name": name})
    own_origin = f"{request.scheme}://{request.get_host()}"
    _target_link_checked(given["target_link_uri"], own_origin=own_origin, own_paths=own_paths)
    platform = platform_find(issuer=given["iss"], client_id=given["client_id"] or None)
    if platform is None:
        raise _unknown_platform(given["iss"], given["client_id"])
    if given["lti_deployment_id"] and not platform.deployments.filter(deployment_id=given["lti_deployment_id"]).exists():
        raise _unknown_deployment(platform, given["lti_deployment_id"])
    conf = ToolConf()
    conf.platform = platform
    cookies = _LoginCookies(DjangoRequest(request))
    session = _LoginSession()
    oidc = _OIDCLogin(request, conf, session_service=session, cookie_service=cookies)
    try:
        redirect = oidc.get_redirect_object(launch_url)
    except (OIDCException, LtiException) as error:  # the checks above make this unlikely
        raise _rejected(400, "bad_login", gettext("This launch could not be started"), str(error)[:200]) from None
    return LoginStart(platform=platform, redirect_url=redirect.get_redirect_url(), state=cookies.state,
                      nonce=session.nonce, cookies=cookies, params=given)


def _unknown_platform(issuer: str, client_id: str) -> LaunchRejected:
    return _rejected(
        403, "unknown_platform", gettext("This learning platform is not registered here"),
        gettext("No LTI 1.3 registration has issuer %(iss)s and client id %(client)s.")
        % {"iss": issuer[:200], "client": client_id[:100] or gettext("(none given)")},
        gettext("The platform is registered on this tool (Django admin → LTI 1.3 platforms, manage.py "
                "lti13_platform, or dynamic registration) with exactly this issuer and client id."),
        gettext("The registration is active."),
    )


def _unknown_deployment(platform: Platform, deployment_id: str) -> LaunchRejected:
    return _rejected(
        403, "unknown_deployment", gettext("This deployment of the tool is not registered here"),
        gettext("The platform “%(name)s” launched from deployment %(deployment)s, which this tool does not know.")
        % {"name": platform.name, "deployment": deployment_id[:100]},
        gettext("Add the deployment id %(deployment)s to the platform's registration on this tool.")
        % {"deployment": deployment_id[:100]},
    )


# --- the launch ---------------------------------------------------------------------------------


class _NoSession(SessionService):
    def __init__(self):  # noqa: D107
        pass


class _MessageLaunch(DjangoMessageLaunch):
    """The library's id_token checks, in our order, with PyJWT checking the claims it skips."""

    def __init__(self, request, conf: ToolConf):
        super().__init__(request, conf, session_service=_NoSession(), cookie_service=DjangoCookieService(
            DjangoRequest(request, post_only=True)), requests_session=outbound.session())
        self.keyset_was_cached = False

    def check(self) -> dict:
        self._validated = True  # the library's lazy validation must not run its session checks
        self.validate_jwt_format()
        header = self._jwt.get("header", {})
        if header.get("alg") not in ALGORITHMS:
            raise _bad_token(
                gettext("The launch token is signed with “%(alg)s”; LTI 1.3 requires RS256.")
                % {"alg": str(header.get("alg"))[:20]},
                gettext("The platform signs its id_tokens with RS256."), code="bad_algorithm")
        body = self._jwt.get("body", {})
        if not isinstance(body, dict) or not isinstance(body.get("iss"), str) or not body.get("aud"):
            raise _bad_token(gettext("The launch token has no issuer or audience."), code="missing_claims")
        try:
            self.validate_registration()
        except LtiException:
            aud = body.get("aud")
            raise _unknown_platform(body["iss"], str(aud[0] if isinstance(aud, list) and aud else aud)) from None
        self._verify_signature_and_claims()
        try:
            self.validate_deployment()
        except LtiException:
            raise _unknown_deployment(self._tool_config.platform, str(body.get(DEPLOYMENT_ID, ""))) from None
        return body

    # keyset: through core.outbound, cached, fetched again for an unknown kid
    def fetch_public_key(self, key_set_url):
        cache_key = "lti13:keyset:" + hashlib.sha256(key_set_url.encode()).hexdigest()
        found = cache.get(cache_key)
        if found is not None:
            self.keyset_was_cached = True
            return found
        self.keyset_was_cached = False
        try:
            answer = self._requests_session.get(key_set_url, timeout=(5, 10))
            keyset = answer.json() if answer.status_code == 200 else None
        except outbound.DestinationRefused as refused:
            from grading.passback import refusal_message

            raise _bad_token(refusal_message(refused), code="keyset_unavailable") from None
        except Exception as error:  # noqa: BLE001 — network trouble or not JSON
            logger.warning("Could not fetch the keyset %s: %s", key_set_url, type(error).__name__)
            keyset = None
        if not isinstance(keyset, dict) or not isinstance(keyset.get("keys"), list):
            raise _rejected(
                502, "keyset_unavailable", gettext("The learning platform's keys could not be read"),
                gettext("This tool could not fetch the platform's public keys, so it cannot check the launch. Try "
                        "again in a moment."),
                gettext("The platform's public keyset URL in its registration here is right and reachable: %(url)s")
                % {"url": key_set_url[:200]})
        cache.set(cache_key, keyset, KEYSET_CACHE_SECONDS)
        return keyset

    def get_public_key(self):
        try:
            return super().get_public_key()
        except LtiException:
            pass
        key_set_url = self._registration.get_key_set_url()
        refresh_key = "lti13:keyset-refresh:" + hashlib.sha256((key_set_url or "").encode()).hexdigest()
        if key_set_url and self.keyset_was_cached and cache.add(refresh_key, 1, KEYSET_REFRESH_SECONDS):
            cache.delete("lti13:keyset:" + hashlib.sha256(key_set_url.encode()).hexdigest())
            self._registration.set_key_set(None)
            try:
                return super().get_public_key()
            except LtiException:
                pass
        raise _bad_token(
            gettext("The launch token is signed with a key (kid %(kid)s) that the platform does not publish.")
            % {"kid": str(self._jwt.get("header", {}).get("kid"))[:80]},
            gettext("The platform's public keyset URL in its registration here is the one the platform signs with."),
            code="unknown_kid")

    def _verify_signature_and_claims(self) -> None:
        public_key, alg = self.get_public_key()
        platform = self._tool_config.platform
        try:
            body = jwt.decode(
                self._get_id_token(), public_key, algorithms=[alg], audience=platform.client_id,
                issuer=platform.issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "nonce"]},
            )
        except jwt.ExpiredSignatureError:
            raise _bad_token(gettext("The launch token has expired. Go back to the course and open the activity "
                                     "again."), gettext("The LMS server's clock is correct (NTP)."),
                             code="expired") from None
        except (jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError):
            raise _bad_token(gettext("The launch token is dated in the future."),
                             gettext("The LMS server's clock is correct (NTP)."), code="not_yet_valid") from None
        except jwt.InvalidAudienceError:
            raise _bad_token(gettext("The launch token is meant for another tool (its audience is not this "
                                     "registration's client id)."), code="wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise _bad_token(gettext("The launch token's issuer is not the registered one."),
                             code="wrong_issuer") from None
        except jwt.MissingRequiredClaimError as error:
            raise _bad_token(gettext("The launch token has no “%(claim)s” claim.") % {"claim": error.claim},
                             code="missing_claims") from None
        except jwt.InvalidSignatureError:
            raise _bad_token(gettext("The launch token's signature does not match the platform's key."),
                             gettext("The platform's public keyset URL in its registration here is right."),
                             code="bad_signature") from None
        except jwt.InvalidTokenError as error:
            raise _bad_token(gettext("The launch token is not valid: %(error)s") % {"error": str(error)[:200]}) \
                from None
        aud = body["aud"]
        if isinstance(aud, list) and (len(aud) > 1 or "azp" in body) and body.get("azp") != platform.client_id:
            raise _bad_token(gettext("The launch token is meant for several tools but does not say it is for this "
                                     "one (azp)."), code="wrong_audience")
        if isinstance(aud, str) and "azp" in body and body["azp"] != platform.client_id:
            raise _bad_token(gettext("The launch token is authorised for another tool (azp)."),
                             code="wrong_audience")
        self._jwt["body"] = body


@dataclass(frozen=True)
class Lti13Launch:
    platform: Platform
    claims: dict
    message_type: str
    deployment_id: str
    state: str
    data: LaunchData | None  # a resource link launch's data; None for deep linking


def launch_check(request, *, own_origin: str, own_paths: tuple[str, ...]) -> Lti13Launch:
    """Check a launch (the platform's form POST of id_token and state) without writing. The
    state's binding to this browser and its one-time use are `services` business."""
    if request.method != "POST":
        raise _rejected(405, "method_not_allowed", gettext("This address only accepts launches from an LMS"),
                        gettext("An LTI 1.3 launch arrives here as a form the learning platform posts. Open the "
                                "activity from your course page instead."))
    id_token, state = request.POST.get("id_token", ""), request.POST.get("state", "")
    if not id_token or not state:
        raise _rejected(400, "incomplete_launch", gettext("The launch is incomplete"),
                        gettext("The learning platform did not send an id_token and a state."),
                        gettext("The tool's redirect URI in the LMS is this launch URL."))
    if len(id_token) > 64 * 1024 or len(state) > 100:
        raise _bad_token(gettext("The launch token is far larger than any platform sends."))
    conf = ToolConf()
    message = _MessageLaunch(request, conf)
    try:
        claims = message.check()
    except LtiException as error:
        raise _bad_token(gettext("The launch token could not be read: %(error)s") % {"error": str(error)[:200]}) \
            from None
    platform = conf.platform
    message_type = claims.get(MESSAGE_TYPE)
    if message_type not in MESSAGE_TYPES:
        raise _rejected(400, "unsupported_message_type", gettext("Unsupported kind of launch"),
                        gettext("The platform sent a “%(type)s” message; this tool accepts resource link launches and "
                                "deep linking.") % {"type": str(message_type)[:60]},
                        gettext("The tool is placed as an LTI resource link or a deep linking (content selection) "
                                "tool."))
    try:
        message.validate_message()
    except LtiException as error:
        raise _rejected(400, "missing_claims", gettext("The launch is missing required information"),
                        gettext("The platform's launch is incomplete: %(error)s.") % {"error": str(error)[:200]}) \
            from None
    target = claims.get(TARGET_LINK_URI, "")
    if message_type == RESOURCE_LINK_REQUEST:
        _target_link_checked(str(target), own_origin=own_origin, own_paths=own_paths)
    data = _launch_data(platform, claims) if message_type == RESOURCE_LINK_REQUEST else None
    return Lti13Launch(platform=platform, claims=claims, message_type=message_type,
                       deployment_id=str(claims.get(DEPLOYMENT_ID)), state=state, data=data)


def _text(value: Any, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _username(claims: Mapping, custom: Mapping) -> str:
    """The person's LMS login name: a custom `username` parameter, Moodle's ext claim, Canvas's
    login id substitution, or OIDC's preferred_username."""
    ext = claims.get(EXT) if isinstance(claims.get(EXT), dict) else {}
    for value in (custom.get("username"), ext.get("user_username"), custom.get("canvas_user_login_id"),
                  claims.get("preferred_username")):
        text = _text(value, 255)
        if text and not text.startswith("$"):
            return text
    return ""


def claimed_locale(claims: Mapping) -> str:
    """The person's locale: the launch_presentation claim's, else the top-level locale claim, or ""."""
    presentation = claims.get(LAUNCH_PRESENTATION) if isinstance(claims.get(LAUNCH_PRESENTATION), dict) else {}
    return valid_locale(_text(presentation.get("locale"), 35) or _text(claims.get("locale"), 35))


def _launch_data(platform: Platform, claims: Mapping) -> LaunchData:
    resource_link = claims.get(RESOURCE_LINK) or {}
    context = claims.get(CONTEXT) or {}
    if not isinstance(resource_link, dict) or not isinstance(context, dict):
        raise _rejected(400, "missing_claims", gettext("The launch is missing required information"),
                        gettext("The resource link or context claim is not an object."))
    for name, value in (("sub", claims.get("sub")), ("resource_link.id", resource_link.get("id")),
                        ("context.id", context.get("id", ""))):
        if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
            raise _rejected(400, "invalid_parameter", gettext("The launch contains an invalid identifier"),
                            gettext("%(name)s is not text of at most %(max)d characters.")
                            % {"name": name, "max": MAX_ID_LENGTH})
    roles = claims.get(ROLES) or []
    roles_text = ",".join(r for r in roles if isinstance(r, str))[:5000] if isinstance(roles, list) else ""
    name = _text(claims.get("name"), 500) or " ".join(
        p for p in (_text(claims.get("given_name"), 200), _text(claims.get("family_name"), 200)) if p)
    ags = claims.get(AGS) if isinstance(claims.get(AGS), dict) else {}
    nrps = claims.get(NRPS) if isinstance(claims.get(NRPS), dict) else {}
    presentation = claims.get(LAUNCH_PRESENTATION) if isinstance(claims.get(LAUNCH_PRESENTATION), dict) else {}
    custom = claims.get(CUSTOM) if isinstance(claims.get(CUSTOM), dict) else {}
    scopes = ags.get("scope") if isinstance(ags.get("scope"), list) else []
    lis = claims.get(LIS) if isinstance(claims.get(LIS), dict) else {}
    return LaunchData(
        nonce="", timestamp=int(claims.get("iat", 0)),
        resource_link_id=resource_link["id"],
        resource_title=_text(resource_link.get("title"), 500),
        resource_description=_text(resource_link.get("description"), 5000),
        context_id=context.get("id", "") or "",
        context_title=_text(context.get("title"), 500),
        context_label=_text(context.get("label"), 255),
        user_id=claims["sub"], full_name=name, email=_valid_email_or_blank(_text(claims.get("email"), 254)),
        roles=roles_text,
        role=role_from_lti_roles(roles_text, extra_instructor_roles=platform.consumer.instructor_roles),
        lis_result_sourcedid="", lis_outcome_service_url="",
        return_url=_valid_url_or_blank(_text(presentation.get("return_url"), 1000), "return_url"),
        lti_version=LtiVersion.LTI_1P3,
        custom=custom_parameters(custom),
        locale=claimed_locale(claims),
        username=_username(claims, custom), sourcedid=_text(lis.get("person_sourcedid"), 255),
        platform_id=platform.pk,
        ags_lineitem_url=_valid_url_or_blank(_text(ags.get("lineitem"), 1000), "lineitem"),
        ags_lineitems_url=_valid_url_or_blank(_text(ags.get("lineitems"), 1000), "lineitems"),
        ags_scopes=" ".join(s for s in scopes if isinstance(s, str))[:2000],
        nrps_url=_valid_url_or_blank(_text(nrps.get("context_memberships_url"), 1000), "context_memberships_url"),
    )


# --- the LTI 1.1 → 1.3 migration claim ----------------------------------------------------------


def lti1p1_expected_sign(*, secret: str, consumer_key: str, claims: Mapping) -> str:
    """The lti1p1 claim's `oauth_consumer_key_sign`: base64 of HMAC-SHA256, keyed with the 1.1
    secret, over key & deployment id & iss & client id (aud) & exp & nonce (LTI 1.3 migration)."""
    aud = claims.get("aud")
    client_id = aud[0] if isinstance(aud, list) and aud else aud
    base = "&".join(str(v) for v in (consumer_key, claims.get(DEPLOYMENT_ID), claims.get("iss"), client_id,
                                     claims.get("exp"), claims.get("nonce")))
    return base64.b64encode(hmac.new(secret.encode(), base.encode(), hashlib.sha256).digest()).decode()


def lti1p1_consumer(claims: Mapping) -> Consumer | None:
    """The LTI 1.1 consumer a launch's lti1p1 claim proves it continues, or None if it has no
    such claim. A claim whose signature does not verify is refused."""
    claim = claims.get(LTI1P1)
    if not isinstance(claim, dict) or not claim.get("oauth_consumer_key"):
        return None
    key, sign = str(claim["oauth_consumer_key"]), claim.get("oauth_consumer_key_sign")
    consumer = Consumer.objects.filter(key=key).first() if key else None
    if consumer is None or not isinstance(sign, str) or not consumer.secret or not hmac.compare_digest(
            lti1p1_expected_sign(secret=consumer.secret, consumer_key=key, claims=claims).encode(), sign.encode()):
        raise _bad_token(
            gettext("The launch says it continues an LTI 1.1 connection (consumer key %(key)s) but its proof "
                    "(oauth_consumer_key_sign) does not match.") % {"key": key[:64]},
            gettext("The LTI 1.1 consumer key and secret in the platform's LTI 1.3 tool settings are the ones this "
                    "tool issued."), code="bad_lti1p1_sign")
    return consumer


def state_cookie_name(state: str) -> str:
    return STATE_COOKIE_PREFIX + state


def platform_storage_key(state: str) -> str:
    return "state_" + state


def encode_claims(claims: Mapping) -> str:
    return json.dumps(claims, separators=(",", ":"), sort_keys=True)


def own_launch_settings(request) -> tuple[str, tuple[str, ...]]:
    """Our origin as the browser sees it and the paths a target_link_uri may name."""
    from django.urls import reverse

    origin = f"{request.scheme}://{request.get_host()}"
    return origin, (reverse("lti13:launch"), "/") + tuple(getattr(settings, "LTI13_EXTRA_TARGET_PATHS", ()))
