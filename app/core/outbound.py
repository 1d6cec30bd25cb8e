"""Requests to addresses that an LMS gave us: the grade passback URL today, LTI 1.3 services
later.

Whoever configures an LMS (or holds a consumer's key and secret) chooses these URLs, and the
server calls them from inside its own network. Without care they could make it call its
neighbours: PostgreSQL and Redis on the private Docker network, daphne on loopback, the cloud's
metadata service on 169.254.169.254. So every request made here:

- goes only to http(s) URLs with a host and no user name or password in them;
- resolves the host name once, *while connecting*, checks every address it resolves to, and
  connects to a checked address: a name that answers with a public address when looked at and
  with 127.0.0.1 a moment later (DNS rebinding) cannot slip through, because there is no later
  lookup. TLS still uses the host name, for SNI and to verify the certificate;
- refuses loopback, private (RFC 1918, CGNAT, IPv6 ULA), link-local, unspecified, multicast and
  other special-purpose addresses, also when written as IPv4 inside IPv6 (``::ffff:127.0.0.1``,
  6to4, NAT64), unless the operator allows a network with ``OUTBOUND_ALLOWED_NETWORKS``;
- never follows a redirect (the caller sees the 3xx), and reads at most `MAX_ANSWER_BYTES` of
  the answer within the time it was given.

urllib3 (thread-safe pools) does the HTTP; the check lives in the connection classes' socket
set-up, which is where urllib3 resolves the host name.

Libraries that take a `requests.Session` (pylti1p3, for LTI 1.3 key sets, access tokens and
services) get one from `session()`: the same checked pools, with no proxies, no redirects, a
default timeout and a bounded answer.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from http.cookiejar import DefaultCookiePolicy
from typing import Iterable, Mapping
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: An LTI outcomes answer is a couple of KB; anything past this is not read (nor kept in memory).
MAX_ANSWER_BYTES = 64 * 1024


class Refusal:
    """Why a destination is refused (`DestinationRefused.reason`)."""

    SCHEME = "scheme"  # not http or https
    USERINFO = "userinfo"  # http://user@host/
    INVALID = "invalid"  # not a URL with a host
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link_local"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"

    ADDRESS_KINDS = (LOOPBACK, PRIVATE, LINK_LOCAL, MULTICAST, UNSPECIFIED, RESERVED)


#: What each kind of refused address is, for sentences shown to people.
ADDRESS_KIND_NAMES = {
    Refusal.LOOPBACK: _("a loopback address (this server itself)"),
    Refusal.PRIVATE: _("a private network address"),
    Refusal.LINK_LOCAL: _("a link-local address (such as a cloud metadata service)"),
    Refusal.MULTICAST: _("a multicast address"),
    Refusal.UNSPECIFIED: _("an unspecified address"),
    Refusal.RESERVED: _("a reserved, special-purpose address"),
}


class DestinationRefused(Exception):
    """The URL, or an address its host name resolves to, is one this server does not call.

    Deliberately not an OSError or a urllib3 error: urllib3 would wrap or retry those, and a
    caller must be able to tell "refused on purpose" from "the network failed".
    """

    def __init__(self, reason: str, *, host: str = "", address: str = "", scheme: str = ""):
        self.reason, self.host, self.address, self.scheme = reason, host, address, scheme
        super().__init__(f"{reason}: host={host!r} address={address!r} scheme={scheme!r}")


# Special-purpose ranges that Python 3.11's `is_global` still calls global (it lags the IANA
# registries), or that route to someone else's network on our behalf.
_PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "100.64.0.0/10",  # CGNAT (RFC 6598): provider-internal
    "fc00::/7",  # IPv6 unique local
    "fec0::/10",  # IPv6 site-local (deprecated, still private)
))
_RESERVED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "240.0.0.0/4",
    "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16",
))
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for or carries (mapped, compatible, 6to4,
    NAT64), which is where a connection to it may end up."""
    if ip in _IPV4_MAPPED or ip in _IPV4_COMPATIBLE or ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def address_kind(ip: IPAddress) -> str | None:
    """The `Refusal` reason for an address this server must not call, or None for a public one."""
    if ip.is_unspecified:
        return Refusal.UNSPECIFIED
    if ip.is_loopback:
        return Refusal.LOOPBACK
    if ip.version == 6:
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            kind = address_kind(embedded)
            if kind is not None or ip in _IPV4_MAPPED or ip in _IPV4_COMPATIBLE:
                return kind
    if ip.is_link_local:
        return Refusal.LINK_LOCAL
    if ip.is_multicast:
        return Refusal.MULTICAST
    if any(ip in network for network in _PRIVATE_NETWORKS if network.version == ip.version):
        return Refusal.PRIVATE
    if (not ip.is_global or ip.is_reserved
            or any(ip in network for network in _RESERVED_NETWORKS if network.version == ip.version)):
        return Refusal.RESERVED
    return None


def shown_address(ip: IPAddress) -> str:
    """The address as a person recognises it (``::ffff:127.0.0.1``, not ``::ffff:7f00:1``)."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def parse_networks(values: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """CIDRs (``10.1.2.0/24``, ``fd00::/8``; a bare address is one host) as networks. Raises
    ValueError, naming the value, for anything else, host bits set included (a typo there
    would allow more than meant)."""
    networks = []
    for value in values:
        if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            networks.append(value)
            continue
        text = str(value).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text))
        except ValueError as error:
            raise ValueError(f"{text!r} is not a network in CIDR form ({error})") from None
    return tuple(networks)


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be called: every public one, and those in `allowed` (the operator's
    OUTBOUND_ALLOWED_NETWORKS)."""

    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls) -> "AddressPolicy":
        return _policy_for(tuple(settings.OUTBOUND_ALLOWED_NETWORKS))

    def is_allowed(self, ip: IPAddress) -> bool:
        candidates = [ip]
        if ip.version == 6 and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)  # a dual-stack socket's way of writing an IPv4 address
        return any(c in network for c in candidates for network in self.allowed if c.version == network.version)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why `ip` may not be called, or None if it may."""
        if self.is_allowed(ip):
            return None
        return address_kind(ip)


@lru_cache(maxsize=8)
def _policy_for(values: tuple) -> AddressPolicy:
    return AddressPolicy(parse_networks(values))


def checked_url(url: str, policy: AddressPolicy) -> urllib3.util.Url:
    """The URL parsed, if it may be requested at all (scheme, user info, host; a host that is
    an IP address is checked here already). Host names are checked when connecting."""
    try:
        parsed, authority = urllib3.util.parse_url(url), urlsplit(url).netloc
    except (LocationParseError, ValueError):
        raise DestinationRefused(Refusal.INVALID) from None
    scheme = (parsed.scheme or "").lower()
    if not scheme:
        raise DestinationRefused(Refusal.INVALID)
    if scheme not in ("http", "https"):
        raise DestinationRefused(Refusal.SCHEME, scheme=scheme, host=parsed.host or "")
    if not parsed.host:
        raise DestinationRefused(Refusal.INVALID, scheme=scheme)
    # Either parser seeing user info is enough: `http://lms.example@127.0.0.1/` and its
    # look-alikes exist to make a person (or another parser) read the wrong host.
    if parsed.auth is not None or "@" in authority:
        raise DestinationRefused(Refusal.USERINFO, scheme=scheme, host=parsed.host)
    try:
        literal = ipaddress.ip_address(parsed.host.strip("[]").split("%")[0])
    except ValueError:
        literal = None
    if literal is not None and (reason := policy.refusal(literal)):
        raise DestinationRefused(reason, scheme=scheme, host=parsed.host, address=shown_address(literal))
    return parsed


class _CheckedConnectionMixin:
    """Resolve once, check every address, connect only to a checked one.

    Replaces urllib3's socket set-up (`_new_conn`, which resolves with getaddrinfo and
    connects); everything after it (TLS with the host name, the request) is urllib3's own.
    """

    def __init__(self, *args, address_policy: AddressPolicy, **kwargs):
        super().__init__(*args, **kwargs)
        self.address_policy = address_policy

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.strip("[]")  # what urllib3 itself resolves (keeps a trailing dot)
        try:
            infos = socket.getaddrinfo(host, self.port, allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except UnicodeError:
            raise LocationParseError(f"'{host}', not a valid host name") from None
        if not infos:
            raise NameResolutionError(self.host, self, socket.gaierror("no addresses"))
        for *_, sockaddr in infos:
            address = ipaddress.ip_address(sockaddr[0].split("%")[0])
            reason = self.address_policy.refusal(address)
            if reason is not None:  # one bad address refuses the name: it was chosen by the LMS
                logger.warning("Refused to connect to %s: it resolves to %s (%s)", self.host, address, reason)
                raise DestinationRefused(reason, host=self.host, address=shown_address(address),
                                         scheme=self.url_scheme)
        sock = None
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in infos:
            try:
                sock = socket.socket(family, kind, proto)
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is not _DEFAULT_TIMEOUT:
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
                break
            except OSError as failure:
                error = failure
                if sock is not None:
                    sock.close()
                    sock = None
        if sock is None:
            if isinstance(error, TimeoutError):
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from error
            raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


class CheckedHTTPConnection(_CheckedConnectionMixin, HTTPConnection):
    url_scheme = "http"


class CheckedHTTPSConnection(_CheckedConnectionMixin, HTTPSConnection):
    url_scheme = "https"


class _CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = CheckedHTTPConnection


class _CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = CheckedHTTPSConnection


class _CheckedPoolManager(urllib3.PoolManager):
    def __init__(self, address_policy: AddressPolicy, **kwargs):
        super().__init__(**kwargs)
        self.pool_classes_by_scheme = {"http": _CheckedHTTPConnectionPool, "https": _CheckedHTTPSConnectionPool}
        self.address_policy = address_policy

    def _new_pool(self, scheme, host, port, request_context=None):
        # urllib3's documented hook for customising pools: every connection gets the policy.
        if scheme not in self.pool_classes_by_scheme:
            raise DestinationRefused(Refusal.SCHEME, scheme=scheme, host=host)
        request_context = dict(request_context if request_context is not None else self.connection_pool_kw)
        request_context["address_policy"] = self.address_policy
        return super()._new_pool(scheme, host, port, request_context)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes  # at most MAX_ANSWER_BYTES
    truncated: bool  # the answer was longer; the rest was not read


class OutboundClient:
    """Connection pools whose every connection obeys one `AddressPolicy`."""

    def __init__(self, policy: AddressPolicy, *, max_answer_bytes: int = MAX_ANSWER_BYTES, **pool_kwargs):
        self.policy = policy
        self.max_answer_bytes = max_answer_bytes
        pool_kwargs = {"num_pools": 50, "maxsize": 64, **pool_kwargs}
        self._pools = _CheckedPoolManager(policy, retries=False, **pool_kwargs)

    def request(self, method: str, url: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None,
                connect_timeout: float = 5.0, timeout: float = 20.0) -> Answer:
        """Send one request and read its answer (at most `max_answer_bytes`, within `timeout`
        seconds of starting to read). Redirects are returned, never followed.

        Raises DestinationRefused, and urllib3's errors for network trouble (its TimeoutError
        subclasses for timeouts, HTTPError otherwise).
        """
        checked_url(url, self.policy)
        response = self._pools.request(
            method, url, body=body, headers=dict(headers or {}), redirect=False, retries=False,
            preload_content=False, timeout=urllib3.Timeout(connect=min(connect_timeout, timeout), read=timeout),
        )
        try:
            data, truncated = self._read(response, url=url, deadline=time.monotonic() + timeout)
        except BaseException:
            response.close()
            response.release_conn()
            raise
        if truncated:
            response.close()  # the rest is never read, so the connection cannot be reused
        response.release_conn()
        return Answer(response.status, dict(response.headers), data, truncated)

    def _read(self, response, *, url: str, deadline: float) -> tuple[bytes, bool]:
        """Read in small steps, so an LMS that drips its answer a byte at a time (each within
        the read timeout) is still cut off at the deadline."""
        chunks, size, limit = [], 0, self.max_answer_bytes
        while size <= limit:
            if time.monotonic() > deadline:
                raise ReadTimeoutError(response._pool, url, "The answer took longer than the time allowed.")
            chunk = response.read1(min(16 * 1024, limit + 1 - size))
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)[:limit], True


_clients: dict[AddressPolicy, OutboundClient] = {}
_clients_lock = threading.Lock()


def client() -> OutboundClient:
    """The process's client for the current OUTBOUND_ALLOWED_NETWORKS. A client per policy,
    so a pooled connection opened under one allow-list is never reused under another."""
    policy = AddressPolicy.from_settings()
    with _clients_lock:
        found = _clients.get(policy)
        if found is None:
            found = _clients[policy] = OutboundClient(policy)
        return found


def request(method: str, url: str, **kwargs) -> Answer:
    """`OutboundClient.request` with the operator's policy (see `client`)."""
    return client().request(method, url, **kwargs)


# --- a requests.Session on the same pools ---------------------------------------------------

#: A service's answer (a key set, an access token, a page of line items) is longer than an
#: outcomes answer, but still small.
MAX_SERVICE_ANSWER_BYTES = 1024 * 1024
#: (connect, read) seconds for a request that does not give its own timeout.
SESSION_TIMEOUT = (5.0, 20.0)
USER_AGENT = "Numbas LTI Provider"


class AnswerTooLong(requests.exceptions.RequestException):
    """The answer is longer than the session reads; `response.content` holds its beginning."""


class CheckedHTTPAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter on `_CheckedPoolManager`: every connection obeys one `AddressPolicy`.
    No retries, and no proxies (a proxy would connect to addresses nobody checked)."""

    def __init__(self, policy: AddressPolicy, **kwargs):
        self.policy = policy  # before super().__init__, which makes the pool manager
        super().__init__(max_retries=0, **{"pool_connections": 50, "pool_maxsize": 64, **kwargs})

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        self._pool_connections, self._pool_maxsize, self._pool_block = connections, maxsize, block
        self.poolmanager = _CheckedPoolManager(self.policy, num_pools=connections, maxsize=maxsize, block=block,
                                               **pool_kwargs)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise ValueError("Outbound requests do not go through a proxy: it would connect to addresses nobody checked.")

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        checked_url(request.url, self.policy)
        return super().send(request, stream=stream, timeout=SESSION_TIMEOUT if timeout is None else timeout,
                            verify=verify, cert=cert, proxies=proxies)


class CheckedSession(requests.Session):
    """A `requests.Session` whose requests go only where `AddressPolicy` allows (see the module's
    docstring). Redirects are never followed, whatever `allow_redirects` says: a 3xx comes
    back as the response. Every request has a timeout (the session's unless it gives one), and
    its answer is read at once, at most `max_answer_bytes` of it (else `AnswerTooLong`),
    within its read timeout (else `requests.exceptions.ReadTimeout`), even when the answer
    drips in slowly. No cookies are kept, and nothing is taken from the environment (proxies,
    .netrc credentials, CA bundles).

    Its adapters, and so its connection pools, are shared with every other session of the same
    policy: `close()` leaves them open.
    """

    def __init__(self, adapter: CheckedHTTPAdapter, *, timeout=SESSION_TIMEOUT,
                 max_answer_bytes: int = MAX_SERVICE_ANSWER_BYTES):
        super().__init__()
        self.policy, self.timeout, self.max_answer_bytes = adapter.policy, timeout, max_answer_bytes
        self.trust_env = False
        self.max_redirects = 0
        self.headers["User-Agent"] = USER_AGENT
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # accept none
        self.adapters.clear()
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request, **kwargs):
        checked_url(request.url, self.policy)  # before requests looks for an adapter for it
        kwargs["allow_redirects"] = False
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        kwargs["stream"] = True  # read here, boundedly, instead of by requests
        response = super().send(request, **kwargs)
        self._read(response, read_timeout=_read_timeout(kwargs["timeout"]))
        return response

    def resolve_redirects(self, resp, req, *args, **kwargs):
        return iter(())  # nothing to follow (requests also asks this for `Response.next`)

    def close(self) -> None:
        """The pools are shared (see `session`): nothing to close."""

    def _read(self, response: requests.Response, *, read_timeout: float | None) -> None:
        raw, limit = response.raw, self.max_answer_bytes
        deadline = None if read_timeout is None else time.monotonic() + read_timeout
        chunks, size = [], 0
        try:
            while size <= limit:
                if deadline is not None and time.monotonic() > deadline:
                    raise requests.exceptions.ReadTimeout(
                        "The answer took longer than the time allowed.", request=response.request, response=response)
                chunk = raw.read1(min(16 * 1024, limit + 1 - size), decode_content=True)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except ReadTimeoutError as error:
            response.close()
            raise requests.exceptions.ReadTimeout(error, request=response.request) from error
        except ProtocolError as error:
            response.close()
            raise requests.exceptions.ChunkedEncodingError(error, request=response.request) from error
        except DecodeError as error:
            response.close()
            raise requests.exceptions.ContentDecodingError(error, request=response.request) from error
        except urllib3.exceptions.SSLError as error:
            response.close()
            raise requests.exceptions.SSLError(error, request=response.request) from error
        except BaseException:
            response.close()
            raise
        response._content, response._content_consumed = b"".join(chunks)[:limit], True
        if size > limit:
            raw.close()  # the rest is never read, so the connection cannot be reused
            raw.release_conn()
            raise AnswerTooLong(f"The answer is longer than {limit} bytes.", request=response.request,
                                response=response)
        raw.release_conn()


def _read_timeout(timeout) -> float | None:
    if isinstance(timeout, tuple):
        return timeout[1]
    if isinstance(timeout, urllib3.Timeout):
        read = timeout.read_timeout
        return read if isinstance(read, (int, float)) else None
    return timeout


_adapters: dict[AddressPolicy, CheckedHTTPAdapter] = {}


def session(policy: AddressPolicy | None = None, *, timeout=SESSION_TIMEOUT,
            max_answer_bytes: int = MAX_SERVICE_ANSWER_BYTES) -> CheckedSession:
    """A new `CheckedSession` for `policy` (by default the operator's OUTBOUND_ALLOWED_NETWORKS).
    `timeout` ((connect, read) seconds, or one number for both) applies to requests that do not
    give their own. Sessions of one policy share their connection pools (thread-safe), so a
    session per task costs no new connections."""
    policy = policy if policy is not None else AddressPolicy.from_settings()
    with _clients_lock:
        adapter = _adapters.get(policy)
        if adapter is None:
            adapter = _adapters[policy] = CheckedHTTPAdapter(policy)
    return CheckedSession(adapter, timeout=timeout, max_answer_bytes=max_answer_bytes)
