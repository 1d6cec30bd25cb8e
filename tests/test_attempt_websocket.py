"""The attempt-data websocket through a real daphne (Redis channel layer under scripts/test):
who may connect and write, acknowledgement after commit, a re-sent batch stored once, and
take-over by a second window."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest

from tests.support.attempt_client import Student, batch
from tests.support.attempt_page import DEMO_SECRET

pytestmark = pytest.mark.slow


def run(coroutine):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


def student(server, user_id, **kwargs) -> Student:
    return Student(server.url, key="demo", secret=DEMO_SECRET, user_id=user_id, **kwargs).launch()


async def converse(url, cookie, origin, messages, *, expect):
    """Connect, send messages, collect up to `expect` replies (or the close)."""
    headers = {"Origin": origin}
    if cookie:
        headers["Cookie"] = cookie
    replies = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, headers=headers) as ws:
            for message in messages:
                await ws.send_str(message if isinstance(message, str) else json.dumps(message))
            while len(replies) < expect:
                reply = await ws.receive(timeout=10)
                if reply.type != aiohttp.WSMsgType.TEXT:
                    break
                replies.append(json.loads(reply.data))
            if len(replies) >= expect:
                await ws.close()
            return replies, ws.close_code


def count(server, table, attempt_id):
    return server.query(f"SELECT count(*) FROM {table} WHERE attempt_id = %s", (attempt_id,))[0][0]


def test_owner_writes_acks_come_after_commit_and_resends_are_stored_once(demo_server):
    owner = student(demo_server, "ws-owner")
    attempt_id = owner.start_attempt()
    config = owner.open_attempt(attempt_id)
    first = batch(config["token"], [("cmi.location", "1"), ("cmi.suspend_data", "{}")], 1)
    replies, _ = run(converse(owner.websocket_url(config), owner.cookie_header, demo_server.url,
                              [first, first, "{not json", {"type": "batch"}], expect=5))
    assert replies[0] == {"type": "ready"}
    assert replies[1] == {"type": "ack", "batch": first["batch"], "stored": True, "ended": False}
    assert replies[2] == {"type": "ack", "batch": first["batch"], "stored": False, "ended": False}
    assert replies[3]["type"] == "error" and replies[3]["code"] == "invalid"
    assert replies[4]["type"] == "error" and replies[4]["code"] == "invalid"
    assert count(demo_server, "attempts_batch", attempt_id) == 1
    assert count(demo_server, "attempts_elementchange", attempt_id) == 2


def test_everyone_else_is_refused_with_a_close_code(demo_server):
    owner = student(demo_server, "ws-owner-2")
    attempt_id = owner.start_attempt()
    config = owner.open_attempt(attempt_id)
    others = {
        "anonymous": ("", 4401),
        "other student": (student(demo_server, "ws-other").cookie_header, 4403),
        "instructor of the resource": (student(demo_server, "ws-teacher", roles="Instructor").cookie_header, 4403),
        "instructor of another context": (
            student(demo_server, "ws-teacher-2", roles="Instructor", resource_link_id="other",
                    context_id="other-course").cookie_header, 4403),
    }
    message = batch(config["token"], [("cmi.location", "evil")], 1)
    for who, (cookie, code) in others.items():
        replies, close_code = run(converse(owner.websocket_url(config), cookie, demo_server.url, [message], expect=3))
        assert close_code == code, who
        assert not any(r.get("type") == "ack" for r in replies), who
    # and the student's cookie does not work from another site's page
    with pytest.raises(aiohttp.WSServerHandshakeError):
        run(converse(owner.websocket_url(config), owner.cookie_header, "http://evil.example", [], expect=1))
    assert count(demo_server, "attempts_elementchange", attempt_id) == 0


def test_opening_the_attempt_again_takes_over_the_first_window(demo_server):
    owner = student(demo_server, "ws-owner-3")
    attempt_id = owner.start_attempt()
    first = owner.open_attempt(attempt_id)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(owner.websocket_url(first),
                                          headers={"Origin": demo_server.url, "Cookie": owner.cookie_header}) as ws:
                assert json.loads((await ws.receive(timeout=10)).data) == {"type": "ready"}
                second = await asyncio.to_thread(owner.open_attempt, attempt_id)  # another window
                told = json.loads((await ws.receive(timeout=10)).data)
                closed = await ws.receive(timeout=10)
                return second, told, closed, ws.close_code

    second, told, closed, code = run(scenario())
    assert told["type"] == "taken_over" and code == 4409
    # the old window's token no longer connects; the new one does
    _, stale_code = run(converse(owner.websocket_url(first), owner.cookie_header, demo_server.url, [], expect=2))
    assert stale_code == 4409
    replies, _ = run(converse(owner.websocket_url(second), owner.cookie_header, demo_server.url,
                              [batch(second["token"], [("cmi.location", "2")], 1)], expect=2))
    assert replies[1]["type"] == "ack" and replies[1]["stored"] is True
