"""End to end through the production-shaped stack, over HTTPS: nginx (TLS) → daphne × 4 →
PostgreSQL/Redis → Huey → an LMS stub that verifies signatures. Then TLS and headers as the
running nginx serves them."""

import socket
import ssl

import pytest
import requests
import urllib3

from tests.support.attempt_page import (DEMO_SECRET, answer, launch_instructor, launch_student, runtime_frame,
                                        start_attempt, wait_saved)
from tests.support.lms_stub import LmsStub
from tests.support.stack import DOMAIN

pytestmark = [pytest.mark.slow, pytest.mark.stack]
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


@pytest.fixture
def https_page(chromium, request):
    context = chromium.new_context(ignore_https_errors=True)  # the stack's throwaway certificate
    page = context.new_page()
    yield page
    try:
        from pathlib import Path

        artefacts = Path(__file__).resolve().parents[1] / "test-artifacts"
        artefacts.mkdir(exist_ok=True)
        page.screenshot(path=str(artefacts / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()


@pytest.mark.browser
def test_launch_answer_end_and_the_grade_reaches_the_lms_over_https(prod_stack, https_page, chromium):
    stack, page = prod_stack, https_page
    sourcedid = "stack-e2e-sourcedid"
    with LmsStub(consumers={"demo": DEMO_SECRET}) as stub:
        launch_student(page, stack.url, "stack-student", lis_outcome_service_url=stub.url,
                       lis_result_sourcedid=sourcedid)
        assert page.url.startswith(f"https://{DOMAIN}:")
        student_page = page.url
        exam = start_attempt(page)  # exam files come from nginx's exam-content host, answers over wss://
        assert runtime_frame(page).url.startswith(f"{stack.exam_origin}/runtime/frame.html")
        assert runtime_frame(page).child_frames[0].url.startswith(f"{stack.exam_origin}/exams/")
        answer(exam, "q0p0", "4")
        answer(exam, "q0p1", "42")
        answer(exam, "q1p0", "11")
        wait_saved(page)
        exam.locator("#end-exam").click()
        exam.locator("#ended").wait_for()
        wait_saved(page)
        assert stub.wait_for_grade(sourcedid, 1.0, timeout=30), stub.requests
        assert [r.outcome for r in stub.requests] == ["accepted"]  # signature and body hash verified
    page.goto(student_page)
    assert "It is in your course" in page.get_by_test_id("lms-grade").inner_text()

    instructor = chromium.new_context(ignore_https_errors=True).new_page()
    launch_instructor(instructor, stack.url, "stack-teacher")
    instructor.get_by_test_id("grades-link").click()
    row = instructor.locator("tr[data-testid^='grade-']").first
    assert "100\u00a0%" in row.get_by_test_id("grade-score").inner_text() and "attempt 1" in row.inner_text()
    assert "In the gradebook" in row.get_by_test_id("grade-state").inner_text()
    # The answers went through nginx to the database, history and current values alike.
    stored = dict(stack.query(
        "SELECT e.key, e.value FROM attempts_element e JOIN attempts_attempt a ON a.id = e.attempt_id "
        "JOIN auth_user u ON u.id = a.user_id JOIN lms_ltiidentity i ON i.user_id = u.id "
        "WHERE i.lti_user_id = %s", ("stack-student",)))
    assert stored["cmi.interactions.0.learner_response"] == "4" and stored["cmi.completion_status"] == "completed"


def _handshake(port: int, version: ssl.TLSVersion) -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    try:
        context.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=DOMAIN):
                return True
    except (ssl.SSLError, OSError):
        return False


def _old_tls_server(stack):
    """A loopback TLS server that accepts TLS 1.0 and 1.1: proof that this client can offer them."""
    import threading

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_cert_chain(*stack._cert)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        for _ in range(2):
            try:
                conn, _ = listener.accept()
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_tls_versions(prod_stack):
    control = _old_tls_server(prod_stack)
    try:
        port = control.getsockname()[1]
        client_can_offer_old_tls = _handshake(port, ssl.TLSVersion.TLSv1) and _handshake(port, ssl.TLSVersion.TLSv1_1)
    finally:
        control.close()
    assert client_can_offer_old_tls, "this machine's OpenSSL cannot speak TLS 1.0/1.1, so refusal would prove nothing"
    assert _handshake(prod_stack.https_port, ssl.TLSVersion.TLSv1_2)
    assert _handshake(prod_stack.https_port, ssl.TLSVersion.TLSv1_3)
    assert not _handshake(prod_stack.https_port, ssl.TLSVersion.TLSv1_1)
    assert not _handshake(prod_stack.https_port, ssl.TLSVersion.TLSv1)


def test_headers_and_cookies_as_served(prod_stack):
    from tests.support import lms as test_lms

    stack = prod_stack
    http = requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE would turn verification back on
    http.verify = False
    # Plain HTTP is sent to HTTPS.
    redirect = http.get(f"http://127.0.0.1:{stack.http_port}/health/", headers={"Host": DOMAIN}, allow_redirects=False,
                        timeout=10)
    assert redirect.status_code == 308 and redirect.headers["Location"].startswith(f"https://{DOMAIN}")
    health = http.get(f"{stack.url}/health/", timeout=10)
    assert health.status_code == 200
    assert health.headers["Strict-Transport-Security"].startswith("max-age=63072000")
    assert "nginx/" not in health.headers.get("Server", "") and "X-Powered-By" not in health.headers
    assert "daphne" not in health.headers.get("Server", "").lower()
    # A launch sets the session cookie Secure, HttpOnly and SameSite=None (it lives in an LMS iframe),
    # and the page may be framed by LMSs (frame-ancestors), never with X-Frame-Options.
    params = test_lms.sign(test_lms.launch_params(user_id="header-check", resource_link_id="demo-exam",
                                                  context_id="demo-course"),
                           key="demo", secret=DEMO_SECRET, url=f"{stack.url}/lti/launch/")
    launch = http.post(f"{stack.url}/lti/launch/", data=params, allow_redirects=False, timeout=20)
    assert launch.status_code == 302, launch.text[:300]
    # __Host-: a sibling host (such as the exam-content host) cannot plant a cookie of that name for us.
    session_cookie = [c for c in launch.raw.headers.getlist("Set-Cookie") if c.startswith("__Host-sessionid=")]
    assert session_cookie and all(flag in session_cookie[0] for flag in ("Secure", "HttpOnly", "SameSite=None", "Path=/"))
    assert "Domain=" not in session_cookie[0]
    page = http.get(stack.url + launch.headers["Location"], timeout=20)
    assert page.status_code == 200
    assert "frame-ancestors" in page.headers.get("Content-Security-Policy", "")
    assert "X-Frame-Options" not in page.headers
    csrf = [c for c in page.raw.headers.getlist("Set-Cookie") if c.startswith("__Host-csrftoken=")]
    assert all("Secure" in c and "SameSite=None" in c for c in csrf)
    assert not [c for c in page.raw.headers.getlist("Set-Cookie") if c.startswith(("sessionid=", "csrftoken="))]
    # Static files are hashed and cached for a year; nothing else under /media is served.
    static = http.get(f"{stack.url}/static/core/site.css", timeout=10)
    assert static.status_code == 200
    manifest_name = [line for line in page.text.split('"') if "/static/core/site." in line]
    assert manifest_name and manifest_name[0] != "/static/core/site.css"  # the page links the hashed name
    hashed = http.get(stack.url + manifest_name[0], timeout=10)
    assert hashed.status_code == 200 and "immutable" in hashed.headers.get("Cache-Control", "")
    assert http.get(f"{stack.url}/media/private/x", timeout=10).status_code == 404


def test_exams_are_served_by_the_exam_host_only(prod_stack):
    stack = prod_stack
    [(directory, href)] = stack.query("SELECT directory, launch_href FROM exams_exampackage ORDER BY id LIMIT 1")
    status, headers, body = stack.exam_host_get(f"/exams/{directory}/{href}")
    assert status == 200 and b"Demo exam" in body
    assert "connect-src 'self'" in headers["content-security-policy"]
    assert f"frame-ancestors 'self' https://{DOMAIN}:{stack.https_port}" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and "set-cookie" not in headers
    status, headers, body = stack.exam_host_get("/runtime/frame.html")
    assert status == 200 and b"frame.js" in body and headers["cache-control"] == "no-cache"
    assert stack.exam_host_get("/mathjax/4/tex-svg.js")[0] == 200
    for path in ("/admin/", "/lti/launch/", "/health/", "/staff/", "/attempt/1/", "/static/core/site.css"):
        status, headers, _ = stack.exam_host_get(path)
        assert status == 404 and "set-cookie" not in headers, path
    http = requests.Session()
    http.trust_env, http.verify = False, False
    assert http.get(f"{stack.url}/media/exams/{directory}/{href}", timeout=10).status_code == 404
    assert http.get(f"{stack.url}/static/content/runtime/frame.html", timeout=10).status_code == 404


def test_the_deploy_s_verify_probe_answers_through_nginx_or_fails(prod_stack):
    """steps.VERIFY_PY, the deploy's last check, run here against the stack's nginx (in production
    it runs in a daphne container against the nginx container, on port 443)."""
    import subprocess
    import sys

    from numbas_infra import steps

    ok = subprocess.run([sys.executable, "-c", steps.VERIFY_PY, "localhost", "127.0.0.1", str(prod_stack.https_port), "20"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "through nginx: 200" in ok.stdout, ok.stderr
    from tests.support.net import free_port

    closed = subprocess.run([sys.executable, "-c", steps.VERIFY_PY, "localhost", "127.0.0.1", str(free_port()), "0"],
                            capture_output=True, text=True, timeout=60)
    assert closed.returncode == 1 and "ConnectionRefusedError" in closed.stderr
