"""LTI 1.1 Basic Outcomes: send one `replaceResult` and judge the LMS's answer.

The request XML is pylti's; it is signed by oauthlib (HMAC-SHA1 in the Authorization
header, with `oauth_body_hash` over the XML) and sent with urllib3 through `core.outbound`
(thread-safe connection pools, a fraction of requests' per-call cost, and no loopback, private
or metadata addresses however the LMS's URL is written or resolves). pylti's own sender is not
used: it patches httplib2 process-wide, is not thread-safe and judges success by a string match.

What the LMS answered is kept for instructors and staff only as a short excerpt with control
characters removed (`excerpt`), after a label that says whose words they are: the LMS chooses
those bytes.
"""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

import urllib3
from defusedxml import ElementTree
from django.utils.translation import gettext
from oauthlib.oauth1 import Client
from pylti.common import generate_request_xml

from core import outbound
from grading.models import SendOutcome

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
_NS = "{http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0}"

# IMS POX codeMinor values and LMS descriptions that mean "this will never work as sent":
# retrying would not change the answer, so the grade is marked failed for a person to see.
PERMANENT_MINOR = {"unknownobject", "invaliddata", "incompletedata", "unknownvocab", "invalidsourcedid",
                   "nosourcedids", "unsupportedoperation"}
_PERMANENT_DESCRIPTION = re.compile(r"sourced ?id|unknown (user|result|object)|not (found|enrolled)", re.I)
# HTTP statuses that mean the request itself is wrong (signature, URL, payload), not that the
# LMS is having a bad moment.
PERMANENT_HTTP = {400, 401, 403, 404, 405, 410, 413, 414, 415, 422}
# Statuses of an LMS (or a proxy in front of it) that is down or busy: retried for as long as it lasts.
OUTAGE_HTTP = {408, 425, 429}
#: The longest excerpt of an LMS's answer kept for people to read.
EXCERPT_CHARS = 200
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}  # control, format (bidi overrides), surrogates, private, unassigned


@dataclass(frozen=True)
class Delivery:
    sourcedid: str
    url: str
    consumer_key: str
    consumer_secret: str
    score: float


@dataclass(frozen=True)
class SendResult:
    outcome: str  # a SendOutcome
    http_status: int | None
    lms_answer: str
    duration_ms: int
    # True: an LTI outcomes (POX) answer; False: the LMS answered, but not in LTI (a login page,
    # an odd status); None: no answer to judge (network trouble, an outage status, a refusal).
    lti_answer: bool | None = None
    # LTI 1.3: the AGS line item the tool found or created for the activity ("" otherwise).
    lineitem_url: str = ""


class Judgement(NamedTuple):
    outcome: str  # a SendOutcome
    answer: str  # for people: what happened, with an excerpt of the LMS's words
    lti_answer: bool | None


def request_body(*, sourcedid: str, score: float) -> bytes:
    # A score is sent with at most 4 decimals: what every LMS accepts.
    text = f"{round(score, 4):.4f}".rstrip("0").rstrip(".") if score else "0"
    return generate_request_xml(secrets.token_hex(16), "replaceResult", sourcedid, text).encode()


def signed_request(delivery: Delivery) -> tuple[str, dict[str, str], bytes]:
    body = request_body(sourcedid=delivery.sourcedid, score=delivery.score)
    client = Client(delivery.consumer_key, client_secret=delivery.consumer_secret)
    url, headers, body = client.sign(
        delivery.url, "POST", body=body, headers={"Content-Type": "application/xml"}
    )
    return url, headers, body


def _text(root, name: str) -> str:
    node = root.find(f".//{_NS}{name}")
    if node is None:
        node = root.find(f".//{name}")  # some LMSs answer without the namespace
    return (node.text or "").strip() if node is not None else ""


def excerpt(data: bytes | str, *, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of what an LMS sent, fit to show a person: decoded as
    UTF-8, control and format characters removed, whitespace collapsed; "" for nothing, and a
    count of bytes for an answer that is not text. (Templates still escape it.)"""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    shown = "".join(" " if c.isspace() else c for c in text
                    if c.isspace() or unicodedata.category(c) not in _HIDDEN_CATEGORIES)
    shown = " ".join(shown.split())
    if text and (not shown or text.count("\ufffd") > len(text) // 10):
        return gettext("%(count)s bytes that are not text") % {"count": len(data)}
    return shown if len(shown) <= limit else shown[: limit - 1].rstrip() + "…"


def _lms_said(body: bytes) -> str:
    shown = excerpt(body)
    if not shown:
        return gettext("The LMS answered with nothing.")
    return gettext("The LMS answered: “%(excerpt)s”") % {"excerpt": shown}


def judge_answer(status: int, body: bytes) -> Judgement:
    """What an HTTP answer to a replaceResult means: delivered, retry later (an outage, or an
    answer that is not LTI), or refused for good; and an account of it for people."""
    said = _lms_said(body)
    if status >= 500 or status in OUTAGE_HTTP:
        return Judgement(SendOutcome.RETRY, gettext(
            "The LMS could not take the grade now (HTTP %(status)s); it will be sent again. %(said)s"
        ) % {"status": status, "said": said}, None)
    if 300 <= status < 400:
        return Judgement(SendOutcome.FAILED, gettext(
            "The LMS's grade address redirects elsewhere (HTTP %(status)s). Redirects are not followed, so the "
            "grade was not delivered: check the outcome service URL in the LMS's settings for this tool. %(said)s"
        ) % {"status": status, "said": said}, None)
    if status in PERMANENT_HTTP:
        return Judgement(SendOutcome.FAILED, gettext("The LMS refused the grade (HTTP %(status)s). %(said)s")
                         % {"status": status, "said": said}, None)
    try:
        root = ElementTree.fromstring(body) if 200 <= status < 300 else None
    except Exception:  # noqa: BLE001 — any parse error (or entity refused): the answer is not POX
        root = None
    major = excerpt(_text(root, "imsx_codeMajor"), limit=40).lower() if root is not None else ""
    if not major:
        return Judgement(SendOutcome.RETRY, gettext(
            "The LMS's grade address answered (HTTP %(status)s), but not with an LTI outcomes answer: it may be "
            "a login or error page. It will be tried again. %(said)s"
        ) % {"status": status, "said": said}, False)
    description = _text(root, "imsx_description")
    minor = {n.text.strip().lower() for n in root.iter(f"{_NS}imsx_codeMinorFieldValue") if n.text}
    minor |= {n.text.strip().lower() for n in root.iter("imsx_codeMinorFieldValue") if n.text}
    said = major + (f" ({', '.join(sorted(minor))})" if minor else "") + (f": {description}" if description else "")
    answer = gettext("The LMS answered: %(status)s") % {"status": excerpt(said)}  # codes first: they may be cut
    if major == "success":
        return Judgement(SendOutcome.DELIVERED, answer, True)
    if major == "unsupported" or minor & PERMANENT_MINOR or _PERMANENT_DESCRIPTION.search(description):
        return Judgement(SendOutcome.FAILED, answer, True)
    return Judgement(SendOutcome.RETRY, answer, True)  # "failure" or "processing": the LMS may accept it later


def refusal_message(refused: outbound.DestinationRefused) -> str:
    """Why no grade is sent to this address, for the instructor and the operator."""
    host = excerpt(refused.host, limit=100)
    if refused.reason in outbound.Refusal.ADDRESS_KINDS:
        return gettext(
            "The LMS's grade address (%(host)s) points to %(kind)s, %(address)s, so no grade is sent there. If the "
            "LMS really is on that network, the operator can allow it with OUTBOUND_ALLOWED_NETWORKS."
        ) % {"host": host, "kind": outbound.ADDRESS_KIND_NAMES[refused.reason], "address": refused.address}
    if refused.reason == outbound.Refusal.SCHEME:
        return gettext(
            "The LMS's grade address is not an http or https address (it starts with “%(scheme)s:”), so no grade "
            "is sent there. Check the outcome service URL in the LMS's settings for this tool."
        ) % {"scheme": excerpt(refused.scheme, limit=20)}
    if refused.reason == outbound.Refusal.USERINFO:
        return gettext(
            "The LMS's grade address has a user name or password before its host name (%(host)s), so no grade is "
            "sent there. Check the outcome service URL in the LMS's settings for this tool."
        ) % {"host": host}
    return gettext(
        "The LMS's grade address is not a valid web address, so no grade is sent there. Check the outcome "
        "service URL in the LMS's settings for this tool."
    )


def send(delivery: Delivery, *, timeout: float = READ_TIMEOUT) -> SendResult:
    """Send one grade. Never raises for network or LMS trouble: the result says what happened."""
    started = time.monotonic()
    status = None
    try:
        outbound.checked_url(delivery.url, outbound.AddressPolicy.from_settings())  # before signing it
        url, headers, body = signed_request(delivery)
        answer = outbound.request("POST", url, body=body, headers=headers,
                                  connect_timeout=min(CONNECT_TIMEOUT, timeout), timeout=timeout)
        status = answer.status
        judged = judge_answer(answer.status, answer.body)
    except outbound.DestinationRefused as refused:
        judged = Judgement(SendOutcome.FAILED, refusal_message(refused), None)
    except urllib3.exceptions.LocationValueError:  # a host name that cannot be looked up, ever
        judged = Judgement(SendOutcome.FAILED, refusal_message(outbound.DestinationRefused(outbound.Refusal.INVALID)),
                           None)
    except urllib3.exceptions.NewConnectionError as error:  # (a subclass of the timeout errors)
        judged = Judgement(SendOutcome.RETRY, gettext("Could not reach the LMS: %(error)s")
                           % {"error": type(error).__name__}, None)
    except urllib3.exceptions.TimeoutError:
        judged = Judgement(SendOutcome.RETRY, gettext("The LMS did not answer in time."), None)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        judged = Judgement(SendOutcome.RETRY, gettext("Could not reach the LMS: %(error)s")
                           % {"error": type(error).__name__}, None)
    return SendResult(judged.outcome, status, judged.answer, int((time.monotonic() - started) * 1000),
                      judged.lti_answer)
