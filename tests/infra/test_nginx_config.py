"""The production nginx configuration (infra/numbas_infra/nginx_config.py + nginx/nginx.conf.template):
what it says, that `nginx -t` accepts it (and refuses a broken one), and what a real nginx does
with it on loopback ports in front of a tiny Python upstream."""

from __future__ import annotations

import datetime
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter

from numbas_infra import nginx_config, spec
from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DOMAIN = "lti.example.ac.uk"
EXAM_DOMAIN = "exams.lti.example.ac.uk"
TIMEOUT = 10


def render_production(**overrides) -> str:
    certificate, key = nginx_config.certificate_paths(DOMAIN)
    args = dict(domain=DOMAIN, exam_domain=EXAM_DOMAIN, upstreams=spec.daphne_upstreams(8), certificate=certificate,
                certificate_key=key, max_body_mb=101)
    args.update(overrides)
    return nginx_config.render_nginx_conf(**args)


# --- reading the configuration ---------------------------------------------------------------

def _tokens(conf: str):
    """nginx's tokens (words, quoted strings, ; { }), without comments."""
    for match in re.finditer(r"""#[^\n]*|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|[;{}]|[^\s;{}'"#]+""", conf):
        if not match.group().startswith("#"):
            yield match.group()


def parse(conf: str) -> list:
    """[(name, args, children or None), ...] for a whole configuration."""
    stack: list[list] = [[]]
    words: list[str] = []
    for token in _tokens(conf):
        if token == ";":
            stack[-1].append((words[0], words[1:], None))
            words = []
        elif token == "{":
            block = (words[0], words[1:], [])
            stack[-1].append(block)
            stack.append(block[2])
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces"
    return stack[0]


def find(nodes: list, name: str) -> list:
    return [node for node in nodes if node[0] == name]


def one(nodes: list, name: str) -> tuple:
    found = find(nodes, name)
    assert len(found) == 1, f"expected one {name}, found {len(found)}"
    return found[0]


def walk(nodes: list):
    for node in nodes:
        yield node
        if node[2] is not None:
            yield from walk(node[2])


def servers(conf: str) -> list:
    return find(one(parse(conf), "http")[2], "server")


def listens(server) -> list[list[str]]:
    return [args for name, args, _ in server[2] if name == "listen"]


def location(server, *args: str):
    matches = [node for node in find(server[2], "location") if node[1] == list(args)]
    assert len(matches) == 1, f"no single location {args}"
    return matches[0]


def main_server(conf: str, name: str = DOMAIN):
    (server,) = [s for s in servers(conf) if ["ssl"] == [a for a in listens(s)[0][1:] if a == "ssl"]
                 and ["default_server"] != listens(s)[0][-1:] and values(s, "server_name") == [[name]]]
    return server


def exam_server(conf: str):
    return main_server(conf, EXAM_DOMAIN)


def http_server(conf: str, name: str = DOMAIN):
    (server,) = [s for s in servers(conf) if not any("ssl" in args for args in listens(s))
                 and values(s, "server_name") == [[name]]]
    return server


def values(block, name: str) -> list[list[str]]:
    return [args for directive, args, _ in block[2] if directive == name]


# --- what it says -------------------------------------------------------------------------------

def test_upstream_lists_every_daphne_with_least_conn():
    conf = render_production()
    upstream = one(one(parse(conf), "http")[2], "upstream")
    assert upstream[1] == ["daphne"]
    assert values(upstream, "least_conn") == [[]]
    server_lines = values(upstream, "server")
    assert len(server_lines) == 8
    assert [args[0] for args in server_lines] == spec.daphne_upstreams(8)
    for args in server_lines:
        assert "max_fails=3" in args and "fail_timeout=10s" in args
        assert "resolve" not in args
    assert values(upstream, "keepalive")


def test_port_80_redirects_with_308_except_the_acme_challenge():
    server = http_server(render_production())
    assert listens(server) == [["80", "default_server"], ["[::]:80", "default_server"]]
    acme = location(server, "^~", "/.well-known/acme-challenge/")
    assert values(acme, "root") == [[spec.ACME_WEBROOT]]
    assert not values(acme, "return")
    redirect = location(server, "/")
    assert values(redirect, "return") == [["308", f"https://{DOMAIN}$request_uri"]]
    assert len(find(server[2], "location")) == 2


def test_tls_is_mozilla_intermediate_with_hsts_and_no_stapling():
    conf = render_production()
    server = main_server(conf)
    assert listens(server) == [["443", "ssl"], ["[::]:443", "ssl"]]
    assert values(server, "http2") == [["on"]]
    assert values(server, "server_name") == [[DOMAIN]]
    # TLS settings live at http level: the protocol is negotiated before SNI picks a server,
    # with the default server's settings (on nginx 1.22, TLS 1.3 was refused otherwise).
    http = one(parse(conf), "http")
    assert values(http, "ssl_protocols") == [["TLSv1.2", "TLSv1.3"]]
    assert not any(node[0] == "ssl_protocols" for srv in find(http[2], "server") for node in walk(srv[2]))
    (ciphers,) = values(http, "ssl_ciphers")[0]
    assert all(c.startswith("ECDHE-") and ("GCM" in c or "CHACHA20" in c) for c in ciphers.split(":"))
    assert values(http, "ssl_prefer_server_ciphers") == [["off"]]
    assert values(http, "ssl_session_tickets") == [["off"]]
    assert values(server, "ssl_certificate") == [[f"/etc/letsencrypt/live/{DOMAIN}/fullchain.pem"]]
    assert values(server, "ssl_certificate_key") == [[f"/etc/letsencrypt/live/{DOMAIN}/privkey.pem"]]
    assert not [node for node in walk(parse(conf)) if node[0].startswith("ssl_stapling")]
    assert values(one(parse(conf), "http"), "server_tokens") == [["off"]]
    hsts = ["Strict-Transport-Security", '"max-age=63072000"', "always"]
    assert hsts in values(server, "add_header")
    # add_header in a location hides the server's: every such location repeats HSTS.
    for loc in find(server[2], "location"):
        if values(loc, "add_header"):
            assert hsts in values(loc, "add_header"), loc[1]
    everything = list(walk(parse(conf)))
    assert not any(args and args[0].lower() == "x-frame-options" for name, args, _ in everything if name == "add_header")


def test_files_private_downloads_websockets_and_body_size():
    conf = render_production(max_body_mb=137)
    server = main_server(conf)
    assert values(server, "client_max_body_size") == [["137m"]]

    static = location(server, "^~", "/static/")
    assert values(static, "alias") == [[f"{spec.STATIC_ROOT}/"]]
    assert values(static, "expires") == [["1y"]]
    assert ["Cache-Control", '"public, immutable"'] in values(static, "add_header")

    # Exams are served on their own host only; nothing under /media is public here.
    assert not [loc for loc in find(server[2], "location") if loc[1][-1].startswith("/media/exams")]
    assert values(location(server, "^~", "/media/"), "return") == [["404"]]
    assert values(location(server, "^~", "/static/content/"), "return") == [["404"]]

    private = location(server, "^~", f"{spec.PRIVATE_X_ACCEL_PREFIX}/")
    assert values(private, "internal") == [[]]
    assert values(private, "alias") == [[f"{spec.PRIVATE_ROOT}/"]]
    assert values(location(server, "^~", "/_errors/"), "internal") == [[]]

    ws = location(server, "^~", "/ws/")
    assert values(ws, "proxy_pass") == [["http://daphne"]]
    assert values(ws, "proxy_http_version") == [["1.1"]]
    assert ["Upgrade", "$http_upgrade"] in values(ws, "proxy_set_header")
    assert ["Connection", "$connection_upgrade"] in values(ws, "proxy_set_header")
    assert values(ws, "proxy_read_timeout") == [["3600s"]]
    assert values(ws, "proxy_buffering") == [["off"]]
    upgrade_map = [m for m in find(one(parse(conf), "http")[2], "map") if m[1] == ["$http_upgrade", "$connection_upgrade"]]
    assert upgrade_map

    root = location(server, "/")
    assert values(root, "proxy_pass") == [["http://daphne"]]
    assert values(root, "proxy_intercept_errors") == [["on"]]
    assert ["X-Forwarded-Proto", "$scheme"] in values(root, "proxy_set_header")
    assert ["502", "503", "504", "/_errors/50x.html"] in values(server, "error_page")


def test_the_exam_host_serves_exam_files_runtime_and_mathjax_only():
    conf = render_production()
    server = exam_server(conf)
    assert listens(server) == [["443", "ssl"], ["[::]:443", "ssl"]]
    assert values(server, "ssl_certificate") == [[f"/etc/letsencrypt/live/{DOMAIN}/fullchain.pem"]]
    # Static files only: nothing on this host ever reaches daphne (no cookies, no application URL).
    assert not [node for node in walk(server[2]) if node[0].startswith("proxy_")]
    locations = {tuple(loc[1]): loc for loc in find(server[2], "location")}
    assert set(locations) == {("^~", "/exams/"), ("^~", "/runtime/"), ("^~", "/mathjax/"), ("^~", "/_errors/"),
                              ("=", "/favicon.ico"), ("/",)}
    # Anything else: a plain branded page from the error pages' folder, never served directly.
    assert values(server, "error_page") == [["404", "405", "/_errors/404.html"]]
    assert values(locations[("^~", "/_errors/")], "internal") == [[]]
    assert values(locations[("=", "/favicon.ico")], "alias") == [[f"{spec.STATIC_ROOT}/core/favicon.ico"]]
    assert values(locations[("^~", "/exams/")], "alias") == [[f"{spec.MEDIA_ROOT}/exams/"]]
    assert values(locations[("^~", "/runtime/")], "alias") == [[f"{spec.STATIC_ROOT}/content/runtime/"]]
    assert values(locations[("^~", "/mathjax/")], "alias") == [[f"{spec.STATIC_ROOT}/content/mathjax/"]]
    assert values(locations[("/",)], "return") == [["404"]]
    # The content policy, the same as the development server's, on every response.
    policy = nginx_config.content_policy()
    expected = policy.security_headers(policy.content_security_policy(app_sources=[f"https://{DOMAIN}"]))
    for block in (server, *locations.values()):
        if block is locations[("/",)]:
            continue
        headers = {args[0]: args[1].strip('"') for args in values(block, "add_header")}
        for name, value in expected.items():
            assert headers[name] == value, (block[1], name)
        assert headers["Strict-Transport-Security"] == "max-age=63072000"
    # Its own port-80 server: the ACME challenge (the certificate names both hosts), else HTTPS.
    plain = http_server(conf, EXAM_DOMAIN)
    assert values(location(plain, "/"), "return") == [["308", f"https://{EXAM_DOMAIN}$request_uri"]]
    assert values(location(plain, "^~", "/.well-known/acme-challenge/"), "root") == [[spec.ACME_WEBROOT]]


def test_the_exam_host_can_send_mathjax_to_its_cdns():
    conf = render_production(exam_mathjax="cdn", exam_sources=("https://www.geogebra.org",))
    server = exam_server(conf)
    redirects = {tuple(loc[1]): values(loc, "return") for loc in find(server[2], "location") if loc[1][0] == "~"}
    assert redirects == {
        ("~", "^/mathjax/2/(?<mathjax_2_rest>.*)$"):
            [["302", "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/$mathjax_2_rest$is_args$args"]],
        ("~", "^/mathjax/4/(?<mathjax_4_rest>.*)$"):
            [["302", "https://cdn.jsdelivr.net/npm/mathjax@4.1.3/$mathjax_4_rest$is_args$args"]],
        ("~", "^/mathjax/fonts/mathjax-newcm-font/(?<mathjax_fonts_mathjax_newcm_font_rest>.*)$"):
            [["302", "https://cdn.jsdelivr.net/npm/@mathjax/mathjax-newcm-font@4.1.3/"
                     "$mathjax_fonts_mathjax_newcm_font_rest$is_args$args"]],
    }
    assert values(location(server, "=", "/mathjax/local-fonts.js"), "alias") == [
        [f"{spec.STATIC_ROOT}/content/mathjax/local-fonts.js"]]
    csp = {args[0]: args[1] for args in values(server, "add_header")}["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob: https://cdnjs.cloudflare.com https://cdn.jsdelivr.net " \
           "https://www.geogebra.org;" in csp


def test_logs_never_include_query_strings():
    http = one(parse(render_production()), "http")
    (log_format,) = values(http, "log_format")
    assert log_format[0] == "privacy"
    fmt = " ".join(log_format[1:])
    assert "$request_uri" not in fmt and "$request " not in fmt and "$args" not in fmt and "$query_string" not in fmt
    assert values(http, "access_log") == [["/dev/stdout", "privacy"]]
    assert one(parse(render_production()), "error_log")[1] == ["/dev/stderr", "warn"]


def test_optional_forms_for_older_nginx_and_dockers_resolver():
    old = main_server(render_production(http2_on_directive=False))
    assert listens(old) == [["443", "ssl", "http2"], ["[::]:443", "ssl", "http2"]]
    assert not values(old, "http2")
    conf = render_production(resolver="127.0.0.11", ipv6=False, bind_address="127.0.0.1")
    upstream = one(one(parse(conf), "http")[2], "upstream")
    assert values(upstream, "resolver") == [["127.0.0.11", "valid=10s", "ipv6=off"]]
    assert values(upstream, "zone")
    assert all("resolve" in args for args in values(upstream, "server"))
    assert listens(main_server(conf)) == [["127.0.0.1:443", "ssl"]]


def test_workers_run_as_nginx_in_its_group_unless_told_otherwise():
    """Production: the image's user nginx (uid 101) in group nginx (gid 101, spec.FILES_GID), which
    reads the files volume; the local stack may name another user and group."""
    def user(conf: str) -> list[list[str]]:
        return [args for directive, args, _ in parse(conf) if directive == "user"]

    assert user(render_production()) == [["nginx"]]
    assert user(render_production(worker_user="nobody", worker_group="nogroup")) == [["nobody", "nogroup"]]


def test_certificate_paths_are_certbots_live_files():
    assert nginx_config.certificate_paths("lti.example.ac.uk") == (
        "/etc/letsencrypt/live/lti.example.ac.uk/fullchain.pem",
        "/etc/letsencrypt/live/lti.example.ac.uk/privkey.pem",
    )
    with pytest.raises(ValueError):
        nginx_config.certificate_paths("../etc")


@pytest.mark.parametrize("overrides, message", [
    ({"upstreams": []}, "upstreams"),
    ({"upstreams": ["numbas-lti-daphne-1"]}, "host:port"),
    ({"upstreams": ["daphne:8700; evil"]}, "host:port"),
    ({"upstreams": ["a:8700", "a:8700"]}, "twice"),
    ({"domain": "lti.example.ac.uk; evil"}, "domain"),
    ({"domain": "lti example.ac.uk"}, "domain"),
    ({"domain": ""}, "domain"),
    ({"domain": "-bad-.example"}, "domain"),
    ({"certificate": "/etc/cert.pem;"}, "certificate"),
    ({"certificate_key": "relative/key.pem"}, "certificate_key"),
    ({"static_root": "/srv/sta tic"}, "static_root"),
    ({"media_root": "/srv/{media}"}, "media_root"),
    ({"errors_dir": "/srv/$errors"}, "errors_dir"),
    ({"private_prefix": "_private"}, "private_prefix"),
    ({"private_prefix": "/"}, "private_prefix"),
    ({"max_body_mb": 0}, "max_body_mb"),
    ({"max_body_mb": "100"}, "max_body_mb"),
    ({"listen_https": 80}, "differ"),
    ({"listen_http": 70000}, "listen_http"),
    ({"resolver": "dns.example"}, "resolver"),
    ({"exam_domain": DOMAIN}, "exam_domain"),
    ({"exam_domain": "exams example"}, "exam_domain"),
    ({"exam_domain": "exams.example;"}, "exam_domain"),
    ({"exam_mathjax": "sometimes"}, "mathjax"),
    ({"exam_sources": ("https://x.example; evil",)}, "exam_sources"),
    ({"exam_sources": ("javascript:",)}, "exam_sources"),
    ({"frame_ancestors": "https: ; evil"}, "frame_ancestors"),
    ({"worker_group": "no group"}, "worker_group"),
    ({"worker_user": None, "worker_group": "nginx"}, "worker_group"),
])
def test_renderer_rejects_bad_input(overrides, message):
    with pytest.raises(ValueError, match=message):
        render_production(**overrides)


# --- nginx itself -------------------------------------------------------------------------------

def _nginx_version() -> tuple[int, ...]:
    out = subprocess.run([NGINX, "-v"], capture_output=True, text=True, timeout=TIMEOUT).stderr
    return tuple(int(p) for p in re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out).groups())


needs_nginx = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="needs nginx (scripts/test installs it with apt)")


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    try:  # daphne's autobahn brings cryptography along
        from cryptography import x509
    except ImportError:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName=DNS:{DOMAIN}",
                        "-keyout", str(key_path), "-out", str(cert_path)],
                       check=True, capture_output=True, timeout=TIMEOUT)
        return cert_path, key_path
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    # RSA, so that a non-ECDHE suite (RSA key exchange) would be possible if nginx allowed one.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _site(tmp: Path) -> dict:
    """Directories and files like the production volumes, and the render arguments for them."""
    dirs = {name: tmp / name for name in ("static", "media", "private", "acme", "errors", "temp", "certs")}
    for d in dirs.values():
        d.mkdir()
    for page in (REPO / "nginx" / "errors").glob("*.html"):
        shutil.copy(page, dirs["errors"] / page.name)
    (dirs["static"] / "x.css").write_text("body { color: teal; }\n")
    for path, text in (("runtime/frame.js", "window.numbasLtiRuntime = {};\n"), ("mathjax/2/MathJax.js", "MathJax = {};\n")):
        (dirs["static"] / "content" / path).parent.mkdir(parents=True, exist_ok=True)
        (dirs["static"] / "content" / path).write_text(text)
    (dirs["static"] / "core").mkdir()
    shutil.copy(REPO / "app" / "core" / "static" / "core" / "favicon.ico", dirs["static"] / "core" / "favicon.ico")
    (dirs["media"] / "exams" / "abc123").mkdir(parents=True)
    (dirs["media"] / "exams" / "abc123" / "index.html").write_text("<!doctype html><title>exam</title>\n")
    (dirs["media"] / "other").write_text("not public\n")
    (dirs["private"] / "reports").mkdir()
    (dirs["private"] / "reports" / "r.csv").write_text("student,score\nalice,7\n")
    (dirs["acme"] / ".well-known" / "acme-challenge").mkdir(parents=True)
    (dirs["acme"] / ".well-known" / "acme-challenge" / "x").write_text("token-x.thumbprint\n")
    cert, key = _self_signed(dirs["certs"])
    version = _nginx_version()
    return dict(
        certificate=str(cert), certificate_key=str(key), errors_dir=str(dirs["errors"]),
        static_root=str(dirs["static"]), media_root=str(dirs["media"]), private_root=str(dirs["private"]),
        acme_webroot=str(dirs["acme"]), temp_dir=str(dirs["temp"]), pid_file=str(tmp / "nginx.pid"),
        worker_user=pwd.getpwuid(os.getuid()).pw_name, http2_on_directive=version >= (1, 25, 1),
    )


def _nginx_test(tmp: Path, conf: str) -> subprocess.CompletedProcess:
    (tmp / "nginx.conf").write_text(conf)
    return subprocess.run([NGINX, "-t", "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", "stderr"],
                          capture_output=True, text=True, timeout=TIMEOUT)


@needs_nginx
def test_nginx_accepts_the_rendered_configuration(tmp_path):
    site = _site(tmp_path)
    upstreams = [f"127.0.0.1:{free_port()}" for _ in range(8)]
    conf = nginx_config.render_nginx_conf(domain=DOMAIN, exam_domain=EXAM_DOMAIN, upstreams=upstreams, max_body_mb=101,
                                          listen_http=free_port(), listen_https=free_port(), **site)
    result = _nginx_test(tmp_path, conf)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    if _nginx_version() >= (1, 27, 3):  # `server ... resolve` in open-source nginx
        conf = nginx_config.render_nginx_conf(domain=DOMAIN, exam_domain=EXAM_DOMAIN, upstreams=upstreams, max_body_mb=101,
                                              resolver="127.0.0.1", **site)
        result = _nginx_test(tmp_path, conf)
        assert result.returncode == 0, result.stderr


@needs_nginx
def test_nginx_refuses_a_broken_render(tmp_path):
    site = _site(tmp_path)
    site["certificate"] = str(tmp_path / "certs" / "missing.pem")
    conf = nginx_config.render_nginx_conf(domain=DOMAIN, exam_domain=EXAM_DOMAIN, upstreams=["127.0.0.1:9"], max_body_mb=101,
                                          listen_http=free_port(), listen_https=free_port(), **site)
    result = _nginx_test(tmp_path, conf)
    assert result.returncode != 0
    assert "missing.pem" in result.stderr


# --- a real nginx on loopback -----------------------------------------------------------------

class _Upstream(BaseHTTPRequestHandler):
    """Stands in for daphne: echoes what nginx sent, and answers /report like the reports view."""

    def do_GET(self):
        if self.path.startswith("/report"):
            self._send(200, b"", {"Content-Type": "text/csv; charset=utf-8",
                                  "Content-Disposition": 'attachment; filename="r.csv"',
                                  "X-Accel-Redirect": f"{spec.PRIVATE_X_ACCEL_PREFIX}/reports/r.csv"})
        elif self.path == "/health/":
            self._send(503, b'{"status": "degraded"}', {"Content-Type": "application/json"})
        else:
            seen = {k: self.headers.get(k) for k in ("Host", "X-Forwarded-For", "X-Forwarded-Proto",
                                                      "Upgrade", "Connection")}
            seen["path"] = self.path
            self._send(200, json.dumps(seen).encode(), {"Content-Type": "application/json"})

    def _send(self, status, body, headers):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _SNIAdapter(HTTPAdapter):
    """Connect to 127.0.0.1 but name the host in the TLS handshake, as a browser would."""

    def __init__(self, host: str = DOMAIN):
        self.host = host
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self.host
        super().init_poolmanager(*args, **kwargs)


def _tls(port: int, *, alpn: list[str] | None = None, ciphers: str | None = None,
         tls12_only: bool = False) -> ssl.SSLSocket:
    """A TLS connection to the loopback nginx that names the domain (SNI), without verification."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(alpn)
    if ciphers:
        context.set_ciphers(ciphers)
    if tls12_only:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        return context.wrap_socket(raw, server_hostname=DOMAIN)
    except BaseException:
        raw.close()
        raise


@contextmanager
def running_nginx(tmp: Path, conf: str, https_port: int):
    (tmp / "nginx.conf").write_text(conf)
    out, err = open(tmp / "stdout.log", "wb"), open(tmp / "stderr.log", "wb")
    process = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", "stderr",
                                "-g", "daemon off;"], stdout=out, stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited with {process.returncode}: {(tmp / 'stderr.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("nginx did not listen in time")
                time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then the master exits
            try:
                process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=TIMEOUT)
        out.close()
        err.close()


@pytest.fixture
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=TIMEOUT)


@contextmanager
def _session(host: str):
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    with requests.Session() as s:
        s.mount("https://", _SNIAdapter(host))
        s.trust_env = False  # no proxies, and REQUESTS_CA_BUNDLE must not turn verification back on
        s.verify = False
        s.headers["Host"] = host
        yield s


@pytest.fixture
def session():
    with _session(DOMAIN) as s:
        yield s


@needs_nginx
@pytest.mark.slow
def test_nginx_serves_and_proxies_on_loopback(tmp_path, upstream, session):
    site = _site(tmp_path)
    http_port, https_port, dead_port = free_port(), free_port(), free_port()
    conf = nginx_config.render_nginx_conf(
        domain=DOMAIN, exam_domain=EXAM_DOMAIN, upstreams=[f"127.0.0.1:{upstream.server_address[1]}", f"127.0.0.1:{dead_port}"],
        max_body_mb=1, listen_http=http_port, listen_https=https_port, ipv6=False, bind_address="127.0.0.1",
        **site)
    http_url, https_url = f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}"
    get = lambda url, **kw: session.get(url, timeout=TIMEOUT, allow_redirects=False, **kw)  # noqa: E731

    with running_nginx(tmp_path, conf, https_port):
        # Plain HTTP: the ACME challenge is served, everything else is sent to HTTPS.
        response = get(f"{http_url}/exams/1/?x=1")
        assert response.status_code == 308
        assert response.headers["Location"] == f"https://{DOMAIN}:{https_port}/exams/1/?x=1"
        response = get(f"{http_url}/.well-known/acme-challenge/x")
        assert response.status_code == 200 and response.text == "token-x.thumbprint\n"
        assert get(f"{http_url}/.well-known/acme-challenge/missing").status_code == 404

        # TLS without our name (scanners on the IP address) gets no handshake at all.
        with pytest.raises(requests.exceptions.SSLError):
            with requests.Session() as plain:
                plain.trust_env = False
                plain.get(f"{https_url}/", verify=False, timeout=TIMEOUT)

        # HTTP/2 is offered; TLS 1.2 without ECDHE is not.
        with _tls(https_port, alpn=["h2", "http/1.1"]) as tls:
            assert tls.selected_alpn_protocol() == "h2"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        with pytest.raises(ssl.SSLError):
            with _tls(https_port, ciphers="AES128-GCM-SHA256:AES256-GCM-SHA384", tls12_only=True):
                pass

        # Static files: long-lived and immutable, with the security headers and no X-Frame-Options.
        response = get(f"{https_url}/static/x.css")
        assert response.status_code == 200 and "teal" in response.text
        assert "immutable" in response.headers["Cache-Control"]
        assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "X-Frame-Options" not in response.headers

        # Exam packages are not served on the application's host; nothing under /media is.
        assert get(f"{https_url}/media/exams/abc123/index.html").status_code == 404
        assert get(f"{https_url}/media/other").status_code == 404
        assert get(f"{https_url}/media/exams/../other").status_code in (400, 404)

        # The exam-content host: exam files, the runtime and MathJax with the content policy and
        # without cookies; nothing is passed to daphne (the echoing upstream would answer 200).
        with _session(EXAM_DOMAIN) as exams:
            response = exams.get(f"{https_url}/exams/abc123/index.html", timeout=TIMEOUT)
            assert response.status_code == 200 and "<title>exam</title>" in response.text
            assert response.headers["Content-Security-Policy"] == nginx_config.content_policy().content_security_policy(
                app_sources=[f"https://{DOMAIN}:{https_port}"])
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
            assert "Set-Cookie" not in response.headers
            runtime = exams.get(f"{https_url}/runtime/frame.js", timeout=TIMEOUT)
            assert runtime.status_code == 200 and "numbasLtiRuntime" in runtime.text
            assert runtime.headers["Cache-Control"] == "no-cache"
            assert "connect-src 'self'" in runtime.headers["Content-Security-Policy"]
            mathjax = exams.get(f"{https_url}/mathjax/2/MathJax.js", timeout=TIMEOUT)
            assert mathjax.status_code == 200 and "MathJax" in mathjax.text
            for path in ("/hello", "/admin/", "/lti/launch/", "/health/", "/ws/attempt/1/", "/static/x.css",
                         "/media/exams/abc123/index.html", "/exams/../other", "/exams/abc123/../../other",
                         f"{spec.PRIVATE_X_ACCEL_PREFIX}/reports/r.csv"):
                answer = exams.get(f"{https_url}{path}", timeout=TIMEOUT, allow_redirects=False)
                assert answer.status_code in (400, 404), path
                assert "Set-Cookie" not in answer.headers
            # Not a bare nginx page: the branded one, with the content policy; and the icon.
            missing = exams.get(f"{https_url}/hello", timeout=TIMEOUT)
            assert missing.status_code == 404 and "<title>Not found</title>" in missing.text
            assert "nginx" not in missing.text and "Content-Security-Policy" in missing.headers
            posted = exams.post(f"{https_url}/runtime/frame.js", data="x", timeout=TIMEOUT)
            assert posted.status_code == 405 and "<title>Not found</title>" in posted.text
            icon = exams.get(f"{https_url}/favicon.ico", timeout=TIMEOUT)
            assert icon.status_code == 200 and icon.content == (
                REPO / "app" / "core" / "static" / "core" / "favicon.ico").read_bytes()
        response = get(f"{http_url}/exams/abc123/index.html", headers={"Host": EXAM_DOMAIN})
        assert response.headers["Location"] == f"https://{EXAM_DOMAIN}:{https_port}/exams/abc123/index.html"

        # Private files: never directly, only through the app's X-Accel-Redirect.
        assert get(f"{https_url}{spec.PRIVATE_X_ACCEL_PREFIX}/reports/r.csv").status_code == 404
        response = get(f"{https_url}/report/1/")
        assert response.status_code == 200
        assert response.text == "student,score\nalice,7\n"
        assert response.headers["Content-Disposition"] == 'attachment; filename="r.csv"'
        assert "no-store" in response.headers["Cache-Control"]
        assert "X-Accel-Redirect" not in response.headers

        # Proxied requests: the forwarded headers are nginx's own (a client cannot claim an address);
        # the dead second daphne is skipped (requests alternate between the two).
        for _ in range(6):
            response = get(f"{https_url}/hello?token=do-not-log", headers={"X-Forwarded-For": "6.6.6.6"})
            assert response.status_code == 200
            seen = response.json()
            assert seen["X-Forwarded-For"] == "127.0.0.1"
            assert seen["X-Forwarded-Proto"] == "https"
            assert seen["Host"] == DOMAIN
            assert response.headers["Strict-Transport-Security"] == "max-age=63072000"

        # Websocket paths pass the upgrade on.
        seen = get(f"{https_url}/ws/attempt/1/?token=do-not-log",
                   headers={"Upgrade": "websocket", "Connection": "Upgrade"}).json()
        assert seen["Upgrade"] == "websocket" and seen["Connection"].lower() == "upgrade"
        assert seen["path"] == "/ws/attempt/1/?token=do-not-log"

        # The app's own health report passes through, 503 included.
        response = get(f"{https_url}/health/")
        assert response.status_code == 503 and response.json() == {"status": "degraded"}

        # An upload larger than client_max_body_size: JSON the upload page can show.
        connection = http.client.HTTPSConnection("127.0.0.1", https_port, timeout=TIMEOUT)
        connection.sock = _tls(https_port)
        connection.putrequest("POST", "/resource/1/exams/upload/", skip_host=True)
        connection.putheader("Host", DOMAIN)
        connection.putheader("Content-Type", "application/zip")
        connection.putheader("Content-Length", str(2 * 1024 * 1024))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert "larger than the 1 MB limit" in json.loads(response.read())["error"]
        connection.close()

        # With every daphne down: the friendly page, not nginx's bare 502.
        upstream.shutdown()
        upstream.server_close()
        response = get(f"{https_url}/hello")
        assert response.status_code == 502
        assert "restarting or busy" in response.text
        assert "saved in your browser" in response.text
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"].startswith("text/html")

    access_log = (tmp_path / "stdout.log").read_text()
    assert "/hello" in access_log and "/ws/attempt/1/" in access_log
    assert "do-not-log" not in access_log


@needs_nginx
@pytest.mark.slow
def test_the_access_log_never_shows_a_hand_off_token(tmp_path, upstream, session):
    site = _site(tmp_path)
    https_port = free_port()
    conf = nginx_config.render_nginx_conf(
        domain=DOMAIN, exam_domain=EXAM_DOMAIN, upstreams=[f"127.0.0.1:{upstream.server_address[1]}"], max_body_mb=1,
        listen_http=free_port(), listen_https=https_port, ipv6=False, bind_address="127.0.0.1", **site)
    https_url = f"https://127.0.0.1:{https_port}"
    paths = ["/lti/handoff/Secret-Handoff-1/", "/lti/handoff/Secret-Handoff-2", "/lti/handoff/Secret-Handoff-3/?x=1",
             "/resource/7/?launch=Secret-Handoff-4", "/lti/handoffs-are-not-this/", "/static/x.css"]
    with running_nginx(tmp_path, conf, https_port):
        for path in paths:
            assert session.get(https_url + path, timeout=TIMEOUT, allow_redirects=False).status_code == 200, path

    access_log = (tmp_path / "stdout.log").read_text()
    assert "Secret-Handoff" not in access_log
    requests_logged = re.findall(r'"GET (\S+) HTTP/1.1"', access_log)
    assert requests_logged == ["/lti/handoff/[redacted]/", "/lti/handoff/[redacted]", "/lti/handoff/[redacted]/",
                               "/resource/7/", "/lti/handoffs-are-not-this/"], access_log  # static: not logged
