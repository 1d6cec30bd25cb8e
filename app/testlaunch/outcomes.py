"""The demo LMS's LTI 1.1 Basic Outcomes service (LTI 1.1 section 6, IMS POX): what an LMS's
outcome service does, for the test-launch page's 1.1 launches. Requests are signed with OAuth 1.0a
HMAC-SHA1 in the Authorization header, the XML body bound by `oauth_body_hash`; they are
verified here with the consumer's secret (signature, body hash, timestamp, nonce). Pure
functions: parsing, verifying and answering; testlaunch.services records the results."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from defusedxml import ElementTree
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

NS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
_NS = "{" + NS + "}"
OPERATIONS = ("replaceResult", "readResult", "deleteResult")
#: How far oauth_timestamp may be from this clock, in seconds.
TIMESTAMP_WINDOW = 300


class Refused(Exception):
    """A request the service does not accept: `code_minor` is the POX minor code."""

    def __init__(self, reason: str, code_minor: str = "invaliddata", *, status: int = 200):
        super().__init__(reason)
        self.code_minor = code_minor
        self.status = status


@dataclass(frozen=True)
class OutcomeRequest:
    message_id: str
    operation: str  # one of OPERATIONS
    sourcedid: str
    score: float | None  # replaceResult's, 0..1


def verify_signature(*, method: str, url: str, authorization: str, body: bytes,
                     secret_for: Callable[[str], str | None], nonce_is_new: Callable[[str, str], bool],
                     now: float | None = None) -> str:
    """Check an OAuth 1.0a body-signed request as it arrived at `url` (scheme, host and path as
    the tool addressed it; its query is signed too). Returns the consumer key; raises Refused
    (HTTP 401) for anything wrong. `nonce_is_new(key, nonce)` records the nonce and says whether
    it was unused; it is called only once the signature is known good."""
    if not authorization.startswith("OAuth "):
        raise Refused("The request is not signed (no OAuth Authorization header).", "invalidsignature", status=401)
    try:
        params = {unquote(k): unquote(v) for k, v in parse_authorization_header(authorization)}
    except ValueError:
        raise Refused("The Authorization header is malformed.", "invalidsignature", status=401) from None
    params.pop("realm", None)
    for required in ("oauth_consumer_key", "oauth_signature", "oauth_signature_method", "oauth_timestamp",
                     "oauth_nonce", "oauth_body_hash"):
        if not params.get(required):
            raise Refused(f"The signature lacks {required}.", "invalidsignature", status=401)
    if params["oauth_signature_method"] != "HMAC-SHA1":
        raise Refused("Only HMAC-SHA1 signatures are accepted.", "invalidsignature", status=401)
    key = params["oauth_consumer_key"]
    secret = secret_for(key)
    if secret is None:
        raise Refused("Unknown consumer key.", "invalidsignature", status=401)
    expected_hash = base64.b64encode(hashlib.sha1(body).digest()).decode("ascii")
    if not hmac.compare_digest(params["oauth_body_hash"].encode(), expected_hash.encode()):
        raise Refused("The body hash does not match the body.", "invalidsignature", status=401)
    split = urlsplit(url)
    signed = [(k, v) for k, v in params.items() if k != "oauth_signature"]
    signed += parse_qsl(split.query, keep_blank_values=True)
    base_string = oauth_signature.signature_base_string(
        method.upper(), oauth_signature.base_string_uri(f"{split.scheme}://{split.netloc}{split.path}"),
        oauth_signature.normalize_parameters(signed))
    expected = oauth_signature.sign_hmac_sha1_with_client(
        base_string, SimpleNamespace(client_secret=secret, resource_owner_secret=""))
    if not hmac.compare_digest(params["oauth_signature"].encode(), expected.encode()):
        raise Refused("The signature does not match (wrong secret or address).", "invalidsignature", status=401)
    try:
        timestamp = int(params["oauth_timestamp"])
    except ValueError:
        raise Refused("oauth_timestamp is not a number.", "invalidsignature", status=401) from None
    if abs((now if now is not None else time.time()) - timestamp) > TIMESTAMP_WINDOW:
        raise Refused("oauth_timestamp is too far from this server's clock.", "invalidsignature", status=401)
    if not nonce_is_new(key, params["oauth_nonce"]):
        raise Refused("This request was already received (its nonce was used).", "invalidsignature", status=401)
    return key


def parse_request(body: bytes) -> OutcomeRequest:
    """The operation of an imsx_POXEnvelopeRequest; raises Refused for anything else."""
    try:
        root = ElementTree.fromstring(body)
    except Exception:  # noqa: BLE001 — a parse error, or entities and DTDs refused by defusedxml
        raise Refused("The body is not well-formed XML.") from None
    if root.tag != _NS + "imsx_POXEnvelopeRequest":
        raise Refused("The body is not an imsx_POXEnvelopeRequest.")
    message_id = (root.findtext(f"{_NS}imsx_POXHeader/{_NS}imsx_POXRequestHeaderInfo/{_NS}imsx_messageIdentifier")
                  or "").strip()
    pox_body = root.find(_NS + "imsx_POXBody")
    operation = pox_body[0] if pox_body is not None and len(pox_body) else None
    name = operation.tag.replace(_NS, "").removesuffix("Request") if operation is not None else ""
    if name not in OPERATIONS:
        raise Refused(f"Unsupported operation: {name or 'none'}.", "unsupported")
    sourcedid = (operation.findtext(f"{_NS}resultRecord/{_NS}sourcedGUID/{_NS}sourcedId") or "").strip()
    if not sourcedid:
        raise Refused("The request has no sourcedId.", "incompletedata")
    score = None
    if name == "replaceResult":
        text = operation.findtext(f"{_NS}resultRecord/{_NS}result/{_NS}resultScore/{_NS}textString")
        try:
            score = float((text or "").strip())
        except ValueError:
            raise Refused(f"The score {text!r} is not a number.") from None
        if not math.isfinite(score) or not 0 <= score <= 1:
            raise Refused(f"The score {text!r} is not between 0 and 1.")
    return OutcomeRequest(message_id, name, sourcedid, score)


def response_xml(*, major: str, description: str, message_ref: str = "", operation: str = "",
                 minor: str = "", body: str = "") -> bytes:
    """An imsx_POXEnvelopeResponse (`major` success / failure / unsupported)."""
    severity = "status" if major == "success" else "error"
    minor_xml = ("<imsx_codeMinor><imsx_codeMinorField><imsx_codeMinorFieldName>"
                 f"{escape(operation or 'request')}</imsx_codeMinorFieldName><imsx_codeMinorFieldValue>"
                 f"{escape(minor)}</imsx_codeMinorFieldValue></imsx_codeMinorField></imsx_codeMinor>") if minor else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<imsx_POXEnvelopeResponse xmlns="{NS}"><imsx_POXHeader><imsx_POXResponseHeaderInfo>'
        f"<imsx_version>V1.0</imsx_version><imsx_messageIdentifier>{uuid.uuid4().hex}</imsx_messageIdentifier>"
        f"<imsx_statusInfo><imsx_codeMajor>{major}</imsx_codeMajor><imsx_severity>{severity}</imsx_severity>"
        f"<imsx_description>{escape(description)}</imsx_description>"
        f"<imsx_messageRefIdentifier>{escape(message_ref)}</imsx_messageRefIdentifier>"
        f"<imsx_operationRefIdentifier>{escape(operation)}</imsx_operationRefIdentifier>{minor_xml}"
        "</imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader>"
        f"<imsx_POXBody>{body}</imsx_POXBody></imsx_POXEnvelopeResponse>"
    ).encode("utf-8")


def read_result_body(score: float | None) -> str:
    """readResultResponse: the score as stored, or an empty textString when there is none."""
    text = "" if score is None else repr(round(score, 6))
    return ("<readResultResponse><result><resultScore><language>en</language>"
            f"<textString>{text}</textString></resultScore></result></readResultResponse>")
