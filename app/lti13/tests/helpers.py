"""LTI 1.3 launches driven by the independent stand-in platform (tests/support/lti13_platform)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from lti13 import keys
from lti13.services import PlatformValues, platform_create_or_update
from tests.support.lti13_platform import ROLE_INSTRUCTOR, ROLE_LEARNER, Lti13Platform  # noqa: F401

TOOL = "http://testserver"
LOGIN_URL = TOOL + "/lti13/login/"
LAUNCH_URL = TOOL + "/lti13/launch/"


def register(lms: Lti13Platform, *, client_id: str = "tool-1", deployment_id: str = "dep-1", consumer_key=None):
    """Register the platform with the tool and the tool with the platform (the tool's keyset
    given statically: the test client's tool is not reachable over HTTP)."""
    platform, _ = platform_create_or_update(
        values=PlatformValues(name="Test LMS", issuer=lms.issuer, client_id=client_id, auth_login_url=lms.auth_url,
                              auth_token_url=lms.token_url, keyset_url=lms.jwks_url),
        deployment_ids=[deployment_id], consumer_key=consumer_key)
    keys.signing_key()
    lms.register_tool(login_url=LOGIN_URL, redirect_uris=[LAUNCH_URL], client_id=client_id,
                      deployment_ids=[deployment_id], jwks=keys.jwks())
    return platform


def login(client, lms: Lti13Platform, **launch_kwargs):
    """Prepare a launch and send its login: (prepared launch, the tool's answer)."""
    method = launch_kwargs.pop("method", "POST")
    prepared = lms.prepare_launch(**launch_kwargs)
    request = prepared.login_request(method)
    if method == "GET":
        return prepared, client.get(request.path, request.params)
    return prepared, client.post(request.path, request.params)


def auth_params(response) -> dict[str, str]:
    """The authentication request the tool's login redirected to."""
    assert response.status_code == 302, response.content[:500]
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def launch(client, lms: Lti13Platform, **launch_kwargs):
    """The whole launch: login → the platform's /auth → id_token posted to the tool."""
    _, response = login(client, lms, **launch_kwargs)
    redirect_uri, fields = lms.authorize_url(response["Location"])
    return client.post(urlsplit(redirect_uri).path, fields)
