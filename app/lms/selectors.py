"""Reads for the LTI side."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from lms.models import Consumer, LaunchLog, ResourceMembership


def consumer_get_by_key(*, key: str) -> Consumer | None:
    return Consumer.objects.filter(key=key).first()


def membership_get(*, user, resource_id: int) -> ResourceMembership | None:
    if not user.is_authenticated:
        return None
    return (
        ResourceMembership.objects.select_related("resource__context", "resource__consumer")
        .filter(user=user, resource_id=resource_id)
        .first()
    )


def handoff_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def handoff_get_usable(*, token: str, resource_id: int | None = None) -> LaunchLog | None:
    """The launch a "continue in a new window" token belongs to, if it is unused and recent."""
    if not token or len(token) > 100:
        return None
    oldest = timezone.now() - timedelta(seconds=settings.LTI_HANDOFF_MAX_AGE_SECONDS)
    launches = LaunchLog.objects.select_related("membership__resource", "membership__user").filter(
        handoff_token_hash=handoff_token_hash(token), handoff_used_at__isnull=True, launched_at__gte=oldest
    )
    if resource_id is not None:
        launches = launches.filter(membership__resource_id=resource_id)
    return launches.first()
