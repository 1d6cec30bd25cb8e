"""Writes for LTI 1.3: registrations (by hand, or dynamic through `lti13.registration`, and the
one-time registration links), OIDC login states, accepted launches (which become the same `lms`
rows as an LTI 1.1 launch, through `lms.services.launch_record`), courses' member lists read
from the LMS (Names and Role Provisioning), and access changes for the students on them."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext

from attempts.models import AccessChange
from attempts.services import AccessChangeInvalid, access_change_set
from lms import selectors as lms_selectors
from lms import services as lms_services
from lms.launch import LaunchData, LaunchRejected
from lms.models import Consumer, Context, LaunchLog, LtiIdentity, Resource
from lms.roles import is_instructor
from lti13 import nrps, registration
from lti13.deep_linking import DeepLinkingAsk
from lti13.launch import LoginStart
from lti13.models import (DeepLinkingRequest, Deployment, LoginState, Platform, RegistrationLink, Roster,
                          RosterMember, RosterStatus)
from lti13.registration import LINK_TOKEN_BYTES, RegisteredClient, link_token_hash
from lti13.setup import ToolEndpoints

logger = logging.getLogger(__name__)

LOGIN_STATE_LIFETIME = timedelta(minutes=10)
#: How long an instructor has to choose in the deep linking picker.
DEEP_LINKING_LIFETIME = timedelta(minutes=30)


# --- registrations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformValues:
    name: str
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str = ""
    auth_audience: str = ""
    keyset_url: str = ""
    keyset: dict | None = None


def _consumer_for(*, issuer: str, name: str, consumer_key: str | None) -> Consumer:
    """The LMS a new registration belongs to: the LTI 1.1 consumer named (an LMS that already
    launches us with 1.1), else the consumer of another registration of the same issuer, else a
    new 1.3-only consumer."""
    if consumer_key:
        consumer = Consumer.objects.filter(key=consumer_key).first()
        if consumer is None:
            raise ValueError(gettext("There is no LTI 1.1 consumer with the key %(key)s.") % {"key": consumer_key})
        return consumer
    sibling = Platform.objects.filter(issuer=issuer).select_related("consumer").first()
    if sibling is not None:
        return sibling.consumer
    return Consumer.objects.create(name=name, key=None, secret="")


@transaction.atomic
def platform_create_or_update(*, values: PlatformValues, deployment_ids: Iterable[str] = (),
                              consumer_key: str | None = None) -> tuple[Platform, bool]:
    """Register a platform (issuer + client id), or update the one registered (what `values`
    leaves empty is kept; a new platform without a name is named after its issuer); add
    deployment ids. Returns (platform, created). Raises ValueError with a message for people."""
    platform = Platform.objects.select_for_update().filter(issuer=values.issuer, client_id=values.client_id).first()
    created = platform is None
    if created:
        platform = Platform(issuer=values.issuer, client_id=values.client_id,
                            consumer=_consumer_for(issuer=values.issuer, name=values.name or values.issuer,
                                                   consumer_key=consumer_key))
    elif consumer_key:
        platform.consumer = _consumer_for(issuer=values.issuer, name=values.name, consumer_key=consumer_key)
    for field in ("name", "auth_login_url", "auth_token_url", "auth_audience", "keyset_url", "keyset"):
        value = getattr(values, field)
        if value or created:
            setattr(platform, field, value)
    platform.name = platform.name or values.issuer[:200]
    try:
        platform.full_clean(exclude=["consumer"])
    except ValidationError as error:
        raise ValueError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
    if not platform.keyset_url and not platform.keyset:
        raise ValueError(gettext("Give the platform's public keyset URL (or its keys)."))
    platform.save()
    for deployment_id in deployment_ids:
        deployment_id = deployment_id.strip()
        if deployment_id:
            Deployment.objects.get_or_create(platform=platform, deployment_id=deployment_id[:255])
    return platform, created


# --- dynamic registration ---------------------------------------------------------------------


REGISTRATION_LINK_LIFETIME = timedelta(days=7)


def registration_link_create(*, lifetime: timedelta = REGISTRATION_LINK_LIFETIME, note: str = "",
                             now: datetime | None = None) -> tuple[RegistrationLink, str]:
    """A one-time registration link. Returns (link, token): the token is not stored, only its
    hash, so this is the only time it is seen."""
    if lifetime <= timedelta(0):
        raise ValueError(gettext("A registration link must be valid for some time."))
    now = now or timezone.now()
    token = secrets.token_urlsafe(LINK_TOKEN_BYTES)
    link = RegistrationLink.objects.create(token_hash=link_token_hash(token), note=note[:200], created_at=now,
                                           expires_at=now + lifetime)
    return link, token


@dataclass(frozen=True)
class Registered:
    platform: Platform
    created: bool
    client: RegisteredClient
    asked_scopes: tuple[str, ...]


def platform_register(*, configuration_url: str, registration_token: str, urls: ToolEndpoints,
                      link: RegistrationLink | None = None, by: str = "") -> Registered:
    """Dynamic registration (`lti13.registration`): read the platform's configuration, register
    with it, and record the platform and its deployment. Raises LaunchRejected, having written
    nothing here, when the platform's configuration will not do or the platform refuses.

    With a registration link, the link is used up, once: a second registration through it (even
    one racing this one) is refused and writes nothing. `by` names who confirmed, for the log."""
    if link is not None:
        registration.link_usable_again(link)
    configuration = registration.configuration_fetch(url=configuration_url, registration_token=registration_token)
    metadata = registration.client_metadata(configuration=configuration, urls=urls)
    client = registration.registration_send(configuration=configuration, metadata=metadata,
                                            registration_token=registration_token)
    platform, created = _platform_record(configuration=configuration, client=client, link=link)
    logger.info("LTI 1.3 platform %s (issuer %s, client %s) registered dynamically by %s", platform.pk,
                platform.issuer, platform.client_id, by or "a registration link")
    return Registered(platform=platform, created=created, client=client,
                      asked_scopes=tuple(metadata["scope"].split()))


@transaction.atomic
def _platform_record(*, configuration: registration.PlatformConfiguration, client: RegisteredClient,
                     link: RegistrationLink | None) -> tuple[Platform, bool]:
    if link is not None:
        link = RegistrationLink.objects.select_for_update().filter(pk=link.pk).first()
        if link is None:
            raise registration.link_refused()
        registration.link_usable_again(link)
    try:
        platform, created = platform_create_or_update(
            values=PlatformValues(name=configuration.name, issuer=configuration.issuer, client_id=client.client_id,
                                  auth_login_url=configuration.authorization_endpoint,
                                  auth_token_url=configuration.token_endpoint,
                                  auth_audience=configuration.authorization_server,
                                  keyset_url=configuration.jwks_uri),
            deployment_ids=[client.deployment_id] if client.deployment_id else [])
    except ValueError as error:
        raise LaunchRejected(status=400, code="bad_platform_configuration",
                             title=gettext("The learning platform's configuration is not usable"),
                             detail=str(error)) from None
    if link is not None:
        link.used_at, link.platform = timezone.now(), platform
        link.save(update_fields=["used_at", "platform"])
    return platform, created


# --- logins ---------------------------------------------------------------------------------------


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def login_state_create(*, start: LoginStart) -> str | None:
    """Record a login's state and nonce. Returns the secret to put into the platform's storage
    when the platform offers it (else None)."""
    now = timezone.now()
    secret = secrets.token_urlsafe(32) if start.params.get("lti_storage_target") else None
    LoginState.objects.create(
        state=start.state, nonce=start.nonce, platform=start.platform, created_at=now,
        expires_at=now + LOGIN_STATE_LIFETIME, target_link_uri=start.params["target_link_uri"],
        login_hint=start.params["login_hint"], lti_message_hint=start.params.get("lti_message_hint", ""),
        deployment_id=start.params.get("lti_deployment_id", ""),
        storage_target=start.params.get("lti_storage_target", "")[:100],
        storage_secret_hash=_hash(secret) if secret else "",
    )
    return secret


def state_mismatch() -> LaunchRejected:
    return LaunchRejected(
        status=403, code="state_mismatch", title=gettext("This launch does not belong to this window"),
        detail=gettext("The launch came back with a login state that this tool did not start, that has already "
                       "been used, or that has expired. Go back to the course and open the activity again."),
        admin_checks=[gettext("The platform returns the state and nonce the tool sent it, unchanged.")],
    )


def login_state_check(*, state: str, platform: Platform, nonce: object, now: datetime | None = None) -> LoginState:
    """The unused, unexpired login this launch answers (same platform, same nonce)."""
    now = now or timezone.now()
    login = LoginState.objects.filter(state=state, used_at__isnull=True, expires_at__gt=now).first()
    if login is None or login.platform_id != platform.pk or not isinstance(nonce, str) \
            or not secrets.compare_digest(login.nonce.encode(), nonce.encode()):
        raise state_mismatch()
    return login


def storage_secret_matches(*, login: LoginState, value: str) -> bool:
    return bool(login.storage_secret_hash and value) and secrets.compare_digest(
        login.storage_secret_hash, _hash(value))


def _login_state_use(login: LoginState) -> None:
    """Use the state up, once: a second launch with it (a replay) finds nothing to update."""
    if not LoginState.objects.filter(pk=login.pk, used_at__isnull=True).update(used_at=timezone.now()):
        raise state_mismatch()


@transaction.atomic
def login_state_discard(*, login: LoginState) -> None:
    """The launch cannot continue in this window: its token must not be usable again."""
    _login_state_use(login)


@transaction.atomic
def launch_record(*, login: LoginState, data: LaunchData, legacy_consumer: Consumer | None,
                  user_agent: str = "") -> tuple[LaunchLog, str]:
    """Use up the login state and record the launch as `lms.services.launch_record` does for
    1.1. A launch whose verified lti1p1 claim names an LTI 1.1 consumer continues that consumer's
    people, courses and activities (the 1.1 → 1.3 upgrade)."""
    _login_state_use(login)
    platform = Platform.objects.select_related("consumer").get(pk=login.platform_id)
    if legacy_consumer is not None and legacy_consumer.pk != platform.consumer_id:
        platform = _platform_move_to(platform=platform, consumer=legacy_consumer)
    log, token = lms_services.launch_record(consumer=platform.consumer, launch=data, user_agent=user_agent)
    roster_members_link(consumer_id=platform.consumer_id, sub=data.user_id)
    context_id = log.membership.resource.context_id
    if data.nrps_url and context_id is not None:
        transaction.on_commit(lambda: _roster_sync_later(context_id))
    return log, token


def _platform_move_to(*, platform: Platform, consumer: Consumer) -> Platform:
    """Point a registration (and its issuer's others) at the 1.1 consumer the LMS proved it is,
    when the registration's own consumer has no people yet; otherwise keep it where it is."""
    if LtiIdentity.objects.filter(consumer_id=platform.consumer_id).exists():
        return platform
    Platform.objects.filter(issuer=platform.issuer, consumer_id=platform.consumer_id).update(consumer=consumer)
    platform.consumer = consumer
    return platform


def login_states_purge(*, now: datetime | None = None) -> int:
    deleted, _ = LoginState.objects.filter(expires_at__lt=(now or timezone.now()) - timedelta(hours=1)).delete()
    return deleted


# --- course member lists (Names and Role Provisioning) ------------------------------------------

#: A launch with the NRPS claim has the list read again once it is this old.
ROSTER_MAX_AGE = timedelta(hours=1)
#: At most one read of a course's list is queued (by launches) per this many seconds.
ROSTER_QUEUE_SECONDS = 300


@dataclass(frozen=True)
class RosterSyncResult:
    """What a sync did. `error` (for the instructor) is empty when the list was read."""

    error: str = ""
    code: str = ""  # nrps.RosterUnavailable's code, "fresh", "busy" or "no_service"; "" when read
    members: int = 0  # how many the course list now has
    added: int = 0  # listed now, not before
    kept: int = 0  # listed before and now (their names, roles and status brought up to date)
    removed: int = 0  # listed before, not now
    complete: bool = True  # False: the LMS listed more than was read; members not seen were kept

    @property
    def ok(self) -> bool:
        return not self.error


def _roster_lock_key(context_id: int) -> str:
    return f"lti13:roster-sync:{context_id}"


def roster_sync(*, context: Context, limits: nrps.Limits = nrps.BACKGROUND,
                max_age: timedelta | None = None) -> RosterSyncResult:
    """Read the course's members from the LMS (the memberships URL its latest 1.3 launch gave)
    and replace the stored list with them, in one transaction. With `max_age`, a list read more
    recently than that is left alone. Never raises for LMS or network trouble: the result's
    `error` says, for the instructor, what went wrong, and the stored list is kept as it was."""
    if not context.nrps_url or context.nrps_platform_id is None:
        return RosterSyncResult(code="no_service", error=gettext(
            "The LMS has not offered this course's list to this tool. It does so in an LTI 1.3 launch, when the "
            "tool's registration in the LMS allows Names and Role Provisioning."))
    if max_age is not None and not _roster_is_stale(context_id=context.pk, max_age=max_age):
        return RosterSyncResult(code="fresh")
    lock = _roster_lock_key(context.pk)
    if not _cache_add(lock, int(limits.seconds) + 30):
        return RosterSyncResult(code="busy", error=gettext(
            "The course list is being read from the LMS already. Reload this page in a moment."))
    try:
        platform = Platform.objects.get(pk=context.nrps_platform_id)
        try:
            fetched = nrps.members_fetch(platform=platform, url=context.nrps_url, limits=limits)
        except nrps.RosterUnavailable as unavailable:
            _roster_failed(context=context, message=unavailable.message)
            return RosterSyncResult(code=unavailable.code, error=unavailable.message)
        return _roster_store(context=context, platform=platform, fetched=fetched)
    finally:
        _cache_delete(lock)


def _cache_add(key: str, seconds: int) -> bool:
    """cache.add, or True when the cache cannot be reached (a sync may then run twice at once)."""
    try:
        return cache.add(key, 1, seconds)
    except Exception:  # noqa: BLE001 — Redis down: no lock, not an error
        logger.warning("The cache did not answer; reading a course list without a lock", exc_info=True)
        return True


def _cache_delete(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:  # noqa: BLE001
        pass


def _roster_is_stale(*, context_id: int, max_age: timedelta) -> bool:
    from lti13.selectors import roster_is_stale

    return roster_is_stale(context_id=context_id, max_age=max_age)


def _roster_row_locked(*, context: Context) -> Roster:
    Roster.objects.bulk_create([Roster(context=context)], ignore_conflicts=True)
    return Roster.objects.select_for_update().get(context=context)


@transaction.atomic
def _roster_failed(*, context: Context, message: str) -> None:
    roster = _roster_row_locked(context=context)
    roster.tried_at, roster.last_error = timezone.now(), message
    roster.save(update_fields=["tried_at", "last_error"])


@transaction.atomic
def _roster_store(*, context: Context, platform: Platform, fetched: nrps.Fetched) -> RosterSyncResult:
    roster = _roster_row_locked(context=context)  # one sync of a course at a time
    now = timezone.now()
    members = RosterMember.objects.filter(context=context)
    before = set(members.values_list("user_id", flat=True))
    extra_roles = Consumer.objects.filter(pk=context.consumer_id).values_list("instructor_roles", flat=True).get()
    fields = ["legacy_user_id", "name", "given_name", "family_name", "email", "roles", "status", "is_instructor",
              "fetched_at"]
    RosterMember.objects.bulk_create(
        [RosterMember(context=context, user_id=m.user_id, legacy_user_id=m.legacy_user_id, name=m.name,
                      given_name=m.given_name, family_name=m.family_name, email=m.email, roles=",".join(m.roles),
                      status=m.status, is_instructor=is_instructor(",".join(m.roles),
                                                                   extra_instructor_roles=extra_roles),
                      fetched_at=now)
         for m in fetched.members],
        update_conflicts=True, unique_fields=["context", "user_id"], update_fields=fields, batch_size=1000,
    )
    removed = 0
    if fetched.complete:  # those the LMS no longer lists; after a cut-short read, nobody is dropped
        removed, _ = members.exclude(fetched_at=now).delete()
    _roster_identities_link(context=context)
    seen = {m.user_id for m in fetched.members}
    roster.platform, roster.source_url, roster.fetched_at, roster.tried_at = platform, context.nrps_url, now, now
    roster.member_count = members.count()
    roster.complete, roster.last_error = fetched.complete, ""
    roster.save(update_fields=["platform", "source_url", "fetched_at", "tried_at", "member_count", "complete",
                               "last_error"])
    logger.info("Course list of context %s: %d members (%d new, %d gone)%s", context.pk, roster.member_count,
                len(seen - before), removed, "" if fetched.complete else " — cut short")
    return RosterSyncResult(members=roster.member_count, added=len(seen - before), kept=len(seen & before),
                            removed=removed, complete=fetched.complete)


def _roster_identities_link(*, context: Context) -> None:
    """Point each member at the person who has launched us, if they have: the identity with
    their `sub`, else a 1.1 identity (no `sub` yet) with their user id or 1.1 user id."""
    identities = LtiIdentity.objects.filter(consumer_id=context.consumer_id)
    members = RosterMember.objects.filter(context=context)
    members.update(identity=Subquery(identities.filter(sub=OuterRef("user_id")).values("pk")[:1]))
    members.filter(identity__isnull=True).update(identity=Subquery(
        identities.filter(Q(lti_user_id=OuterRef("user_id")) | Q(lti_user_id=OuterRef("legacy_user_id")),
                          sub__isnull=True).order_by("pk").values("pk")[:1]))


def roster_members_link(*, consumer_id: int, sub: str) -> int:
    """A person launched with LTI 1.3: link them to their rows in the course lists of their
    LMS that do not know them yet (one statement). Returns how many rows it linked."""
    identity = LtiIdentity.objects.filter(consumer_id=consumer_id, sub=sub).values("pk")[:1]
    return RosterMember.objects.filter(user_id=sub, context__consumer_id=consumer_id, identity__isnull=True).update(
        identity_id=Subquery(identity))


@transaction.atomic
def roster_member_access_change_set(*, resource: Resource, member_id: int, changed_by: AbstractBaseUser | None,
                                    reason: str = "", **terms) -> AccessChange | None:
    """An access change for a student on the course list of the resource's course, whether or
    not they have launched: the person is provisioned from the list ahead of their first launch
    (`lms.services.identity_provision`) and linked to their row, and the change is set for them
    (`attempts.services.access_change_set`), so that it applies when they come. No membership
    of the resource is made: that is their launch's. All or nothing: a change refused leaves no
    one provisioned; no change for someone not provisioned yet provisions no one."""
    member = (RosterMember.objects.select_for_update().select_related("context__consumer")
              .filter(pk=member_id, context_id=resource.context_id, is_instructor=False)
              .exclude(status=RosterStatus.DELETED).first())
    if member is None:
        raise AccessChangeInvalid(gettext("This person is not a student on the course list of this activity."))
    if member.identity_id is None and not any(terms.values()):
        return None
    name = member.name or " ".join(filter(None, (member.given_name, member.family_name)))
    identity = lms_services.identity_provision(consumer=member.context.consumer, sub=member.user_id,
                                               legacy_user_id=member.legacy_user_id, full_name=name,
                                               email=member.email)
    if member.identity_id != identity.pk:
        member.identity = identity
        member.save(update_fields=["identity"])
    return access_change_set(resource_id=resource.pk, user_id=identity.user_id, changed_by=changed_by,
                             reason=reason, **terms)


def _roster_sync_later(context_id: int) -> None:
    """After a launch that carries the NRPS claim: queue a read of the course's list if it is
    older than ROSTER_MAX_AGE and none is queued already. Never an error for the launch."""
    from lti13 import tasks
    from lti13.selectors import roster_is_stale

    try:
        if roster_is_stale(context_id=context_id, max_age=ROSTER_MAX_AGE) \
                and cache.add(f"lti13:roster-queued:{context_id}", 1, ROSTER_QUEUE_SECONDS):
            tasks.roster_sync(context_id)
    except Exception:
        logger.warning("Could not queue a read of the course list of context %s", context_id, exc_info=True)


# --- deep linking ---------------------------------------------------------------------------------


@transaction.atomic
def deep_linking_request_record(*, login: LoginState, ask: DeepLinkingAsk, deployment_id: str,
                                legacy_consumer: Consumer | None,
                                now: datetime | None = None) -> tuple[DeepLinkingRequest, str]:
    """Use up the login state and keep a checked deep linking request for the picker. Returns it and the picker's one-time token (only its hash is kept)."""
    from lti13.selectors import token_hash

    _login_state_use(login)
    platform = Platform.objects.select_related("consumer").get(pk=login.platform_id)
    if legacy_consumer is not None and legacy_consumer.pk != platform.consumer_id:
        platform = _platform_move_to(platform=platform, consumer=legacy_consumer)
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)
    ask = DeepLinkingRequest.objects.create(
        token_hash=token_hash(token), platform=platform, consumer=platform.consumer, deployment_id=deployment_id,
        sub=ask.sub, name=ask.name, roles=ask.roles, context_lti13_id=ask.context_id,
        context_legacy_id=ask.legacy_context_id, context_title=ask.context_title, context_label=ask.context_label,
        settings=ask.settings, return_url=ask.return_url, created_at=now, expires_at=now + DEEP_LINKING_LIFETIME)
    return ask, token


def deep_linking_token_refused() -> LaunchRejected:
    return LaunchRejected(
        status=403, code="deep_linking_token", title=gettext("This choice cannot be sent any more"),
        detail=gettext("The page you chose on has expired or has already sent its choice to the learning platform. "
                       "Start adding the activity again from your course."))


def deep_linking_activity_refused() -> LaunchRejected:
    return LaunchRejected(
        status=403, code="deep_linking_activity", title=gettext("This activity cannot be linked here"),
        detail=gettext("The activity you chose is not an activity of this course."))


@transaction.atomic
def deep_linking_complete(*, ask: DeepLinkingRequest, resource_id: int | None, title: str,
                          now: datetime | None = None) -> Resource:
    """Answer a deep linking request, once: make the new activity (`resource_id` None) in the
    request's course, or check that the chosen one is the course's. Raises LaunchRejected when
    the request was answered meanwhile or the activity is not the course's (nothing written)."""
    now = now or timezone.now()
    if not DeepLinkingRequest.objects.filter(pk=ask.pk, used_at__isnull=True, expires_at__gt=now) \
            .update(used_at=now):
        raise deep_linking_token_refused()
    if resource_id is None:
        context = lms_services.lti13_context_record(
            consumer=ask.consumer, context_id=ask.context_lti13_id, legacy_context_id=ask.context_legacy_id,
            title=ask.context_title, label=ask.context_label) if ask.context_lti13_id else None
        resource = lms_services.activity_create(consumer=ask.consumer, context=context, title=title)
    else:
        context = lms_selectors.lti13_context_find(consumer=ask.consumer, context_id=ask.context_lti13_id,
                                                   legacy_context_id=ask.context_legacy_id)
        resource = lms_selectors.course_activity_get(consumer=ask.consumer, context=context, resource_id=resource_id) \
            if context is not None else None
        if resource is None:
            raise deep_linking_activity_refused()  # and the token stays usable (the transaction rolls back)
    DeepLinkingRequest.objects.filter(pk=ask.pk).update(resource=resource)
    return resource


def deep_linking_requests_purge(*, now: datetime | None = None) -> int:
    deleted, _ = DeepLinkingRequest.objects.filter(
        expires_at__lt=(now or timezone.now()) - timedelta(days=1)).delete()
    return deleted
