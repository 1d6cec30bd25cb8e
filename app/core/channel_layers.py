"""The Redis channel layer, made to ride out a Redis outage.

Attempt data never needs the channel layer: only "this attempt was opened in another window"
notices do, and each window also learns that on its next write. So while Redis is down,
websockets must stay up and keep saving answers: receiving waits for Redis to return instead
of failing (which would end every consumer of the process), and group membership changes
are logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging

from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
_OUTAGE = (RedisError, OSError, asyncio.TimeoutError)


class ResilientRedisChannelLayer(RedisChannelLayer):
    retry_seconds = 1.0

    async def receive(self, channel):
        warned = False
        while True:
            try:
                return await super().receive(channel)
            except _OUTAGE as error:
                if not warned:
                    logger.warning("Channel layer unreachable (%s); websockets carry on without it", error)
                    warned = True
                await asyncio.sleep(self.retry_seconds)

    async def group_add(self, group, channel):
        try:
            await super().group_add(group, channel)
        except _OUTAGE as error:
            logger.warning("Could not join %s while Redis is unreachable: %s", group, error)

    async def group_discard(self, group, channel):
        try:
            await super().group_discard(group, channel)
        except _OUTAGE as error:
            logger.warning("Could not leave %s while Redis is unreachable: %s", group, error)
