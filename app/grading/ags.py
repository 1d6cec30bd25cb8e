"""LTI 1.3 Assignment and Grade Services (AGS): send one score and judge the platform's answers;
the LTI 1.3 counterpart of `passback.send`.

One send is, at most: an access token (OAuth 2 client credentials, with a JWT assertion signed
RS256 by the tool's key and naming its `kid`), the line item (the launch's, or ours found in
the line items container by resource link id and tag, or created there), and the score POSTed
to ``<line item>/scores``. pylti1p3 does the protocol (`Registration`, `ServiceConnector`,
`AssignmentsGradesService`, `Grade`, `LineItem`); where it falls short it is subclassed here:

- `_CachingConnector` (a `ServiceConnector`): pylti1p3 keeps a token only in the connector
  instance and ignores `expires_in`; here tokens live in Django's cache (shared by processes)
  until shortly before they expire, a 401 from a service drops the token and tries once more
  with a new one, and every answer is kept (`last_response`) so it can be judged. Its service
  request also refuses 3xx answers (pylti1p3 counts them as success: `Response.ok`), and follows
  a `Link: rel="next"` as given (pylti1p3 lowercases the URL) and only on the same origin (the
  bearer token goes nowhere else).
- `_GradeService` (an `AssignmentsGradesService`): pylti1p3 asks for every scope in its service
  data, so it is given only those granted *and* needed, never all of the claim's. It finds a
  line item by one property only (here: by resource link id and tag, asking the container to
  filter and checking), creates one only inside `find_or_create_lineitem` (here: on its own),
  and ends a URL's path with ``/scores`` by splitting on "?" (here: `urlsplit`).
- `_ToolRegistration` (a `Registration`): pylti1p3 derives `kid` from the public key's
  thumbprint; ours is the `kid` the tool's key set publishes.

A line item found or created is remembered in the cache for its container, resource link and
tag, and only one send at a time looks for it (a lock in the cache), so the sends of a whole
class create one column, not one each. The cache is never required: without it, sends are slower.

Every request goes through `core.outbound.session()` (no loopback, private or metadata
addresses, no redirects, bounded answers). Access tokens and the private key are never logged
nor put into messages; what the platform says reaches people only as `passback.excerpt`s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import typing as t
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
import requests
import urllib3
from django.core.cache import cache
from django.utils.translation import gettext
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.registration import Registration
from pylti1p3.service_connector import ServiceConnector, TServiceConnectorResponse

from core import outbound
from grading import passback
from grading.models import SendOutcome

logger = logging.getLogger(__name__)

SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"

CONNECT_TIMEOUT = passback.CONNECT_TIMEOUT
READ_TIMEOUT = passback.READ_TIMEOUT
#: A cached access token is not used in the last this-many seconds of its life (clocks differ,
#: and a send takes a while).
TOKEN_SAFETY_MARGIN = 60
#: Its life when the platform does not say (`expires_in` is only RECOMMENDED); a platform that
#: ends it sooner answers 401, and a new one is fetched.
DEFAULT_TOKEN_LIFETIME = 3600
MAX_TOKEN_LIFETIME = 24 * 3600
#: How long a line item found or created here is remembered (by every process) for its resource link.
LINEITEM_CACHE_SECONDS = 24 * 3600
#: The most pages of the line items container read while looking for ours.
MAX_LINEITEM_PAGES = 20
#: OAuth 2 token errors (RFC 6749 §5.2) that a person must fix; others (server_error,
#: temporarily_unavailable) are the platform having a bad moment.
TOKEN_CONFIGURATION_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                              "unsupported_grant_type", "invalid_scope"}
TOKEN_PASSING_ERRORS = {"server_error", "temporarily_unavailable"}
# Statuses that mean the request is wrong (configuration, a deleted line item), not that the
# platform is having a bad moment. (401 only after a new token was refused too.)
PERMANENT_HTTP = passback.PERMANENT_HTTP | {409}
OUTAGE_HTTP = passback.OUTAGE_HTTP
_CACHE_PREFIX = "lti13:ags:"


@dataclass(frozen=True)
class AgsDelivery:
    token_url: str  # the platform's OAuth2 token endpoint
    auth_audience: str  # "" means: the token URL is the audience
    client_id: str
    private_key_pem: str  # the tool's signing key (PEM) and its kid
    kid: str
    scopes: tuple[str, ...]  # the AGS scopes the platform granted in the launch's AGS claim
    lineitem_url: str  # the claim's lineitem, or one found/created before; "" if none yet
    lineitems_url: str  # the claim's lineitems container; "" if none
    user_id: str  # the student's LTI 1.3 `sub`
    score: float  # 0..1, what the LMS should show
    score_maximum: float  # the activity's maximum marks (> 0)
    completed: bool  # the graded attempt is completed (else still in progress)
    resource_link_id: str  # for finding/creating the line item
    label: str  # the activity's title, for a created line item
    tag: str  # e.g. "numbas-lti"; used with resource_link_id to find our line item again
    timestamp: datetime  # when the score changed (aware); sent as ISO 8601 with offset, ms precision

    def __repr__(self) -> str:  # never the private key
        return (f"AgsDelivery(token_url={self.token_url!r}, client_id={self.client_id!r}, kid={self.kid!r}, "
                f"lineitem_url={self.lineitem_url!r}, user_id={self.user_id!r}, score={self.score!r})")


@dataclass(frozen=True)
class AgsResult:
    result: passback.SendResult
    lineitem_url: str  # the line item the score went to (found or created); "" if none was found
    lineitem_created: bool = False  # this send created it in the LMS


class Step:
    """What a send was doing when the platform answered (for messages)."""

    TOKEN = "token"
    FIND = "find"
    CREATE = "create"
    SCORE = "score"


def _step_name(step: str) -> str:
    return {
        Step.TOKEN: gettext("Access token"),
        Step.FIND: gettext("Finding the gradebook column"),
        Step.CREATE: gettext("Creating the gradebook column"),
        Step.SCORE: gettext("Score"),
    }[step]


# --- what is sent -------------------------------------------------------------------------------


def _number(value: float) -> float | int:
    value = round(value, 4)  # what every LMS accepts (as for LTI 1.1)
    return int(value) if value == int(value) else value


def score_payload(delivery: AgsDelivery) -> Grade:
    """The score as pylti1p3's `Grade`: scoreGiven = score × scoreMaximum."""
    if not delivery.score_maximum > 0:
        raise ValueError("score_maximum must be more than 0")
    if delivery.timestamp.utcoffset() is None:
        raise ValueError("timestamp must be an aware datetime")
    maximum = _number(delivery.score_maximum)
    given = _number(min(max(delivery.score, 0.0), 1.0) * delivery.score_maximum)
    timestamp = delivery.timestamp.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return (
        Grade()
        .set_user_id(delivery.user_id)
        .set_score_given(given)
        .set_score_maximum(maximum)
        .set_activity_progress("Completed" if delivery.completed else "InProgress")
        .set_grading_progress("FullyGraded" if delivery.completed else "Pending")
        .set_timestamp(timestamp)
    )


def new_lineitem(delivery: AgsDelivery) -> LineItem:
    return (
        LineItem()
        .set_score_maximum(_number(delivery.score_maximum))
        .set_label(delivery.label or delivery.resource_link_id)
        .set_resource_link_id(delivery.resource_link_id)
        .set_tag(delivery.tag)
    )


def url_with_path_ending(url: str, ending: str) -> str:
    """``<url's path>/<ending>``, keeping the URL's query (``.../lineitems/7?type_id=3`` →
    ``.../lineitems/7/scores?type_id=3``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + ending))


def url_with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, v) for k, v in params.items() if v]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _same_origin(a: str, b: str) -> bool:
    try:
        first, second = urlsplit(a), urlsplit(b)
    except ValueError:
        return False
    return (first.scheme.lower(), first.netloc.lower()) == (second.scheme.lower(), second.netloc.lower())


# --- the cache (shared by processes; never required) -------------------------------------------


def _cache_key(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"{_CACHE_PREFIX}{kind}:{digest}"


def token_cache_key(token_url: str, client_id: str, scopes: t.Iterable[str]) -> str:
    return _cache_key("token", token_url, client_id, " ".join(sorted(set(scopes))))


def lineitem_cache_key(lineitems_url: str, resource_link_id: str, tag: str) -> str:
    return _cache_key("lineitem", lineitems_url, resource_link_id, tag)


def _cache_call(method: str, *args, **kwargs):
    """The cache's answer, or None when it cannot be reached (a send goes on without it)."""
    try:
        return getattr(cache, method)(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 — Redis down: slower, not broken
        logger.warning("The cache did not answer (%s) while sending a score by AGS", type(error).__name__)
        return None


# --- pylti1p3, completed --------------------------------------------------------------------------


class _ToolRegistration(Registration):
    """pylti1p3's `get_kid` is the public key's thumbprint; this is the kid given."""

    def __init__(self, *, kid: str):
        self._kid = kid

    def get_kid(self) -> str | None:
        return self._kid or None


class TokenRequestFailed(LtiServiceException):
    """The token endpoint did not give a token (`response` says what it answered)."""


class NotAnAgsAnswer(LtiServiceException):
    """A 2xx answer that is not what the grade service answers (a login page, say)."""


class KeyUnusable(LtiException):
    """The tool's private key cannot sign the assertion (its text is never in the message)."""


class OutOfTime(requests.exceptions.Timeout):
    """The send's time budget is spent."""


def _json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: an answer nested too deep
        return None


def _looks_like_html(response: requests.Response) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower() or response.content.lstrip()[:1] == b"<"


class _CachingConnector(ServiceConnector):
    """pylti1p3's connector with tokens cached in Django's cache until they expire, one retry
    with a new token after a 401, a time budget for the whole send, and each answer kept."""

    def __init__(self, registration: Registration, requests_session: requests.Session, *, timeout: float,
                 deadline: float):
        super().__init__(registration, requests_session)
        self._timeout, self._deadline = timeout, deadline
        self.last_response: requests.Response | None = None
        self.in_token_request = False  # a token is being asked for (whatever the step)

    def _timeouts(self) -> tuple[float, float]:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise OutOfTime("The time for this send is spent.")
        return min(CONNECT_TIMEOUT, self._timeout, remaining), min(self._timeout, remaining)

    def _cache_key(self, scopes: t.Iterable[str]) -> str:
        return token_cache_key(self._registration.get_auth_token_url() or "",
                               self._registration.get_client_id() or "", scopes)

    def get_access_token(self, scopes: t.Sequence[str]) -> str:
        key = self._cache_key(scopes)
        token = self._access_tokens.get(key) or _cache_call("get", key)
        if isinstance(token, str) and token:
            self._access_tokens[key] = token
            return token
        token, lifetime = self._request_token(sorted(set(scopes)))
        self._access_tokens[key] = token  # for this send, even when too short-lived to cache
        if lifetime - TOKEN_SAFETY_MARGIN > 0:
            _cache_call("set", key, token, timeout=lifetime - TOKEN_SAFETY_MARGIN)
        return token

    def drop_access_token(self, scopes: t.Sequence[str], token: str) -> None:
        key = self._cache_key(scopes)
        self._access_tokens.pop(key, None)
        if _cache_call("get", key) == token:  # not one another send has fetched since
            _cache_call("delete", key)

    def _assertion(self) -> str:
        """pylti1p3's assertion (`ServiceConnector.get_access_token`): iss = sub = client id,
        aud = the audience or else the token URL, a minute's life, a unique jti, our kid."""
        registration = self._registration
        client_id = str(registration.get_client_id())
        audience = registration.get_auth_audience() or registration.get_auth_token_url()
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": str(audience), "iat": now - 5, "exp": now + 60,
                  "jti": "lti-service-token-" + str(uuid.uuid4())}
        kid = registration.get_kid()
        try:
            return self.encode_jwt(claims, registration.get_tool_private_key() or "", {"kid": kid} if kid else {})
        except (ValueError, TypeError, jwt.exceptions.PyJWTError):
            raise KeyUnusable("The tool's private key cannot sign an RS256 assertion.") from None

    def _request_token(self, scopes: list[str]) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": self._assertion(),
            "scope": " ".join(scopes),
        }
        self.last_response, self.in_token_request = None, True
        response = self._requests_session.post(self._registration.get_auth_token_url(), data=form,
                                               headers={"Accept": "application/json"}, timeout=self._timeouts())
        self.last_response = response
        if not 200 <= response.status_code < 300:
            raise TokenRequestFailed(response)
        body = _json(response.content)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenRequestFailed(response)  # a 2xx without a token: judged as not an OAuth answer
        expires_in = body.get("expires_in")
        try:
            lifetime = float(expires_in) if expires_in is not None else DEFAULT_TOKEN_LIFETIME
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        if lifetime != lifetime:  # NaN
            lifetime = DEFAULT_TOKEN_LIFETIME
        self.in_token_request = False
        return token, min(max(lifetime, 0.0), MAX_TOKEN_LIFETIME)

    def make_service_request(self, scopes, url, is_post=False, data=None, content_type="application/json",
                             accept="application/json", case_insensitive_headers=False) -> TServiceConnectorResponse:
        for attempt in (1, 2):
            token = self.get_access_token(scopes)
            headers = {"Authorization": "Bearer " + token, "Accept": accept}
            self.last_response = None
            if is_post:
                headers["Content-Type"] = content_type
                body = data.encode() if isinstance(data, str) else data
                response = self._requests_session.post(url, data=body or None, headers=headers,
                                                       timeout=self._timeouts())
            else:
                response = self._requests_session.get(url, headers=headers, timeout=self._timeouts())
            self.last_response = response
            if response.status_code == 401 and attempt == 1:
                self.drop_access_token(scopes, token)  # expired or revoked early: once more, with a new one
                continue
            break
        if not 200 <= response.status_code < 300:
            raise LtiServiceException(response)
        parsed = _json(response.content) if response.content else None
        if parsed is None and response.content and _looks_like_html(response):
            raise NotAnAgsAnswer(response)
        next_page = response.links.get("next", {}).get("url")
        return {
            "headers": response.headers if case_insensitive_headers else dict(response.headers),
            "body": parsed,
            "next_page_url": next_page if next_page and _same_origin(next_page, url) else None,
        }


#: The connector other LTI Advantage services use too (`lti13.nrps`): one token cache, one set of checks.
CachingConnector = _CachingConnector


class _GradeService(AssignmentsGradesService):
    """pylti1p3's service, finding our line item by resource link id *and* tag (asking the
    container to filter, and checking), creating it on its own, and keeping a line item's query."""

    _add_url_path_ending = staticmethod(url_with_path_ending)

    def find_lineitem_for(self, *, resource_link_id: str, tag: str) -> LineItem | None:
        url: str | None = url_with_query(self._service_data["lineitems"], resource_link_id=resource_link_id, tag=tag)
        for _page in range(MAX_LINEITEM_PAGES):
            if not url:
                break
            lineitems, url = self.get_lineitems_page(url)
            for item in lineitems:
                if (isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]
                        and item.get("resourceLinkId") == resource_link_id and (item.get("tag") or "") == tag):
                    return LineItem(item)
        return None

    def create_lineitem(self, lineitem: LineItem) -> LineItem:
        if not self.can_create_lineitem():
            raise LtiException("Can't create lineitem: Missing required scope")
        created = self._service_connector.make_service_request(
            self._service_data["scope"], self._service_data["lineitems"], is_post=True, data=lineitem.get_value(),
            content_type="application/vnd.ims.lis.v2.lineitem+json", accept="application/vnd.ims.lis.v2.lineitem+json",
        )
        body = created["body"]
        if not (isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]):
            raise LtiException("Unknown response type received for create line item")
        return LineItem(body)


# --- judging answers ------------------------------------------------------------------------------


def _lms_said(body: bytes) -> str:
    value = _json(body)
    if isinstance(value, dict) and isinstance(value.get("error"), str):  # OAuth 2: codes first, they may be cut
        description = value.get("error_description")
        shown = passback.excerpt(value["error"] + (f": {description}" if isinstance(description, str) else ""))
    else:
        shown = passback.excerpt(body)
    if not shown:
        return gettext("The LMS answered with nothing.")
    return gettext("The LMS answered: “%(excerpt)s”") % {"excerpt": shown}


def _hint(step: str, status: int, error: str) -> str:
    if step == Step.TOKEN and error == "invalid_scope":
        return gettext("The LMS does not grant this tool the grade scopes it asked for: check that grade sync "
                       "(Assignment and Grade Services) is enabled for this tool in the LMS.")
    if step == Step.TOKEN:
        return gettext("Check the tool's client ID and its public key (or key set URL) in the LMS, and the token "
                       "URL registered for the LMS here.")
    if status in (401, 403):
        return gettext("The LMS does not let this tool do this: check that grade sync (Assignment and Grade "
                       "Services) is enabled for this tool in the LMS.")
    if step == Step.SCORE and status in (404, 410):
        return gettext("The gradebook column (line item) may have been deleted in the LMS.")
    return ""


def judge_answer(step: str, status: int, body: bytes, *, html: bool = False) -> passback.Judgement:
    """What a platform's answer (other than the 2xx that was expected) means: retry later (an
    outage, or an answer that is not the grade service's), or refused for good; and an account
    of it for people, naming the step."""
    said, name = _lms_said(body), _step_name(step)
    value = _json(body) if body else None
    error = value.get("error") if isinstance(value, dict) and isinstance(value.get("error"), str) else ""
    in_ags_terms = value is not None and not html
    if 200 <= status < 300:
        return passback.Judgement(SendOutcome.RETRY, gettext(
            "%(step)s: the LMS answered (HTTP %(status)s), but not as its grade service does: it may be a login or "
            "error page. It will be tried again. %(said)s"
        ) % {"step": name, "status": status, "said": said}, False)
    if status >= 500 or status in OUTAGE_HTTP or (step == Step.TOKEN and error in TOKEN_PASSING_ERRORS):
        return passback.Judgement(SendOutcome.RETRY, gettext(
            "%(step)s: the LMS could not answer now (HTTP %(status)s); it will be tried again. %(said)s"
        ) % {"step": name, "status": status, "said": said}, None)
    if 300 <= status < 400:
        return passback.Judgement(SendOutcome.FAILED, gettext(
            "%(step)s: the LMS's address redirects elsewhere (HTTP %(status)s). Redirects are not followed, so the "
            "score was not delivered: check the LMS's settings for this tool and its registration here. %(said)s"
        ) % {"step": name, "status": status, "said": said}, None)
    token_refused = step == Step.TOKEN and (400 <= status < 500 or error in TOKEN_CONFIGURATION_ERRORS)
    if status in PERMANENT_HTTP or token_refused:
        hint = _hint(step, status, error)
        return passback.Judgement(SendOutcome.FAILED, " ".join(filter(None, [gettext(
            "%(step)s: the LMS refused it (HTTP %(status)s)."
        ) % {"step": name, "status": status}, hint, said])), in_ags_terms)
    return passback.Judgement(SendOutcome.RETRY, gettext(
        "%(step)s: the LMS answered HTTP %(status)s; it will be tried again. %(said)s"
    ) % {"step": name, "status": status, "said": said}, in_ags_terms)


def _judge_response(step: str, response: requests.Response) -> passback.Judgement:
    return judge_answer(step, response.status_code, response.content, html=_looks_like_html(response))


# --- one send ------------------------------------------------------------------------------------


class _Busy(Exception):
    """Another send is finding or creating this line item."""


class _Sender:
    def __init__(self, delivery: AgsDelivery, *, timeout: float, budget: float):
        self.delivery, self.timeout = delivery, timeout
        self.deadline = time.monotonic() + budget
        self.step = Step.TOKEN
        self.lineitem_url, self.created = delivery.lineitem_url, False
        self.connector: _CachingConnector | None = None

    def run(self, grade: Grade) -> passback.Judgement:
        d = self.delivery
        granted = set(d.scopes)
        if SCOPE_SCORE not in granted:
            return passback.Judgement(SendOutcome.FAILED, gettext(
                "The LMS did not grant this tool the right to send scores (the AGS score scope): enable grade sync "
                "(Assignment and Grade Services) for this tool in the LMS, then launch it again."), None)
        scopes = {SCOPE_SCORE}
        if not self.lineitem_url:
            find_scope = next((s for s in (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY) if s in granted), None)
            if not d.lineitems_url or find_scope is None:
                return passback.Judgement(SendOutcome.FAILED, gettext(
                    "The LMS gave no gradebook column (line item) for this activity, and does not let this tool "
                    "find or create one. In the LMS, let this tool's link have a grade column (or enable grade sync "
                    "with line item management for the tool), then launch it again."), None)
            scopes.add(find_scope)
        policy = outbound.AddressPolicy.from_settings()
        first_service = (Step.SCORE, self.lineitem_url) if self.lineitem_url else (Step.FIND, d.lineitems_url)
        for step, url in ((Step.TOKEN, d.token_url), first_service):  # before signing anything
            self.step = step
            outbound.checked_url(url, policy)
        registration = (_ToolRegistration(kid=d.kid).set_client_id(d.client_id).set_auth_token_url(d.token_url)
                        .set_auth_audience(d.auth_audience).set_tool_private_key(d.private_key_pem))
        session = outbound.session(policy, timeout=(min(CONNECT_TIMEOUT, self.timeout), self.timeout))
        self.connector = _CachingConnector(registration, session, timeout=self.timeout, deadline=self.deadline)
        service = _GradeService(self.connector, {"scope": sorted(scopes), "lineitems": d.lineitems_url,
                                                 "lineitem": self.lineitem_url})
        if not self.lineitem_url:
            found = self._find_or_create(service, can_create=SCOPE_LINEITEM in granted)
            if found is not None:
                return found
        self.step = Step.SCORE
        service.put_grade(grade, LineItem({"id": self.lineitem_url}))
        status = self.connector.last_response.status_code
        if self.created:
            answer = gettext("The LMS accepted the score (HTTP %(status)s), in a gradebook column created for this "
                             "activity.")
        else:
            answer = gettext("The LMS accepted the score (HTTP %(status)s).")
        return passback.Judgement(SendOutcome.DELIVERED, answer % {"status": status}, True)

    def current_step(self) -> str:
        return Step.TOKEN if self.connector is not None and self.connector.in_token_request else self.step

    def _find_or_create(self, service: _GradeService, *, can_create: bool) -> passback.Judgement | None:
        """Sets `lineitem_url` (or says why not). One send at a time looks for a resource
        link's line item, and what it finds is shared, so concurrent sends create it once."""
        d = self.delivery
        key = lineitem_cache_key(d.lineitems_url, d.resource_link_id, d.tag)
        cached = _cache_call("get", key)
        if isinstance(cached, str) and cached:
            self.lineitem_url = cached
            return None
        lock, holder = key + ":lock", secrets.token_hex(8)
        wait_until = min(self.deadline, time.monotonic() + self.timeout)
        while _cache_call("add", lock, holder, timeout=max(1, int(self.deadline - time.monotonic()) + 1)) is False:
            if time.monotonic() >= wait_until:
                raise _Busy()
            time.sleep(0.05)
        try:
            cached = _cache_call("get", key)
            if isinstance(cached, str) and cached:
                self.lineitem_url = cached
                return None
            self.step = Step.FIND
            found = service.find_lineitem_for(resource_link_id=d.resource_link_id, tag=d.tag)
            if found is None:
                if not can_create:
                    return passback.Judgement(SendOutcome.FAILED, gettext(
                        "No gradebook column (line item) for this activity was found in the LMS, and the LMS does not "
                        "let this tool create one (it granted only the read-only line item scope). Allow the tool to "
                        "manage line items in the LMS, or give this link a grade column there."), True)
                self.step = Step.CREATE
                found = service.create_lineitem(new_lineitem(d))
                self.created = True
                logger.info("Created an AGS line item %s for resource link %s", found.get_id(), d.resource_link_id)
            self.lineitem_url = found.get_id()
            _cache_call("set", key, self.lineitem_url, timeout=LINEITEM_CACHE_SECONDS)
        finally:
            if _cache_call("get", lock) == holder:
                _cache_call("delete", lock)
        return None

    def forget_lineitem(self) -> None:
        """The line item is gone: a send that has to look for it looks again."""
        d = self.delivery
        if d.lineitems_url:
            _cache_call("delete", lineitem_cache_key(d.lineitems_url, d.resource_link_id, d.tag))


def send(delivery: AgsDelivery, *, timeout: float = READ_TIMEOUT, budget: float | None = None) -> AgsResult:
    """Send one score by AGS. `timeout` bounds each request; `budget` (by default three times
    `timeout`) the whole send, token and line item included. Never raises for network or LMS
    trouble: the result says what happened, and which line item the score went to (found or
    created), for the caller to keep. Raises ValueError for a delivery that cannot be right
    (no maximum, a naive timestamp)."""
    started = time.monotonic()
    grade = score_payload(delivery)  # a caller's mistake raises here, before anything is sent
    sender = _Sender(delivery, timeout=timeout, budget=3 * timeout if budget is None else budget)
    try:
        judged = sender.run(grade)
    except TokenRequestFailed as failed:
        judged = _judge_response(Step.TOKEN, failed.response)
    except LtiServiceException as failed:  # a service's answer (NotAnAgsAnswer too)
        judged = _judge_response(sender.current_step(), failed.response)
        if sender.current_step() == Step.SCORE and failed.response.status_code in (404, 410):
            sender.forget_lineitem()
    except KeyUnusable:
        judged = passback.Judgement(SendOutcome.FAILED, gettext(
            "Access token: this tool's private key could not sign the request for a token. The tool's LTI 1.3 key "
            "needs fixing by the operator."), None)
    except LtiException:  # pylti1p3 found a 2xx answer unusable (not a list of line items, say)
        response = sender.connector.last_response if sender.connector else None
        if response is not None:
            judged = judge_answer(sender.current_step(), response.status_code, response.content,
                                  html=_looks_like_html(response))
        else:
            logger.exception("pylti1p3 refused to send a score by AGS (step %s)", sender.current_step())
            judged = passback.Judgement(SendOutcome.FAILED, gettext("%(step)s: the score could not be sent.")
                                        % {"step": _step_name(sender.current_step())}, None)
    except _Busy:
        judged = passback.Judgement(SendOutcome.RETRY, gettext(
            "%(step)s: another send is finding or creating the gradebook column for this activity; it will be "
            "tried again.") % {"step": _step_name(Step.FIND)}, None)
    except outbound.DestinationRefused as refused:
        judged = _refused(sender.current_step(), refused)
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
            urllib3.exceptions.LocationValueError):  # a host name that cannot be looked up, ever
        judged = _refused(sender.current_step(), outbound.DestinationRefused(outbound.Refusal.INVALID))
    except outbound.AnswerTooLong:
        judged = passback.Judgement(SendOutcome.RETRY, gettext(
            "%(step)s: the LMS's answer was longer than an answer of its grade service can be, so it was not read. "
            "It will be tried again.") % {"step": _step_name(sender.current_step())}, False)
    except requests.exceptions.Timeout:
        judged = passback.Judgement(SendOutcome.RETRY, gettext(
            "%(step)s: the LMS did not answer in time.") % {"step": _step_name(sender.current_step())}, None)
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        judged = passback.Judgement(SendOutcome.RETRY, gettext(
            "%(step)s: could not reach the LMS: %(error)s") % {"step": _step_name(sender.current_step()),
                                                                 "error": _network_error_name(error)}, None)
    except Exception:  # noqa: BLE001 — whatever the LMS sent, the outbox worker must go on
        logger.exception("Unexpected error while sending a score by AGS (step %s)", sender.current_step())
        judged = passback.Judgement(SendOutcome.RETRY, gettext(
            "%(step)s: an unexpected error stopped the send; it will be tried again.")
            % {"step": _step_name(sender.current_step())}, None)
    response = sender.connector.last_response if sender.connector else None
    result = passback.SendResult(judged.outcome, response.status_code if response is not None else None,
                                 judged.answer, int((time.monotonic() - started) * 1000), judged.lti_answer)
    return AgsResult(result, sender.lineitem_url, sender.created)


def _refused(step: str, refused: outbound.DestinationRefused) -> passback.Judgement:
    return passback.Judgement(SendOutcome.FAILED, gettext("%(step)s: %(why)s") % {
        "step": _step_name(step), "why": passback.refusal_message(refused)}, None)


def _network_error_name(error: BaseException) -> str:
    """The most telling name of a network error (requests wraps urllib3's, which wrap OSError's)."""
    seen = error
    for _depth in range(4):
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        inner = getattr(inner, "reason", None) or inner
        if inner is None:
            break
        seen = inner
    return type(seen).__name__
