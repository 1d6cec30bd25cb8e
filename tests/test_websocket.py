"""The websocket route through a real daphne (with the Redis channel layer under scripts/test)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
import urllib.request
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.support import lms as test_lms

pytestmark = pytest.mark.slow


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def launch_cookie(daphne_server) -> str:
    daphne_server.manage("create_lti_consumer", "--key", "ws-lms", "--secret", "ws-secret")
    params = test_lms.sign(
        test_lms.launch_params(lis_person_name_full="Wes Socket"),
        key="ws-lms",
        secret="ws-secret",
        url=f"{daphne_server.url}/lti/launch/",
    )
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"{daphne_server.url}/lti/launch/", data=urlencode(params).encode())
    except urllib.error.HTTPError as response:
        assert response.code == 302, response.read()
        cookie = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie"):
            cookie.load(header)
        return cookie["sessionid"].value
    raise AssertionError("launch did not redirect")


async def whoami(url: str, cookie: str | None, origin: str):
    headers = {"Origin": origin}
    if cookie:
        headers["Cookie"] = f"sessionid={cookie}"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, headers=headers, timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
            message = await ws.receive(timeout=5)
            return message.type, message.data, ws.close_code


def run(coroutine):
    """asyncio.run in a thread of its own: Playwright may hold this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


def test_websocket_knows_the_launched_user_and_refuses_others(daphne_server):
    cookie = launch_cookie(daphne_server)
    ws_url = daphne_server.url.replace("http://", "ws://") + "/ws/whoami/"

    kind, data, _ = run(whoami(ws_url, cookie, daphne_server.url))
    assert kind == aiohttp.WSMsgType.TEXT and '"name": "Wes Socket"' in data

    kind, _, code = run(whoami(ws_url, None, daphne_server.url))
    assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and code == 4401

    # a page on another origin cannot use the student's cookie
    with pytest.raises(aiohttp.WSServerHandshakeError):
        run(whoami(ws_url, cookie, "http://evil.example"))
