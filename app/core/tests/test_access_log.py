"""The application's access log (core.access_log) and the redaction of tokens in any log line."""

import asyncio
import logging

from core.access_log import AccessLogMiddleware, RedactSecrets, redact


def test_tokens_in_paths_and_query_strings_are_redacted():
    assert redact("/lti/handoff/AbC-12_x/") == "/lti/handoff/[redacted]/"
    assert redact("GET /resource/3/?launch=AbC&page=2") == "GET /resource/3/?launch=[redacted]&page=2"
    assert redact("/ws/attempt/9/?token=T0k-en") == "/ws/attempt/9/?token=[redacted]"
    assert redact("/resource/3/?page=2") == "/resource/3/?page=2"


def test_the_filter_rewrites_a_record_that_quotes_a_token():
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Gone: %s", ("/lti/handoff/s3cret/",),
                               None)
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "Gone: /lti/handoff/[redacted]/"


def _run(app, scope, incoming):
    sent = []

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(AccessLogMiddleware(app)(scope, receive, send))
    return sent


def test_one_line_per_request_without_query_and_without_forged_lines(caplog):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with caplog.at_level(logging.INFO, logger="numbas_lti.access"):
        _run(app, {"type": "http", "method": "GET", "path": "/lti/handoff/s3cret/\nFAKE 200",
                   "query_string": b"launch=s3cret"}, [])
    (line,) = [r.getMessage() for r in caplog.records if r.name == "numbas_lti.access"]
    assert line.startswith('"GET /lti/handoff/[redacted]/\\nFAKE 200" 204 ') and "s3cret" not in line


def test_a_websocket_refused_at_the_handshake_and_one_closed_by_the_server(caplog):
    async def refuse(scope, receive, send):
        await send({"type": "websocket.close", "code": 1000})

    async def accept_then_close(scope, receive, send):
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4409})

    with caplog.at_level(logging.INFO, logger="numbas_lti.access"):
        _run(refuse, {"type": "websocket", "path": "/ws/whoami/"}, [{"type": "websocket.connect"}])
        _run(accept_then_close, {"type": "websocket", "path": "/ws/attempt/1/"}, [])
    lines = [r.getMessage() for r in caplog.records if r.name == "numbas_lti.access"]
    assert lines[0].startswith('"WEBSOCKET /ws/whoami/" 403 close=1000 ')
    assert lines[1].startswith('"WEBSOCKET /ws/attempt/1/" 101 close=4409 ')
