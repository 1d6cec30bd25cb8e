"""The whole loop scripts/dev demonstrates, with LTI 1.1: a student launched from the test-launch
page completes an attempt, the grade task (run at once in tests, as Huey's worker runs it in
development) sends the grade over HTTP to the launch's outcome service — the test-launch page's
own — and the Gradebook page of the test-launch site shows who got what, in which activity, when."""

import re
import threading
from html import unescape
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connections
from django.test import Client

from grading.models import GradeReport, ReportState
from grading.tests.helpers import answer, start
from lms.models import ResourceMembership
from testlaunch.models import DemoOutcomeResult
from testlaunch.services import demo_data_ensure
from testlaunch.tests.test_outcome_service import form_fields


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _ThreadingServer(WSGIServer):
    daemon_threads = True


@pytest.fixture
def site(transactional_db, settings):
    """The application on a loopback port, in a thread: the outcome service the worker calls."""
    settings.DEBUG = True
    settings.TEST_LAUNCH_ENABLED = True
    server = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=_ThreadingServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        connections.close_all()


def rows(browser) -> list[str]:
    """The Gradebook page's rows, as text."""
    page = browser.get("/test-launch/gradebook")
    assert page.status_code == 200
    found = re.findall(r'<tr data-testid="gradebook-row">(.*?)</tr>', page.content.decode(), re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in found]


def test_a_completed_attempt_reaches_the_test_launch_gradebook(site):
    resource = demo_data_ensure(secret="demo-secret")
    browser = Client(HTTP_HOST=site)
    page = browser.post("/test-launch/", {"lti_version": "1.1", "resource": resource.pk, "role": "student",
                                          "user_id": "demo-student-7", "full_name": "Grace Hopper"})
    fields = form_fields(page.content.decode())
    assert fields["lis_outcome_service_url"] == f"http://{site}/test-launch/outcomes"
    assert browser.post("/lti/launch/", fields).status_code == 302

    before = rows(browser)
    assert len(before) == 1 and "Grace Hopper" in before[0] and "No grade yet" in before[0]

    membership = ResourceMembership.objects.get(resource=resource, user__lti_identity__lti_user_id="demo-student-7")
    answer(start(membership), 2, 4, complete=True)  # the grade task runs at once, and sends over HTTP

    report = GradeReport.objects.get(membership=membership)
    assert report.state == ReportState.DELIVERED, (report.state, report.last_error)
    assert DemoOutcomeResult.objects.get(resource=resource, user_id="demo-student-7").score == 0.5
    [row] = rows(browser)
    assert "Grace Hopper" in row and "Demo exam" in row and "50 %" in row and "LTI 1.1 outcomes" in row
    assert "No grade yet" not in row and str(report.delivered_at.year) in row
