"""Reads for LTI 1.3: a course's member list as the LMS last gave it."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from lti13.models import Roster


def roster_get(*, context_id: int) -> Roster | None:
    return Roster.objects.select_related("platform").filter(context_id=context_id).first()


def roster_is_stale(*, context_id: int, max_age: timedelta) -> bool:
    """The list was never read, or was last read (or tried) more than `max_age` ago. A failed
    try counts: an LMS that refuses is not asked again at every launch."""
    since = timezone.now() - max_age
    return not Roster.objects.filter(context_id=context_id, tried_at__gte=since).exists()
