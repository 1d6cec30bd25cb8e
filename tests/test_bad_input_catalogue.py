"""Bad input, catalogued (tests/support/bad_input.py): every malformed launch, attempt-data
message and hostile exam package is refused with a 4xx (or a websocket error reply / close code)
and a message a person can act on — never a 5xx — and nothing is written.

Cases that are application bugs today are xfail(strict=True), with the bug as the reason."""

import asyncio
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from attempts import services
from attempts.models import Attempt, Batch, Element, ElementChange
from attempts.tests.factories import batch as parsed_batch
from attempts.tests.factories import launch, with_exam
from exams.models import ExamPackage
from lms.models import Consumer
from tests.support.attempt_client import Student
from tests.support.attempt_client import batch as live_batch
from tests.support.attempt_page import DEMO_SECRET
from tests.support.bad_input import BATCHES, LAUNCHES, MB, ZIPS, LaunchKeys, Tokens, launch_rows

LAUNCH = "/lti/launch/"


def _cases(catalogue, bug="bug", when=lambda case: True):
    params = []
    for case in catalogue:
        if not when(case):
            continue
        reason = getattr(case, bug)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


# --- launches ------------------------------------------------------------------------------


def send_launch(client, request):
    if request.method == "GET":
        return client.get(LAUNCH, request.data, headers=request.headers)
    if request.content_type is None:
        return client.post(LAUNCH, request.data, headers=request.headers)
    return client.generic(request.method, LAUNCH, request.data, content_type=request.content_type,
                          headers=request.headers)


@pytest.mark.django_db
@pytest.mark.parametrize("case", _cases(LAUNCHES))
def test_malformed_launch_is_refused_with_a_message_and_writes_nothing(consumer, case):
    retired = Consumer.objects.create(key="retired-lms", secret="retired-secret", name="Retired LMS", active=False)
    request = case.build(LaunchKeys(consumer.key, consumer.secret, retired.key, retired.secret))
    for earlier in request.before:
        assert Client().post(LAUNCH, earlier).status_code == 302
    client = Client(raise_request_exception=False)
    before = launch_rows()

    response = send_launch(client, request)

    assert response.status_code < 500, response.content[:300]
    assert response.status_code == case.status
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode(errors="replace")
    codes = re.findall(r'data-error-code="([^"]*)"', page)
    assert len(codes) == 1, f"not the launch error page: {page[:300]}"
    assert case.code in (None, codes[0]), codes
    title, detail = re.search(r"<h1>(.*?)</h1>\s*<p>(.*?)</p>", page, re.S).groups()
    assert title.strip() and len(detail.strip()) > 30, (title, detail)
    assert "Nothing was recorded" in page
    if case.status == 405:
        assert response["Allow"] == "POST"
    assert launch_rows() == before
    assert "_auth_user_id" not in client.session


# --- attempt data over HTTP ------------------------------------------------------------------


@pytest.fixture
def scene(consumer):
    """A student with an ended attempt and an open one (held by the window whose token is
    `tokens.own`), another student with an open attempt, and an instructor of the resource."""
    owner = launch(consumer, user_id="owner")
    with_exam(owner.membership.resource, max_attempts=0, report_when="manual")
    ended = services.attempt_start(membership=owner.membership)
    ended_token = services.attempt_take_over(attempt=ended)
    finish = parsed_batch(ended_token, [("cmi.completion_status", "completed"), ("cmi.exit", "normal")], terminate=True)
    assert services.batch_store(attempt_id=ended.pk, user_id=owner.membership.user_id, batch=finish).ended
    own = services.attempt_start(membership=owner.membership)
    other = launch(consumer, user_id="other")
    theirs = services.attempt_start(membership=other.membership)
    clients = {"owner": owner, "other_student": other, "anonymous": Client(),
               "instructor": launch(consumer, user_id="teacher", roles="Instructor")}
    for client in clients.values():
        client.raise_request_exception = False
    return SimpleNamespace(
        clients=clients,
        ids={"own": own.pk, "other": theirs.pk, "ended": ended.pk, "unknown": theirs.pk + 1000,
             "beyond_bigint": 2**63, "beyond_64_bits": 10**20},
        tokens=Tokens(own=services.attempt_take_over(attempt=own), other=services.attempt_take_over(attempt=theirs),
                      ended=ended_token),
    )


def attempt_rows():
    return {
        "batches": Batch.objects.count(),
        "changes": ElementChange.objects.count(),
        "elements": Element.objects.count(),
        "attempts": list(Attempt.objects.order_by("pk").values()),
    }


def as_text(body) -> str | bytes:
    return body if isinstance(body, (str, bytes)) else json.dumps(body)


def post_batch(client, attempt_id, body):
    return client.post(f"/attempt/{attempt_id}/batches/", data=as_text(body), content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("case", _cases(BATCHES, "http_bug", when=lambda case: case.http is not None))
def test_malformed_batch_over_http_is_refused_with_a_message_and_writes_nothing(scene, case):
    probe = case.build(scene.tokens)
    client, attempt_id = scene.clients[probe.who], scene.ids[probe.attempt]
    for earlier in probe.before:
        accepted = post_batch(scene.clients["owner"], scene.ids["own"], earlier)
        assert accepted.status_code == 200 and accepted.json()["stored"], accepted.content
    before = attempt_rows()

    response = post_batch(client, attempt_id, probe.body)

    status, code = case.http
    assert response.status_code < 500, response.content[:300]
    if code is None:  # no route: Django's page
        assert response.status_code == status, response.content[:300]
        assert attempt_rows() == before
        return
    assert response["Content-Type"] == "application/json", response.content[:300]
    payload = response.json()
    assert "error" in payload, f"accepted (HTTP {response.status_code}): {payload}"
    error = payload["error"]
    assert (response.status_code, error["code"]) == (status, code), error
    assert isinstance(error["message"], str) and len(error["message"]) > 15, error
    assert attempt_rows() == before


# --- attempt data over the websocket (a real daphne) ----------------------------------------


def run(coroutine):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=120)


@pytest.fixture(scope="module")
def live(demo_server):
    """The same scene as `scene`, on the demo server's resource, through HTTP as a browser."""
    suffix = uuid.uuid4().hex[:8]

    def student(user_id, **kwargs):
        return Student(demo_server.url, key="demo", secret=DEMO_SECRET, user_id=f"{user_id}-{suffix}", **kwargs).launch()

    owner = student("bad-owner")
    ended = owner.start_attempt()
    ended_token = owner.open_attempt(ended)["token"]
    finish = live_batch(ended_token, [("cmi.completion_status", "completed"), ("cmi.exit", "normal")], 1, terminate=True)
    assert owner.post_batch(ended, finish).json()["ended"] is True
    own = owner.start_attempt()
    own_token = owner.open_attempt(own)["token"]
    other = student("bad-other")
    theirs = other.start_attempt()
    their_token = other.open_attempt(theirs)["token"]
    return SimpleNamespace(
        server=demo_server,
        cookies={"owner": owner.cookie_header, "other_student": other.cookie_header, "anonymous": "",
                 "instructor": student("bad-teacher", roles="Instructor").cookie_header},
        ids={"own": own, "other": theirs, "ended": ended, "unknown": 999_999_999, "beyond_bigint": 2**63,
             "beyond_64_bits": 10**20},
        tokens=Tokens(own=own_token, other=their_token, ended=ended_token),
    )


def live_rows(server):
    rows = {table: server.query(f"SELECT count(*) FROM {table}")[0][0]
            for table in ("attempts_batch", "attempts_elementchange", "attempts_element")}
    rows["attempts"] = server.query("SELECT * FROM attempts_attempt ORDER BY id")
    return rows


async def ws_probe(url, cookie, origin, before, body):
    """Connect, send `before` (each must be acknowledged) and then `body` (unless None). Returns
    the replies (the greeting first) and the close code (None while the connection is open)."""
    headers = {"Origin": origin, **({"Cookie": cookie} if cookie else {})}
    replies = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, headers=headers, max_msg_size=0) as ws:

            async def receive():
                message = await ws.receive(timeout=15)
                if message.type != aiohttp.WSMsgType.TEXT:
                    return None
                try:
                    reply = json.loads(message.data)
                except ValueError:
                    reply = {"type": "not JSON", "data": message.data}
                replies.append(reply)
                return reply

            hello = await receive()
            if hello is not None and hello.get("type") != "ready":
                await receive()  # the close that follows a refusal
            if hello is None or hello.get("type") != "ready":
                return replies, ws.close_code
            for message in before:
                await ws.send_str(json.dumps(message))
                ack = await receive()
                assert ack and ack.get("type") == "ack" and ack.get("stored"), ack
            if body is None:
                return replies, ws.close_code
            try:
                if isinstance(body, bytes):
                    await ws.send_bytes(body)
                else:
                    await ws.send_str(as_text(body))
            except ConnectionError:  # refused mid-message (too big): the close frame is already waiting
                pass
            await receive()
            return replies, ws.close_code


def websocket_url(live, attempt_id, token):
    return live.server.url.replace("http", "ws", 1) + f"/ws/attempt/{attempt_id}/?token={token}"


@pytest.mark.slow
@pytest.mark.parametrize("case", _cases(BATCHES, "ws_bug", when=lambda case: case.ws is not None))
def test_malformed_batch_over_the_websocket_is_refused_with_a_message_and_writes_nothing(live, case):
    probe = case.build(live.tokens)
    attempt_id = live.ids[probe.attempt]
    token = probe.socket_token if probe.socket_token is not None else {
        "own": live.tokens.own, "other": live.tokens.other, "ended": live.tokens.ended}.get(probe.attempt, live.tokens.own)
    if probe.before:  # store the earlier batches (acknowledged), then count
        run(ws_probe(websocket_url(live, live.ids["own"], live.tokens.own), live.cookies["owner"], live.server.url,
                     probe.before, None))
    before = live_rows(live.server)

    replies, close_code = run(ws_probe(websocket_url(live, attempt_id, token), live.cookies[probe.who],
                                       live.server.url, (), probe.body))

    expect = case.ws
    assert close_code != 1011, f"server error: {replies}"
    assert not [r for r in replies if r.get("type") in ("ack", "not JSON")], replies
    if expect.code is not None:
        refusal = replies[-1]
        assert refusal.get("code", refusal.get("type")) == expect.code, replies
        assert len(refusal.get("message", "")) > 15, refusal
    else:
        assert not [r for r in replies if r.get("type") != "ready"], replies
    assert close_code in (expect.close if isinstance(expect.close, tuple) else (expect.close,)), (close_code, replies)
    assert live_rows(live.server) == before


@pytest.mark.slow
def test_a_valid_batch_over_a_megabyte_is_acknowledged_over_the_websocket(live):
    suspend_data = "x" * (MB + MB // 10)
    message = live_batch(live.tokens.own, [("cmi.suspend_data", suspend_data)], 10**6)
    replies, _ = run(ws_probe(websocket_url(live, live.ids["own"], live.tokens.own), live.cookies["owner"],
                              live.server.url, [], message))
    assert replies[-1]["type"] == "ack", replies


# --- exam packages -------------------------------------------------------------------------


@pytest.fixture
def instructor(consumer):
    client = launch(consumer, user_id="teacher", roles="Instructor")
    client.raise_request_exception = False
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("case", _cases(ZIPS))
def test_hostile_zip_is_refused_with_a_message_and_stores_nothing(instructor, settings, case):
    for name, value in case.settings.items():
        setattr(settings, name, value)
    media = Path(settings.MEDIA_ROOT)
    upload = SimpleUploadedFile("exam.zip", case.build(), content_type="application/zip")

    response = instructor.post(f"/resource/{instructor.membership.resource_id}/instructor/exam/", {"package": upload})

    assert response.status_code < 500, response.content[:300]
    assert response.status_code == 400, f"HTTP {response.status_code}: {response.content[:300]}"
    error = response.json()["error"]
    assert isinstance(error, str) and len(error) > 20, error
    if case.message:
        assert case.message in error
    assert ExamPackage.objects.count() == 0
    assert [p for p in media.rglob("*") if not p.is_dir()] == []
    assert not (media / "exams").exists() or list((media / "exams").iterdir()) == []


# --- the catalogue itself ------------------------------------------------------------------


def test_the_catalogue_keeps_its_size(capsys):
    sizes = {"launches": len(LAUNCHES), "batches": len(BATCHES), "zips": len(ZIPS)}
    known_bugs = {
        "launches": sum(bool(c.bug) for c in LAUNCHES),
        "batches over HTTP": sum(bool(c.http_bug) for c in BATCHES if c.http),
        "batches over the websocket": sum(bool(c.ws_bug) for c in BATCHES if c.ws),
        "zips": sum(bool(c.bug) for c in ZIPS),
    }
    with capsys.disabled():
        print(f"\nbad-input catalogue: {sizes['launches']} launches, {sizes['batches']} attempt-data messages "
              f"({sum(c.http is not None for c in BATCHES)} over HTTP, {sum(c.ws is not None for c in BATCHES)} over "
              f"the websocket), {sizes['zips']} hostile zips; known bugs (xfail): {known_bugs}")
    assert sizes["launches"] >= 30 and sizes["batches"] >= 30 and sizes["zips"] >= 10, sizes
    for catalogue in (LAUNCHES, BATCHES, ZIPS):
        names = [case.name for case in catalogue]
        assert len(names) == len(set(names)), "case names must be unique"
