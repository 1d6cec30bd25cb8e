"""The websocket transport for attempt data. Only the attempt's owner, in the window that
currently holds the attempt, may write; every batch is acknowledged after its commit."""

import asyncio
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from attempts import selectors, services
from attempts.protocol import ProtocolError, parse_batch
from core import languages
from core.consumers import CLOSE_NOT_AUTHENTICATED
from insights import presence

CLOSE_FORBIDDEN = 4403
UNAVAILABLE = gettext_lazy("The database is unavailable for a moment; this batch is kept and will be sent again.")
CLOSE_TAKEN_OVER = 4409
CLOSE_ENDED = 4410
CLOSE_MOVED = 4412


# Database work for attempt data runs on a few threads of its own, each keeping its
# connection between batches (no pool checkout, ping and return per batch). Not Channels'
# database_sync_to_async: that queues every session of the process behind one thread.
_db_threads = ThreadPoolExecutor(max_workers=settings.ATTEMPT_DB_THREADS, thread_name_prefix="attempt-db")


def _in_worker(function, *args, **kwargs):
    """Run attempt work on this thread's kept connection; once more on a new one if it had broken.

    Each thread keeps its connection between batches, so after the database restarted or was
    unreachable every thread holds a dead one. A kept connection that fails is replaced and the
    work tried once again (batches are idempotent by id); a new connection that fails means the
    database is still away: the error goes to the page, which sends the batch again.
    """
    connection = connections["default"]
    kept = connection.connection is not None
    try:
        return function(*args, **kwargs)
    except (InterfaceError, OperationalError):
        connection.close()
        if not kept:
            raise
    try:
        return function(*args, **kwargs)
    except (InterfaceError, OperationalError):
        connection.close()
        raise


def _in_language(language, function, *args, **kwargs):
    with translation.override(language):
        return _in_worker(function, *args, **kwargs)


async def _db(function, *args, **kwargs):
    loop = asyncio.get_running_loop()
    # What the work says (refusals, messages) is in the language the consumer activated.
    return await loop.run_in_executor(
        _db_threads, functools.partial(_in_language, translation.get_language(), function, *args, **kwargs))


class AttemptConsumer(AsyncJsonWebsocketConsumer):
    async def dispatch(self, message):
        # Channels closes "old" connections before every message, with a hop to its one
        # sync thread; our database threads manage their own connections (see _in_worker).
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        # What the socket says is in the person's language (their choice, else their launch's).
        if getattr(self, "language", None) is None:
            self.language = await _db(languages.session_language, self.scope.get("session"))
        with translation.override(self.language):
            await handler(message)

    async def connect(self):
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        attempt_id = self.scope["url_route"]["kwargs"]["attempt_id"]
        attempt, access = await _db(selectors.attempt_for_user, attempt_id=attempt_id, user=user)
        if attempt is None or access != "owner":
            await self.send_json({"type": "error", "code": "forbidden", "message": _("This attempt is not yours.")})
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if attempt.is_ended:
            await self.send_json({"type": "error", "code": "ended", "message": _("This attempt has ended.")})
            await self.close(code=CLOSE_ENDED)
            return
        closed = await _db(selectors.attempt_closed_message, attempt=attempt)
        if closed:
            await self.send_json({"type": "error", "code": "closed", "message": closed})
            await self.close(code=CLOSE_ENDED)
            return
        token = parse_qs(self.scope.get("query_string", b"").decode()).get("token", [""])[0]
        if not token or token != attempt.writer_token:
            await self.send_json({"type": "taken_over", "message": _("This attempt was opened in another window.")})
            await self.close(code=CLOSE_TAKEN_OVER)
            return
        self.attempt_id, self.user_id, self.token = attempt.pk, user.pk, token
        self.group = services.attempt_group(attempt.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.resource_id = attempt.resource_id
        await presence.attempt_connected(attempt_id=attempt.pk, resource_id=attempt.resource_id,
                                         channel=self.channel_name)  # for the live view
        await self.send_json({"type": "ready"})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await presence.attempt_disconnected(attempt_id=self.attempt_id, resource_id=self.resource_id,
                                                channel=self.channel_name)

    async def receive_json(self, content, **kwargs):
        if getattr(self, "token", None) is None:
            return  # refused at connect: frames that arrive before the close are ignored
        try:
            batch = parse_batch(content)
        except ProtocolError as error:
            await self.send_json({"type": "error", "batch": error.batch_id, "code": error.code, "message": error.message})
            return
        if batch.token != self.token:
            await self.send_json({"type": "error", "batch": batch.batch_id, "code": "invalid",
                                  "message": _("The batch's writer token is not this connection's.")})
            return
        try:
            result = await _db(services.batch_store, attempt_id=self.attempt_id, user_id=self.user_id, batch=batch)
        except (InterfaceError, OperationalError):
            # The database is restarting or unreachable: nothing was stored. The connection stays
            # open and the page sends the batch again (it keeps it until acknowledged).
            await self.send_json({"type": "error", "batch": batch.batch_id, "code": "unavailable",
                                  "message": str(UNAVAILABLE)})
            return
        except services.BatchRefused as refused:
            await self.send_json({"type": "error", "batch": batch.batch_id, "code": refused.code, "message": refused.message})
            if refused.code in ("taken_over", "ended", "closed", "forbidden"):
                await self.close(code={"taken_over": CLOSE_TAKEN_OVER, "ended": CLOSE_ENDED,
                                       "closed": CLOSE_ENDED}.get(refused.code, CLOSE_FORBIDDEN))
            return
        # batch ids are [A-Za-z0-9_-] (checked by parse_batch): safe to format directly
        await self.send(
            text_data=f'{{"type": "ack", "batch": "{batch.batch_id}", "stored": {str(result.stored).lower()}, '
            f'"ended": {str(result.ended).lower()}}}'
        )

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if not text_data:  # an empty or binary frame: not a batch
            if getattr(self, "token", None) is not None:
                await self.send_json({"type": "error", "code": "invalid", "message": _("A batch must be a JSON text message.")})
            return
        await super().receive(text_data=text_data, **kwargs)

    async def decode_json(self, text_data):
        try:
            return json.loads(text_data)
        except (ValueError, RecursionError):
            return None  # parse_batch answers "must be a JSON object"

    async def attempt_taken_over(self, event):
        if event["token"] != self.token:
            await self.send_json({"type": "taken_over", "message": _("This attempt was opened in another window.")})
            await self.close(code=CLOSE_TAKEN_OVER)

    async def attempt_access(self, event):
        """An instructor changed this student's access: the page passes the new values to the exam."""
        await self.send_json({"type": "access", "numbas": event["numbas"]})

    async def attempt_ended(self, event):
        """The attempt was ended at its closing time or time limit: the page stops saving and
        says why (what it had not saved by then was refused)."""
        await self.send_json({"type": "error", "code": "closed", "message": event["message"]})
        await self.close(code=CLOSE_ENDED)

    async def attempt_moved(self, event):
        """An instructor moved this attempt to another exam version: the page stops saving
        (its writer token is no longer valid) and reloads onto the new version."""
        await self.send_json({"type": "moved", "message": event["message"]})
        await self.close(code=CLOSE_MOVED)
