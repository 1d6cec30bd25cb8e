"""The test-launch page as an LMS gradebook for LTI 1.1: its students' launches carry the
address of its Basic Outcomes service and a result id per person and activity; the service
verifies the tool's OAuth body-hash signature with the consumer's secret and answers
replaceResult, readResult and deleteResult in imsx XML; its Gradebook page lists what arrived."""

import re
import secrets
from html import unescape

import pytest
from defusedxml import ElementTree
from oauthlib.oauth1 import Client as OAuthClient
from pylti.common import generate_request_xml

from grading import passback
from grading.models import SendOutcome
from testlaunch.models import DemoOutcomeResult
from testlaunch.services import demo_data_ensure

pytestmark = pytest.mark.django_db

NS = "{http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0}"
SECRET = "demo-secret"
URL = "http://testserver/test-launch/outcomes"


@pytest.fixture
def enabled(settings):
    settings.DEBUG = True
    settings.TEST_LAUNCH_ENABLED = True
    return demo_data_ensure(secret=SECRET)


def form_fields(html: str) -> dict[str, str]:
    return {k: unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)}


def launch_from_page(client, resource, *, role="student", user_id="demo-student-1", name="Demo Student") -> dict:
    response = client.post("/test-launch/", {"lti_version": "1.1", "resource": resource.pk, "role": role,
                                             "user_id": user_id, "full_name": name})
    assert response.status_code == 200
    return form_fields(response.content.decode())


def signed(operation: str, sourcedid: str, score=None, *, secret=SECRET, key="demo", url=URL):
    body = generate_request_xml(secrets.token_hex(8), operation, sourcedid, score).encode()
    _, headers, body = OAuthClient(key, client_secret=secret).sign(
        url, "POST", body=body, headers={"Content-Type": "application/xml"})
    return headers["Authorization"], body.encode() if isinstance(body, str) else body


def post(client, authorization, body):
    response = client.post("/test-launch/outcomes", data=body, content_type="application/xml",
                           HTTP_AUTHORIZATION=authorization)
    root = ElementTree.fromstring(response.content)
    status = {name: (root.findtext(f".//{NS}{name}") or "") for name in (
        "imsx_codeMajor", "imsx_description", "imsx_codeMinorFieldValue", "imsx_operationRefIdentifier")}
    return response, status, root


def test_a_students_launch_carries_the_outcome_service_and_their_own_result_id(client, enabled):
    fields = launch_from_page(client, enabled)
    assert fields["lis_outcome_service_url"] == URL
    result = DemoOutcomeResult.objects.get(resource=enabled, user_id="demo-student-1")
    assert fields["lis_result_sourcedid"] == result.sourcedid and result.full_name == "Demo Student"
    assert launch_from_page(client, enabled)["lis_result_sourcedid"] == result.sourcedid  # the same cell, relaunched
    other = launch_from_page(client, enabled, user_id="demo-student-2", name="Ada Lovelace")
    assert other["lis_result_sourcedid"] not in ("", result.sourcedid)
    teacher = launch_from_page(client, enabled, role="instructor", user_id="demo-teacher-1", name="Demo Teacher")
    assert "lis_outcome_service_url" not in teacher and "lis_result_sourcedid" not in teacher


def test_replace_read_and_delete_a_result(client, enabled):
    sourcedid = launch_from_page(client, enabled)["lis_result_sourcedid"]
    response, status, _ = post(client, *signed("replaceResult", sourcedid, "0.625"))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/xml")
    assert (status["imsx_codeMajor"], status["imsx_operationRefIdentifier"]) == ("success", "replaceResult")
    assert DemoOutcomeResult.objects.get(sourcedid=sourcedid).score == 0.625

    response, status, root = post(client, *signed("readResult", sourcedid))
    assert status["imsx_codeMajor"] == "success"
    assert root.findtext(f".//{NS}readResultResponse/{NS}result/{NS}resultScore/{NS}textString") == "0.625"

    _, status, _ = post(client, *signed("deleteResult", sourcedid))
    assert status["imsx_codeMajor"] == "success"
    assert DemoOutcomeResult.objects.get(sourcedid=sourcedid).score is None
    _, _, root = post(client, *signed("readResult", sourcedid))
    assert root.findtext(f".//{NS}textString") in ("", None)


def test_the_tools_own_signed_request_is_accepted_and_judged_delivered(client, enabled):
    """What grading.passback sends (signed_request) is what this service accepts, and its answer
    is what passback.judge_answer reads as delivered."""
    sourcedid = launch_from_page(client, enabled)["lis_result_sourcedid"]
    _, headers, body = passback.signed_request(passback.Delivery(sourcedid, URL, "demo", SECRET, 0.5))
    response = client.post("/test-launch/outcomes", data=body, content_type="application/xml",
                           HTTP_AUTHORIZATION=headers["Authorization"])
    assert passback.judge_answer(response.status_code, response.content).outcome == SendOutcome.DELIVERED
    assert DemoOutcomeResult.objects.get(sourcedid=sourcedid).score == 0.5


@pytest.mark.parametrize("tamper", ["secret", "body", "address", "unsigned"])
def test_requests_not_signed_with_the_consumers_secret_are_refused(client, enabled, tamper):
    sourcedid = launch_from_page(client, enabled)["lis_result_sourcedid"]
    authorization, body = signed("replaceResult", sourcedid, "1",
                                 secret="not-the-secret" if tamper == "secret" else SECRET,
                                 url="http://testserver/elsewhere" if tamper == "address" else URL)
    if tamper == "body":
        body = body.replace(b">1<", b">0.9<")
    if tamper == "unsigned":
        authorization = ""
    response, status, _ = post(client, authorization, body)
    assert response.status_code == 401
    assert (status["imsx_codeMajor"], status["imsx_codeMinorFieldValue"]) == ("failure", "invalidsignature")
    assert DemoOutcomeResult.objects.get(sourcedid=sourcedid).score is None
    assert passback.judge_answer(response.status_code, response.content).outcome == SendOutcome.FAILED


def test_a_replayed_request_is_refused(client, enabled):
    sourcedid = launch_from_page(client, enabled)["lis_result_sourcedid"]
    request = signed("replaceResult", sourcedid, "0.5")
    assert post(client, *request)[1]["imsx_codeMajor"] == "success"
    response, status, _ = post(client, *request)
    assert response.status_code == 401 and "nonce" in status["imsx_description"]


@pytest.mark.parametrize("operation, sourcedid, score, minor", [
    ("replaceResult", "no-such-result", "0.5", "unknownobject"),
    ("replaceResult", None, "1.5", "invaliddata"),
    ("replaceResult", None, "half", "invaliddata"),
    ("replaceResult", None, "nan", "invaliddata"),
    ("readPerson", None, None, "unsupported"),
])
def test_bad_requests_get_a_failure_the_tool_understands(client, enabled, operation, sourcedid, score, minor):
    own = launch_from_page(client, enabled)["lis_result_sourcedid"]
    response, status, _ = post(client, *signed(operation, sourcedid or own, score))
    assert response.status_code == 200
    assert status["imsx_codeMajor"] == ("unsupported" if minor == "unsupported" else "failure")
    assert status["imsx_codeMinorFieldValue"] == minor
    assert passback.judge_answer(response.status_code, response.content).outcome == SendOutcome.FAILED
    assert DemoOutcomeResult.objects.get(sourcedid=own).score is None


def test_another_consumers_key_cannot_touch_the_demo_gradebook(client, enabled, consumer):
    sourcedid = launch_from_page(client, enabled)["lis_result_sourcedid"]
    _, status, _ = post(client, *signed("replaceResult", sourcedid, "1", key=consumer.key, secret=consumer.secret))
    assert (status["imsx_codeMajor"], status["imsx_codeMinorFieldValue"]) == ("failure", "unknownobject")


def test_outcome_service_and_gradebook_exist_only_where_the_test_launch_page_does(client, settings):
    settings.DEBUG = False
    settings.TEST_LAUNCH_ENABLED = False
    assert client.post("/test-launch/outcomes", data=b"<x/>", content_type="application/xml").status_code == 404
    assert client.get("/test-launch/gradebook").status_code == 404
    settings.TEST_LAUNCH_ENABLED = True  # outside DEBUG: the page is for staff only, the service for signed calls
    assert client.get("/test-launch/gradebook").status_code == 404
    assert client.post("/test-launch/outcomes", data=b"<x/>", content_type="application/xml").status_code == 401
