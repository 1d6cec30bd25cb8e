"""The `requests.Session` of core/outbound.py (what pylti1p3 gets for key sets, access tokens and
LTI 1.3 services) obeys the same rules as `OutboundClient`: refused addresses are refused before
connecting, redirects come back instead of being followed, every request has a timeout and its
answer is read only so far and so long; no proxies, no cookies, our User-Agent.

All traffic stays on 127.0.0.0/8 (see tests/support/egress.py).
"""

from __future__ import annotations

import socket
import time
from contextlib import contextmanager

import pytest
import requests

from core import outbound
from core.outbound import AddressPolicy, DestinationRefused, Refusal
from tests.support import egress
from tests.support.egress import CannedServer

attempts, resolve = egress.attempts, egress.resolve  # fixtures

NOTHING_ALLOWED = AddressPolicy()
LOOPBACK_ALLOWED = AddressPolicy(outbound.parse_networks(["127.0.0.0/8"]))


@pytest.fixture
def server():
    with CannedServer(status=200, body=b'{"ok": true}', headers={"Content-Type": "application/json"}) as running:
        yield running


@contextmanager
def silent_server():
    """Accepts connections (the kernel does) and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/token"
    finally:
        listener.close()


# --- refused before connecting ------------------------------------------------------------------


def test_loopback_is_refused_unless_allowed(server, attempts):
    with pytest.raises(DestinationRefused) as refused:
        outbound.session(NOTHING_ALLOWED).post(server.url(), data={"a": "b"})
    assert refused.value.reason == Refusal.LOOPBACK
    assert server.requests == [] and attempts == []
    answer = outbound.session(LOOPBACK_ALLOWED).post(server.url(), data={"a": "b"})
    assert (answer.status_code, answer.json()) == (200, {"ok": True})
    assert len(server.requests) == 1


@pytest.mark.parametrize("name, addresses, reason", [
    ("lms.test", ["127.0.0.1"], Refusal.LOOPBACK),
    ("metadata.test", ["169.254.169.254"], Refusal.LINK_LOCAL),
    ("intranet.test", ["10.0.0.5"], Refusal.PRIVATE),
])
def test_a_name_resolving_to_a_refused_address_is_refused_before_connecting(server, attempts, resolve, name,
                                                                            addresses, reason):
    resolver = resolve({name: [addresses]})
    with pytest.raises(DestinationRefused) as refused:
        outbound.session(NOTHING_ALLOWED).get(server.url(host=name))
    assert (refused.value.reason, refused.value.host) == (reason, name)
    assert server.requests == [] and attempts == []
    assert resolver.lookups == {name: 1}


@pytest.mark.parametrize("url, reason", [
    ("ftp://lms.test/token", Refusal.SCHEME), ("file:///etc/passwd", Refusal.SCHEME),
    ("http://user:pw@lms.test/token", Refusal.USERINFO), ("https://10.0.0.5/token", Refusal.PRIVATE),
    ("http://169.254.169.254/latest/meta-data/", Refusal.LINK_LOCAL),
])
def test_urls_that_may_not_be_requested(url, reason, attempts, resolve):
    with pytest.raises(DestinationRefused) as refused:
        outbound.session(NOTHING_ALLOWED).post(url, data={"a": "b"})
    assert refused.value.reason == reason
    assert attempts == []


def test_the_default_policy_follows_the_setting(settings, server):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(DestinationRefused):
        outbound.session().get(server.url())
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert outbound.session().get(server.url()).status_code == 200
    assert server.requests[0]["path"] == "/outcomes"


def test_an_allowed_name_is_reached_with_its_host_header(server, resolve):
    resolve({"lms.test": [["127.0.0.1"]]})
    answer = outbound.session(LOOPBACK_ALLOWED).get(server.url(host="lms.test"))
    assert answer.status_code == 200
    assert server.requests[0]["headers"]["Host"] == f"lms.test:{server.port}"


# --- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_redirect_comes_back_and_is_not_followed(server, status, method):
    with CannedServer(host="127.0.0.2", status=status, headers={"Location": server.url()}) as redirecting:
        client = outbound.session(LOOPBACK_ALLOWED)
        for allow in (True, False):  # requests' own default is to follow
            answer = client.request(method, redirecting.url(), data=b"x", allow_redirects=allow)
            assert answer.status_code == status and answer.headers["Location"] == server.url()
            assert answer.history == [] and answer.next is None
    assert len(redirecting.requests) == 2 and server.requests == []


# --- time and size -------------------------------------------------------------------------------


def test_the_sessions_timeout_applies_to_a_request_that_gives_none():
    with silent_server() as url:
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            outbound.session(LOOPBACK_ALLOWED, timeout=(1.0, 0.3)).post(url, data={"a": "b"})
        assert time.monotonic() - started < 2


def test_a_requests_own_timeout_wins():
    with silent_server() as url:
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            outbound.session(LOOPBACK_ALLOWED, timeout=(30, 30)).get(url, timeout=0.3)
        assert time.monotonic() - started < 2


def test_every_request_has_a_timeout_by_default():
    assert outbound.session(LOOPBACK_ALLOWED).timeout == outbound.SESSION_TIMEOUT
    assert all(isinstance(t, float) and 0 < t <= 60 for t in outbound.SESSION_TIMEOUT)


def test_an_answer_dripped_slowly_is_cut_off_at_the_read_timeout():
    """Each byte arrives well within the read timeout; the whole answer would take ~10 s."""
    with CannedServer(body=b"B" * 200, drip_seconds=0.05) as slow:
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            outbound.session(LOOPBACK_ALLOWED, timeout=(1, 0.5)).get(slow.url())
        assert time.monotonic() - started < 3


def test_a_long_answer_is_read_only_so_far():
    with CannedServer(body=b"A" * 5000) as long:
        with pytest.raises(outbound.AnswerTooLong) as too_long:
            outbound.session(LOOPBACK_ALLOWED, max_answer_bytes=1000).get(long.url())
    assert too_long.value.response.content == b"A" * 1000


def test_an_answer_within_the_limit_is_read_whole():
    with CannedServer(body=b"A" * 1000) as exact:
        assert outbound.session(LOOPBACK_ALLOWED, max_answer_bytes=1000).get(exact.url()).content == b"A" * 1000


# --- headers, cookies, proxies, pools ---------------------------------------------------------------


def test_user_agent_and_no_cookies_kept(server):
    server.headers["Set-Cookie"] = "MoodleSession=abc; Path=/"
    client = outbound.session(LOOPBACK_ALLOWED)
    client.get(server.url())
    client.get(server.url())
    assert [r["headers"]["User-Agent"] for r in server.requests] == ["Numbas LTI Provider"] * 2
    assert "Cookie" not in server.requests[1]["headers"]
    assert len(client.cookies) == 0


def test_proxies_from_the_environment_are_not_used(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.9:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.9:9")
    assert outbound.session(LOOPBACK_ALLOWED).get(server.url()).status_code == 200
    assert len(server.requests) == 1


def test_a_proxy_given_explicitly_is_refused(server):
    with pytest.raises(ValueError, match="proxy"):
        outbound.session(LOOPBACK_ALLOWED).get(server.url(), proxies={"http": "http://127.0.0.9:9"})
    assert server.requests == []


def test_sessions_of_one_policy_share_their_pools_and_closing_one_keeps_them(server):
    first, second = outbound.session(LOOPBACK_ALLOWED), outbound.session(LOOPBACK_ALLOWED)
    assert first.get_adapter(server.url()) is second.get_adapter(server.url())
    assert first.get_adapter(server.url()) is not outbound.session(NOTHING_ALLOWED).get_adapter(server.url())
    with first:
        first.get(server.url())
    assert second.get(server.url()).status_code == 200
