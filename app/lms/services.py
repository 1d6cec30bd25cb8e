"""Writes for the LTI side: consumers, launches, nonces, session hand-offs."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from lms.launch import ACTIVITY_CUSTOM_PARAMETER, LaunchData, replayed_launch
from lms.models import (Consumer, Context, LaunchLog, LtiIdentity, LtiVersion, Resource, ResourceAlias,
                        ResourceMembership, Role, UsedNonce)
from lms.roles import roles_split, validate_role_list
from lms.selectors import course_activity_get, handoff_token_hash, lti13_row_find, resource_alias_target

User = get_user_model()
logger = logging.getLogger(__name__)

#: The resource_link_id of an activity made before any LMS link launched it (deep linking).
AHEAD_LINK_PREFIX = "numbas-activity:"


def consumer_create_or_update(*, key: str, secret: str | None = None, name: str | None = None,
                              instructor_roles: str | None = None,
                              keep_secret: bool = False) -> tuple[Consumer, str | None, bool]:
    """Create the consumer with this key, or give an existing one a new secret (unless
    `keep_secret`), and the name and extra instructor roles when given (roles comma-separated
    or one per line, "" for none).

    Returns (consumer, secret, created); secret is None when an existing one was kept. Without
    a secret, a new random one is generated.
    """
    key = key.strip()
    if not key:
        raise ValueError("The consumer key must not be empty.")
    if instructor_roles is not None:
        try:
            validate_role_list(instructor_roles)
        except ValidationError as error:
            raise ValueError(" ".join(error.messages)) from None
        instructor_roles = "\n".join(roles_split(instructor_roles))
    secret_given = bool(secret)
    secret = secret or secrets.token_urlsafe(32)
    with transaction.atomic():
        consumer = Consumer.objects.select_for_update().filter(key=key).first()
        if consumer is None:
            consumer = Consumer.objects.create(key=key, secret=secret, name=name or key,
                                               instructor_roles=instructor_roles or "")
            return consumer, secret, True
        update_fields = ["updated_at"]
        if keep_secret and not secret_given:
            secret = None
        else:
            consumer.secret = secret
            update_fields.append("secret")
        if name:
            consumer.name = name
            update_fields.append("name")
        if instructor_roles is not None:
            consumer.instructor_roles = instructor_roles
            update_fields.append("instructor_roles")
        consumer.save(update_fields=update_fields)
        return consumer, secret, False


def _username_for(consumer: Consumer, lti_user_id: str) -> str:
    digest = hashlib.sha256(lti_user_id.encode()).hexdigest()[:24]
    return f"lti-{consumer.pk}-{digest}"


def _split_name(full_name: str) -> tuple[str, str]:
    first, _, last = full_name.partition(" ")
    return first[:150], last[:150]


def _identity_find(*, consumer: Consumer, launch: LaunchData) -> LtiIdentity | None:
    """The person this launch is about. LTI 1.1: (consumer, user_id). LTI 1.3: their `sub`;
    failing that the 1.1 user id the lti1p1 claim names, or a 1.1 identity with the same id
    (LMSs such as Moodle use one id in both) — each then gains the `sub`."""
    if launch.lti_version != LtiVersion.LTI_1P3:
        return LtiIdentity.objects.select_related("user").filter(consumer=consumer, lti_user_id=launch.user_id).first()
    return _identity_of_sub(consumer=consumer, sub=launch.user_id, legacy_user_id=launch.legacy_user_id)


def _identity_of_sub(*, consumer: Consumer, sub: str, legacy_user_id: str = "") -> LtiIdentity | None:
    """The person an LTI 1.3 issuer calls `sub`: the identity with that `sub`, else a 1.1
    identity without one whose user id is their 1.1 user id or the `sub` itself."""
    identities = LtiIdentity.objects.select_related("user").filter(consumer=consumer)
    found = identities.filter(sub=sub).first()
    for legacy_id in filter(None, (legacy_user_id, sub)):
        if found is None:
            found = identities.filter(lti_user_id=legacy_id, sub__isnull=True).first()
    return found


def _identity_upsert(*, consumer: Consumer, launch: LaunchData) -> LtiIdentity:
    """The identity (and its user) for this LMS user, created or brought up to date.

    A concurrent first launch of the same person makes one of the two INSERTs fail; the
    caller retries the whole launch, which then finds the identity.
    """
    identity = _identity_find(consumer=consumer, launch=launch)
    first_name, last_name = _split_name(launch.full_name)
    sub = launch.user_id if launch.lti_version == LtiVersion.LTI_1P3 else None
    if identity is None:
        return _identity_create(consumer=consumer, lti_user_id=launch.user_id, sub=sub, full_name=launch.full_name,
                                email=launch.email, locale=launch.locale, username=launch.username,
                                sourcedid=launch.sourcedid)
    identity_wanted = {"full_name": launch.full_name, "email": launch.email, "locale": launch.locale,
                       "username": launch.username, "sourcedid": launch.sourcedid}
    if sub:
        identity_wanted["sub"] = sub
    _save_changed(identity, {f: v for f, v in identity_wanted.items() if v}, also=["updated_at"])
    user_wanted = {"first_name": first_name, "last_name": last_name} if launch.full_name else {}
    if launch.email:
        user_wanted["email"] = launch.email
    _save_changed(identity.user, user_wanted)
    return identity


def _identity_create(*, consumer: Consumer, lti_user_id: str, sub: str | None, full_name: str, email: str,
                     locale: str = "", username: str = "", sourcedid: str = "") -> LtiIdentity:
    first_name, last_name = _split_name(full_name)
    user = User(username=_username_for(consumer, lti_user_id), first_name=first_name, last_name=last_name,
                email=email)
    user.set_unusable_password()
    user.save(force_insert=True)
    return LtiIdentity.objects.create(consumer=consumer, lti_user_id=lti_user_id, sub=sub, user=user,
                                      full_name=full_name, email=email, locale=locale, username=username,
                                      sourcedid=sourcedid)


@transaction.atomic
def identity_provision(*, consumer: Consumer, sub: str, legacy_user_id: str = "", full_name: str = "",
                       email: str = "") -> LtiIdentity:
    """The person an LTI 1.3 platform calls `sub` (from a course list), created ahead of their
    first launch if we do not know them yet — as that launch would create them (lti_user_id =
    sub), so that it finds them by their `sub` (`_identity_find`) and what was set up for
    them applies. Someone known already (by their `sub`, or a 1.1 identity the launch would
    take up) is returned as they are. Two at once: the unique constraints decide, and the
    loser gets the winner's identity."""
    found = _identity_of_sub(consumer=consumer, sub=sub, legacy_user_id=legacy_user_id)
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return _identity_create(consumer=consumer, lti_user_id=sub, sub=sub, full_name=full_name[:500],
                                    email=email)
    except IntegrityError:
        found = _identity_of_sub(consumer=consumer, sub=sub, legacy_user_id=legacy_user_id)
        if found is None:
            raise
        return found


def _lti13_row(model, *, consumer: Consumer, lti13_id: str, legacy_id: str, id_field: str, values: dict):
    """A course or resource link of a 1.3 launch (`selectors.lti13_row_find`), brought up to
    date and given its 1.3 id; else created. A concurrent creation fails on the unique
    constraints and the launch is retried."""
    row = lti13_row_find(model, consumer=consumer, lti13_id=lti13_id, legacy_id=legacy_id, id_field=id_field)
    if row is None:
        return model.objects.create(consumer=consumer, lti13_id=lti13_id, **{id_field: lti13_id}, **values)
    _save_changed(row, {"lti13_id": lti13_id, **values})
    return row


def _lti13_resource(*, consumer: Consumer, launch: LaunchData, context: Context | None, values: dict) -> Resource:
    """The activity an LTI 1.3 resource link opens.

    A link seen before opens what it opened then: its own Resource (lti13_id, or its 1.1 id),
    or the activity it is an alias of. A new link that a deep linking answer gave our custom
    parameter opens the activity it names — if that activity is of the same LMS and the same
    course (instructors can edit custom parameters): the first such link owns the activity
    when it was made ahead of its first launch (it has no lti13_id yet), every other link becomes
    an alias (so an activity launched so far only with LTI 1.1 keeps its 1.1 link's way up to 1.3).
    Anything else — no parameter, or one naming another LMS's or course's activity (a course
    copied in the LMS, or an edited parameter) — is a new activity of its own, as before."""
    link_id = launch.resource_link_id
    known = lti13_row_find(Resource, consumer=consumer, lti13_id=link_id, legacy_id=launch.legacy_resource_link_id,
                           id_field="resource_link_id")
    if known is not None and known.lti13_id == link_id:
        _save_changed(known, values)
        return known
    aliased = resource_alias_target(consumer=consumer, lti13_id=link_id)
    if aliased is not None:
        return aliased  # the owning link's title and course stay
    if known is None:
        chosen = _deep_linked_activity(consumer=consumer, launch=launch, context=context)
        if chosen is not None:
            ahead = Resource.objects.filter(pk=chosen.pk, lti13_id__isnull=True,
                                            resource_link_id__startswith=AHEAD_LINK_PREFIX)
            if ahead.update(lti13_id=link_id, **values):
                chosen.refresh_from_db()
            else:
                ResourceAlias.objects.create(consumer=consumer, lti13_id=link_id, resource=chosen)
            return chosen
    return _lti13_row(Resource, consumer=consumer, lti13_id=link_id, legacy_id=launch.legacy_resource_link_id,
                      id_field="resource_link_id", values=values)


def _deep_linked_activity(*, consumer: Consumer, launch: LaunchData, context: Context | None) -> Resource | None:
    value = launch.custom.get(ACTIVITY_CUSTOM_PARAMETER, "").strip()
    if not value:
        return None
    resource = None
    if value.isascii() and value.isdigit() and len(value) <= 18:
        resource = course_activity_get(consumer=consumer, context=context, resource_id=int(value))
    if resource is None:
        logger.warning("LTI 1.3 link %s of consumer %s names activity %r, which is not of its LMS and course: "
                       "it gets an activity of its own", launch.resource_link_id[:100], consumer.pk, value[:40])
    return resource


def _save_changed(obj, wanted: dict, also: list[str] | None = None) -> None:
    """Set and save only the fields whose values differ."""
    changed = [f for f, v in wanted.items() if getattr(obj, f) != v]
    if changed:
        for f in changed:
            setattr(obj, f, wanted[f])
        obj.save(update_fields=[*changed, *(also or [])])


def _upsert(model, *, unique: dict, values: dict):
    """INSERT ... ON CONFLICT (unique) DO UPDATE SET values: one race-free statement."""
    [row] = model.objects.bulk_create(
        [model(**unique, **values)],
        update_conflicts=True,
        unique_fields=list(unique),
        update_fields=list(values),
    )
    return row


def launch_record(*, consumer: Consumer, launch: LaunchData, user_agent: str = "") -> tuple[LaunchLog, str]:
    """Record an authenticated launch: use up its nonce, create or update the user, context,
    resource and membership, and log it. All or nothing.

    Returns the launch log row and the one-time hand-off token for "continue in a new window".
    Raises LaunchRejected if the nonce was used meanwhile (a concurrent replay).
    """
    for attempt in (1, 2):
        try:
            return _launch_record_once(consumer=consumer, launch=launch, user_agent=user_agent)
        except IntegrityError:
            if attempt == 2:
                raise
            # Someone else's concurrent first launch of the same user, context or resource.
    raise AssertionError("unreachable")


def _nonce_use(*, consumer: Consumer, launch: LaunchData, now: datetime) -> bool:
    """Record the nonce; False if this consumer used it before. One statement, no savepoint:
    the unique constraint decides, ON CONFLICT keeps the transaction usable."""
    table = UsedNonce._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (consumer_id, nonce, expires_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (consumer_id, nonce) DO NOTHING RETURNING id",
            [consumer.pk, launch.nonce, _nonce_expiry(launch.timestamp, now)],
        )
        return cursor.fetchone() is not None


@transaction.atomic
def _launch_record_once(*, consumer: Consumer, launch: LaunchData, user_agent: str) -> tuple[LaunchLog, str]:
    now = timezone.now()
    if launch.nonce and not _nonce_use(consumer=consumer, launch=launch, now=now):
        raise replayed_launch()
    identity = _identity_upsert(consumer=consumer, launch=launch)
    context = None
    lti13 = launch.lti_version == LtiVersion.LTI_1P3
    if launch.context_id:
        values = {"title": launch.context_title, "label": launch.context_label, "updated_at": now}
        if lti13 and launch.nrps_url:
            values.update(nrps_url=launch.nrps_url, nrps_platform_id=launch.platform_id)
        if lti13:
            context = _lti13_row(Context, consumer=consumer, lti13_id=launch.context_id,
                                 legacy_id=launch.legacy_context_id, id_field="context_id", values=values)
        else:
            context = _upsert(Context, unique={"consumer": consumer, "context_id": launch.context_id}, values=values)
    values = {"context": context, "title": launch.resource_title, "description": launch.resource_description,
              "updated_at": now}
    if lti13:
        resource = _lti13_resource(consumer=consumer, launch=launch, context=context, values=values)
    else:
        resource = _upsert(Resource, unique={"consumer": consumer, "resource_link_id": launch.resource_link_id},
                           values=values)
    membership = _upsert(
        ResourceMembership,
        unique={"user": identity.user, "resource": resource},
        values={
            "role": launch.role,
            "lti_roles": launch.roles,
            "lis_result_sourcedid": launch.lis_result_sourcedid,
            "lis_outcome_service_url": launch.lis_outcome_service_url,
            "return_url": launch.return_url,
            "lti_version": launch.lti_version,
            "platform_id": launch.platform_id,
            "ags_lineitem_url": launch.ags_lineitem_url,
            "ags_lineitems_url": launch.ags_lineitems_url,
            "ags_scopes": launch.ags_scopes,
            "custom": launch.custom,
            "last_launched_at": now,
        },
    )
    membership.user = identity.user
    membership.resource = resource
    if launch.role == Role.STUDENT:
        _pending_access_changes_apply(resource=resource, identity=identity)
    token = secrets.token_urlsafe(32)
    log = LaunchLog.objects.create(
        membership=membership,
        launched_at=now,
        role=launch.role,
        user_agent=user_agent[:500],
        handoff_token_hash=handoff_token_hash(token),
    )
    return log, token


def _pending_access_changes_apply(*, resource: Resource, identity: LtiIdentity) -> None:
    """Access changes an instructor set for this student by a pasted list before they came
    apply from this launch, in its transaction (attempts decides what applies)."""
    from attempts.services import access_changes_pending_apply

    access_changes_pending_apply(resource_id=resource.pk, user_id=identity.user_id, email=identity.email,
                                 username=identity.username, user_ids=(identity.lti_user_id, identity.sub or ""))


def _nonce_expiry(timestamp: int, now: datetime) -> datetime:
    # A nonce must be remembered for as long as its timestamp could still be accepted.
    tolerance = timedelta(seconds=settings.LTI_TIMESTAMP_TOLERANCE_SECONDS)
    stamped = datetime.fromtimestamp(timestamp, tz=dt_timezone.utc)
    return max(stamped, now) + tolerance + timedelta(minutes=1)


def nonces_purge_expired(*, now: datetime | None = None) -> int:
    deleted, _ = UsedNonce.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted


def handoff_consume(*, launch: LaunchLog) -> bool:
    """Mark a hand-off token used. False if someone else used it first."""
    return bool(
        LaunchLog.objects.filter(pk=launch.pk, handoff_used_at__isnull=True).update(handoff_used_at=timezone.now())
    )


# --- activities made by deep linking (LTI 1.3) ----------------------------------------------------


@transaction.atomic
def lti13_context_record(*, consumer: Consumer, context_id: str, legacy_context_id: str = "", title: str = "",
                         label: str = "") -> Context:
    """The course a deep linking request names, found as a launch finds it, or created."""
    values = {"title": title, "label": label} if title or label else {}
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _lti13_row(Context, consumer=consumer, lti13_id=context_id, legacy_id=legacy_context_id,
                                  id_field="context_id", values=values)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def activity_create(*, consumer: Consumer, context: Context | None, title: str) -> Resource:
    """A new activity, made before any LMS link launches it (deep linking's "new activity").
    Its resource_link_id is ours (random, so no LMS link's id can match it) and it has no
    lti13_id until the first link carrying its id in our custom parameter launches it."""
    return Resource.objects.create(consumer=consumer, context=context, title=title[:500],
                                   resource_link_id=AHEAD_LINK_PREFIX + secrets.token_urlsafe(18))
