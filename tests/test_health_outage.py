"""/health/ on a running daphne when PostgreSQL goes away and comes back."""

import json
import os
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.support.live import start_live_server
from tests.support.tcpproxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.stack]


def get_health(url):
    try:
        with urllib.request.urlopen(url + "/health/", timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_health_is_503_while_the_database_is_unreachable_and_200_after(tmp_path):
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        pytest.skip("needs PostgreSQL (scripts/test starts one)")
    proxy = TcpProxy(urlsplit(database_url).port)
    server = start_live_server(tmp_path, database_port=proxy.port)
    try:
        assert get_health(server.url)[0] == 200

        proxy.cut()
        status, body = get_health(server.url)
        assert status == 503
        assert body["status"] == "error" and body["checks"]["database"] == "error"

        proxy.restore()
        status, body = get_health(server.url)
        assert status == 200 and body["checks"]["database"] == "ok"
    finally:
        server.stop()
        proxy.close()


def test_a_batch_sent_while_the_database_is_unreachable_gets_a_retryable_answer_on_an_open_socket(tmp_path):
    """No 1011 and no dropped connection: "unavailable", then the same batch again is stored."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import aiohttp

    from tests.support.attempt_client import Student, batch
    from tests.support.attempt_page import DEMO_SECRET

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        pytest.skip("needs PostgreSQL (scripts/test starts one)")
    proxy = TcpProxy(urlsplit(database_url).port)
    server = start_live_server(tmp_path, database_port=proxy.port)
    try:
        server.manage("ensure_demo_data", "--secret", DEMO_SECRET)
        student = Student(server.url, key="demo", secret=DEMO_SECRET, user_id="outage-ws").launch()
        attempt_id = student.start_attempt()
        config = student.open_attempt(attempt_id)
        message = batch(config["token"], [("cmi.location", "7")], 1)

        async def converse():
            async with aiohttp.ClientSession() as http, http.ws_connect(
                    student.websocket_url(config), headers={"Cookie": student.cookie_header, "Origin": server.url}) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "ready"
                proxy.cut()
                await ws.send_json(message)
                refused = await ws.receive_json(timeout=30)
                proxy.restore()
                await ws.send_json(message)
                ack = await ws.receive_json(timeout=30)
                return refused, ack, ws.closed

        # A thread of its own: Playwright may be running an event loop in this one.
        with ThreadPoolExecutor(1) as pool:
            refused, ack, closed = pool.submit(asyncio.run, converse()).result(timeout=120)
        assert (refused["type"], refused["code"], refused["batch"]) == ("error", "unavailable", message["batch"])
        assert "sent again" in refused["message"]
        assert ack == {"type": "ack", "batch": message["batch"], "stored": True, "ended": False}
        assert not closed
        assert server.query("SELECT value FROM attempts_element WHERE attempt_id = %s AND key = 'cmi.location'",
                            (attempt_id,)) == [("7",)]
    finally:
        server.stop()
        proxy.close()
