"""Reads for the LTI side."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from lms.models import Consumer, IdentifierField, Context, LaunchLog, Resource, ResourceAlias, ResourceMembership


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


def lti13_row_find(model, *, consumer: Consumer, lti13_id: str, legacy_id: str, id_field: str):
    """A course (Context) or resource link (Resource) of an LTI 1.3 launch: by its 1.3 id, else
    by the 1.1 id the lti1p1 claim names or by the same id used in 1.1 (a row not yet given a
    1.3 id). None if it is new."""
    rows = model.objects.filter(consumer=consumer)
    row = rows.filter(lti13_id=lti13_id).first()
    for candidate in filter(None, (legacy_id, lti13_id)):
        if row is None:
            row = rows.filter(**{id_field: candidate}, lti13_id__isnull=True).first()
    return row


def lti13_context_find(*, consumer: Consumer, context_id: str, legacy_context_id: str = "") -> Context | None:
    if not context_id:
        return None
    return lti13_row_find(Context, consumer=consumer, lti13_id=context_id, legacy_id=legacy_context_id,
                          id_field="context_id")


def resource_alias_target(*, consumer: Consumer, lti13_id: str) -> Resource | None:
    """The activity an LTI 1.3 resource link was deep-linked to, if it is an alias."""
    alias = ResourceAlias.objects.select_related("resource").filter(consumer=consumer, lti13_id=lti13_id).first()
    return alias.resource if alias else None


def course_activity_get(*, consumer: Consumer, context: Context | None, resource_id: int) -> Resource | None:
    """The activity of this LMS and this course (or, without a course, of none) with this id."""
    return Resource.objects.filter(pk=resource_id, consumer=consumer, context=context).first()


# --- which identifier names a student (IdentifierField) ----------------------------------------


def identifier_field_for(*, resource_id: int) -> str:
    """The identifier an activity's pages and CSVs show next to students' names: the activity's
    own choice, else its LMS's."""
    from attempts.models import ResourceSettings  # attempts depends on lms, not the other way round

    chosen = ResourceSettings.objects.filter(resource_id=resource_id).values_list("identifier_field", flat=True).first()
    if chosen:
        return chosen
    return Resource.objects.filter(pk=resource_id).values_list("consumer__identifier_field", flat=True).first() or (
        IdentifierField.EMAIL)


def identifier_label(field: str) -> str:
    return str(IdentifierField(field).label) if field in IdentifierField.values else ""


def identifier_expression(field: str, *, identity: str = "user__lti_identity__"):
    """A database expression for the chosen identifier of the person a row reaches through
    `identity` (a relation path ending in the LtiIdentity): "" when the LMS never sent it. The
    e-mail address falls back to the user's own, as pages have always shown it."""
    if field == IdentifierField.EMAIL:
        user = identity.removesuffix("lti_identity__")
        return Coalesce(NullIf(F(f"{identity}email"), Value("")), NullIf(F(f"{user}email"), Value("")), Value(""))
    column = field if field in IdentifierField.values else IdentifierField.LMS_USER_ID
    return Coalesce(F(f"{identity}{column}"), Value(""))
