"""Test doubles for requests to LMS-supplied addresses (app/core/outbound.py), which keep
every byte of test traffic on this machine's loopback:

- `FakeResolver` answers ``socket.getaddrinfo`` for the test's own host names, one answer per
  look-up in turn (so a name can "rebind"), counts the look-ups, passes IP literals through
  without DNS and refuses every other name: no test ever asks real DNS.
- `LoopbackOnlySocket` is a ``socket.socket`` that refuses to connect anywhere but loopback and
  records what was tried. With it in place, a test that checks "10.0.0.5 is never reached" can
  run against code that would try, and only sees the attempt, not a packet on the network.
- `CannedServer` answers every request with one fixed answer (status, headers, body, optionally
  dripped slowly), on a loopback address of choice, and records what it received.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

_real_getaddrinfo = socket.getaddrinfo
_RealSocket = socket.socket


def _is_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class FakeResolver:
    """``socket.getaddrinfo`` for names given in `answers`: name -> a list of answers, each a
    list of addresses, used one per look-up (the last one repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]):
        self.answers = {name.lower(): list(seq) for name, seq in answers.items()}
        self.lookups: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        name = (host.decode() if isinstance(host, bytes) else str(host)).lower()
        try:  # an IP literal needs no DNS: let the system parse it, numerically only
            ipaddress.ip_address(name.split("%")[0])
            return _real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except ValueError:
            pass
        with self._lock:
            if name not in self.answers:
                raise socket.gaierror(socket.EAI_NONAME, f"{name} is not a name this test resolves")
            count = self.lookups.get(name, 0)
            self.lookups[name] = count + 1
            sequence = self.answers[name]
            addresses = sequence[min(count, len(sequence) - 1)]
        results = []
        for address in addresses:
            ip = ipaddress.ip_address(address)
            af = socket.AF_INET if ip.version == 4 else socket.AF_INET6
            if family not in (0, socket.AF_UNSPEC, af):
                continue
            sockaddr = (address, port) if af == socket.AF_INET else (address, port, 0, 0)
            results.append((af, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        if not results:
            raise socket.gaierror(socket.EAI_NONAME, f"{name} has no address of that family")
        return results


class LoopbackOnlySocket(_RealSocket):
    """A socket that connects only to loopback; anything else is recorded and refused."""

    attempts: list[tuple] = []  # replaced per test by `jail`

    def connect(self, address):
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            type(self).attempts.append(address)
            raise ConnectionRefusedError(f"test jail: no connections outside loopback ({address[0]})")
        return super().connect(address)

    def connect_ex(self, address):
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            type(self).attempts.append(address)
            return 111
        return super().connect_ex(address)


def jail(monkeypatch) -> list[tuple]:
    """Put `LoopbackOnlySocket` in place for the test; returns the list of refused attempts."""
    attempts: list[tuple] = []
    jailed = type("JailedSocket", (LoopbackOnlySocket,), {"attempts": attempts})
    monkeypatch.setattr(socket, "socket", jailed)
    return attempts


@dataclass
class CannedServer:
    """An HTTP server on `host` answering every request with the same answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    host: str = "127.0.0.1"
    port: int = 0
    drip_seconds: float = 0.0  # > 0: send the body one byte at a time, this far apart
    tls: ssl.SSLContext | None = None  # serve HTTPS with this server-side context
    # (status, body) for the 1st, 2nd, ... request instead (the last one repeats)
    script: list[tuple[int, bytes]] | None = None
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()

    def start(self) -> "CannedServer":
        canned = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                received = self.rfile.read(length) if length else b""
                with canned._lock:
                    canned.requests.append({"path": self.path, "headers": dict(self.headers), "body": received})
                    status, body = canned.status, canned.body
                    if canned.script:
                        status, body = canned.script[min(len(canned.requests), len(canned.script)) - 1]
                self.send_response(status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if canned.drip_seconds:
                        for i in range(len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(canned.drip_seconds)
                    else:
                        self.wfile.write(body)
                except OSError:  # the client gave up, as it should
                    pass
                self.close_connection = True

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> "CannedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def url(self, host: str | None = None, path: str = "/outcomes") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"


def free_port_on(*hosts: str) -> int:
    """A TCP port free on every one of `hosts` (loopback addresses)."""
    for _ in range(50):
        probe = _RealSocket()
        probe.bind((hosts[0], 0))
        port = probe.getsockname()[1]
        probe.close()
        try:
            for host in hosts:
                check = _RealSocket()
                try:
                    check.bind((host, port))
                finally:
                    check.close()
        except OSError:
            continue
        return port
    raise RuntimeError(f"no port free on all of {hosts}")


# Fixtures for the modules that test outgoing requests (import them by name).
@pytest.fixture
def attempts(monkeypatch):
    """Connections that tried to leave loopback (and were stopped)."""
    return jail(monkeypatch)


@pytest.fixture
def resolve(monkeypatch):
    """Install a FakeResolver: resolve({"name": [[addresses of the 1st look-up], [2nd], ...]})."""

    def install(answers):
        resolver = FakeResolver(answers)
        monkeypatch.setattr(socket, "getaddrinfo", resolver)
        return resolver

    install({})  # no test reaches real DNS, even by mistake
    return install
