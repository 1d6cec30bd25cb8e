"""The production nginx configuration, rendered from nginx/nginx.conf.template (plain Python, no
Pulumi): the Pulumi program writes the result to the server, and the tests run `nginx -t` on it
and serve real requests with it.

Every value is checked before it is substituted: a space, `;`, brace, quote, `#` or `$` in a path
or name would change the meaning of the configuration instead of failing loudly.
"""

from __future__ import annotations

import functools
import importlib.util
import ipaddress
import re
from pathlib import Path
from string import Template

from . import spec

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "nginx" / "nginx.conf.template"
# The exam-content origin's headers and MathJax addresses, defined once for the development
# server and for nginx (plain Python; the app's image does not carry infra/, so this reads the app's).
CONTENT_POLICY_PATH = Path(__file__).resolve().parents[2] / "app" / "content" / "policy.py"
DEFAULT_ERRORS_DIR = "/usr/share/nginx/errors"
DEFAULT_PID_FILE = "/var/run/nginx.pid"  # as in the official image's own nginx.conf
UPSTREAM_MAX_FAILS = 3
UPSTREAM_FAIL_TIMEOUT = "10s"

_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_FORBIDDEN = re.compile(r"""[\s;{}$#'"\\]""")
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@functools.cache
def content_policy():
    module_spec = importlib.util.spec_from_file_location("numbas_lti_content_policy", CONTENT_POLICY_PATH)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def certificate_paths(domain: str) -> tuple[str, str]:
    """(certificate, key): where certbot keeps the live Let's Encrypt files for the domain."""
    _check_hostname("domain", domain)
    live = f"{spec.CERT_DIR}/live/{domain}"
    return f"{live}/fullchain.pem", f"{live}/privkey.pem"


def render_nginx_conf(
    *,
    domain: str,
    exam_domain: str,
    upstreams: list[str] | None,
    certificate: str,
    certificate_key: str,
    max_body_mb: int,
    errors_dir: str = DEFAULT_ERRORS_DIR,
    static_root: str = spec.STATIC_ROOT,
    media_root: str = spec.MEDIA_ROOT,
    private_root: str = spec.PRIVATE_ROOT,
    private_prefix: str = spec.PRIVATE_X_ACCEL_PREFIX,
    acme_webroot: str = spec.ACME_WEBROOT,
    listen_http: int = 80,
    listen_https: int = 443,
    ipv6: bool = True,
    bind_address: str | None = None,
    http2_on_directive: bool = True,
    resolver: str | None = None,
    worker_user: str | None = "nginx",
    worker_group: str | None = None,
    pid_file: str = DEFAULT_PID_FILE,
    temp_dir: str | None = None,
    exam_mathjax: str = "local",
    exam_sources: tuple[str, ...] = (),
    frame_ancestors: str = "'self' https:",
    upstreams_file: str | None = None,
) -> str:
    """The complete nginx.conf.

    exam_domain: the exam-content host (EXAM_ORIGIN's), another name than `domain`; the
      certificate must name both.
    upstreams: "host:port" of every daphne (spec.daphne_upstreams(n)); or None with
    upstreams_file: the absolute path of a file with the upstream's `server` lines
      (render_upstream_servers), included in the upstream block: production rewrites that file
      and reloads nginx when daphne containers change, so nginx.conf itself stays the same.
    max_body_mb: client_max_body_size in MB; give Django's upload limit plus a little for the
      multipart envelope, so that Django (not nginx) words the refusal of a borderline file.
    bind_address: an IPv4 address to listen on instead of all (tests: 127.0.0.1).
    http2_on_directive: `http2 on;` (nginx >= 1.25.1, the production image); False writes the
      older `listen ... http2` form for older nginx (Debian bookworm's 1.22 in the tests).
    resolver: e.g. "127.0.0.11" (Docker's embedded DNS) to re-resolve the daphne names while
      running (`server ... resolve`, nginx >= 1.27.3): nginx then starts even if a daphne is
      missing and follows replaced containers. None: names are resolved once, at (re)load.
    worker_user, pid_file, temp_dir: process settings; the defaults suit the official image.
    worker_group: the workers' group when it is not the one named like worker_user (nginx's rule);
      they read the files volume through it (spec.FILES_GID).
    exam_mathjax, exam_sources, frame_ancestors: the app's EXAM_MATHJAX, EXAM_CONTENT_SOURCES and
      FRAME_ANCESTORS, for the exam-content host's policy.
    """
    _check_hostname("domain", domain)
    _check_hostname("exam_domain", exam_domain)
    if exam_domain.lower() == domain.lower():
        raise ValueError("exam_domain must be a host name of its own, not the application's domain")
    policy = content_policy()
    for source in exam_sources:
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d+)?", source or ""):
            raise ValueError(f"each of exam_sources must be an origin such as https://www.geogebra.org, not {source!r}")
    if _FORBIDDEN.sub("", frame_ancestors.replace("'", "").replace(" ", "")) != \
            frame_ancestors.replace("'", "").replace(" ", ""):
        raise ValueError(f"frame_ancestors has characters nginx cannot take: {frame_ancestors!r}")
    if upstreams_file is not None:
        if upstreams is not None:
            raise ValueError("give either upstreams or upstreams_file, not both")
        _check_absolute_path("upstreams_file", upstreams_file)
    else:
        _check_upstreams(upstreams)
    if isinstance(max_body_mb, bool) or not isinstance(max_body_mb, int) or not 1 <= max_body_mb <= 10_000:
        raise ValueError(f"max_body_mb must be a whole number of MB between 1 and 10000, not {max_body_mb!r}")
    paths = {
        "certificate": certificate,
        "certificate_key": certificate_key,
        "errors_dir": errors_dir,
        "static_root": static_root,
        "media_root": media_root,
        "private_root": private_root,
        "acme_webroot": acme_webroot,
        "pid_file": pid_file,
    }
    if temp_dir is not None:
        paths["temp_dir"] = temp_dir
    for name, value in paths.items():
        _check_absolute_path(name, value)
    _check_absolute_path("private_prefix", private_prefix)
    prefix = private_prefix.rstrip("/")
    if not prefix or prefix.startswith(("/static", "/media", "/ws", "/_errors", "/.well-known")):
        raise ValueError(f"private_prefix must be its own URL path such as /_private, not {private_prefix!r}")
    for name, port in (("listen_http", listen_http), ("listen_https", listen_https)):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"{name} must be a port number (1-65535), not {port!r}")
    if listen_http == listen_https:
        raise ValueError("listen_http and listen_https must differ")
    if bind_address is not None:
        _check_ipv4("bind_address", bind_address)
    if resolver is not None:
        _check_ipv4("resolver", resolver)
    if worker_user is not None and not _USER.match(worker_user):
        raise ValueError(f"worker_user must be a plain user name, not {worker_user!r}")
    if worker_group is not None and (worker_user is None or not _USER.match(worker_group)):
        raise ValueError(f"worker_group must be a plain group name, with a worker_user, not {worker_group!r}")

    def listen(port: int, extra: str) -> str:
        v4 = f"{bind_address}:{port}" if bind_address else str(port)
        lines = [f"listen {v4}{extra};"]
        if ipv6:
            lines.append(f"listen [::]:{port}{extra};")
        return "\n".join(f"        {line}" for line in lines)

    tls = " ssl" if http2_on_directive else " ssl http2"
    port_suffix = "" if listen_https == 443 else f":{listen_https}"
    csp = policy.content_security_policy(app_sources=[f"https://{domain.lower()}{port_suffix}"],
                                         frame_ancestors=frame_ancestors, mathjax=exam_mathjax,
                                         extra_sources=list(exam_sources))
    headers = {"Strict-Transport-Security": "max-age=63072000", **policy.security_headers(csp)}
    # add_header in a location hides the server's: each location that adds one repeats them all.
    exam_headers = "".join(f'        add_header {name} "{value}" always;\n' for name, value in headers.items())
    exam_location_headers = "".join(f'    {line}\n' for line in exam_headers.splitlines())
    if exam_mathjax == "cdn":
        mathjax_locations = (
            "\n        location = /mathjax/local-fonts.js {\n"
            f"            alias {static_root.rstrip('/')}/content/mathjax/local-fonts.js;\n"
            f'            add_header Cache-Control "{policy.RUNTIME_CACHE}" always;\n{exam_location_headers}        }}\n')
        for prefix, cdn in policy.MATHJAX_CDN.items():
            name = "mathjax_" + re.sub(r"[^a-z0-9]", "_", prefix)
            mathjax_locations += (
                f"\n        location ~ ^/mathjax/{prefix}(?<{name}rest>.*)$ {{\n"
                f"            return 302 {cdn}${name}rest$is_args$args;\n        }}\n")
    else:
        mathjax_locations = (
            "\n        location ^~ /mathjax/ {\n"
            f"            alias {static_root.rstrip('/')}/content/mathjax/;\n            charset utf-8;\n"
            f'            add_header Cache-Control "{policy.MATHJAX_CACHE}" always;\n{exam_location_headers}        }}\n')
    temp_paths = ""
    if temp_dir is not None:
        root = temp_dir.rstrip("/") or "/"
        temp_paths = "".join(
            f"    {directive} {root}/{sub};\n"
            for directive, sub in (
                ("client_body_temp_path", "client_body"),
                ("proxy_temp_path", "proxy"),
                ("fastcgi_temp_path", "fastcgi"),
                ("uwsgi_temp_path", "uwsgi"),
                ("scgi_temp_path", "scgi"),
            )
        )

    values = {
        "user_directive": f"user {worker_user}{f' {worker_group}' if worker_group else ''};\n" if worker_user else "",
        "pid_file": pid_file,
        "temp_paths": temp_paths,
        "domain": domain.lower(),
        "exam_domain": exam_domain.lower(),
        "exam_http_listen": listen(listen_http, ""),
        "exam_headers": exam_headers,
        "exam_location_headers": exam_location_headers.rstrip("\n"),
        "exam_cache": policy.EXAM_CACHE,
        "runtime_cache": policy.RUNTIME_CACHE,
        "mathjax_locations": mathjax_locations,
        "upstream_resolver": f"        resolver {resolver} valid=10s ipv6=off;\n" if resolver else "",
        "upstream_servers": (f"        include {upstreams_file};" if upstreams_file is not None
                             else render_upstream_servers(upstreams, resolve=resolver is not None, indent=8)),
        "http_listen": listen(listen_http, " default_server"),
        "https_default_listen": listen(listen_https, f"{tls} default_server"),
        "https_listen": listen(listen_https, tls),
        "http2_directive": "        http2 on;\n" if http2_on_directive else "",
        "https_port_suffix": port_suffix,
        "certificate": certificate,
        "certificate_key": certificate_key,
        "max_body_mb": str(max_body_mb),
        "errors_dir": errors_dir.rstrip("/"),
        "static_root": static_root.rstrip("/"),
        "media_root": media_root.rstrip("/"),
        "private_root": private_root.rstrip("/"),
        "private_prefix": prefix,
        "acme_webroot": acme_webroot.rstrip("/") or "/",
    }
    return Template(TEMPLATE_PATH.read_text(encoding="utf-8")).substitute(values)


def render_upstream_servers(upstreams: list[str], *, resolve: bool, indent: int = 0) -> str:
    """The upstream block's `server` lines. resolve: re-resolve the names while running (needs the
    http-level `resolver`, which render_nginx_conf writes when given one)."""
    _check_upstreams(upstreams)
    params = f" max_fails={UPSTREAM_MAX_FAILS} fail_timeout={UPSTREAM_FAIL_TIMEOUT}" + (" resolve" if resolve else "")
    return "\n".join(f"{' ' * indent}server {u}{params};" for u in upstreams)


def _check_upstreams(upstreams: object) -> None:
    if not isinstance(upstreams, (list, tuple)) or not upstreams:
        raise ValueError("upstreams must be a non-empty list of host:port (at least one daphne)")
    for upstream in upstreams:
        _check_upstream(upstream)
    if len(set(upstreams)) != len(upstreams):
        raise ValueError(f"upstreams lists a server twice: {list(upstreams)!r}")


def _check_hostname(name: str, value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > 253:
        raise ValueError(f"{name} must be a host name such as lti.example.ac.uk, not {value!r}")
    labels = value.rstrip(".").split(".") if value != "." else [""]
    if not all(_HOSTNAME_LABEL.match(label) for label in labels):
        raise ValueError(f"{name} must be a host name such as lti.example.ac.uk, not {value!r}")


def _check_ipv4(name: str, value: object) -> None:
    try:
        ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise ValueError(f"{name} must be an IPv4 address, not {value!r}") from None


def _check_upstream(value: object) -> None:
    if not isinstance(value, str) or _FORBIDDEN.search(value) or value.count(":") != 1:
        raise ValueError(f"each upstream must be host:port (e.g. {spec.daphne_upstreams(1)[0]}), not {value!r}")
    host, port = value.split(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"upstream {value!r} has no valid port")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        _check_hostname(f"the host of upstream {value!r}", host)


def _check_absolute_path(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"{name} must be an absolute path, not {value!r}")
    if _FORBIDDEN.search(value):
        raise ValueError(f"{name} must not contain whitespace, quotes or any of ; {{ }} $ # \\ : {value!r}")
    if "/../" in f"{value}/" or "/./" in f"{value}/":
        raise ValueError(f"{name} must be a normalised path without . or .. parts: {value!r}")
