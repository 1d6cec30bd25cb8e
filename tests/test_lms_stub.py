"""Tests of the LTI 1.1 Basic Outcomes stub (tests/support/lms_stub.py).

Requests are signed here with oauthlib's high-level `Client` (which adds
oauth_body_hash for XML bodies) and built with PyLTI, independently of the
stub's own verifier.  No database is needed.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from defusedxml import ElementTree
from oauthlib.oauth1 import Client
from pylti.common import generate_request_xml

from tests.support.lms_stub import POX_NS, LmsStub
from tests.support.net import free_port, wait_for_http

KEY = "moodle-key"
SECRET = "moodle-secret"
NS = {"x": POX_NS}
REPO_ROOT = Path(__file__).resolve().parent.parent


def grade_xml(sourcedid: str, score, message_id: str | None = None) -> str:
    return generate_request_xml(message_id or uuid.uuid4().hex, "replaceResult", sourcedid, score)


def signed(url: str, xml: str, *, key: str = KEY, secret: str = SECRET, **client_kwargs) -> dict[str, str]:
    """Headers for POSTing `xml` to `url`, signed as an LMS tool would."""
    client = Client(key, client_secret=secret, **client_kwargs)
    _, headers, _ = client.sign(url, "POST", body=xml, headers={"Content-Type": "application/xml"})
    return headers


def post_grade(url: str, sourcedid: str, score, *, session=requests, timeout: float = 5, **sign_kwargs):
    xml = grade_xml(sourcedid, score)
    return session.post(url, data=xml.encode("utf-8"), headers=signed(url, xml, **sign_kwargs), timeout=timeout)


def status_info(response) -> dict[str, str]:
    """The imsx_statusInfo fields of a POX response, by local name."""
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{{{POX_NS}}}imsx_POXEnvelopeResponse"
    info = root.find("x:imsx_POXHeader/x:imsx_POXResponseHeaderInfo/x:imsx_statusInfo", NS)
    fields = {child.tag.split("}")[1]: (child.text or "") for child in info}
    minor = info.find("x:imsx_codeMinor/x:imsx_codeMinorField", NS)
    if minor is not None:
        fields["codeMinorFieldName"] = minor.findtext("x:imsx_codeMinorFieldName", namespaces=NS)
        fields["codeMinorFieldValue"] = minor.findtext("x:imsx_codeMinorFieldValue", namespaces=NS)
    return fields


@pytest.fixture
def stub():
    with LmsStub(consumers={KEY: SECRET}) as running:
        yield running


def test_url_is_local_outcomes_endpoint(stub):
    assert stub.url == f"http://127.0.0.1:{stub.port}/outcomes"
    assert stub.port > 0


def test_accepted_grade_is_recorded(stub):
    message_id = "msg-42"
    xml = grade_xml("sourcedid-1", 0.75, message_id)
    response = requests.post(stub.url, data=xml.encode("utf-8"), headers=signed(stub.url, xml), timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/xml"
    info = status_info(response)
    assert info["imsx_codeMajor"] == "success"
    assert info["imsx_severity"] == "status"
    assert info["imsx_description"] == "Score for sourcedid-1 is now 0.75"
    assert info["imsx_messageRefIdentifier"] == message_id
    assert info["imsx_operationRefIdentifier"] == "replaceResult"
    body = ElementTree.fromstring(response.content).find("x:imsx_POXBody", NS)
    assert [child.tag for child in body] == [f"{{{POX_NS}}}replaceResultResponse"]
    assert len(body[0]) == 0

    assert stub.grades == {"sourcedid-1": 0.75}
    [record] = stub.requests
    assert (record.sourcedid, record.score, record.outcome, record.reason) == ("sourcedid-1", 0.75, "accepted", "")
    assert stub.wait_for_grade("sourcedid-1", 0.75, timeout=1)


def test_latest_grade_wins_and_history_is_kept(stub):
    for score in (0.2, 0.5, 1):
        assert post_grade(stub.url, "sourcedid-2", score).status_code == 200
    assert stub.grades["sourcedid-2"] == 1.0
    assert stub.accepted_for("sourcedid-2") == [0.2, 0.5, 1.0]
    assert stub.accepted_for("someone-else") == []


def test_wait_for_grade_times_out_without_a_grade(stub):
    started = time.monotonic()
    assert stub.wait_for_grade("never-sent", timeout=0.3) is False
    assert time.monotonic() - started < 2
    assert post_grade(stub.url, "sent", 0.5).status_code == 200
    assert stub.wait_for_grade("sent", 0.9, timeout=0.2) is False  # wrong value
    assert stub.wait_for_grade("sent", 0.5, timeout=1) is True


def test_query_parameters_are_part_of_the_signature(stub):
    url = stub.url + "?course=MTH%20101&x=1"
    assert post_grade(url, "sourcedid-q", 0.5).status_code == 200
    assert stub.grades == {"sourcedid-q": 0.5}


def assert_rejected(stub, response, reason_part: str) -> None:
    assert response.status_code == 401
    assert status_info(response)["imsx_codeMajor"] == "failure"
    record = stub.requests[-1]
    assert record.outcome == "rejected"
    assert reason_part in record.reason
    assert stub.grades == {}


def test_wrong_secret_is_rejected(stub):
    response = post_grade(stub.url, "sourcedid-1", 0.5, secret="not-the-secret")
    assert_rejected(stub, response, "signature")


def test_unknown_consumer_key_is_rejected(stub):
    response = post_grade(stub.url, "sourcedid-1", 0.5, key="canvas-key")
    assert_rejected(stub, response, "unknown consumer key")


def test_missing_authorization_is_rejected(stub):
    response = requests.post(stub.url, data=grade_xml("sourcedid-1", 0.5).encode(), timeout=5,
                             headers={"Content-Type": "application/xml"})
    assert_rejected(stub, response, "Authorization")


def test_tampered_body_is_rejected(stub):
    signed_xml = grade_xml("sourcedid-1", 0.1, "msg-1")
    sent_xml = signed_xml.replace("0.1", "1.0")
    assert sent_xml != signed_xml
    response = requests.post(stub.url, data=sent_xml.encode("utf-8"), headers=signed(stub.url, signed_xml), timeout=5)
    assert_rejected(stub, response, "body hash")


def test_replayed_nonce_is_rejected(stub):
    xml = grade_xml("sourcedid-1", 0.5)
    headers = signed(stub.url, xml)
    first = requests.post(stub.url, data=xml.encode("utf-8"), headers=headers, timeout=5)
    assert first.status_code == 200
    replay = requests.post(stub.url, data=xml.encode("utf-8"), headers=headers, timeout=5)
    assert replay.status_code == 401
    assert stub.requests[-1].outcome == "rejected"
    assert "nonce" in stub.requests[-1].reason
    assert stub.accepted_for("sourcedid-1") == [0.5]


def test_stale_timestamp_is_rejected(stub):
    response = post_grade(stub.url, "sourcedid-1", 0.5, timestamp=str(int(time.time()) - 3600))
    assert_rejected(stub, response, "timestamp")


def test_fail_500_then_recover(stub):
    stub.fail("500")
    for _ in range(3):
        response = post_grade(stub.url, "sourcedid-1", 0.5)
        assert response.status_code == 500
        assert response.headers["Content-Type"].startswith("text/plain")
    assert stub.grades == {}
    assert [r.outcome for r in stub.requests] == ["error_500"] * 3

    stub.recover()
    assert post_grade(stub.url, "sourcedid-1", 0.5).status_code == 200
    assert stub.grades == {"sourcedid-1": 0.5}


def test_fail_failure_then_recover(stub):
    stub.fail("failure")
    response = post_grade(stub.url, "sourcedid-1", 0.5)
    assert response.status_code == 200
    info = status_info(response)
    assert info["imsx_codeMajor"] == "failure"
    assert info["imsx_description"] == "The gradebook is temporarily unavailable"
    assert stub.requests[-1].outcome == "failure"
    assert stub.grades == {}

    stub.recover()
    response = post_grade(stub.url, "sourcedid-1", 0.5)
    assert status_info(response)["imsx_codeMajor"] == "success"


def test_fail_unknown_sourcedid_then_recover(stub):
    stub.fail("unknown_sourcedid")
    response = post_grade(stub.url, "sourcedid-1", 0.5)
    assert response.status_code == 200
    info = status_info(response)
    assert info["imsx_codeMajor"] == "failure"
    assert info["imsx_description"] == "Unknown sourcedid: sourcedid-1"
    assert (info["codeMinorFieldName"], info["codeMinorFieldValue"]) == ("sourcedid", "unknownobject")
    assert stub.requests[-1].outcome == "unknown_sourcedid"

    stub.recover()
    assert status_info(post_grade(stub.url, "sourcedid-1", 0.5))["imsx_codeMajor"] == "success"


def test_fail_timeout_stalls_then_answers_503_and_recovers(stub):
    stub.timeout_delay = 0.5
    stub.fail("timeout")

    # A client more patient than the stall sees a 503 after the delay...
    started = time.monotonic()
    response = post_grade(stub.url, "sourcedid-1", 0.5, timeout=5)
    assert response.status_code == 503
    assert time.monotonic() - started >= 0.45

    # ...and an impatient one times out.
    with pytest.raises(requests.Timeout):
        post_grade(stub.url, "sourcedid-1", 0.5, timeout=0.2)

    assert [r.outcome for r in stub.requests] == ["timeout", "timeout"]
    assert stub.grades == {}

    stub.recover()
    assert post_grade(stub.url, "sourcedid-1", 0.5).status_code == 200
    assert stub.grades == {"sourcedid-1": 0.5}


def test_fail_with_count_fails_exactly_that_many(stub):
    stub.fail("500", count=2)
    statuses = [post_grade(stub.url, f"sourcedid-{n}", 0.5).status_code for n in range(4)]
    assert statuses == [500, 500, 200, 200]
    assert set(stub.grades) == {"sourcedid-2", "sourcedid-3"}


def test_rejected_requests_do_not_use_up_programmed_failures(stub):
    stub.fail("500", count=1)
    assert post_grade(stub.url, "sourcedid-1", 0.5, secret="wrong").status_code == 401
    assert post_grade(stub.url, "sourcedid-1", 0.5).status_code == 500
    assert post_grade(stub.url, "sourcedid-1", 0.5).status_code == 200


def test_fail_rejects_unknown_modes(stub):
    with pytest.raises(ValueError):
        stub.fail("404")


def test_fail_rate_fails_roughly_that_fraction():
    with LmsStub(consumers={KEY: SECRET}, fail_rate=0.2, seed=1) as stub, requests.Session() as session:
        deadline = time.monotonic() + 30
        statuses = []
        for n in range(200):
            assert time.monotonic() < deadline, "stub too slow"
            statuses.append(post_grade(stub.url, f"sourcedid-{n}", 0.5, session=session).status_code)
        failed = statuses.count(500)
        assert set(statuses) <= {200, 500}
        assert 20 <= failed <= 60, f"{failed}/200 failed"
        assert stub.stats()["by_outcome"] == {"error_500": failed, "accepted": 200 - failed}
        assert all(r.reason for r in stub.requests if r.outcome == "error_500")


def test_known_sourcedids_restricts_accepted_ids():
    with LmsStub(consumers={KEY: SECRET}, known_sourcedids={"alice"}) as stub:
        assert post_grade(stub.url, "alice", 0.5).status_code == 200
        response = post_grade(stub.url, "mallory", 0.5)
        assert response.status_code == 200
        info = status_info(response)
        assert info["imsx_codeMajor"] == "failure"
        assert info["imsx_description"] == "Unknown sourcedid: mallory"
        assert info["codeMinorFieldValue"] == "unknownobject"
        assert stub.requests[-1].outcome == "unknown_sourcedid"
        assert stub.grades == {"alice": 0.5}

        stub.known_sourcedids = None  # settable: now every sourcedid is accepted
        assert post_grade(stub.url, "mallory", 0.25).status_code == 200
        assert stub.grades == {"alice": 0.5, "mallory": 0.25}


@pytest.mark.parametrize("score", [1.5, -0.1, "lots", "nan"])
def test_score_outside_zero_to_one_is_a_failure(stub, score):
    response = post_grade(stub.url, "sourcedid-1", score)
    assert response.status_code == 200
    info = status_info(response)
    assert info["imsx_codeMajor"] == "failure"
    assert info["codeMinorFieldValue"] == "invaliddata"
    assert stub.requests[-1].outcome == "failure"
    assert stub.grades == {}


def test_stats_endpoint(stub):
    post_grade(stub.url, "a", 0.1)
    post_grade(stub.url, "a", 0.2)
    post_grade(stub.url, "b", 0.3, secret="wrong")
    stats = requests.get(f"{stub.base_url}/stats", timeout=5).json()
    assert stats == {"requests": 3, "accepted": 2, "distinct_accepted": 1,
                     "by_outcome": {"accepted": 2, "rejected": 1}}


def test_start_stop_without_context_manager():
    stub = LmsStub(consumers={KEY: SECRET}).start()
    try:
        assert post_grade(stub.url, "sourcedid-1", 0.5).status_code == 200
    finally:
        stub.stop()
    with pytest.raises(requests.ConnectionError):
        post_grade(stub.url, "sourcedid-1", 0.5, timeout=2)


@pytest.mark.slow
def test_cli_serves_until_terminated():
    port = free_port()
    command = [sys.executable, "-m", "tests.support.lms_stub", "--port", str(port),
               "--key", KEY, "--secret", SECRET, "--fail-rate", "0", "--seed", "1"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/stats", timeout=10, process=process)
        url = f"http://127.0.0.1:{port}/outcomes"
        assert post_grade(url, "cli-1", 0.5).status_code == 200
        assert post_grade(url, "cli-1", 0.75).status_code == 200
        assert post_grade(url, "cli-2", 1.0).status_code == 200
        stats = requests.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()
        assert stats == {"requests": 3, "accepted": 3, "distinct_accepted": 2, "by_outcome": {"accepted": 3}}
    finally:
        process.terminate()
        try:
            stdout, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate(timeout=5)
    assert process.returncode == 0, stderr
    assert f"http://127.0.0.1:{port}/outcomes" in stdout
