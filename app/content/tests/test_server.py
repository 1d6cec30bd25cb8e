"""The exam-content origin as daphne serves it outside production (content/server.py): exam
files, the runtime and MathJax with the content policy's headers, and nothing of the
application — no page, API, admin, websocket or cookie."""

import asyncio

import pytest

from content import policy
from content.server import ContentOriginRouter, ContentServer, request_host

CONTENT = "exams.testserver"


async def _http(app, path, *, host=CONTENT, method="GET", headers=(), query=b""):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": query, "scheme": "http",
             "headers": [(b"host", host.encode()), *headers]}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


def http(app, path, **kwargs):
    return asyncio.run(_http(app, path, **kwargs))


class Recorder:
    """Stands for the application: records what reached it."""

    def __init__(self):
        self.paths = []

    async def __call__(self, scope, receive, send):
        self.paths.append(scope["path"])
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"set-cookie", b"sessionid=x")]})
            await send({"type": "http.response.body", "body": b"application"})


@pytest.fixture
def exams(settings, tmp_path):
    settings.SERVE_FILES = True
    settings.MEDIA_ROOT = str(tmp_path / "media")
    package = tmp_path / "media" / "exams" / "abc123"
    package.mkdir(parents=True)
    (package / "index.html").write_text("<!doctype html><p>exam</p>")
    (package / "data.json").write_text("{}")
    (tmp_path / "media" / "private.txt").write_text("not an exam")
    return package


@pytest.fixture
def router(exams):
    app = Recorder()
    return ContentOriginRouter(app, ContentServer(serve=True), content_host=CONTENT), app


@pytest.mark.parametrize("host, expected", [
    ("exams.testserver", "exams.testserver"), ("EXAMS.testserver:8000", "exams.testserver"),
    ("[::1]:8000", "[::1]"), ("127.0.0.1:80", "127.0.0.1"), ("", ""),
])
def test_request_host(host, expected):
    assert request_host({"headers": [(b"host", host.encode())]}) == expected


def test_exam_files_are_served_with_the_content_policy_and_no_cookie(router):
    app, application = router
    status, headers, body = http(app, "/exams/abc123/index.html")
    assert status == 200 and body == b"<!doctype html><p>exam</p>"
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    csp = headers["content-security-policy"]
    assert "connect-src 'self';" in csp and "object-src 'none'" in csp and "frame-ancestors 'self' " in csp
    assert "set-cookie" not in headers
    assert application.paths == []  # the application never saw it


@pytest.mark.parametrize("path", [
    "/", "/admin/", "/admin/login/", "/lti/launch/", "/attempt/1/", "/attempt/1/state/", "/staff/", "/health/",
    "/static/attempts/runtime.js", "/media/exams/abc123/index.html", "/resource/1/instructor/", "/jsi18n/",
    "/exams/abc123/", "/exams/abc123", "/exams/../private.txt", "/exams/abc123/../../private.txt",
    "/exams/abc123/%2e%2e/x", "/exams/abc123/index.html\x00.txt", "/runtime/../../settings.py",
    "/mathjax/2/unpacked/MathJax.js", "/mathjax/fonts/mathjax-newcm-font/cjs/svg.js",
])
def test_nothing_else_answers_on_the_content_host(router, path):
    app, application = router
    status, headers, body = http(app, path)
    assert status == 404 and b"exam files only" in body
    assert "set-cookie" not in headers and application.paths == []


def test_only_get_and_head(router):
    app, _ = router
    assert http(app, "/exams/abc123/index.html", method="POST")[0] == 405
    status, headers, body = http(app, "/exams/abc123/index.html", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == "26"


def test_revalidation_answers_304(router):
    app, _ = router
    _, headers, _ = http(app, "/runtime/frame.js")
    assert headers["cache-control"] == policy.RUNTIME_CACHE
    status, _, body = http(app, "/runtime/frame.js", headers=[(b"if-none-match", headers["etag"].encode())])
    assert status == 304 and body == b""


@pytest.mark.parametrize("path, type_", [
    ("/runtime/frame.html", "text/html"), ("/runtime/frame.js", "text/javascript"),
    ("/runtime/scorm-again/scorm2004.min.js", "text/javascript"), ("/mathjax/2/MathJax.js", "text/javascript"),
    ("/mathjax/4/tex-svg.js", "text/javascript"), ("/mathjax/local-fonts.js", "text/javascript"),
    ("/mathjax/2/fonts/HTML-CSS/TeX/woff/MathJax_Main-Regular.woff", "font/woff"),
])
def test_runtime_and_mathjax_are_served(router, path, type_):
    app, _ = router
    status, headers, body = http(app, path)
    assert status == 200 and body, path
    assert headers["content-type"].startswith(type_)


def test_mathjax_cdn_mode_redirects(router, settings):
    settings.EXAM_MATHJAX = "cdn"
    app = ContentServer(serve=True)
    status, headers, _ = http(app, "/mathjax/2/MathJax.js", query=b"config=TeX-AMS-MML_HTMLorMML")
    assert status == 302
    assert headers["location"] == "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/MathJax.js?config=TeX-AMS-MML_HTMLorMML"
    assert "https://cdnjs.cloudflare.com" in headers["content-security-policy"]
    assert http(app, "/mathjax/fonts/mathjax-newcm-font/svg.js")[1]["location"] == \
        "https://cdn.jsdelivr.net/npm/@mathjax/mathjax-newcm-font@4.1.3/svg.js"
    assert http(app, "/mathjax/local-fonts.js")[0] == 200  # ours, always local


def test_other_hosts_reach_the_application(router):
    app, application = router
    status, _, body = http(app, "/admin/", host="localhost:8000")
    assert status == 200 and body == b"application" and application.paths == ["/admin/"]


def test_websockets_are_refused_on_the_content_host(router):
    app, application = router
    sent = []

    async def run():
        messages = iter([{"type": "websocket.connect"}])

        async def receive():
            return next(messages)

        async def send(message):
            sent.append(message)

        await app({"type": "websocket", "path": "/ws/attempt/1/", "headers": [(b"host", CONTENT.encode())]},
                  receive, send)

    asyncio.run(run())
    assert sent == [{"type": "websocket.close", "code": 4404}] and application.paths == []


def test_production_daphne_serves_nothing_on_the_content_host(exams):
    # nginx serves the content host; anything that reaches daphne with that name gets 404.
    status, _, _ = http(ContentServer(serve=False), "/exams/abc123/index.html")
    assert status == 404
