"""Our access log: one line per HTTP request and per websocket, with no secret in it.

daphne's own access log (on by default) writes every URL with its query string: the launch's
"continue in a new window" token rides in `?launch=` and in the path `/lti/handoff/<token>/`,
and an attempt's writer token in `/ws/attempt/<id>/?token=`. So daphne runs with `-v 0`
(infra/numbas_infra/spec.py) and the application logs instead: method, path without query
string and with secret segments redacted, status (101 for an accepted websocket, then its
close code), duration.
"""

from __future__ import annotations

import logging
import re
import time

logger = logging.getLogger("numbas_lti.access")

# Secrets that travel in URLs: the hand-off token in its path, and in the query string the
# launch's hand-off token (portal.navigation.HANDOFF_PARAM) and an attempt's writer token.
SECRET_IN_PATH = re.compile(r"(/lti/handoff/)[^/?#\s\"']+")
SECRET_IN_QUERY = re.compile(r"([?&](?:launch|token)=)[^&#\s\"']+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return SECRET_IN_QUERY.sub(rf"\1{REDACTED}", SECRET_IN_PATH.sub(rf"\1{REDACTED}", text))


class RedactSecrets(logging.Filter):
    """For every log handler (settings.LOGGING): Django itself logs refused requests by path
    ("Gone: /lti/handoff/<token>/" for a used hand-off link), and errors may quote a URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class AccessLogMiddleware:
    """ASGI middleware around the whole application (numbas_lti.asgi)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        started = time.monotonic()
        outcome = {"status": None, "close": None}

        async def watched_send(message):
            kind = message["type"]
            if kind == "http.response.start":
                outcome["status"] = message["status"]
            elif kind == "websocket.accept":
                outcome["status"] = 101
            elif kind == "websocket.close":
                if outcome["status"] is None:
                    outcome["status"] = 403  # refused during the handshake
                outcome["close"] = message.get("code", 1000)
            await send(message)

        async def watched_receive():
            message = await receive()
            if message["type"] == "websocket.disconnect" and outcome["close"] is None:
                outcome["close"] = message.get("code")
            return message

        try:
            await self.app(scope, watched_receive, watched_send)
        finally:
            status = outcome["status"] or (500 if scope["type"] == "http" else "-")
            close = "" if outcome["close"] is None else f" close={outcome['close']}"
            path = redact(scope.get("path", "")).encode("unicode_escape").decode("ascii")  # no forged lines
            logger.info('"%s %s" %s%s %dms', scope.get("method", "WEBSOCKET"), path, status, close,
                        (time.monotonic() - started) * 1000)
