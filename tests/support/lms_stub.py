"""A local stand-in for an LMS's LTI 1.1 Basic Outcomes service, for tests and benchmarks.

`LmsStub` runs a small threaded HTTP server on 127.0.0.1 that accepts
``replaceResultRequest`` POX messages at ``/outcomes``, the way Moodle or Canvas
would after a tool reports a grade.  It is deliberately independent of the
product: every request's OAuth 1.0a HMAC-SHA1 signature and ``oauth_body_hash``
are verified here from first principles (with oauthlib's low-level signature
helpers only), the timestamp must be fresh and a (consumer key, nonce) pair may
be used only once.  Requests failing verification get HTTP 401.

Verified requests can be made to misbehave on demand, to exercise the tool's
retry and error handling:

* ``fail(mode, count=None)`` / ``recover()`` -- answer the next ``count``
  requests (or all, until recovery) with one of the `FAIL_MODES`;
* ``known_sourcedids`` -- sourcedids outside this set are "unknown";
* ``fail_rate`` / ``seed`` -- a random fraction of requests answer HTTP 500;
* ``accept_delay`` / ``release()`` -- an accepted grade is recorded at once but answered
  this many seconds later, or at ``release()`` (a slow LMS: the tool's request stays in
  flight meanwhile).

Everything the stub receives is recorded (`requests`, `grades`,
`accepted_for`, `wait_for_grade`, `stats`).

Run as ``python -m tests.support.lms_stub --port P --key K --secret S`` it
serves until SIGTERM/SIGINT, and ``GET /stats`` returns counters as JSON.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import math
import random
import signal
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from defusedxml import ElementTree
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

POX_NS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
OUTCOMES_PATH = "/outcomes"
STATS_PATH = "/stats"

#: How far oauth_timestamp may be from the stub's clock, in seconds.
TIMESTAMP_WINDOW = 300

FAIL_MODES = ("500", "timeout", "failure", "unknown_sourcedid")
OUTCOMES = ("accepted", "rejected", "error_500", "timeout", "failure", "unknown_sourcedid")

_NS = "{%s}" % POX_NS
# Largest body the stub reads; a grade message is well under 2 KB.
_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class OutcomeRequest:
    """One request received at /outcomes and what the stub did with it."""

    time: float  # time.time() when the request was handled
    sourcedid: str | None  # None when the body was never parsed (e.g. rejected)
    score: float | None  # the score sent, when it parsed as a number
    outcome: str  # one of OUTCOMES
    reason: str = ""  # why it was not accepted; "" when accepted


class _Rejected(Exception):
    """OAuth verification failed; the message is the recorded reason."""


class _BadMessage(Exception):
    """The POX body is unusable; carries the codeMinor value to report."""

    def __init__(self, reason: str, code_minor: str = "invaliddata"):
        super().__init__(reason)
        self.code_minor = code_minor


@dataclass
class _Reply:
    """What the handler should send back."""

    status: int
    body: bytes
    content_type: str = "application/xml"
    delay: float = 0.0  # seconds to stall before answering (the "timeout" mode)


class LmsStub:
    """An LTI 1.1 Basic Outcomes service on 127.0.0.1; see the module docstring.

    `consumers` maps oauth_consumer_key to its shared secret.
    """

    def __init__(
        self,
        consumers: dict[str, str],
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        known_sourcedids: Iterable[str] | None = None,
        fail_rate: float = 0.0,
        seed: int | None = None,
        timeout_delay: float = 3.0,
        accept_delay: float = 0.0,
    ):
        if not 0.0 <= fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        self.consumers = dict(consumers)
        self.host = host
        self.port = port
        #: Seconds a "timeout" failure stalls before answering 503.
        self.timeout_delay = timeout_delay
        #: Seconds an accepted grade's answer is held back (it is recorded before).
        self.accept_delay = accept_delay

        # One lock guards every piece of mutable state below; the condition
        # built on it wakes wait_for_grade() whenever a grade is accepted.
        self._lock = threading.Lock()
        self._grade_changed = threading.Condition(self._lock)
        self._known_sourcedids = frozenset(known_sourcedids) if known_sourcedids is not None else None
        self._fail_rate = fail_rate
        self._random = random.Random(seed)
        self._fail_mode: str | None = None
        self._fail_remaining: int | None = None  # None: until recover()
        self._nonces: dict[tuple[str, str], int] = {}  # (key, nonce) -> oauth_timestamp
        self._prune_at = 10_000
        self._grades: dict[str, float] = {}
        self._requests: list[OutcomeRequest] = []
        self._by_outcome: Counter[str] = Counter()
        self._accepted = 0

        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Set by stop() so requests stalled in "timeout" mode finish promptly.
        self._stopping = threading.Event()
        # Set by release(): held answers to accepted grades go out now.
        self._released = threading.Event()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> "LmsStub":
        if self._server is not None:
            raise RuntimeError("LmsStub is already running")
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.stub = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"lms-stub-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "LmsStub":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The outcome service URL to give the tool (lis_outcome_service_url)."""
        return self.base_url + OUTCOMES_PATH

    # --------------------------------------------------------------- behaviour

    def fail(self, mode: str, count: int | None = None) -> None:
        """Answer the next `count` verified requests (None: all, until recover()) in `mode`.

        Modes: "500" (HTTP 500), "timeout" (stall `timeout_delay` s, then 503),
        "failure" (POX codeMajor failure) and "unknown_sourcedid".
        """
        if mode not in FAIL_MODES:
            raise ValueError(f"unknown fail mode {mode!r}; expected one of {FAIL_MODES}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None)")
        with self._lock:
            self._fail_mode = mode
            self._fail_remaining = count

    def release(self) -> None:
        """Send the answers held back by `accept_delay` now, and hold none back from now on."""
        self._released.set()

    def recover(self) -> None:
        """Stop failing requests on purpose (fail_rate still applies)."""
        with self._lock:
            self._fail_mode = None
            self._fail_remaining = None

    @property
    def known_sourcedids(self) -> frozenset[str] | None:
        with self._lock:
            return self._known_sourcedids

    @known_sourcedids.setter
    def known_sourcedids(self, value: Iterable[str] | None) -> None:
        with self._lock:
            self._known_sourcedids = frozenset(value) if value is not None else None

    @property
    def fail_rate(self) -> float:
        with self._lock:
            return self._fail_rate

    @fail_rate.setter
    def fail_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        with self._lock:
            self._fail_rate = value

    # ----------------------------------------------------------------- records

    @property
    def grades(self) -> dict[str, float]:
        """A copy of sourcedid -> latest accepted score."""
        with self._lock:
            return dict(self._grades)

    @property
    def requests(self) -> list[OutcomeRequest]:
        """A copy of every /outcomes request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def accepted_for(self, sourcedid: str) -> list[float]:
        """The scores accepted for `sourcedid`, in the order they arrived."""
        with self._lock:
            return [r.score for r in self._requests if r.outcome == "accepted" and r.sourcedid == sourcedid]

    def wait_for_grade(self, sourcedid: str, value: float | None = None, timeout: float = 10) -> bool:
        """Wait until `sourcedid` has an accepted grade (equal to `value`, if given).

        Returns False if that has not happened within `timeout` seconds.
        """

        def arrived() -> bool:
            grade = self._grades.get(sourcedid)
            if grade is None:
                return False
            return value is None or math.isclose(grade, value, rel_tol=1e-9, abs_tol=1e-9)

        with self._grade_changed:
            return self._grade_changed.wait_for(arrived, timeout=timeout)

    def stats(self) -> dict:
        """Counters, as served at GET /stats."""
        with self._lock:
            return {
                "requests": len(self._requests),
                "accepted": self._accepted,
                "distinct_accepted": len(self._grades),
                "by_outcome": dict(self._by_outcome),
            }

    def reset(self) -> None:
        """Forget recorded requests and grades (seen nonces are kept, so replays still fail)."""
        with self._lock:
            self._grades.clear()
            self._requests.clear()
            self._by_outcome.clear()
            self._accepted = 0

    def _record(self, sourcedid: str | None, score: float | None, outcome: str, reason: str = "") -> None:
        entry = OutcomeRequest(time.time(), sourcedid, score, outcome, reason)
        with self._lock:
            self._requests.append(entry)
            self._by_outcome[outcome] += 1
            if outcome == "accepted":
                self._accepted += 1
                self._grades[sourcedid] = score
                self._grade_changed.notify_all()

    # ------------------------------------------------------------ verification

    def _verify(self, method: str, host: str, target: str, authorization: str, body: bytes) -> None:
        """Check the OAuth 1.0a signature of a request; raise _Rejected on any failure."""
        if not authorization:
            raise _Rejected("missing Authorization header")
        try:
            pairs = parse_authorization_header(authorization)
        except ValueError:
            raise _Rejected("malformed Authorization header") from None
        # oauthlib 4.0.1's parse_authorization_header leaves values percent-encoded.
        params = {unquote(k): unquote(v) for k, v in pairs}
        # (Comparisons below are on bytes: compare_digest refuses non-ASCII str.)
        params.pop("realm", None)  # never part of the signature base string

        for required in ("oauth_consumer_key", "oauth_signature", "oauth_signature_method",
                         "oauth_timestamp", "oauth_nonce", "oauth_body_hash"):
            if not params.get(required):
                raise _Rejected(f"missing {required}")
        if params["oauth_signature_method"] != "HMAC-SHA1":
            raise _Rejected(f"unsupported signature method {params['oauth_signature_method']}")
        if params.get("oauth_version", "1.0") != "1.0":
            raise _Rejected(f"unsupported oauth_version {params['oauth_version']}")

        key = params["oauth_consumer_key"]
        secret = self.consumers.get(key)
        if secret is None:
            raise _Rejected(f"unknown consumer key {key}")

        expected_hash = base64.b64encode(hashlib.sha1(body).digest()).decode("ascii")
        if not hmac.compare_digest(params["oauth_body_hash"].encode(), expected_hash.encode()):
            raise _Rejected("body hash mismatch")

        # Signature base string (RFC 5849 3.4.1): the method, the URL as the client
        # addressed it (Host header + path, no query), and every oauth_* parameter
        # except the signature itself together with the query parameters.  The XML
        # body is not form-encoded, so it contributes only through oauth_body_hash.
        if not host:
            raise _Rejected("missing Host header")
        split = urlsplit(target)
        try:
            base_uri = oauth_signature.base_string_uri(f"http://{host}{split.path}")
        except ValueError:
            raise _Rejected("invalid Host header") from None
        signed = [(k, v) for k, v in params.items() if k != "oauth_signature"]
        signed += parse_qsl(split.query, keep_blank_values=True)
        base_string = oauth_signature.signature_base_string(
            method, base_uri, oauth_signature.normalize_parameters(signed))
        # No token flow in LTI 1.1, so the resource owner secret is empty.
        signer = SimpleNamespace(client_secret=secret, resource_owner_secret="")
        expected_signature = oauth_signature.sign_hmac_sha1_with_client(base_string, signer)
        if not hmac.compare_digest(params["oauth_signature"].encode(), expected_signature.encode()):
            raise _Rejected("signature mismatch")

        try:
            timestamp = int(params["oauth_timestamp"])
        except ValueError:
            raise _Rejected("oauth_timestamp is not an integer") from None
        now = time.time()
        if abs(now - timestamp) > TIMESTAMP_WINDOW:
            raise _Rejected("oauth_timestamp outside the allowed window")

        # Nonces are registered only once the signature is known good, so forged
        # requests cannot use up a client's nonces.
        nonce_key = (key, params["oauth_nonce"])
        with self._lock:
            if nonce_key in self._nonces:
                raise _Rejected("nonce already used")
            self._nonces[nonce_key] = timestamp
            # Entries older than the window can never be replayed successfully
            # (their timestamps are rejected), so prune them now and then: when the dict
            # has doubled since the last prune, so the cost per request stays constant.
            if len(self._nonces) > self._prune_at:
                cutoff = now - 2 * TIMESTAMP_WINDOW
                self._nonces = {k: t for k, t in self._nonces.items() if t >= cutoff}
                self._prune_at = max(10_000, 2 * len(self._nonces))

    # ---------------------------------------------------------------- handling

    def _next_failure(self) -> str | None:
        """The failure this request should suffer (programmed, then random), if any."""
        with self._lock:
            if self._fail_mode is not None:
                mode = self._fail_mode
                if self._fail_remaining is not None:
                    self._fail_remaining -= 1
                    if self._fail_remaining <= 0:
                        self._fail_mode = self._fail_remaining = None
                return mode
            if self._fail_rate and self._random.random() < self._fail_rate:
                return "random_500"
        return None

    def _handle_outcome(self, host: str, target: str, authorization: str, body: bytes) -> _Reply:
        try:
            self._verify("POST", host, target, authorization, body)
        except _Rejected as rejected:
            self._record(None, None, "rejected", str(rejected))
            return _Reply(401, _pox_response("failure", "error", f"Request rejected: {rejected}", "", "",
                                             code_minor=("oauth", "invalidsignature")))

        try:
            message_id, sourcedid, score_text = _parse_replace_result(body)
        except _BadMessage as bad:
            self._record(None, None, "failure", str(bad))
            return _Reply(200, _pox_response("failure", "error", str(bad), "", "replaceResult",
                                             code_minor=("request", bad.code_minor)))
        score = _parse_score(score_text)

        failure = self._next_failure()
        if failure in ("500", "random_500"):
            reason = "programmed 500" if failure == "500" else "random 500 (fail_rate)"
            self._record(sourcedid, score, "error_500", reason)
            return _Reply(500, b"Internal Server Error\n", "text/plain; charset=utf-8")
        if failure == "timeout":
            self._record(sourcedid, score, "timeout", f"stalled {self.timeout_delay}s then 503")
            return _Reply(503, b"Service Unavailable\n", "text/plain; charset=utf-8", delay=self.timeout_delay)
        if failure == "failure":
            description = "The gradebook is temporarily unavailable"
            self._record(sourcedid, score, "failure", description)
            return _Reply(200, _pox_response("failure", "error", description, message_id, "replaceResult"))

        known = self.known_sourcedids
        if failure == "unknown_sourcedid" or (known is not None and sourcedid not in known):
            description = f"Unknown sourcedid: {sourcedid}"
            self._record(sourcedid, score, "unknown_sourcedid", description)
            return _Reply(200, _pox_response("failure", "error", description, message_id, "replaceResult",
                                             code_minor=("sourcedid", "unknownobject")))

        if score is None or not 0.0 <= score <= 1.0:
            description = f"Invalid score {score_text!r}: must be a number from 0 to 1"
            self._record(sourcedid, score, "failure", description)
            return _Reply(200, _pox_response("failure", "error", description, message_id, "replaceResult",
                                             code_minor=("resultScore", "invaliddata")))

        self._record(sourcedid, score, "accepted")
        return _Reply(200, _pox_response("success", "status", f"Score for {sourcedid} is now {score}",
                                         message_id, "replaceResult", body="<replaceResultResponse/>"),
                      delay=self.accept_delay)


# ------------------------------------------------------------------- POX helpers


def _parse_replace_result(body: bytes) -> tuple[str, str, str | None]:
    """(messageIdentifier, sourcedId, score text or None) from a replaceResultRequest."""
    try:
        root = ElementTree.fromstring(body)
    except Exception as error:  # ParseError and defusedxml's entity/DTD refusals
        raise _BadMessage(f"Malformed XML: {error.__class__.__name__}") from None
    if root.tag != _NS + "imsx_POXEnvelopeRequest":
        raise _BadMessage("Not an imsx_POXEnvelopeRequest")
    message_id = root.findtext(f"{_NS}imsx_POXHeader/{_NS}imsx_POXRequestHeaderInfo/{_NS}imsx_messageIdentifier")
    pox_body = root.find(_NS + "imsx_POXBody")
    operation = pox_body[0] if pox_body is not None and len(pox_body) else None
    if operation is None or operation.tag != _NS + "replaceResultRequest":
        name = operation.tag.replace(_NS, "") if operation is not None else "nothing"
        raise _BadMessage(f"Unsupported operation: {name}", "unsupported")
    record = operation.find(_NS + "resultRecord")
    sourcedid = record.findtext(f"{_NS}sourcedGUID/{_NS}sourcedId") if record is not None else None
    if not sourcedid or not sourcedid.strip():
        raise _BadMessage("Missing sourcedId")
    score = record.findtext(f"{_NS}result/{_NS}resultScore/{_NS}textString")
    return (message_id or "").strip(), sourcedid.strip(), score


def _parse_score(text: str | None) -> float | None:
    """The score as a finite float, or None if it is missing or not a number."""
    try:
        score = float(text)
    except (TypeError, ValueError):
        return None
    return score if math.isfinite(score) else None


def _pox_response(code_major: str, severity: str, description: str, message_ref: str, operation: str,
                  *, code_minor: tuple[str, str] | None = None, body: str = "") -> bytes:
    """An imsx_POXEnvelopeResponse; `code_minor` is (field name, field value)."""
    minor = ""
    if code_minor is not None:
        minor = (
            "<imsx_codeMinor><imsx_codeMinorField>"
            f"<imsx_codeMinorFieldName>{escape(code_minor[0])}</imsx_codeMinorFieldName>"
            f"<imsx_codeMinorFieldValue>{escape(code_minor[1])}</imsx_codeMinorFieldValue>"
            "</imsx_codeMinorField></imsx_codeMinor>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<imsx_POXEnvelopeResponse xmlns="{POX_NS}">'
        "<imsx_POXHeader><imsx_POXResponseHeaderInfo>"
        "<imsx_version>V1.0</imsx_version>"
        f"<imsx_messageIdentifier>{uuid.uuid4().hex}</imsx_messageIdentifier>"
        "<imsx_statusInfo>"
        f"<imsx_codeMajor>{code_major}</imsx_codeMajor>"
        f"<imsx_severity>{severity}</imsx_severity>"
        f"<imsx_description>{escape(description)}</imsx_description>"
        f"<imsx_messageRefIdentifier>{escape(message_ref)}</imsx_messageRefIdentifier>"
        f"<imsx_operationRefIdentifier>{escape(operation)}</imsx_operationRefIdentifier>"
        f"{minor}"
        "</imsx_statusInfo>"
        "</imsx_POXResponseHeaderInfo></imsx_POXHeader>"
        f"<imsx_POXBody>{body}</imsx_POXBody>"
        "</imsx_POXEnvelopeResponse>"
    ).encode("utf-8")


# ----------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections under benchmark bursts.
    request_queue_size = 128
    stub: LmsStub

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Open keep-alive connections, so close_connections() can end them: a
        # stopped stub must not go on answering over a client's pooled socket.
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
        # A client vanishing mid-request is routine here (timeouts, stop()).
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive between grade posts, which matters for
    # throughput; every reply therefore carries a Content-Length.
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 60
    # Headers and body go out in separate writes; with Nagle's algorithm on, the
    # body waits for the client's delayed ACK (~40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format, *args) -> None:  # noqa: A002 - signature is inherited
        pass  # per-request logging costs throughput and clutters test output

    def do_POST(self) -> None:
        stub = self.server.stub
        if urlsplit(self.path).path != OUTCOMES_PATH:
            self._discard_body()
            self._send(404, b"Not Found\n", "text/plain; charset=utf-8")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self.close_connection = True
            self._send(411 if length < 0 else 413, b"Bad Content-Length\n", "text/plain; charset=utf-8")
            return
        body = self.rfile.read(length)
        reply = stub._handle_outcome(self.headers.get("Host", ""), self.path,
                                     self.headers.get("Authorization", ""), body)
        if reply.delay:
            # Short waits rather than one sleep, so stop() (and, for held grades, release()) ends it.
            deadline = time.monotonic() + reply.delay
            held = reply.status == 200  # an accepted grade, not the "timeout" failure
            while time.monotonic() < deadline and not stub._stopping.is_set() \
                    and not (held and stub._released.is_set()):
                stub._stopping.wait(0.05)
        self._send(reply.status, reply.body, reply.content_type)

    def do_GET(self) -> None:
        if urlsplit(self.path).path == STATS_PATH:
            self._send(200, json.dumps(self.server.stub.stats()).encode("utf-8"), "application/json")
        else:
            self._send(404, b"Not Found\n", "text/plain; charset=utf-8")

    def _discard_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = 0
        if 0 < length <= _MAX_BODY:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout beat a stalled reply).
            self.close_connection = True


# ------------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.lms_stub",
                                     description="Serve a stub LTI 1.1 Basic Outcomes service.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--key", default="moodle-key", help="oauth_consumer_key")
    parser.add_argument("--secret", default="moodle-secret", help="the consumer's shared secret")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="fraction of requests answering 500")
    parser.add_argument("--seed", type=int, default=None, help="seed for --fail-rate")
    parser.add_argument("--timeout-delay", type=float, default=3.0)
    args = parser.parse_args(argv)
    if not 0.0 <= args.fail_rate <= 1.0:
        parser.error("--fail-rate must be between 0 and 1")

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    stub = LmsStub({args.key: args.secret}, host=args.host, port=args.port,
                   fail_rate=args.fail_rate, seed=args.seed, timeout_delay=args.timeout_delay)
    with stub:
        print(f"LMS stub listening on {stub.url}", flush=True)
        while not stop.wait(0.5):  # a bounded wait keeps the main thread responsive to signals
            pass
    print(json.dumps(stub.stats()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
