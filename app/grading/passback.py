"""LTI 1.1 Basic Outcomes: send one `replaceResult` and judge the LMS's answer.

The request XML is pylti's; it is signed by oauthlib (HMAC-SHA1 in the Authorization
header, with `oauth_body_hash` over the XML) and sent with urllib3 (thread-safe connection
pools, and a fraction of requests' per-call cost). pylti's own sender is not used: it patches
httplib2 process-wide, is not thread-safe and judges success by a string match.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

import urllib3
from defusedxml import ElementTree
from oauthlib.oauth1 import Client
from pylti.common import generate_request_xml

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


def judge_answer(status: int, body: bytes) -> tuple[str, str]:
    """(outcome, a one-line account of the LMS's answer) for an HTTP response."""
    snippet = body[:300].decode("utf-8", "replace").strip().replace("\n", " ")
    if status >= 500 or status in (408, 425, 429):
        return SendOutcome.RETRY, f"HTTP {status}: {snippet}"
    if status in PERMANENT_HTTP or 300 <= status < 400:
        return SendOutcome.FAILED, f"HTTP {status}: {snippet}"
    if not 200 <= status < 300:
        return SendOutcome.RETRY, f"HTTP {status}: {snippet}"
    try:
        root = ElementTree.fromstring(body)
    except Exception:  # noqa: BLE001 — any parse error: the answer is not POX
        return SendOutcome.RETRY, f"HTTP {status}, not an LTI outcomes answer: {snippet}"
    major = _text(root, "imsx_codeMajor").lower()
    description = _text(root, "imsx_description")[:500]
    minor = {n.text.strip().lower() for n in root.iter(f"{_NS}imsx_codeMinorFieldValue") if n.text}
    minor |= {n.text.strip().lower() for n in root.iter("imsx_codeMinorFieldValue") if n.text}
    answer = f"{major or 'no status'}: {description}" if description else (major or "no status")
    if minor:
        answer += f" ({', '.join(sorted(minor))})"
    if major == "success":
        return SendOutcome.DELIVERED, answer
    if major == "unsupported" or minor & PERMANENT_MINOR or _PERMANENT_DESCRIPTION.search(description):
        return SendOutcome.FAILED, answer
    return SendOutcome.RETRY, answer  # "failure" or "processing": the LMS may accept it later


_http = urllib3.PoolManager(num_pools=50, maxsize=64, retries=False)


def send(delivery: Delivery, *, timeout: float = READ_TIMEOUT) -> SendResult:
    """Send one grade. Never raises for network or LMS trouble: the result says what happened."""
    started = time.monotonic()
    url, headers, body = signed_request(delivery)
    try:
        response = _http.request(
            "POST", url, body=body, headers=headers, redirect=False,
            timeout=urllib3.Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout),
        )
        outcome, answer = judge_answer(response.status, response.data)
        status = response.status
    except urllib3.exceptions.NewConnectionError as error:  # (a subclass of the timeout errors)
        outcome, answer, status = SendOutcome.RETRY, f"Could not reach the LMS: {type(error).__name__}", None
    except urllib3.exceptions.TimeoutError:
        outcome, answer, status = SendOutcome.RETRY, "The LMS did not answer in time.", None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        outcome, answer, status = SendOutcome.RETRY, f"Could not reach the LMS: {type(error).__name__}", None
    return SendResult(outcome, status, answer, int((time.monotonic() - started) * 1000))
