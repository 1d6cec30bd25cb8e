"""The websocket transport for attempt data. Only the attempt's owner, in the window that
currently holds the attempt, may write; every batch is acknowledged after its commit."""

from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

from attempts import selectors, services
from attempts.protocol import ProtocolError, parse_batch

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TAKEN_OVER = 4409
CLOSE_ENDED = 4410


def _in_worker(function, *args, **kwargs):
    close_old_connections()
    try:
        return function(*args, **kwargs)
    finally:
        connections.close_all()  # hands pooled connections back


def _db(function):
    """Run database work in the shared thread pool, not the one thread that Channels'
    database_sync_to_async would queue every session of this process behind."""
    return sync_to_async(lambda *a, **k: _in_worker(function, *a, **k), thread_sensitive=False)


class AttemptConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        attempt_id = self.scope["url_route"]["kwargs"]["attempt_id"]
        attempt, access = await _db(selectors.attempt_for_user)(attempt_id=attempt_id, user=user)
        if attempt is None or access != "owner":
            await self.send_json({"type": "error", "code": "forbidden", "message": "This attempt is not yours."})
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if attempt.is_ended:
            await self.send_json({"type": "error", "code": "ended", "message": "This attempt has ended."})
            await self.close(code=CLOSE_ENDED)
            return
        token = parse_qs(self.scope.get("query_string", b"").decode()).get("token", [""])[0]
        if not token or token != attempt.writer_token:
            await self.send_json({"type": "taken_over", "message": "This attempt was opened in another window."})
            await self.close(code=CLOSE_TAKEN_OVER)
            return
        self.attempt_id, self.user_id, self.token = attempt.pk, user.pk, token
        self.group = services.attempt_group(attempt.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json({"type": "ready"})

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        try:
            batch = parse_batch(content)
        except ProtocolError as error:
            await self.send_json({"type": "error", "batch": error.batch_id, "code": error.code, "message": error.message})
            return
        if batch.token != self.token:
            await self.send_json({"type": "error", "batch": batch.batch_id, "code": "invalid",
                                  "message": "The batch's writer token is not this connection's."})
            return
        try:
            result = await _db(services.batch_store)(attempt_id=self.attempt_id, user_id=self.user_id, batch=batch)
        except services.BatchRefused as refused:
            await self.send_json({"type": "error", "batch": batch.batch_id, "code": refused.code, "message": refused.message})
            if refused.code in ("taken_over", "ended", "forbidden"):
                await self.close(code={"taken_over": CLOSE_TAKEN_OVER, "ended": CLOSE_ENDED}.get(refused.code, CLOSE_FORBIDDEN))
            return
        await self.send_json({"type": "ack", "batch": batch.batch_id, "stored": result.stored, "ended": result.ended})

    async def decode_json(self, text_data):
        import json

        try:
            return json.loads(text_data)
        except ValueError:
            return None  # parse_batch answers "must be a JSON object"

    async def attempt_taken_over(self, event):
        if event["token"] != self.token:
            await self.send_json({"type": "taken_over", "message": "This attempt was opened in another window."})
            await self.close(code=CLOSE_TAKEN_OVER)
