"""What an LMS administrator gives their LMS to connect this tool with LTI 1.3."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext


def default_base_url() -> str:
    hosts = [h for h in settings.ALLOWED_HOSTS if h not in ("*",) and not h.startswith(".")]
    host = hosts[0] if hosts else "localhost"
    scheme = "http" if host in ("127.0.0.1", "localhost", "[::1]") else "https"
    return f"{scheme}://{host}"


def tool_urls(*, base_url: str | None = None, request=None) -> dict[str, str]:
    """Every URL an LMS asks for when a tool is added, by the names LMSs give them."""
    if request is not None:
        base = f"{request.scheme}://{request.get_host()}"
    else:
        base = (base_url or default_base_url()).rstrip("/")
    launch = base + reverse("lti13:launch")
    return {
        gettext("Tool URL / target link URI"): launch,
        gettext("Initiate login URL / OIDC login URL"): base + reverse("lti13:login"),
        gettext("Redirection URI(s)"): launch,
        gettext("Public keyset URL / JWKS URL"): base + reverse("lti13:jwks"),
        gettext("Deep linking URL / content selection URL"): launch,
        gettext("Domain"): base.split("://", 1)[1],
    }
