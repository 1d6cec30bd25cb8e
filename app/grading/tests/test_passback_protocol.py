"""What an LMS answer means for a grade: delivered, retry later, or refused for good."""

import pytest

from grading import passback, services
from grading.models import SendOutcome


def pox(major, description="", minor=None):
    minor_xml = (f"<imsx_codeMinor><imsx_codeMinorField><imsx_codeMinorFieldName>x</imsx_codeMinorFieldName>"
                 f"<imsx_codeMinorFieldValue>{minor}</imsx_codeMinorFieldValue></imsx_codeMinorField></imsx_codeMinor>"
                 if minor else "")
    return (
        '<?xml version="1.0"?><imsx_POXEnvelopeResponse xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0">'
        f"<imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_statusInfo><imsx_codeMajor>{major}</imsx_codeMajor>"
        f"<imsx_description>{description}</imsx_description>{minor_xml}</imsx_statusInfo>"
        "</imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody/></imsx_POXEnvelopeResponse>"
    ).encode()


@pytest.mark.parametrize(
    "status, body, outcome, lti_answer",
    [
        (200, pox("success", "Score updated"), SendOutcome.DELIVERED, True),
        (200, pox("failure", "Database busy"), SendOutcome.RETRY, True),
        (200, pox("processing"), SendOutcome.RETRY, True),
        (200, pox("failure", "Invalid sourcedid"), SendOutcome.FAILED, True),
        (200, pox("failure", "No such thing", minor="unknownobject"), SendOutcome.FAILED, True),
        (200, pox("unsupported", "replaceResult is not supported"), SendOutcome.FAILED, True),
        (200, b"<html>Maintenance</html>", SendOutcome.RETRY, False),
        (200, b"not xml at all", SendOutcome.RETRY, False),
        (200, b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', SendOutcome.RETRY, False),  # no entity expansion
        (500, b"oops", SendOutcome.RETRY, None),
        (502, b"", SendOutcome.RETRY, None),
        (429, b"slow down", SendOutcome.RETRY, None),
        (401, b"bad signature", SendOutcome.FAILED, None),
        (404, b"no such endpoint", SendOutcome.FAILED, None),
        (302, b"", SendOutcome.FAILED, None),
    ],
)
def test_lms_answers_are_judged(status, body, outcome, lti_answer):
    judged = passback.judge_answer(status, body)
    assert (judged.outcome, judged.lti_answer) == (outcome, lti_answer) and judged.answer


def test_scores_are_sent_as_lms_friendly_decimals():
    assert b"<textString>0.75</textString>" in passback.request_body(sourcedid="s", score=0.75)
    assert b"<textString>1</textString>" in passback.request_body(sourcedid="s", score=1.0)
    assert b"<textString>0</textString>" in passback.request_body(sourcedid="s", score=0.0)
    assert b"<textString>0.3333</textString>" in passback.request_body(sourcedid="s", score=1 / 3)
    assert b"replaceResultRequest" in passback.request_body(sourcedid="s", score=0.5)


def test_the_request_carries_a_body_hash_and_a_signature():
    url, headers, body = passback.signed_request(passback.Delivery("sid", "http://127.0.0.1:9/o", "k", "s", 0.5))
    assert 'oauth_body_hash="' in headers["Authorization"] and 'oauth_signature="' in headers["Authorization"]
    assert headers["Content-Type"] == "application/xml"


def test_unreachable_lms_is_a_retry_not_an_error():
    result = passback.send(passback.Delivery("sid", "http://127.0.0.1:9/outcomes", "k", "s", 0.5), timeout=1)
    assert result.outcome == SendOutcome.RETRY and "Could not reach" in result.lms_answer


@pytest.mark.parametrize("failures", [1, 2, 5, 10, 30, 1000, 100_000])
def test_retry_delay_grows_exponentially_with_jitter_and_a_cap(settings, failures):
    settings.PASSBACK_RETRY_BASE_SECONDS, settings.PASSBACK_RETRY_MAX_SECONDS = 0.5, 600
    ceiling = min(600, 0.5 * 2 ** min(failures - 1, 60))  # weeks of failures: still capped
    delays = [services.retry_delay(failures) for _ in range(50)]
    assert all(ceiling / 10 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jitter: not every grade retries at the same instant


def test_a_pox_answer_is_shown_as_a_short_excerpt_with_its_codes_first():
    judged = passback.judge_answer(200, pox("failure", "&lt;b&gt;Gradebook\u202e&lt;/b&gt; " + "d" * 5000,
                                            minor="unknownobject"))
    assert judged.outcome == SendOutcome.FAILED
    assert judged.answer.startswith("The LMS answered: failure (unknownobject): <b>Gradebook</b> ddd")
    assert len(judged.answer) <= len("The LMS answered: ") + passback.EXCERPT_CHARS
