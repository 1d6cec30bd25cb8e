"""The channel layer rides out a Redis outage instead of ending every websocket."""

import asyncio

import pytest

from core.channel_layers import ResilientRedisChannelLayer


def test_receive_waits_for_redis_and_group_changes_are_skipped_while_it_is_down():
    # A port where nothing listens: Redis is "down" for the whole test.
    layer = ResilientRedisChannelLayer(hosts=["redis://127.0.0.1:9/0"])
    layer.retry_seconds = 0.05

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add("attempt.1", channel)  # logged, not raised
        await layer.group_discard("attempt.1", channel)
        with pytest.raises(asyncio.TimeoutError):  # still waiting, not failed
            await asyncio.wait_for(layer.receive(channel), timeout=0.5)

    asyncio.run(scenario())
