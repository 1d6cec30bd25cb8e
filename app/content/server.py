"""The exam-content origin outside production: the same files and headers that nginx serves
there (nginx/nginx.conf.template, the content server), from the same daphne as the application
but only for requests addressed to EXAM_ORIGIN's host name (development and tests, SERVE_FILES).

Nothing of the application answers on that host — no page, API, admin, websocket or session —
and nothing from it sets a cookie. Without SERVE_FILES (production: nginx serves the content host
and never passes it on) every request that still reaches daphne with that host is answered 404.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.utils._os import safe_join

from content import policy
from content.assets import PREFIX
from content.origin import app_sources, exam_origin

for _type, _extension in (("text/javascript", ".js"), ("text/javascript", ".mjs"), ("font/woff", ".woff"),
                          ("font/woff2", ".woff2"), ("font/otf", ".otf"), ("image/svg+xml", ".svg"),
                          ("application/json", ".json")):
    mimetypes.add_type(_type, _extension)

NOT_HERE = b"Not found. This address serves exam files only.\n"
FAVICON = Path(__file__).resolve().parents[1] / "core" / "static" / "core" / "favicon.ico"


def _error_page(status: int, heading: str, text: str) -> bytes:
    """A plain branded page for this origin's errors: no script, no cookie, nothing of the
    application (its session never reaches this host); styles inline (the content policy allows them)."""
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{heading}</title><link rel=\"icon\" href=\"/favicon.ico\">"
        "<style>body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;color:#1d2433}"
        "header{padding:.5rem 1rem;background:#f4f6fa;border-bottom:1px solid #dde2ea;font-weight:600}"
        "main{max-width:36rem;margin:2rem auto;padding:0 1.25rem}.code{color:#5b6478;margin:0}</style></head>"
        f"<body><header>Numbas LTI</header><main><p class=\"code\">{status}</p><h1>{heading}</h1><p>{text}</p>"
        "</main></body></html>\n"
    ).encode()


NOT_FOUND_PAGE = _error_page(404, "Page not found", "This address serves exam files only: there is no page here. "
                             "Open the exam from your course instead.")
NOT_ALLOWED_PAGE = _error_page(405, "Not possible here", "This address only serves exam files to read; it accepts "
                               "nothing sent to it.")


def request_host(scope) -> str:
    """The host name (without port, lower case) a request was addressed to."""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):
                return host.split("]", 1)[0] + "]"
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""


class ContentOriginRouter:
    """ASGI: requests for the exam-content host go to `content`, all others to `app`."""

    def __init__(self, app, content, *, content_host: str):
        self.app, self.content, self.content_host = app, content, content_host.lower()

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and request_host(scope) == self.content_host:
            return await self.content(scope, receive, send)
        return await self.app(scope, receive, send)


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class ContentServer:
    """ASGI: GET and HEAD of exam files, the runtime and MathJax; 404 for everything else."""

    def __init__(self, *, serve: bool):
        self.serve = serve
        self.headers = policy.security_headers(policy.content_security_policy(
            app_sources=app_sources(), frame_ancestors=settings.FRAME_ANCESTORS,
            mathjax=settings.EXAM_MATHJAX, extra_sources=settings.EXAM_CONTENT_SOURCES,
        ))

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 4404})
            return
        if scope["type"] != "http":
            return
        answer = await asyncio.to_thread(self.answer, scope)
        headers = {**self.headers, **answer.headers}
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else answer.body})

    def answer(self, scope) -> Answer:
        if not self.serve:
            return _not_found()
        if scope["method"] not in ("GET", "HEAD"):
            return Answer(405, {"Allow": "GET, HEAD", "Content-Type": "text/html; charset=utf-8",
                                "Cache-Control": "no-store"}, NOT_ALLOWED_PAGE)
        path = scope["path"]
        if path == "/favicon.ico":
            return _file_answer(FAVICON, policy.RUNTIME_CACHE, scope)
        if path.startswith("/mathjax/") and settings.EXAM_MATHJAX == "cdn":
            rest = path.removeprefix("/mathjax/")
            for prefix, cdn in policy.MATHJAX_CDN.items():
                if rest.startswith(prefix):
                    query = scope.get("query_string", b"").decode("latin-1")
                    location = cdn + rest.removeprefix(prefix) + (f"?{query}" if query else "")
                    return Answer(302, {"Location": location, "Cache-Control": policy.MATHJAX_CACHE})
        file, cache = _locate(path)
        if file is None:
            return _not_found()
        return _file_answer(file, cache, scope)


def _locate(path: str) -> tuple[Path | None, str]:
    try:
        if path.startswith("/exams/"):
            found = safe_join(str(Path(settings.MEDIA_ROOT) / "exams"), path.removeprefix("/exams/"))
            return (Path(found), policy.EXAM_CACHE) if os.path.isfile(found) else (None, "")
        for prefix, cache in (("/runtime/", policy.RUNTIME_CACHE), ("/mathjax/", policy.MATHJAX_CACHE)):
            if path.startswith(prefix):
                found = finders.find(PREFIX + path.lstrip("/"))
                return (Path(found), cache) if found and os.path.isfile(found) else (None, "")
    except (SuspiciousFileOperation, ValueError, OSError):  # ../, NUL and the like
        pass
    return None, ""


def _file_answer(file: Path, cache: str, scope) -> Answer:
    stat = file.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {"Cache-Control": cache, "ETag": etag, "Last-Modified": formatdate(stat.st_mtime, usegmt=True)}
    for name, value in scope.get("headers", ()):
        if name == b"if-none-match" and value.decode("latin-1") == etag:
            return Answer(304, headers)
    content_type, encoding = mimetypes.guess_type(file.name)
    if encoding or not content_type:  # e.g. .gz: a file to download, as nginx serves it
        content_type = "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/json", "image/svg+xml"):
        content_type += "; charset=utf-8"
    headers["Content-Type"] = content_type
    body = file.read_bytes()
    headers["Content-Length"] = str(len(body))
    return Answer(200, headers, body)


def _not_found() -> Answer:
    return Answer(404, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}, NOT_FOUND_PAGE)


def content_application(app):
    """Wrap the application's ASGI app so that the exam-content host gets the content server."""
    return ContentOriginRouter(app, ContentServer(serve=settings.SERVE_FILES), content_host=exam_origin().hostname)
