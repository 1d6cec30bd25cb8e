"""What an LMS administrator gives their LMS to connect this tool with LTI 1.3."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext


def default_base_url() -> str:
    hosts = [h for h in settings.ALLOWED_HOSTS if h not in ("*",) and not h.startswith(".")]
    host = hosts[0] if hosts else "localhost"
    scheme = "http" if host in ("127.0.0.1", "localhost", "[::1]") else "https"
    return f"{scheme}://{host}"


@dataclass(frozen=True)
class ToolEndpoints:
    """The tool's LTI 1.3 addresses at one base URL."""

    base: str
    launch: str  # target link URI, redirect URI, deep linking URL
    login: str  # OIDC login initiation
    jwks: str

    @property
    def domain(self) -> str:
        return self.base.split("://", 1)[1]


def endpoints(*, base_url: str | None = None, request=None) -> ToolEndpoints:
    if request is not None:
        base = f"{request.scheme}://{request.get_host()}"
    else:
        base = (base_url or default_base_url()).rstrip("/")
    return ToolEndpoints(base=base, launch=base + reverse("lti13:launch"), login=base + reverse("lti13:login"),
                         jwks=base + reverse("lti13:jwks"))


def tool_urls(*, base_url: str | None = None, request=None) -> dict[str, str]:
    """Every URL an LMS asks for when a tool is added, by the names LMSs give them."""
    urls = endpoints(base_url=base_url, request=request)
    return {
        gettext("Tool URL / target link URI"): urls.launch,
        gettext("Initiate login URL / OIDC login URL"): urls.login,
        gettext("Redirection URI(s)"): urls.launch,
        gettext("Public keyset URL / JWKS URL"): urls.jwks,
        gettext("Deep linking URL / content selection URL"): urls.launch,
        gettext("Domain"): urls.domain,
    }

