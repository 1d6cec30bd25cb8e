"""EXAM_ORIGIN must be an origin of a host name that is not the application's."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from content.origin import check_exam_origin
from content.policy import content_security_policy


@pytest.mark.parametrize("value, expected", [
    ("https://exams.numbas.example.ac.uk", "https://exams.numbas.example.ac.uk"),
    ("https://Exams.Example.org:8443/", "https://exams.example.org:8443"),
    ("http://localhost:8000", "http://localhost:8000"),
])
def test_good_origins(value, expected):
    assert check_exam_origin(value, allowed_hosts=["numbas.example.ac.uk", "127.0.0.1"]) == expected


@pytest.mark.parametrize("value, reason", [
    ("exams.example.org", "must be an origin"),
    ("ftp://exams.example.org", "must be an origin"),
    ("https://exams.example.org/exams/", "must be an origin"),
    ("https://user@exams.example.org", "must be an origin"),
    ("https://exams.example.org?x=1", "must be an origin"),
    ("https://exams.example.org:99999", "not a valid address"),
    ("https://numbas.example.ac.uk:8443", "one of the application's ALLOWED_HOSTS"),  # another port: same cookies
    ("https://sub.example.ac.uk", "one of the application's ALLOWED_HOSTS"),  # matches .example.ac.uk
])
def test_bad_origins_stop_the_start(value, reason):
    with pytest.raises(ImproperlyConfigured, match=reason):
        check_exam_origin(value, allowed_hosts=["numbas.example.ac.uk", ".example.ac.uk"])


def test_the_policy_keeps_exams_on_their_origin():
    csp = content_security_policy(app_sources=["https://numbas.example.ac.uk"], frame_ancestors="'self' https:")
    directives = dict(part.split(" ", 1) for part in csp.split("; "))
    assert directives["connect-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert directives["frame-ancestors"] == "'self' https://numbas.example.ac.uk https:"
    assert "cdn" not in csp
    with_cdn = content_security_policy(app_sources=[], mathjax="cdn", extra_sources=["https://www.geogebra.org"])
    assert "connect-src 'self' https://cdnjs.cloudflare.com https://cdn.jsdelivr.net https://www.geogebra.org" in with_cdn
    with pytest.raises(ValueError):
        content_security_policy(app_sources=[], mathjax="sometimes")
