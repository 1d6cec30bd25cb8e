"""Registering the tool with an LMS in one step: IMS/1EdTech LTI Dynamic Registration 1.0, and
Canvas's JSON configuration. Everything decided before writing; `services.platform_register`
writes.

Dynamic registration: the LMS administrator gives the LMS our registration URL; the LMS opens
it (in a frame or a window) with `openid_configuration`, the URL where the platform describes
itself, and usually a one-time `registration_token`. Here:

- the platform's configuration is fetched through `core.outbound` (never a private address, no
  redirects; the registration token as a Bearer token, which Canvas wants) and checked: its
  `issuer` must begin the configuration's URL (DR 1.0 §3.5.1, compared as URLs, so that
  ``https://lms.example`` does not vouch for ``https://lms.example.evil``), its endpoints are
  web addresses, and it signs id_tokens with RS256 (all a launch here accepts);
- our client registration is built from the tool's own addresses (`setup.endpoints`): a web
  application with the implicit id_token flow for launches and client credentials with a
  private_key_jwt for services, our JWKS, the AGS and NRPS scopes the platform offers, and the
  LTI tool configuration (domain, target link, the claims we use, resource link and deep
  linking messages);
- it is POSTed to the platform's registration endpoint with the registration token, and the
  answer read: the client id, and the deployment id in its tool configuration.

Every refusal is a `lms.launch.LaunchRejected`, with words for the administrator.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext

from core import outbound
from lms.launch import MAX_ID_LENGTH, LaunchRejected
from lti13.launch import ALGORITHMS, DEEP_LINKING_REQUEST, RESOURCE_LINK_REQUEST
from lti13.models import RegistrationLink
from lti13.setup import ToolEndpoints

logger = logging.getLogger(__name__)

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
CANVAS_PRIVACY_LEVEL = "https://canvas.instructure.com/lti/privacy_level"
CANVAS_ACCOUNT_NAME = "https://canvas.instructure.com/lti/account_name"

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
#: The services the tool uses: grades (AGS) and course lists (NRPS).
TOOL_SCOPES = (SCOPE_SCORE, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_NRPS)
#: What a launch reads about the person (and `iss`/`sub`, always sent).
TOOL_CLAIMS = ("iss", "sub", "name", "given_name", "family_name", "email", "locale")
#: Where instructors add an exam through deep linking, by the names platforms give the places:
#: the spec's example (ContentArea) and Canvas's. Those the platform lists are asked for.
DEEP_LINKING_PLACEMENTS = ("ContentArea", "assignment_selection", "link_selection")

#: (connect, read) seconds for each request to the platform; the administrator is waiting.
TIMEOUT = (5.0, 15.0)
LINK_TOKEN_BYTES = 32


def _rejected(status: int, code: str, title: str, detail: str, *checks: str) -> LaunchRejected:
    return LaunchRejected(status=status, code=code, title=title, detail=detail, admin_checks=list(checks))


def _bad_configuration(detail: str, *checks: str) -> LaunchRejected:
    return _rejected(400, "bad_platform_configuration", gettext("The learning platform's configuration is not usable"),
                     detail, *checks)


# --- addresses ----------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def web_address(value: Any, *, name: str) -> str:
    """`value` if it is an https address (http too for an LMS on this machine, or with DEBUG):
    keys and id_tokens must not travel in the clear. No user name or password, no fragment."""
    if not isinstance(value, str) or not value or len(value) > 1000:
        raise _bad_configuration(gettext("The platform gives no usable %(name)s.") % {"name": name})
    parts = urlsplit(value)
    host = parts.hostname or ""
    secure_enough = parts.scheme == "https" or (parts.scheme == "http" and (settings.DEBUG or _is_loopback(host)))
    if not host or not secure_enough or parts.username is not None or "@" in parts.netloc or parts.fragment:
        raise _bad_configuration(
            gettext("The platform's %(name)s, %(url)s, is not an https address.") % {"name": name, "url": value[:200]},
            gettext("The learning platform is served over https (its own address, wwwroot or base URL, starts with "
                    "https://)."))
    return value


def issuer_matches(issuer: str, configuration_url: str) -> bool:
    """Whether `issuer` begins `configuration_url` (DR 1.0 §3.5.1): same scheme and host (and
    port), and the issuer's path a whole-segment prefix of the configuration's path."""
    issuer_parts, config_parts = urlsplit(issuer), urlsplit(configuration_url)
    if issuer_parts.query or issuer_parts.fragment:
        return False
    if (issuer_parts.scheme.lower(), issuer_parts.netloc.lower()) != (config_parts.scheme.lower(),
                                                                       config_parts.netloc.lower()):
        return False
    prefix = issuer_parts.path.rstrip("/")
    return config_parts.path == prefix or config_parts.path.startswith(prefix + "/")


# --- the platform's configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class PlatformConfiguration:
    """What a platform's openid configuration says that registration and launches need."""

    url: str
    issuer: str
    name: str  # for people
    authorization_endpoint: str
    registration_endpoint: str
    jwks_uri: str
    token_endpoint: str  # "" when the platform offers no services
    authorization_server: str  # the token requests' audience, when not the token endpoint
    scopes_supported: tuple[str, ...] | None  # None: the platform does not say
    deep_linking_placements: tuple[str, ...]  # what the platform lists for LtiDeepLinkingRequest


def _unreachable(url: str, reason: str) -> LaunchRejected:
    return _rejected(
        502, "platform_unreachable", gettext("The learning platform could not be reached"),
        gettext("This tool could not read %(url)s: %(reason)s. Start the registration again in a moment.")
        % {"url": url[:200], "reason": reason},
        gettext("The learning platform's address can be reached from the tool's server."))


def _refused_address(url: str, refused: outbound.DestinationRefused) -> LaunchRejected:
    if refused.reason in outbound.Refusal.ADDRESS_KINDS:
        why = gettext("%(host)s is %(kind)s, %(address)s, which this tool does not call") % {
            "host": refused.host[:100], "kind": outbound.ADDRESS_KIND_NAMES[refused.reason],
            "address": refused.address}
    else:
        why = gettext("it is not a web address this tool calls")
    return _rejected(
        400, "platform_address_refused", gettext("This tool does not call the learning platform's address"),
        gettext("The platform's address %(url)s was refused: %(why)s.") % {"url": url[:200], "why": why},
        gettext("If the learning platform really is on that network, the tool's operator can allow it with "
                "OUTBOUND_ALLOWED_NETWORKS."))


def _send(method: str, url: str, **kwargs) -> requests.Response:
    """One request to the platform through `core.outbound`, as people-readable refusals."""
    session = outbound.session(timeout=TIMEOUT)
    try:
        return session.request(method, url, **kwargs)
    except outbound.DestinationRefused as refused:
        raise _refused_address(url, refused) from None
    except outbound.AnswerTooLong:
        raise _unreachable(url, gettext("its answer is far longer than a platform's")) from None
    except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError):
        raise _unreachable(url, gettext("it did not answer in time")) from None
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        # the host only: a platform may put its registration token in the endpoint's query
        logger.warning("Dynamic registration: %s to %s failed: %s", method, urlsplit(url).netloc, type(error).__name__)
        raise _unreachable(url, gettext("the connection failed")) from None


def _json_object(answer: requests.Response) -> dict | None:
    try:
        value = json.loads(answer.content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _bearer(registration_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {registration_token}"} if registration_token else {}


def configuration_fetch(*, url: str, registration_token: str = "") -> PlatformConfiguration:
    """Fetch and check the platform's openid configuration."""
    url = web_address(url, name=gettext("configuration URL (openid_configuration)"))
    answer = _send("GET", url, headers={"Accept": "application/json", **_bearer(registration_token)})
    document = _json_object(answer) if answer.status_code == 200 else None
    if document is None:
        raise _bad_configuration(
            gettext("The platform's configuration at %(url)s could not be read (HTTP %(status)d, not a JSON "
                    "object).") % {"url": url[:200], "status": answer.status_code},
            gettext("Start the registration from the learning platform again: the link it opens carries a fresh "
                    "configuration address and registration token."))
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or not issuer or len(issuer) > 255:
        raise _bad_configuration(gettext("The platform's configuration names no issuer."))
    web_address(issuer, name=gettext("issuer"))
    if not issuer_matches(issuer, url):
        raise _rejected(
            400, "issuer_mismatch", gettext("The learning platform's configuration is not its own"),
            gettext("The configuration at %(url)s says it is issuer %(issuer)s, but an issuer's configuration must "
                    "be served at an address that begins with the issuer.") % {"url": url[:200], "issuer": issuer[:200]},
            gettext("The platform's issuer (its base URL) matches the address it is reached at."),
            gettext("For Canvas, whose issuer is https://canvas.instructure.com whatever its address, use the JSON "
                    "configuration URL instead."))
    algorithms = document.get("id_token_signing_alg_values_supported")
    if isinstance(algorithms, list) and not set(ALGORITHMS) & set(algorithms):
        raise _bad_configuration(gettext("The platform does not sign its launches with RS256, which LTI 1.3 "
                                         "requires."))
    token_endpoint = document.get("token_endpoint")
    scopes = document.get("scopes_supported")
    audience = document.get("authorization_server")
    platform = document.get(PLATFORM_CONFIGURATION)
    platform = platform if isinstance(platform, dict) else {}
    return PlatformConfiguration(
        url=url, issuer=issuer, name=_platform_name(issuer, platform),
        authorization_endpoint=web_address(document.get("authorization_endpoint"),
                                           name=gettext("authorization endpoint")),
        registration_endpoint=web_address(document.get("registration_endpoint"),
                                          name=gettext("registration endpoint")),
        jwks_uri=web_address(document.get("jwks_uri"), name=gettext("public keyset URL (jwks_uri)")),
        token_endpoint=web_address(token_endpoint, name=gettext("token endpoint")) if token_endpoint else "",
        authorization_server=audience[:1000] if isinstance(audience, str) else "",
        scopes_supported=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else None,
        deep_linking_placements=_placements(platform.get("messages_supported")),
    )


def _platform_name(issuer: str, platform: dict) -> str:
    host = urlsplit(issuer).netloc
    account = platform.get(CANVAS_ACCOUNT_NAME)
    product = platform.get("product_family_code")
    label = account if isinstance(account, str) and account else product if isinstance(product, str) else ""
    return (f"{label.strip()[:80]} ({host})" if label.strip() else host)[:200]


def _placements(messages: Any) -> tuple[str, ...]:
    """The placements a platform lists for deep linking (entries may be objects or, in older
    Moodles, bare message type names)."""
    found: list[str] = []
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, dict) and message.get("type") == DEEP_LINKING_REQUEST:
            found += [p for p in message.get("placements") or () if isinstance(p, str)]
    return tuple(found)


# --- our registration ---------------------------------------------------------------------------


def client_metadata(*, configuration: PlatformConfiguration, urls: ToolEndpoints) -> dict:
    """The client registration we POST (DR 1.0 §3.5.2, and the LTI tool configuration)."""
    offered = configuration.scopes_supported
    scopes = [s for s in TOOL_SCOPES if offered is None or s in offered]
    placements = [p for p in configuration.deep_linking_placements if p in DEEP_LINKING_PLACEMENTS]
    if not configuration.deep_linking_placements:
        placements = [DEEP_LINKING_PLACEMENTS[0]]
    deep_linking = {"type": DEEP_LINKING_REQUEST, "target_link_uri": urls.launch,
                    "label": gettext("Add a Numbas exam")}
    if placements:
        deep_linking["placements"] = placements
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": urls.login,
        "redirect_uris": [urls.launch],
        "client_name": settings.INSTANCE_NAME,
        "jwks_uri": urls.jwks,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        TOOL_CONFIGURATION: {
            "domain": urls.domain,
            "target_link_uri": urls.launch,
            "description": tool_description(),
            "claims": list(TOOL_CLAIMS),
            "messages": [
                {"type": RESOURCE_LINK_REQUEST, "target_link_uri": urls.launch, "label": settings.INSTANCE_NAME},
                deep_linking,
            ],
            CANVAS_PRIVACY_LEVEL: "public",
        },
    }


def tool_description() -> str:
    return gettext("Numbas e-assessment exams: answers saved as students work, scores sent to the gradebook.")


@dataclass(frozen=True)
class RegisteredClient:
    """The platform's answer to our registration."""

    client_id: str
    deployment_id: str  # "" when the platform makes deployments later (and says so elsewhere)
    scopes: tuple[str, ...]


def registration_send(*, configuration: PlatformConfiguration, metadata: dict,
                      registration_token: str = "") -> RegisteredClient:
    """POST our registration to the platform and read its answer."""
    answer = _send("POST", configuration.registration_endpoint, data=json.dumps(metadata).encode(),
                   headers={"Content-Type": "application/json", "Accept": "application/json",
                            **_bearer(registration_token)})
    document = _json_object(answer)
    if answer.status_code not in (200, 201):
        said = ""
        if document is not None:
            said = " — ".join(str(document[k])[:300] for k in ("error", "error_description") if document.get(k))
        raise _rejected(
            400, "registration_refused", gettext("The learning platform refused the registration"),
            gettext("The platform answered HTTP %(status)d%(said)s. Nothing was registered here.")
            % {"status": answer.status_code, "said": f": {said}" if said else ""},
            gettext("Start the registration from the learning platform again (a registration token is used once "
                    "and expires)."),
            gettext("The platform allows this tool's domain and addresses (its registration settings)."))
    client_id = document.get("client_id") if document is not None else None
    if isinstance(client_id, int) and not isinstance(client_id, bool):
        client_id = str(client_id)
    if not isinstance(client_id, str) or not client_id.strip() or len(client_id) > MAX_ID_LENGTH:
        raise _bad_configuration(gettext("The platform accepted the registration but its answer has no client id. "
                                         "Nothing was registered here; remove the tool in the platform and start "
                                         "again."))
    tool = document.get(TOOL_CONFIGURATION)
    deployment_id = tool.get("deployment_id") if isinstance(tool, dict) else None
    if isinstance(deployment_id, int) and not isinstance(deployment_id, bool):
        deployment_id = str(deployment_id)
    if not isinstance(deployment_id, str) or len(deployment_id) > MAX_ID_LENGTH:
        deployment_id = ""
    granted = document.get("scope")
    scopes = tuple(granted.split()) if isinstance(granted, str) else tuple(metadata["scope"].split())
    return RegisteredClient(client_id=client_id.strip(), deployment_id=deployment_id.strip(), scopes=scopes)


# --- registration links -------------------------------------------------------------------------


def link_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_usable(*, token: str, now: datetime | None = None) -> RegistrationLink:
    """The unused, unexpired registration link with this token."""
    link = RegistrationLink.objects.filter(token_hash=link_token_hash(token)).first() if token else None
    if link is None:
        raise link_refused()
    return link_usable_again(link, now=now)


def link_usable_again(link: RegistrationLink, *, now: datetime | None = None) -> RegistrationLink:
    if link.used_at is not None or link.expires_at <= (now or timezone.now()):
        raise link_refused()
    return link


def link_refused() -> LaunchRejected:
    return _rejected(
        403, "registration_link_unusable", gettext("This registration link cannot be used"),
        gettext("The link is unknown, has already registered a platform, or has expired. Each link registers one "
                "platform."),
        gettext("Ask the tool's operator for a new link (manage.py lti13_registration_link), or sign in here as a "
                "tool administrator and use the tool's registration URL."))


def staff_required() -> LaunchRejected:
    return _rejected(
        403, "registration_needs_administrator", gettext("A tool administrator must confirm this registration"),
        gettext("Registering a learning platform lets it launch this tool, so only a tool administrator (a staff "
                "account of this tool) may do it, or whoever has a registration link from the tool's operator."))


def missing_configuration() -> LaunchRejected:
    return _rejected(
        400, "registration_not_started", gettext("This address registers the tool with a learning platform"),
        gettext("It is opened by the learning platform, with the address of the platform's configuration "
                "(openid_configuration). Give this address to the platform (for Moodle: Site administration → "
                "Plugins → Activity modules → External tool → Manage tools → Tool URL → Add LTI Advantage)."),
        gettext("The platform supports LTI Dynamic Registration."))


# --- Canvas ---------------------------------------------------------------------------------------


def canvas_configuration(*, urls: ToolEndpoints) -> dict:
    """Canvas's LTI 1.3 developer key configuration ("Enter URL"), as Canvas documents it:
    doc/api/lti_dev_key_config.md, "Anatomy of a JSON configuration"."""
    title = settings.INSTANCE_NAME
    selection = {"message_type": DEEP_LINKING_REQUEST, "target_link_uri": urls.launch, "text": title}
    return {
        "title": title,
        "description": tool_description(),
        "oidc_initiation_url": urls.login,
        "target_link_uri": urls.launch,
        "public_jwk_url": urls.jwks,
        "scopes": list(TOOL_SCOPES),
        "extensions": [{
            "domain": urls.domain.split(":", 1)[0],
            "tool_id": "numbas-lti",
            "platform": "canvas.instructure.com",
            "privacy_level": "public",
            "settings": {
                "text": title,
                "placements": [
                    {"placement": "link_selection", **selection},
                    {"placement": "assignment_selection", **selection},
                ],
            },
        }],
    }
