"""EXAM_ORIGIN: where exam files are served, and why it must be another host name.

Browsers keep cookies per host name, not per port, so an origin on another port of the
application's host would receive the application's session cookie; another host name does not.
`check_exam_origin` runs when the settings load (settings.py), so a wrong value stops the start.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured


def _host_matches(host: str, pattern: str) -> bool:
    """Django's ALLOWED_HOSTS matching: exact, '.example.com' (and its subdomains) or '*'."""
    pattern = pattern.lower()
    if pattern == "*":
        return True
    if pattern.startswith("."):
        return host == pattern[1:] or host.endswith(pattern)
    return host == pattern


def check_exam_origin(value: str, *, allowed_hosts: list[str]) -> str:
    """The origin (scheme://host[:port], no path) as given, or ImproperlyConfigured saying why not."""
    example = "https://exams.numbas.example.ac.uk"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises for a bad port
    except ValueError:
        raise ImproperlyConfigured(f"EXAM_ORIGIN is not a valid address: {value!r} (e.g. {example}).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password \
            or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"EXAM_ORIGIN must be an origin — scheme, host name and optional port, nothing else — "
            f"such as {example}, not {value!r}.")
    host = parts.hostname.lower()
    clash = [pattern for pattern in allowed_hosts if _host_matches(host, pattern)]
    if clash:
        raise ImproperlyConfigured(
            f"EXAM_ORIGIN's host {host!r} is one of the application's ALLOWED_HOSTS ({', '.join(clash)}): exams "
            f"must be served from a host name of their own, or they would run with the application's cookies.")
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def exam_origin():
    from django.conf import settings

    return urlsplit(settings.EXAM_ORIGIN)


def app_sources() -> list[str]:
    """The application's origins as CSP sources (they frame the exam runtime): each host of
    ALLOWED_HOSTS on any port, with EXAM_ORIGIN's scheme."""
    from django.conf import settings

    scheme = exam_origin().scheme
    sources = []
    for pattern in settings.ALLOWED_HOSTS:
        if pattern == "*" or not pattern or pattern.startswith("["):  # CSP has no IPv6 literals
            continue
        host = f"*{pattern}" if pattern.startswith(".") else pattern
        sources.append(f"{scheme}://{host}:*")
    return sources
