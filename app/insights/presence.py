"""Which attempts have a window connected right now, for the instructor's live view: the attempt
consumer notes the writer's websocket when it connects and forgets it when it closes (in the
shared cache, which every web process sees). A note outlives a crashed process by at most
PRESENCE_SECONDS."""

from __future__ import annotations

import logging

from channels.layers import get_channel_layer
from django.core.cache import cache

from attempts.services import live_group

logger = logging.getLogger(__name__)
PRESENCE_SECONDS = 6 * 3600


def _key(attempt_id: int) -> str:
    return f"insights:connected:{attempt_id}"


async def _tell_live_views(resource_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(live_group(resource_id), {"type": "live.changed"})
    except Exception:  # the live view catches up at its next recount
        logger.warning("Could not notify the live view of resource %s", resource_id, exc_info=True)


async def attempt_connected(*, attempt_id: int, resource_id: int, channel: str) -> None:
    try:
        await cache.aset(_key(attempt_id), channel, PRESENCE_SECONDS)
    except Exception:  # the live view then shows the window as not connected; saving is unaffected
        logger.warning("Could not note attempt %s as connected", attempt_id, exc_info=True)
        return
    await _tell_live_views(resource_id)


async def attempt_disconnected(*, attempt_id: int, resource_id: int, channel: str) -> None:
    try:
        if await cache.aget(_key(attempt_id)) == channel:  # not a window that took over since
            await cache.adelete(_key(attempt_id))
    except Exception:
        logger.warning("Could not note attempt %s as disconnected", attempt_id, exc_info=True)
        return
    await _tell_live_views(resource_id)


def connected_attempts(attempt_ids: list[int]) -> set[int]:
    """Which of these attempts have a window connected now."""
    if not attempt_ids:
        return set()
    try:
        found = cache.get_many([_key(pk) for pk in attempt_ids])
    except Exception:
        logger.warning("Could not read which attempts are connected", exc_info=True)
        return set()
    return {pk for pk in attempt_ids if _key(pk) in found}
