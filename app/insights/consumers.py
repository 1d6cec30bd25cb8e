"""The instructor's live view over a websocket: a summary of the resource right now, sent on
connect, again whenever an attempt starts or ends (attempts.services.live_notify), and every
few seconds if it changed. Only the resource's instructors may listen."""

import asyncio
import contextlib

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from attempts.services import live_group
from core.consumers import CLOSE_NOT_AUTHENTICATED
from insights.live import live_summary
from lms import selectors as lms_selectors

CLOSE_FORBIDDEN = 4403


def _may_watch(user, resource_id: int) -> bool:
    membership = lms_selectors.membership_get(user=user, resource_id=resource_id)
    return membership is not None and membership.is_instructor


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        resource_id = self.scope["url_route"]["kwargs"]["resource_id"]
        if not 0 < resource_id < 2**63 or not await database_sync_to_async(_may_watch)(user, resource_id):
            await self.send_json({"type": "error", "code": "forbidden",
                                  "message": "Only this activity's instructors can watch it live."})
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.resource_id = resource_id
        self.last = None
        self.changed = asyncio.Event()
        await self.channel_layer.group_add(live_group(resource_id), self.channel_name)
        await self.send_summary()
        self.ticker = asyncio.ensure_future(self.tick())

    async def tick(self):
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=settings.LIVE_INTERVAL_SECONDS)
            self.changed.clear()
            await self.send_summary()
            await asyncio.sleep(0.5)  # a burst of starts or ends is one recount

    async def send_summary(self):
        summary = await database_sync_to_async(live_summary)(resource_id=self.resource_id)
        comparable = {k: v for k, v in summary.items() if k != "at"}
        if comparable != self.last:
            self.last = comparable
            await self.send_json({"type": "summary", **summary})

    async def live_changed(self, event):
        self.changed.set()

    async def disconnect(self, code):
        ticker = getattr(self, "ticker", None)
        if ticker is not None:
            ticker.cancel()
        if getattr(self, "resource_id", None) is not None:
            await self.channel_layer.group_discard(live_group(self.resource_id), self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass  # nothing to say to us
