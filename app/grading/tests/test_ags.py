"""LTI 1.3 Assignment and Grade Services (grading/ags.py) against a small platform on loopback:
a token endpoint that checks the tool's signed assertion with its public key, a line items
container (filters, pages) and score endpoints, each answering as told when a test needs it.

What is shown: the token request (client credentials with an RS256 assertion naming our kid,
only the scopes needed), tokens cached until they expire and fetched again after a 401, the
score's body and headers, the launch's line item used as given or ours found (resource link id
and tag) or created once, how answers are judged (retry, failed, with readable messages), no
redirects, no loopback unless allowed, and no key or token in a message or a log.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
import types
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache, caches
from django.core.cache.backends import base as cache_base
from django.core.cache.backends import locmem

from grading import ags
from grading.ags import SCOPE_LINEITEM as LINEITEM
from grading.ags import SCOPE_LINEITEM_READONLY as READONLY
from grading.ags import SCOPE_SCORE as SCORE
from grading.ags import AgsDelivery
from grading.models import SendOutcome

CLIENT_ID = "numbas-client-7"
KID = "numbas-key-2024"
TAG = "numbas-lti"
LINK = "resource-link-42"
WHEN = datetime(2024, 5, 1, 14, 34, 56, 789123, tzinfo=timezone(timedelta(hours=2)))
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"


@dataclass(frozen=True)
class Keys:
    private_pem: str
    public_pem: str


@pytest.fixture(scope="module")
def keys() -> Keys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Keys(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()).decode(),
        key.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
    )


@dataclass
class Canned:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0


@dataclass
class Platform:
    """An LMS's LTI 1.3 services, on 127.0.0.1 (the container and line items carry Moodle's
    ``?type_id=3``)."""

    public_pem: str
    audience: str = ""  # "" means the token URL
    granted: frozenset = frozenset({SCORE, LINEITEM, READONLY})
    expires_in: float | None = 3600
    page_size: int = 50
    filters: bool = False  # honour resource_link_id/tag in the container's query (not all do)
    tokens: dict = field(default_factory=dict)  # token -> its scopes (those not revoked)
    issued: list = field(default_factory=list)  # every token given
    token_requests: list = field(default_factory=list)  # {"form", "header", "claims"}
    lineitems: list = field(default_factory=list)
    created: list = field(default_factory=list)  # bodies POSTed to the container
    scores: list = field(default_factory=list)  # {"path", "query", "headers", "body"}
    log: list = field(default_factory=list)  # (method, path with query, headers)
    canned: list = field(default_factory=list)  # (method, path, Canned): answered before the usual answer

    def __post_init__(self):
        self._lock = threading.Lock()
        self._seen_jti: set[str] = set()
        self._next_id = 1

    # --- set-up ---
    def start(self) -> "Platform":
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = platform.answer(self.command, self.path, dict(self.headers), body)
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = _any

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    @property
    def token_url(self) -> str:
        return self.url("/oauth2/token")

    @property
    def container_url(self) -> str:
        return self.url("/course/5/lineitems?type_id=3")

    def add_lineitem(self, *, resource_link_id=LINK, tag=TAG, label="Exam", score_maximum=10) -> str:
        with self._lock:
            return self._add({"scoreMaximum": score_maximum, "label": label, "resourceLinkId": resource_link_id,
                              "tag": tag})["id"]

    def _add(self, item: dict) -> dict:
        item = {**item, "id": self.url(f"/course/5/lineitems/{self._next_id}/lineitem?type_id=3")}
        self._next_id += 1
        self.lineitems.append(item)
        return item

    def answer_next(self, method: str, path: str, status: int, body: bytes = b"", *, times: int = 1,
                    headers: dict | None = None, delay: float = 0.0) -> None:
        canned = Canned(status, body, headers if headers is not None else {"Content-Type": "application/json"}, delay)
        self.canned.extend([(method, path, canned)] * times)

    def revoke_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def requests_to(self, path: str) -> list:
        return [entry for entry in self.log if urlsplit(entry[1]).path == path]

    # --- answers ---
    def answer(self, method: str, raw_path: str, headers: dict, body: bytes) -> Canned:
        parts = urlsplit(raw_path)
        with self._lock:
            self.log.append((method, raw_path, headers))
            for index, (m, p, canned) in enumerate(self.canned):
                if m == method and p == parts.path:
                    del self.canned[index]
                    return canned
            if parts.path == "/oauth2/token" and method == "POST":
                return self._token(headers, body)
            scopes = self.tokens.get(headers.get("Authorization", "").removeprefix("Bearer "))
            if scopes is None:
                return Canned(401, b'{"error": "invalid_token"}')
            if parts.path == "/course/5/lineitems" and method == "GET":
                return self._container(scopes, parts.query)
            if parts.path == "/course/5/lineitems" and method == "POST":
                return self._create(scopes, headers, body)
            if parts.path.endswith("/lineitem/scores") and method == "POST":
                return self._score(scopes, parts, headers, body)
        return Canned(404, b"<html><body>Not found</body></html>", {"Content-Type": "text/html"})

    def _token(self, headers: dict, body: bytes) -> Canned:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        record = {"form": form, "headers": headers, "header": None, "claims": None}
        self.token_requests.append(record)
        if form.get("grant_type") != "client_credentials":
            return Canned(400, b'{"error": "unsupported_grant_type"}')
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return Canned(400, b'{"error": "invalid_request"}')
        try:
            assertion = form["client_assertion"]
            record["header"] = jwt.get_unverified_header(assertion)
            record["claims"] = claims = jwt.decode(
                assertion, self.public_pem, algorithms=["RS256"], audience=self.audience or self.token_url,
                issuer=CLIENT_ID, options={"require": ["iss", "sub", "aud", "iat", "exp", "jti"]},
            )
        except (KeyError, jwt.PyJWTError) as error:
            return Canned(401, json.dumps({"error": "invalid_client", "error_description": str(error)}).encode())
        if record["header"].get("kid") != KID or claims["sub"] != CLIENT_ID or claims["exp"] - claims["iat"] > 300:
            return Canned(401, b'{"error": "invalid_client"}')
        if claims["jti"] in self._seen_jti:
            return Canned(400, b'{"error": "invalid_grant", "error_description": "jti replayed"}')
        self._seen_jti.add(claims["jti"])
        scopes = set(form.get("scope", "").split())
        if not scopes or not scopes <= self.granted:
            return Canned(400, b'{"error": "invalid_scope"}')
        token = "tok-" + secrets.token_urlsafe(16)
        self.tokens[token] = scopes
        self.issued.append(token)
        answer = {"access_token": token, "token_type": "Bearer", "scope": " ".join(sorted(scopes))}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return Canned(200, json.dumps(answer).encode())

    def _container(self, scopes: set, query: str) -> Canned:
        if not scopes & {LINEITEM, READONLY}:
            return Canned(403, b'{"error": "insufficient scope"}')
        params = dict(parse_qsl(query))
        items = self.lineitems
        if self.filters:
            items = [i for i in items if all(i.get(k) == params[p] for p, k in
                                             (("resource_link_id", "resourceLinkId"), ("tag", "tag")) if p in params)]
        page = int(params.get("Page", "1"))
        shown = items[(page - 1) * self.page_size: page * self.page_size]
        headers = {"Content-Type": "application/vnd.ims.lis.v2.lineitemcontainer+json"}
        if page * self.page_size < len(items):
            following = self.url("/course/5/lineitems?" + urlencode({**params, "Page": page + 1}))
            headers["Link"] = f'<{following}>; rel="next"'
        return Canned(200, json.dumps(shown).encode(), headers)

    def _create(self, scopes: set, headers: dict, body: bytes) -> Canned:
        if LINEITEM not in scopes:
            return Canned(403, b'{"error": "insufficient scope"}')
        if headers.get("Content-Type") != LINEITEM_TYPE:
            return Canned(415, b'{"error": "unsupported media type"}')
        item = json.loads(body)
        self.created.append(item)
        return Canned(201, json.dumps(self._add(item)).encode(), {"Content-Type": LINEITEM_TYPE})

    def _score(self, scopes: set, parts, headers: dict, body: bytes) -> Canned:
        if SCORE not in scopes:
            return Canned(403, b'{"error": "insufficient scope"}')
        if headers.get("Content-Type") != SCORE_TYPE:
            return Canned(415, b'{"error": "unsupported media type"}')
        lineitem = self.url(parts.path.removesuffix("/scores") + ("?" + parts.query if parts.query else ""))
        if lineitem not in [i["id"] for i in self.lineitems]:
            return Canned(404, b'{"error": "no such line item"}')
        self.scores.append({"path": parts.path, "query": parts.query, "headers": headers, "body": json.loads(body)})
        return Canned(200, json.dumps({"resultUrl": lineitem + "/results/1"}).encode())


@pytest.fixture
def platform(keys):
    running = Platform(keys.public_pem).start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def own_cache(settings):
    """A cache of the test's own (the token and line item caches are process-wide)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"ags-test-{uuid.uuid4()}"}}


@pytest.fixture
def clock(monkeypatch):
    """Moves the cache's clock (the only clock tokens expire by here)."""
    real = time.time
    moved = types.SimpleNamespace(offset=0.0)
    fake = types.SimpleNamespace(time=lambda: real() + moved.offset)
    monkeypatch.setattr(locmem, "time", fake)
    monkeypatch.setattr(cache_base, "time", fake)
    return moved


def delivery(platform: Platform, keys: Keys, **changes) -> AgsDelivery:
    given = AgsDelivery(
        token_url=platform.token_url, auth_audience="", client_id=CLIENT_ID, private_key_pem=keys.private_pem,
        kid=KID, scopes=(SCORE, LINEITEM, READONLY, "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"),
        lineitem_url="", lineitems_url=platform.container_url, user_id="student-sub-1", score=0.75,
        score_maximum=8, completed=True, resource_link_id=LINK, label="Week 3 exam", tag=TAG, timestamp=WHEN,
    )
    return replace(given, **changes)


def with_lineitem(platform: Platform, keys: Keys, **changes) -> AgsDelivery:
    return delivery(platform, keys, lineitem_url=platform.add_lineitem(), **changes)


# --- the token --------------------------------------------------------------------------------------


def test_the_token_request_is_client_credentials_with_an_rs256_assertion_naming_our_kid(platform, keys):
    sent = ags.send(with_lineitem(platform, keys))
    assert sent.result.outcome == SendOutcome.DELIVERED, sent.result.lms_answer
    [request] = platform.token_requests
    form = request["form"]
    assert set(form) == {"grant_type", "client_assertion_type", "client_assertion", "scope"}
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["scope"] == SCORE  # the claim's line item: only the score scope is asked for
    assert request["header"] == {"alg": "RS256", "typ": "JWT", "kid": KID}
    claims = request["claims"]  # verified by the platform with the tool's public key
    assert claims["iss"] == claims["sub"] == CLIENT_ID and claims["aud"] == platform.token_url
    assert claims["exp"] - claims["iat"] <= 120 and claims["jti"]
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert request["headers"]["User-Agent"] == "Numbas LTI Provider"


def test_the_assertion_is_for_the_audience_when_one_is_given(platform, keys):
    platform.audience = "https://lms.example/oauth2/audience"
    sent = ags.send(with_lineitem(platform, keys, auth_audience=platform.audience))
    assert sent.result.outcome == SendOutcome.DELIVERED, sent.result.lms_answer
    assert platform.token_requests[0]["claims"]["aud"] == platform.audience


def test_tokens_are_cached_across_sends(platform, keys):
    given = with_lineitem(platform, keys)
    for score in (0.5, 0.75):
        assert ags.send(replace(given, score=score)).result.outcome == SendOutcome.DELIVERED
    assert len(platform.token_requests) == 1 and len(platform.scores) == 2
    assert platform.scores[0]["headers"]["Authorization"] == platform.scores[1]["headers"]["Authorization"]


def test_a_token_is_cached_until_shortly_before_it_expires(platform, keys, clock):
    given = with_lineitem(platform, keys)
    ags.send(given)
    clock.offset = 3600 - ags.TOKEN_SAFETY_MARGIN - 5
    ags.send(given)
    assert len(platform.token_requests) == 1
    clock.offset = 3600 - ags.TOKEN_SAFETY_MARGIN + 1
    assert ags.send(given).result.outcome == SendOutcome.DELIVERED
    assert len(platform.token_requests) == 2
    assert len({s["headers"]["Authorization"] for s in platform.scores}) == 2


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="TEST_REDIS_URL not set (scripts/test sets it)")
def test_tokens_are_shared_through_redis_for_their_lifetime(platform, keys, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": os.environ["TEST_REDIS_URL"], "KEY_PREFIX": f"ags-{uuid.uuid4()}"}}
    given = with_lineitem(platform, keys)
    ags.send(given)
    other_connection = threading.Thread(target=ags.send, args=(given,))  # another thread: its own connection
    other_connection.start()
    other_connection.join(10)
    assert len(platform.token_requests) == 1 and len(platform.scores) == 2
    stored = caches["default"].make_key(ags.token_cache_key(platform.token_url, CLIENT_ID, [SCORE]))
    ttl = redis.Redis.from_url(os.environ["TEST_REDIS_URL"]).ttl(stored)
    assert 3600 - ags.TOKEN_SAFETY_MARGIN - 10 <= ttl <= 3600 - ags.TOKEN_SAFETY_MARGIN


def test_a_cache_that_cannot_be_reached_slows_sends_down_but_does_not_stop_them(platform, keys, settings, caplog):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        closed = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": closed}}
    for _ in range(2):
        sent = ags.send(delivery(platform, keys))
        assert sent.result.outcome == SendOutcome.DELIVERED, sent.result.lms_answer
    assert len(platform.token_requests) == 2 and len(platform.created) == 1
    assert "The cache did not answer (ConnectionError)" in caplog.text


def test_a_token_too_short_lived_to_cache_is_used_once(platform, keys):
    platform.expires_in = ags.TOKEN_SAFETY_MARGIN
    given = with_lineitem(platform, keys)
    ags.send(given)
    ags.send(given)
    assert len(platform.token_requests) == 2


def test_a_token_without_expires_in_is_cached(platform, keys):
    platform.expires_in = None
    given = with_lineitem(platform, keys)
    ags.send(given)
    ags.send(given)
    assert len(platform.token_requests) == 1


def test_each_scope_set_has_its_own_token(platform, keys):
    ags.send(with_lineitem(platform, keys))
    ags.send(delivery(platform, keys))  # must find a line item: score + lineitem
    assert [r["form"]["scope"] for r in platform.token_requests] == [SCORE, f"{LINEITEM} {SCORE}"]


def test_a_401_drops_the_cached_token_and_tries_once_more_with_a_new_one(platform, keys):
    given = with_lineitem(platform, keys)
    ags.send(given)
    platform.revoke_tokens()  # the LMS ended it early
    sent = ags.send(given)
    assert sent.result.outcome == SendOutcome.DELIVERED, sent.result.lms_answer
    assert len(platform.token_requests) == 2 and len(platform.scores) == 2
    assert len(platform.requests_to("/course/5/lineitems/1/lineitem/scores")) == 3  # one refused with 401
    ags.send(given)  # and the new token is the cached one
    assert len(platform.token_requests) == 2


def test_a_second_401_fails(platform, keys):
    given = with_lineitem(platform, keys)
    platform.answer_next("POST", "/course/5/lineitems/1/lineitem/scores", 401, b'{"error": "invalid_token"}',
                         times=2)
    sent = ags.send(given)
    assert sent.result.outcome == SendOutcome.FAILED and sent.result.http_status == 401
    assert sent.result.lms_answer.startswith("Score: the LMS refused it (HTTP 401).")
    assert "grade sync" in sent.result.lms_answer
    assert len(platform.token_requests) == 2  # the second token was not trusted either


@pytest.mark.parametrize("error", ["invalid_client", "invalid_grant", "unauthorized_client"])
def test_a_token_refused_for_its_configuration_fails(platform, keys, error):
    body = json.dumps({"error": error, "error_description": "Client authentication failed"}).encode()
    platform.answer_next("POST", "/oauth2/token", 400 if error != "invalid_client" else 401, body)
    sent = ags.send(with_lineitem(platform, keys))
    assert sent.result.outcome == SendOutcome.FAILED
    answer = sent.result.lms_answer
    assert answer.startswith("Access token: the LMS refused it (HTTP 40")
    assert "client ID" in answer and f"The LMS answered: “{error}: Client authentication failed”" in answer
    assert sent.result.lti_answer is True
    assert platform.scores == []


def test_a_wrong_key_is_refused_by_the_platform_and_fails(platform, keys):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    sent = ags.send(with_lineitem(platform, keys, private_key_pem=other))
    assert sent.result.outcome == SendOutcome.FAILED and sent.result.http_status == 401
    assert "invalid_client: Signature verification failed" in sent.result.lms_answer


def test_an_unusable_private_key_fails_without_a_request(platform, keys):
    sent = ags.send(with_lineitem(platform, keys, private_key_pem="-----BEGIN PRIVATE KEY-----\nnope\n"))
    assert sent.result.outcome == SendOutcome.FAILED
    assert "private key could not sign" in sent.result.lms_answer and "nope" not in sent.result.lms_answer
    assert platform.log == []


def test_a_scope_the_platform_did_not_grant_fails(platform, keys):
    platform.granted = frozenset({SCORE})  # the launch claimed more than the platform grants
    sent = ags.send(delivery(platform, keys))
    assert sent.result.outcome == SendOutcome.FAILED
    assert "Access token: the LMS refused it (HTTP 400)." in sent.result.lms_answer
    assert "grade scopes" in sent.result.lms_answer


@pytest.mark.parametrize("status, body", [
    (500, b"Internal error"), (503, b""), (429, b'{"error": "slow down"}'),
    (400, b'{"error": "temporarily_unavailable"}'),
])
def test_a_token_endpoint_having_a_bad_moment_is_retried(platform, keys, status, body):
    platform.answer_next("POST", "/oauth2/token", status, body)
    sent = ags.send(with_lineitem(platform, keys))
    assert sent.result.outcome == SendOutcome.RETRY and sent.result.http_status == status
    assert sent.result.lms_answer.startswith(f"Access token: the LMS could not answer now (HTTP {status})")


def test_a_token_answer_without_a_token_is_not_an_oauth_answer(platform, keys):
    platform.answer_next("POST", "/oauth2/token", 200, b"<html><title>Log in</title></html>",
                         headers={"Content-Type": "text/html"})
    sent = ags.send(with_lineitem(platform, keys))
    assert sent.result.outcome == SendOutcome.RETRY and sent.result.lti_answer is False
    assert "may be a login or error page" in sent.result.lms_answer and "Log in" in sent.result.lms_answer


# --- the score ------------------------------------------------------------------------------------------


def test_the_score_body_and_headers(platform, keys):
    given = with_lineitem(platform, keys)
    sent = ags.send(given)
    assert sent.result.outcome == SendOutcome.DELIVERED and sent.result.http_status == 200
    assert sent.result.lti_answer is True and sent.result.lms_answer == "The LMS accepted the score (HTTP 200)."
    [score] = platform.scores
    assert score["path"] == "/course/5/lineitems/1/lineitem/scores" and score["query"] == "type_id=3"
    assert score["body"] == {
        "userId": "student-sub-1", "scoreGiven": 6, "scoreMaximum": 8, "activityProgress": "Completed",
        "gradingProgress": "FullyGraded", "timestamp": "2024-05-01T12:34:56.789+00:00",
    }
    headers = score["headers"]
    assert headers["Content-Type"] == SCORE_TYPE
    assert headers["Authorization"] == "Bearer " + next(iter(platform.tokens))
    assert headers["User-Agent"] == "Numbas LTI Provider" and "Cookie" not in headers
    assert sent.lineitem_url == given.lineitem_url and not sent.lineitem_created


def test_a_score_in_progress_and_a_fractional_one(platform, keys):
    ags.send(with_lineitem(platform, keys, score=1 / 3, score_maximum=10, completed=False))
    body = platform.scores[0]["body"]
    assert (body["scoreGiven"], body["scoreMaximum"]) == (3.3333, 10)
    assert (body["activityProgress"], body["gradingProgress"]) == ("InProgress", "Pending")


def test_a_score_is_kept_within_its_maximum(platform, keys):
    ags.send(with_lineitem(platform, keys, score=1.0000001, score_maximum=7.5))
    assert platform.scores[0]["body"]["scoreGiven"] == 7.5


def test_a_naive_timestamp_or_no_maximum_is_the_callers_mistake(platform, keys):
    with pytest.raises(ValueError, match="aware"):
        ags.send(with_lineitem(platform, keys, timestamp=datetime(2024, 5, 1, 12, 0)))
    with pytest.raises(ValueError, match="score_maximum"):
        ags.send(with_lineitem(platform, keys, score_maximum=0))
    assert platform.log == []


def test_the_line_items_query_stays_after_the_scores_path():
    ending = ags.url_with_path_ending
    assert ending("https://lms.test/li/7?type_id=3", "scores") == "https://lms.test/li/7/scores?type_id=3"
    assert ending("https://lms.test/li/7/", "scores") == "https://lms.test/li/7/scores"
    assert ending("https://lms.test/li/7?a=1&b=2", "scores") == "https://lms.test/li/7/scores?a=1&b=2"


def test_an_empty_2xx_delivers(platform, keys):
    given = with_lineitem(platform, keys)
    platform.answer_next("POST", "/course/5/lineitems/1/lineitem/scores", 204, headers={})
    sent = ags.send(given)
    assert sent.result.outcome == SendOutcome.DELIVERED and sent.result.http_status == 204


# --- the line item ------------------------------------------------------------------------------------------


def test_the_claims_line_item_is_used_without_searching(platform, keys):
    given = with_lineitem(platform, keys)
    ags.send(given)
    assert [(m, urlsplit(p).path) for m, p, _ in platform.log] == [
        ("POST", "/oauth2/token"), ("POST", "/course/5/lineitems/1/lineitem/scores")]


def test_ours_is_found_by_resource_link_id_and_tag_across_pages(platform, keys):
    platform.page_size = 2
    platform.add_lineitem(resource_link_id=LINK, tag="someone-else")
    platform.add_lineitem(resource_link_id="another-link", tag=TAG)
    platform.add_lineitem(resource_link_id="another-link", tag="x")
    ours = platform.add_lineitem()
    sent = ags.send(delivery(platform, keys, scopes=(SCORE, READONLY)))
    assert sent.result.outcome == SendOutcome.DELIVERED, sent.result.lms_answer
    assert sent.lineitem_url == ours and not sent.lineitem_created
    assert platform.token_requests[0]["form"]["scope"] == f"{READONLY} {SCORE}"
    searches = platform.requests_to("/course/5/lineitems")
    assert len(searches) == 2 and platform.created == []
    first = dict(parse_qsl(urlsplit(searches[0][1]).query))
    assert first == {"type_id": "3", "resource_link_id": LINK, "tag": TAG}  # the container may filter
    assert dict(parse_qsl(urlsplit(searches[1][1]).query))["Page"] == "2"  # the next link as given, case kept
    assert searches[0][2]["Accept"] == "application/vnd.ims.lis.v2.lineitemcontainer+json"
    assert platform.scores[0]["path"] == "/course/5/lineitems/4/lineitem/scores"


def test_a_next_page_elsewhere_is_not_followed(platform, keys):
    platform.answer_next("GET", "/course/5/lineitems", 200, b"[]", headers={
        "Content-Type": "application/json", "Link": '<http://127.0.0.2:9/steal>; rel="next"'})
    sent = ags.send(delivery(platform, keys, scopes=(SCORE, READONLY)))
    assert sent.result.outcome == SendOutcome.FAILED
    assert "No gradebook column (line item) for this activity was found" in sent.result.lms_answer


def test_it_is_created_once_with_the_maximum_and_found_again(platform, keys):
    platform.add_lineitem(resource_link_id="another-link")
    given = delivery(platform, keys)
    sent = ags.send(given)
    assert sent.result.outcome == SendOutcome.DELIVERED, sent.result.lms_answer
    assert sent.lineitem_created and "created" in sent.result.lms_answer
    assert platform.created == [{"scoreMaximum": 8, "label": "Week 3 exam", "resourceLinkId": LINK, "tag": TAG}]
    create = [e for e in platform.log if e[0] == "POST" and urlsplit(e[1]).path == "/course/5/lineitems"]
    assert create[0][1] == "/course/5/lineitems?type_id=3"  # the container's URL as given
    assert create[0][2]["Content-Type"] == LINEITEM_TYPE
    assert sent.lineitem_url == platform.lineitems[1]["id"]
    assert platform.token_requests[0]["form"]["scope"] == f"{LINEITEM} {SCORE}"

    again = ags.send(given)  # remembered: no search, no second line item
    assert again.lineitem_url == sent.lineitem_url and not again.lineitem_created
    assert len(platform.requests_to("/course/5/lineitems")) == 2  # the first search and the creation
    cache.clear()  # another process, a cache lost: found by searching
    third = ags.send(given)
    assert third.lineitem_url == sent.lineitem_url and not third.lineitem_created
    assert len(platform.created) == 1 and len(platform.scores) == 3


def test_concurrent_sends_create_one_line_item(platform, keys):
    platform.answer_next("GET", "/course/5/lineitems", 200, b"[]", delay=0.3)  # a slow first search
    given = delivery(platform, keys)
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(ags.send(replace(given, user_id=f"s{i}"))))
               for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [r.result.outcome for r in results] == [SendOutcome.DELIVERED] * 4
    assert len(platform.created) == 1 and len({r.lineitem_url for r in results}) == 1
    assert sum(r.lineitem_created for r in results) == 1


def test_without_a_line_item_or_the_scope_to_find_one_it_fails_saying_what_to_change(platform, keys):
    sent = ags.send(delivery(platform, keys, scopes=(SCORE,)))
    assert sent.result.outcome == SendOutcome.FAILED and sent.result.http_status is None
    assert "does not let this tool find or create one" in sent.result.lms_answer
    assert "In the LMS" in sent.result.lms_answer
    sent = ags.send(delivery(platform, keys, lineitems_url=""))
    assert sent.result.outcome == SendOutcome.FAILED
    assert platform.log == []


def test_read_only_line_items_and_none_of_ours_fails(platform, keys):
    sent = ags.send(delivery(platform, keys, scopes=(SCORE, READONLY)))
    assert sent.result.outcome == SendOutcome.FAILED
    assert "does not let this tool create one" in sent.result.lms_answer
    assert platform.created == [] and platform.scores == []


def test_without_the_score_scope_it_fails(platform, keys):
    sent = ags.send(with_lineitem(platform, keys, scopes=(LINEITEM,)))
    assert sent.result.outcome == SendOutcome.FAILED and "score scope" in sent.result.lms_answer
    assert platform.log == []


def test_a_line_item_gone_fails_and_is_looked_for_again(platform, keys):
    given = delivery(platform, keys)
    first = ags.send(given)
    platform.lineitems.clear()  # deleted in the LMS
    sent = ags.send(given)
    assert sent.result.outcome == SendOutcome.FAILED and sent.result.http_status == 404
    assert sent.result.lms_answer.startswith("Score: the LMS refused it (HTTP 404).")
    assert "deleted in the LMS" in sent.result.lms_answer
    third = ags.send(given)  # not remembered any more: searched, and created again
    assert third.result.outcome == SendOutcome.DELIVERED and third.lineitem_created
    assert third.lineitem_url != first.lineitem_url


@pytest.mark.parametrize("step, path, method", [
    ("Finding the gradebook column", "/course/5/lineitems", "GET"),
    ("Creating the gradebook column", "/course/5/lineitems", "POST"),
])
def test_line_item_trouble_names_the_step(platform, keys, step, path, method):
    platform.answer_next(method, path, 403, b'{"errors": "not allowed"}')
    sent = ags.send(delivery(platform, keys))
    assert sent.result.outcome == SendOutcome.FAILED
    assert sent.result.lms_answer.startswith(f"{step}: the LMS refused it (HTTP 403).")
    assert "not allowed" in sent.result.lms_answer


def test_a_container_answer_that_is_not_a_list_is_not_an_ags_answer(platform, keys):
    platform.answer_next("GET", "/course/5/lineitems", 200, b'{"lineitems": []}')
    sent = ags.send(delivery(platform, keys))
    assert sent.result.outcome == SendOutcome.RETRY and sent.result.lti_answer is False
    assert sent.result.lms_answer.startswith("Finding the gradebook column: the LMS answered (HTTP 200), but not")


# --- judging the score's answer ---------------------------------------------------------------------------

SCORES = "/course/5/lineitems/1/lineitem/scores"


@pytest.mark.parametrize("status, body, lti", [
    (500, b"<html>Internal Server Error</html>", None), (503, b"", None), (429, b'{"error": "rate"}', None),
    (502, b"Bad gateway", None), (408, b"", None),
])
def test_outages_are_retried(platform, keys, status, body, lti):
    given = with_lineitem(platform, keys)
    platform.answer_next("POST", SCORES, status, body)
    sent = ags.send(given)
    assert (sent.result.outcome, sent.result.http_status, sent.result.lti_answer) == (SendOutcome.RETRY, status, lti)
    assert sent.result.lms_answer.startswith(f"Score: the LMS could not answer now (HTTP {status}); it will be tried")


@pytest.mark.parametrize("status, body, lti, said", [
    (400, b'{"error": "scoreGiven must be a number"}', True, "scoreGiven must be a number"),
    (404, b"<html><body>Page not found</body></html>", False, "Page not found"),
    (422, b'{"errors": {"userId": "not enrolled"}}', True, "not enrolled"),
    (403, b"", False, "The LMS answered with nothing."),
])
def test_refusals_fail_with_a_readable_message(platform, keys, status, body, lti, said):
    given = with_lineitem(platform, keys)
    headers = {"Content-Type": "text/html"} if body.startswith(b"<") else {"Content-Type": "application/json"}
    platform.answer_next("POST", SCORES, status, body, headers=headers)
    sent = ags.send(given)
    assert (sent.result.outcome, sent.result.http_status, sent.result.lti_answer) == (SendOutcome.FAILED, status, lti)
    assert sent.result.lms_answer.startswith(f"Score: the LMS refused it (HTTP {status}).")
    assert said in sent.result.lms_answer


def test_a_login_page_answered_with_200_is_retried_as_not_ags(platform, keys):
    given = with_lineitem(platform, keys)
    platform.answer_next("POST", SCORES, 200, b"<!doctype html><title>Log in</title><form></form>",
                         headers={"Content-Type": "text/html"})
    sent = ags.send(given)
    assert (sent.result.outcome, sent.result.lti_answer) == (SendOutcome.RETRY, False)
    assert "login or error page" in sent.result.lms_answer


def test_a_timeout_is_retried(platform, keys):
    given = with_lineitem(platform, keys)
    platform.answer_next("POST", SCORES, 200, b"{}", delay=1.0)
    started = time.monotonic()
    sent = ags.send(given, timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert (sent.result.outcome, sent.result.http_status) == (SendOutcome.RETRY, None)
    assert sent.result.lms_answer == "Score: the LMS did not answer in time."


def test_the_whole_send_has_a_budget(platform, keys):
    platform.answer_next("POST", "/oauth2/token", 200, b"{}", delay=0.4)  # slow, then wrong
    sent = ags.send(with_lineitem(platform, keys), timeout=5, budget=0.2)
    assert sent.result.outcome == SendOutcome.RETRY and "did not answer in time" in sent.result.lms_answer


def test_an_lms_that_cannot_be_reached_is_retried(platform, keys):
    listener = socket.create_server(("127.0.0.1", 0))
    closed_port = listener.getsockname()[1]
    listener.close()
    sent = ags.send(with_lineitem(platform, keys, token_url=f"http://127.0.0.1:{closed_port}/token"))
    assert sent.result.outcome == SendOutcome.RETRY and sent.result.http_status is None
    assert sent.result.lms_answer == "Access token: could not reach the LMS: NewConnectionError"


@pytest.mark.parametrize("path, step", [(SCORES, "Score"), ("/oauth2/token", "Access token")])
def test_a_redirect_is_not_followed(platform, keys, path, step):
    given = with_lineitem(platform, keys)
    platform.answer_next("POST", path, 302, headers={"Location": platform.url("/elsewhere")})
    sent = ags.send(given)
    assert (sent.result.outcome, sent.result.http_status) == (SendOutcome.FAILED, 302)
    assert sent.result.lms_answer.startswith(f"{step}: the LMS's address redirects elsewhere (HTTP 302).")
    assert platform.requests_to("/elsewhere") == []


def test_loopback_is_refused_when_not_allowed(platform, keys, settings):
    given = with_lineitem(platform, keys)
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    sent = ags.send(given)
    assert (sent.result.outcome, sent.result.http_status) == (SendOutcome.FAILED, None)
    assert sent.result.lms_answer.startswith("Access token: The LMS's grade address (127.0.0.1) points to a loopback")
    assert platform.log == []


def test_a_line_item_on_a_refused_address_is_refused(platform, keys):
    sent = ags.send(delivery(platform, keys, lineitem_url="http://169.254.169.254/latest/lineitem"))
    assert sent.result.outcome == SendOutcome.FAILED and "link-local" in sent.result.lms_answer
    assert platform.log == []


def test_a_created_line_item_on_a_refused_address_is_not_posted_to(platform, keys):
    platform.answer_next("POST", "/course/5/lineitems", 201, b'{"id": "http://10.0.0.5/lineitem"}')
    sent = ags.send(delivery(platform, keys))
    assert sent.result.outcome == SendOutcome.FAILED
    assert sent.result.lms_answer.startswith("Score: The LMS's grade address (10.0.0.5) points to a private network")


# --- secrets -------------------------------------------------------------------------------------------------


def test_no_key_or_token_in_messages_or_logs(platform, keys, caplog):
    caplog.set_level("DEBUG")
    given = with_lineitem(platform, keys)
    answers = [ags.send(given).result.lms_answer]
    platform.revoke_tokens()
    answers.append(ags.send(given).result.lms_answer)
    platform.answer_next("POST", SCORES, 400, b'{"error": "nope"}')
    answers.append(ags.send(given).result.lms_answer)
    cache.clear()
    platform.answer_next("POST", "/oauth2/token", 401, b'{"error": "invalid_client"}')
    answers.append(ags.send(given).result.lms_answer)
    key_body = keys.private_pem.splitlines()[5]
    tokens = platform.issued
    assert len(tokens) == 2 and platform.canned == []
    for text in answers + [caplog.text, repr(given)]:
        assert key_body not in text and "PRIVATE KEY" not in text
        assert not any(token in text for token in tokens)


@pytest.mark.parametrize("step, status, body, outcome, lti", [
    (ags.Step.TOKEN, 401, b'{"error": "invalid_client"}', SendOutcome.FAILED, True),
    (ags.Step.TOKEN, 400, b'{"error": "server_error"}', SendOutcome.RETRY, None),
    (ags.Step.TOKEN, 418, b"teapot", SendOutcome.FAILED, False),
    (ags.Step.SCORE, 409, b'{"error": "older"}', SendOutcome.FAILED, True),
    (ags.Step.SCORE, 418, b'{"error": "teapot"}', SendOutcome.RETRY, True),
    (ags.Step.SCORE, 418, b"<html>teapot</html>", SendOutcome.RETRY, False),
    (ags.Step.SCORE, 425, b"", SendOutcome.RETRY, None),
    (ags.Step.FIND, 301, b"", SendOutcome.FAILED, None),
])
def test_judging(step, status, body, outcome, lti):
    judged = ags.judge_answer(step, status, body, html=body.startswith(b"<"))
    assert (judged.outcome, judged.lti_answer) == (outcome, lti)
