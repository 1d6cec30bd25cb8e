"""The log of a real daphne, started as deployed (spec.daphne_command), holds a line per request
and per websocket — and never a one-time hand-off token or an attempt's writer token, wherever
they travel (the launch's redirect ?launch=, /lti/handoff/<token>/, /ws/attempt/<id>/?token=)."""

import asyncio
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest
import requests

from tests.support import lms as test_lms
from tests.support.attempt_client import Student, batch
from tests.support.attempt_page import DEMO_SECRET

pytestmark = pytest.mark.slow


def log_with(server, *patterns: str, timeout: float = 10) -> str:
    """The server's log once every pattern is in it (lines are written as requests end)."""
    deadline = time.monotonic() + timeout
    while True:
        text = server.log_path.read_text()
        if all(re.search(p, text) for p in patterns) or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def launch(server, user_id: str) -> str:
    """A student's launch; the redirect's URL, which carries the hand-off token."""
    params = test_lms.sign(test_lms.launch_params(user_id=user_id, resource_link_id="demo-exam",
                                                  context_id="demo-course"),
                           key="demo", secret=DEMO_SECRET, url=f"{server.url}/lti/launch/")
    response = requests.post(f"{server.url}/lti/launch/", data=params, allow_redirects=False, timeout=30)
    assert response.status_code == 302
    return response.headers["Location"]


def test_hand_off_tokens_are_not_logged_but_the_requests_are(demo_server):
    suffix = uuid.uuid4().hex[:8]
    redirect = launch(demo_server, f"log-{suffix}")
    resource_page, token = re.fullmatch(r"(/resource/\d+/)\?launch=([\w-]+)", redirect).groups()
    # The browser in the LMS frame arrives without our cookie: it is offered the new window...
    blocked = requests.get(demo_server.url + redirect, timeout=30)
    assert f"/lti/handoff/{token}/" in blocked.text
    # ... which signs it in once; the link is then used up (410, and Django logs the refusal).
    new_window = requests.Session()
    assert new_window.get(f"{demo_server.url}/lti/handoff/{token}/", allow_redirects=False,
                          timeout=30).status_code == 302
    assert new_window.get(f"{demo_server.url}/lti/handoff/{token}/", allow_redirects=False,
                          timeout=30).status_code == 410

    log = log_with(demo_server, r'"GET /lti/handoff/\[redacted\]/" 410')
    assert token not in log
    assert '"POST /lti/launch/" 302' in log
    assert f'"GET {resource_page}" 200' in log
    assert '"GET /lti/handoff/[redacted]/" 302' in log


async def _write_once(url: str, cookie: str, origin: str, message: dict) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, headers={"Cookie": cookie, "Origin": origin}) as ws:
            assert json.loads((await ws.receive(timeout=15)).data) == {"type": "ready"}
            await ws.send_str(json.dumps(message))
            return json.loads((await ws.receive(timeout=15)).data)


def test_writer_tokens_are_not_logged_but_the_websocket_is(demo_server):
    student = Student(demo_server.url, key="demo", secret=DEMO_SECRET, user_id=f"log-ws-{uuid.uuid4().hex[:8]}")
    attempt_id = student.launch().start_attempt()
    config = student.open_attempt(attempt_id)
    token = config["token"]
    message = batch(token, [("cmi.location", "2")], 1)
    with ThreadPoolExecutor(1) as pool:
        reply = pool.submit(asyncio.run, _write_once(student.websocket_url(config), student.cookie_header,
                                                     demo_server.url, message)).result(timeout=60)
    assert reply["type"] == "ack"
    # the same address as a plain request (not an upgrade) is a 404, logged without its query
    assert requests.get(student.websocket_url(config).replace("ws", "http", 1), timeout=30).status_code == 404

    socket_line = rf'"WEBSOCKET /ws/attempt/{attempt_id}/" 101 close=\d+ \d+ms'
    log = log_with(demo_server, socket_line, rf'"GET /ws/attempt/{attempt_id}/" 404')
    assert token not in log
    assert re.search(socket_line, log), log[-2000:]
    assert f'"GET /attempt/{attempt_id}/" 200' in log
