"""Grades go only where an LMS may receive them (issue 12): never to loopback, private,
link-local or metadata addresses however the outcome URL is written or resolves, never after a
redirect; a refused address fails at once with an explanation, an address that keeps answering
with something that is not LTI fails after PASSBACK_MAX_NON_LTI_ANSWERS answers, and what an
LMS answers reaches people only as a short, clean, labelled excerpt.

All traffic stays on 127.0.0.0/8 (see tests/support/egress.py): names resolve through a fake
resolver, and a connection that would leave loopback is stopped and recorded.
"""

from __future__ import annotations

import socket
import unicodedata

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from attempts.tests.factories import launch
from grading import passback, services
from grading.models import GradeReport, GradeSend, ReportState, SendOutcome
from grading.tests.helpers import answer, start, student_with_exam
from lms.models import ResourceMembership
from tests.support.egress import CannedServer, free_port_on
from tests.support.egress import attempts, resolve  # noqa: F401 (fixtures)
from tests.support.lms_stub import LmsStub

pytestmark = pytest.mark.django_db


def pox(major: str, description: str = "") -> bytes:
    return (
        '<?xml version="1.0"?><imsx_POXEnvelopeResponse xmlns="http://www.imsglobal.org/services/ltiv1p1/xsd/'
        f'imsoms_v1p0"><imsx_POXHeader><imsx_POXResponseHeaderInfo><imsx_statusInfo><imsx_codeMajor>{major}'
        f"</imsx_codeMajor><imsx_description>{description}</imsx_description></imsx_statusInfo>"
        "</imsx_POXResponseHeaderInfo></imsx_POXHeader><imsx_POXBody/></imsx_POXEnvelopeResponse>"
    ).encode()


LOGIN_PAGE = b"<!doctype html><html><head><title>Log in</title></head><body><form>...</form></body></html>"


@pytest.fixture
def nothing_allowed(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []


@pytest.fixture
def stub(consumer):
    with LmsStub(consumers={consumer.key: consumer.secret}) as running:
        yield running


@pytest.fixture
def fast_retries(settings):
    settings.PASSBACK_RETRY_BASE_SECONDS = 0.05
    settings.PASSBACK_RETRY_MAX_SECONDS = 0.2
    settings.PASSBACK_TIMEOUT_SECONDS = 2


def send_to(url: str) -> passback.SendResult:
    return passback.send(passback.Delivery("sid-1", url, "moodle-key", "moodle-secret", 0.5), timeout=2)


def enrolled(consumer, url: str, user_id="s1"):
    membership = student_with_exam(consumer, user_id=user_id)
    ResourceMembership.objects.filter(pk=membership.pk).update(lis_outcome_service_url=url)
    membership.refresh_from_db()
    return membership


def deliver_until_quiet(budget=5.0):
    return services.passback_deliver_due(budget_seconds=budget, wait_for_retries=True)


# --- refused destinations --------------------------------------------------------------------

ADDRESS_CASES = [
    ("http://127.0.0.1:{port}/outcomes", "loopback"),
    ("http://[::1]:{port}/outcomes", "loopback"),
    ("http://localhost:{port}/outcomes", "loopback"),
    ("http://lms.test:{port}/outcomes", "loopback"),  # a DNS name that resolves to loopback
    ("http://[::ffff:127.0.0.1]:{port}/outcomes", "loopback"),
    ("http://10.0.0.5:{port}/outcomes", "private network"),
    ("http://intranet.test/outcomes", "private network"),  # a DNS name that resolves to 10.1.2.3
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://metadata.test/computeMetadata/v1/", "link-local"),  # resolves to 169.254.169.254
]
URL_CASES = [
    ("http://lms.example@127.0.0.1:{port}/outcomes", "user name or password"),
    ("http://moodle:secret@lms.test:{port}/outcomes", "user name or password"),
    ("file:///etc/passwd", "not an http or https address"),
    ("ftp://127.0.0.1:{port}/outcomes", "not an http or https address"),
    ("gopher://127.0.0.1:{port}/_POST%20/outcomes", "not an http or https address"),
]


@pytest.mark.parametrize("template, explained", ADDRESS_CASES + URL_CASES)
def test_a_grade_is_never_sent_to_a_refused_destination(stub, nothing_allowed, attempts, resolve, template,
                                                        explained):
    resolve({"localhost": [["127.0.0.1", "::1"]], "lms.test": [["127.0.0.1"]], "intranet.test": [["10.1.2.3"]],
             "metadata.test": [["169.254.169.254"]]})
    result = send_to(template.format(port=stub.port))
    assert result.outcome == SendOutcome.FAILED, result
    assert explained in result.lms_answer and "LMS" in result.lms_answer and "secret" not in result.lms_answer
    if (template, explained) in ADDRESS_CASES:
        assert "OUTBOUND_ALLOWED_NETWORKS" in result.lms_answer
    assert stub.requests == [] and attempts == []  # nothing reached, nothing even tried


def test_a_refused_grade_fails_at_once_and_is_not_retried(consumer, stub, nothing_allowed, fast_retries):
    membership = enrolled(consumer, stub.url)
    answer(start(membership), 3, complete=True)  # the (immediate) queue tries it on commit
    for _ in range(3):
        deliver_until_quiet(budget=0.5)
    report = GradeReport.objects.get(membership=membership)
    assert report.state == ReportState.FAILED
    assert "loopback" in report.last_error and "OUTBOUND_ALLOWED_NETWORKS" in report.last_error
    assert list(GradeSend.objects.values_list("outcome", flat=True)) == [SendOutcome.FAILED]
    assert stub.requests == []


def test_dns_rebinding_between_two_grades_never_reaches_loopback(consumer, settings, resolve):
    """127.0.0.2 stands for the LMS's public address (allowed); the name then rebinds to
    127.0.0.1, where the real service listens. The second grade is refused, not delivered."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    port = free_port_on("127.0.0.1", "127.0.0.2")
    with CannedServer(host="127.0.0.2", port=port, body=pox("success"),
                      headers={"Content-Type": "application/xml"}) as public, \
            LmsStub(consumers={consumer.key: consumer.secret}, port=port) as internal:
        resolver = resolve({"lms.test": [["127.0.0.2"], ["127.0.0.1"]]})
        url = f"http://lms.test:{port}/outcomes"
        assert send_to(url).outcome == SendOutcome.DELIVERED
        second = send_to(url)
        assert second.outcome == SendOutcome.FAILED and "loopback" in second.lms_answer
        assert len(public.requests) == 1 and internal.requests == []
        assert resolver.lookups == {"lms.test": 2}


def test_an_allowed_network_lets_that_network_through_and_no_other(consumer, settings, fast_retries):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    with LmsStub(consumers={consumer.key: consumer.secret}, host="127.0.0.2") as allowed, \
            LmsStub(consumers={consumer.key: consumer.secret}) as other:
        through = enrolled(consumer, allowed.url, user_id="s1")
        refused = enrolled(consumer, other.url, user_id="s2")
        answer(start(through), 2, complete=True)
        answer(start(refused), 3, complete=True)
        deliver_until_quiet(budget=1)
        assert allowed.accepted_for(through.lis_result_sourcedid) == [0.5]
        assert other.requests == []
    assert GradeReport.objects.get(membership=through).state == ReportState.DELIVERED
    assert GradeReport.objects.get(membership=refused).state == ReportState.FAILED


def test_a_redirect_to_loopback_is_not_followed(stub, settings):
    """Even with loopback allowed, so that only the redirect rule stands in the way."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with CannedServer(host="127.0.0.2", status=302, headers={"Location": stub.url}) as redirecting:
        result = send_to(redirecting.url())
    assert result.outcome == SendOutcome.FAILED and result.http_status == 302
    assert "redirects elsewhere" in result.lms_answer and "not followed" in result.lms_answer
    assert len(redirecting.requests) == 1 and stub.requests == []


# --- what the LMS answered, as people see it -------------------------------------------------

SCRIPT = b"<script>alert('lms')</script><img src=x onerror=alert(1)>"
HOSTILE = {
    "html": (200, SCRIPT + b"\x1b[31m\x07\r\n\t" + b"x" * 20_000),
    "binary": (200, b"\x00\x01\x02\xff\xfe" + bytes(range(256)) * 100),
    "server error": (500, b"<h1>Oops</h1>" + "\u202eevil\u202c".encode() + b"y" * 5000),
    "pox description": (200, pox("failure", "&lt;script&gt;alert(1)&lt;/script&gt; " + "z" * 3000)),
}


def hidden_characters(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf")]


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_answer_is_kept_as_a_short_clean_labelled_excerpt(kind):
    status, body = HOSTILE[kind]
    with CannedServer(status=status, body=body) as lms:
        result = send_to(lms.url())
    assert "The LMS answered" in result.lms_answer
    assert hidden_characters(result.lms_answer) == []
    label = result.lms_answer.index("The LMS answered")
    assert len(result.lms_answer[label:]) <= passback.EXCERPT_CHARS + 40  # the label, quotes and the excerpt
    assert len(result.lms_answer) <= 700


def test_hostile_answers_are_shown_escaped_and_labelled_to_instructors_and_staff(consumer, fast_retries):
    with CannedServer(status=200, body=SCRIPT + b"\x00\x1b[2J" + b"w" * 5000) as lms:
        membership = enrolled(consumer, lms.url())
        answer(start(membership), 3, complete=True)
        services.passback_deliver_due(budget_seconds=1, wait_for_retries=False)
    instructor = launch(consumer, user_id="t1", roles="Instructor")
    grades = instructor.get(f"/resource/{membership.resource_id}/instructor/grades/").content.decode()
    staff = Client()
    staff.force_login(get_user_model().objects.create_user("operator", password="pw", is_staff=True))
    dashboard = staff.get("/staff/").content.decode()
    for page in (grades, dashboard):
        assert "The LMS answered" in page
        assert "&lt;script&gt;alert(" in page and "<script>alert(" not in page and "onerror=alert(1)>" not in page
        assert "\x00" not in page and "\x1b" not in page
        assert "w" * (passback.EXCERPT_CHARS + 1) not in page


# --- an address that keeps answering with something that is not LTI --------------------------


def test_an_address_that_keeps_answering_with_a_login_page_fails_after_the_limit(consumer, settings, fast_retries):
    """With a limit of 2: a login page (1), a POX failure (an LTI answer: back to 0), the login
    page (1), a 503 (an outage: no change), the login page (2: failed). Re-sending starts over."""
    settings.PASSBACK_MAX_NON_LTI_ANSWERS = 2
    script = [(200, LOGIN_PAGE), (200, pox("failure", "Gradebook busy")), (200, LOGIN_PAGE),
              (503, b"Service Unavailable"), (200, LOGIN_PAGE)]
    with CannedServer(script=script) as lms:
        membership = enrolled(consumer, lms.url())
        answer(start(membership), 3, complete=True)
        deliver_until_quiet()
        deliver_until_quiet(budget=1)
        assert len(lms.requests) == 5  # and no more: it is not retried
        report = GradeReport.objects.get(membership=membership)
        assert report.state == ReportState.FAILED
        assert "2 times in a row" in report.last_error and "re-send" in report.last_error
        assert "The LMS answered" in report.last_error
        assert list(GradeSend.objects.order_by("sent_at", "id").values_list("outcome", flat=True)) == [
            SendOutcome.RETRY] * 4 + [SendOutcome.FAILED]

        services.grade_resend(report=report)  # the instructor's re-send: two more answers allowed
        deliver_until_quiet()
        assert len(lms.requests) == 7
        assert GradeReport.objects.get(membership=membership).state == ReportState.FAILED
