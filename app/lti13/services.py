"""Writes for LTI 1.3: registrations, OIDC login states, and accepted launches (which become
the same `lms` rows as an LTI 1.1 launch, through `lms.services.launch_record`)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from lms import selectors as lms_selectors
from lms import services as lms_services
from lms.launch import LaunchData, LaunchRejected
from lms.models import Consumer, LaunchLog, LtiIdentity, Resource
from lti13.deep_linking import DeepLinkingAsk
from lti13.launch import LoginStart
from lti13.models import DeepLinkingRequest, Deployment, LoginState, Platform

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
    """Register a platform (issuer + client id), or update the one registered; add deployment
    ids. Returns (platform, created). Raises ValueError with a message for people."""
    platform = Platform.objects.select_for_update().filter(issuer=values.issuer, client_id=values.client_id).first()
    created = platform is None
    if created:
        platform = Platform(issuer=values.issuer, client_id=values.client_id,
                            consumer=_consumer_for(issuer=values.issuer, name=values.name, consumer_key=consumer_key))
    elif consumer_key:
        platform.consumer = _consumer_for(issuer=values.issuer, name=values.name, consumer_key=consumer_key)
    for field in ("name", "auth_login_url", "auth_token_url", "auth_audience", "keyset_url", "keyset"):
        value = getattr(values, field)
        if value or created:
            setattr(platform, field, value)
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
    return lms_services.launch_record(consumer=platform.consumer, launch=data, user_agent=user_agent)


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
