"""Reads for LTI 1.3: a course's member list as the LMS last gave it, deep linking requests
waiting for an answer, and the activities an instructor may link to."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from exams.models import ExamPackage
from lms.models import Resource
from lms.selectors import lti13_context_find
from lti13.models import DeepLinkingRequest, Roster


def roster_get(*, context_id: int) -> Roster | None:
    return Roster.objects.select_related("platform").filter(context_id=context_id).first()


def roster_is_stale(*, context_id: int, max_age: timedelta) -> bool:
    """The list was never read, or was last read (or tried) more than `max_age` ago. A failed
    try counts: an LMS that refuses is not asked again at every launch."""
    since = timezone.now() - max_age
    return not Roster.objects.filter(context_id=context_id, tried_at__gte=since).exists()


#: The longest token the picker page could carry (secrets.token_urlsafe(32) is 43 characters).
MAX_TOKEN_LENGTH = 100


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def deep_linking_request_usable(*, token: str, now=None) -> DeepLinkingRequest | None:
    """The unanswered, unexpired deep linking request this picker token belongs to."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return (DeepLinkingRequest.objects.select_related("platform", "consumer")
            .filter(token_hash=token_hash(token), used_at__isnull=True, expires_at__gt=now or timezone.now())
            .first())


def course_activities(*, ask: DeepLinkingRequest) -> list[Resource]:
    """The activities of the request's course (none without a course), newest first, each with
    its current exam's title (`exam_title`, None before an upload)."""
    context = lti13_context_find(consumer=ask.consumer, context_id=ask.context_lti13_id,
                                 legacy_context_id=ask.context_legacy_id)
    if context is None:
        return []
    current_exam = ExamPackage.objects.filter(resource=OuterRef("pk")).order_by("-version").values("title")[:1]
    return list(Resource.objects.filter(consumer=ask.consumer, context=context)
                .annotate(exam_title=Subquery(current_exam)).order_by("-created_at", "-pk")[:500])
