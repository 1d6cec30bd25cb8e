"""Checking an LTI 1.1 basic launch: everything that can be decided before writing.

`launch_authenticate` returns the consumer and a parsed `LaunchData`, or raises
`LaunchRejected` with a message for the person in the iframe and a list of things an LMS
administrator should check. Writing the launch is `services.launch_record`.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Mapping

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils.translation import gettext
from pylti.common import LTIException, verify_request_common

from lms import selectors
from lms.models import Consumer, LtiVersion, Role
from lms.roles import is_instructor

logger = logging.getLogger(__name__)

MAX_ID_LENGTH = 255
MAX_URL_LENGTH = 1000
_http_url = URLValidator(schemes=["http", "https"])


@dataclass
class LaunchRejected(Exception):
    """A launch we refuse. Nothing has been written when this is raised."""

    status: int
    title: str
    detail: str
    admin_checks: list[str] = field(default_factory=list)
    code: str = "bad_launch"

    def __str__(self):
        return f"{self.code}: {self.title}"


@dataclass(frozen=True)
class LaunchData:
    """What a launch (LTI 1.1, or 1.3 through lti13.launch) says, checked and normalised.
    `nonce` and `timestamp` are 1.1's OAuth ones; a 1.3 launch's replay protection is its
    one-time OIDC state (lti13.services), so its nonce here is ""."""

    nonce: str
    timestamp: int
    resource_link_id: str
    resource_title: str
    resource_description: str
    context_id: str
    context_title: str
    context_label: str
    user_id: str
    full_name: str
    email: str
    roles: str
    role: Role
    lis_result_sourcedid: str
    lis_outcome_service_url: str
    return_url: str
    lti_version: str = LtiVersion.LTI_1P1
    custom: dict = field(default_factory=dict)
    locale: str = ""
    #: The LMS's login name and student-record id for the person, when it sends them.
    username: str = ""
    sourcedid: str = ""
    # LTI 1.3 only: the registration, the grade and roster services the launch offers, and the
    # 1.1 ids of the same person, course and link (the lti1p1 claim) for an LMS that upgraded.
    platform_id: int | None = None
    ags_lineitem_url: str = ""
    ags_lineitems_url: str = ""
    ags_scopes: str = ""
    nrps_url: str = ""
    legacy_user_id: str = ""
    legacy_context_id: str = ""
    legacy_resource_link_id: str = ""


def role_from_lti_roles(roles: str, *, extra_instructor_roles: str = "") -> Role:
    """Map the LTI `roles` parameter to our two roles: only course (context) roles make an
    instructor, plus the consumer's extra roles (see lms.roles for the vocabularies)."""
    return Role.INSTRUCTOR if is_instructor(roles, extra_instructor_roles=extra_instructor_roles) else Role.STUDENT


def _rejected_method(method: str) -> LaunchRejected:
    return LaunchRejected(
        status=405,
        code="method_not_allowed",
        title=gettext("This address only accepts launches from an LMS"),
        detail=gettext(
            "It was opened with %(method)s, but an LTI launch is a signed POST sent by the "
            "learning platform when you click the activity there. Open the activity from "
            "your course page instead."
        ) % {"method": method},
        admin_checks=[gettext("The tool's launch URL is configured as the LTI launch URL, not as a plain web link.")],
    )


def _missing(params: Mapping[str, str], names: list[str]) -> list[str]:
    return [n for n in names if not params.get(n, "").strip()]


def _check_oauth_parameters(params: Mapping[str, str]) -> None:
    for name, value in params.items():
        if "\x00" in value or "\x00" in name:
            raise LaunchRejected(
                status=400,
                code="invalid_parameter",
                title=gettext("The launch contains invalid characters"),
                detail=gettext("The parameter %(name)r contains a NUL character.") % {"name": name[:50]},
            )
    missing = _missing(
        params,
        ["oauth_consumer_key", "oauth_signature", "oauth_signature_method", "oauth_timestamp", "oauth_nonce"],
    )
    if missing:
        raise LaunchRejected(
            status=400,
            code="not_signed",
            title=gettext("This launch is not signed"),
            detail=gettext("The request has no %(names)s, so we cannot tell which LMS sent it.") % {"names": ", ".join(missing)},
            admin_checks=[gettext("The tool is added to the LMS as an LTI 1.1 (OAuth1-signed) tool, with a consumer key and secret.")],
        )
    if params["oauth_signature_method"] != "HMAC-SHA1":
        raise LaunchRejected(
            status=400,
            code="unsupported_signature_method",
            title=gettext("Unsupported signature method"),
            detail=gettext("The launch is signed with %(method)s; only HMAC-SHA1 is accepted.")
            % {"method": params["oauth_signature_method"]},
            admin_checks=[gettext("The LMS signs LTI 1.1 launches with HMAC-SHA1 (the standard method).")],
        )


def _check_consumer(key: str) -> Consumer:
    consumer = selectors.consumer_get_by_key(key=key)
    if consumer is None:
        raise LaunchRejected(
            status=403,
            code="unknown_consumer",
            title=gettext("Unknown consumer key"),
            detail=gettext("The LMS sent a consumer key that this Numbas LTI Provider does not know."),
            admin_checks=[
                gettext("The consumer key in the LMS's tool settings is exactly the one you were given (no spaces)."),
                gettext("The consumer exists on this server (Django admin → Consumers, or manage.py create_lti_consumer)."),
            ],
        )
    if not consumer.active:
        raise LaunchRejected(
            status=403,
            code="inactive_consumer",
            title=gettext("This LMS connection is switched off"),
            detail=gettext("The consumer “%(name)s” exists but is not active, so launches from it are refused.")
            % {"name": consumer.name},
            admin_checks=[gettext("Ask the Numbas LTI Provider's administrator to re-activate the consumer.")],
        )
    return consumer


def _check_timestamp(raw: str, now: float) -> int:
    tolerance = settings.LTI_TIMESTAMP_TOLERANCE_SECONDS
    try:
        timestamp = int(raw)
    except ValueError:
        timestamp = None
    if timestamp is None or abs(now - timestamp) > tolerance:
        raise LaunchRejected(
            status=403,
            code="stale_timestamp",
            title=gettext("This launch has expired"),
            detail=gettext(
                "The launch's timestamp is more than %(minutes)d minutes away from our clock. "
                "Launches are accepted only once and only for a short time; go back to the course and "
                "open the activity again."
            ) % {"minutes": tolerance // 60},
            admin_checks=[gettext("The LMS server's clock is correct (NTP).")],
        )
    return timestamp


def _check_signature(consumer: Consumer, url: str, params: Mapping[str, str], headers: Mapping[str, str]) -> None:
    try:
        verify_request_common({consumer.key: {"secret": consumer.secret}}, url, "POST", dict(headers), dict(params))
    except LTIException:
        raise LaunchRejected(
            status=403,
            code="bad_signature",
            title=gettext("The launch's signature does not match"),
            detail=gettext("The launch was signed with a different secret or for a different address than this one."),
            admin_checks=[
                gettext("The shared secret in the LMS matches the one issued for this consumer key."),
                gettext("The launch URL in the LMS is exactly %(url)s (no extra parameters).") % {"url": url},
                gettext("A proxy in front of this server passes X-Forwarded-Proto (and the server trusts it)."),
            ],
        ) from None


def replayed_launch() -> LaunchRejected:
    return LaunchRejected(
        status=403,
        code="replayed",
        title=gettext("This launch was already used"),
        detail=gettext(
            "Each launch from the LMS can be used once. This one has been used before — perhaps the "
            "page was reloaded or opened twice. Go back to the course and open the activity again."
        ),
        admin_checks=[gettext("The LMS sends a fresh oauth_nonce with every launch.")],
    )


def _check_message(params: Mapping[str, str]) -> None:
    message_type = params.get("lti_message_type", "")
    version = params.get("lti_version", "")
    missing = _missing(params, ["lti_message_type", "lti_version", "resource_link_id"])
    if missing:
        raise LaunchRejected(
            status=400,
            code="missing_parameter",
            title=gettext("The launch is missing required information"),
            detail=gettext("The LMS did not send %(names)s.") % {"names": ", ".join(missing)},
            admin_checks=[gettext("The tool is configured as an LTI 1.1 basic launch (resource link).")],
        )
    if message_type != "basic-lti-launch-request":
        raise LaunchRejected(
            status=400,
            code="unsupported_message_type",
            title=gettext("Unsupported kind of launch"),
            detail=gettext("The LMS sent a “%(type)s” message; this tool accepts basic-lti-launch-request.")
            % {"type": message_type},
            admin_checks=[gettext("The activity is added as an external tool link, not as a content-item or registration request.")],
        )
    if version not in ("LTI-1p0", "LTI-1p1", "LTI-1p2"):
        raise LaunchRejected(
            status=400,
            code="unsupported_version",
            title=gettext("Unsupported LTI version"),
            detail=gettext("The launch says lti_version “%(version)s”; this address accepts LTI 1.1 (LTI-1p0).")
            % {"version": version},
            admin_checks=[gettext("The tool is registered as LTI 1.1 with a consumer key and secret.")],
        )
    if _missing(params, ["user_id"]):
        raise LaunchRejected(
            status=400,
            code="missing_user_id",
            title=gettext("The LMS did not say who you are"),
            detail=gettext(
                "The launch has no user_id. Numbas records each student's answers and reports their grade, "
                "so it needs to know who is launching it; anonymous launches are not supported."
            ),
            admin_checks=[
                gettext("The tool's privacy settings share the launcher's identity (Moodle: “Share launcher's "
                        "name/e-mail”; Canvas: privacy level “public” or “name_only”)."),
            ],
        )
    for name in ("resource_link_id", "user_id", "context_id", "oauth_nonce"):
        if len(params.get(name, "")) > MAX_ID_LENGTH:
            raise LaunchRejected(
                status=400,
                code="invalid_parameter",
                title=gettext("The launch contains an identifier that is too long"),
                detail=gettext("%(name)s is longer than %(max)d characters.") % {"name": name, "max": MAX_ID_LENGTH},
            )


def _valid_url_or_blank(value: str, name: str) -> str:
    value = value.strip()
    if not value:
        return ""
    try:
        if len(value) > MAX_URL_LENGTH:
            raise ValidationError("too long")
        _http_url(value)
    except ValidationError:
        logger.warning("Ignoring invalid %s in a launch (length %d)", name, len(value))
        return ""
    return value


def _valid_email_or_blank(value: str) -> str:
    value = value.strip()
    try:
        validate_email(value)
    except ValidationError:
        return ""
    return value if len(value) <= 254 else ""


MAX_CUSTOM_PARAMETERS = 50
#: The custom parameter of a deep-linked resource link (LTI 1.3) naming the activity (Resource id)
#: it opens: a link added for an existing activity, or for a new one made ahead of its first
#: launch. Instructors can edit custom parameters in the LMS, so it is only followed to an
#: activity of the same LMS and course (lms.services).
ACTIVITY_CUSTOM_PARAMETER = "numbas_activity"
_LOCALE = re.compile(r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$")


def custom_parameters(values: Mapping) -> dict[str, str]:
    """A launch's custom parameters as kept on the membership: at most 50, names and values
    cut to a sensible length, values as text (1.3 sends JSON; LMSs send strings)."""
    kept = {}
    for name, value in list(values.items())[:MAX_CUSTOM_PARAMETERS]:
        if isinstance(value, (dict, list)):
            continue
        kept[str(name)[:100]] = ("" if value is None else str(value))[:1000]
    return kept


#: Where LMSs put the person's login name in a 1.1 launch, in order of preference: the custom
#: parameter an administrator can set anywhere, Moodle (and Blackboard), Brightspace, Canvas, Sakai.
USERNAME_PARAMETERS_1P1 = ("custom_username", "ext_user_username", "ext_d2l_username",
                           "custom_canvas_user_login_id", "ext_sakai_eid")


def username_1p1(params: Mapping[str, str]) -> str:
    """The person's LMS login name from a 1.1 launch, or ""."""
    for name in USERNAME_PARAMETERS_1P1:
        value = str(params.get(name, "") or "").strip()
        if value and not value.startswith("$"):  # an unsubstituted variable like $User.username
            return value[:255]
    return ""


def valid_locale(value: str) -> str:
    value = (value or "").strip()
    return value[:35] if _LOCALE.match(value) else ""


def _parse(params: Mapping[str, str], timestamp: int, consumer: Consumer) -> LaunchData:
    def text(name: str, limit: int) -> str:
        return params.get(name, "").strip()[:limit]

    full_name = text("lis_person_name_full", 500) or " ".join(
        p for p in (text("lis_person_name_given", 200), text("lis_person_name_family", 200)) if p
    )
    roles = params.get("roles", "")
    return LaunchData(
        nonce=params["oauth_nonce"],
        timestamp=timestamp,
        resource_link_id=params["resource_link_id"],
        resource_title=text("resource_link_title", 500),
        resource_description=text("resource_link_description", 5000),
        context_id=params.get("context_id", ""),
        context_title=text("context_title", 500),
        context_label=text("context_label", 255),
        user_id=params["user_id"],
        full_name=full_name,
        email=_valid_email_or_blank(params.get("lis_person_contact_email_primary", "")),
        roles=roles[:5000],
        role=role_from_lti_roles(roles, extra_instructor_roles=consumer.instructor_roles),
        lis_result_sourcedid=params.get("lis_result_sourcedid", "")[:5000],
        lis_outcome_service_url=_valid_url_or_blank(params.get("lis_outcome_service_url", ""), "lis_outcome_service_url"),
        return_url=_valid_url_or_blank(params.get("launch_presentation_return_url", ""), "launch_presentation_return_url"),
        custom=custom_parameters({k.removeprefix("custom_"): v for k, v in params.items() if k.startswith("custom_")}),
        locale=valid_locale(params.get("launch_presentation_locale", "")),
        username=username_1p1(params),
        sourcedid=text("lis_person_sourcedid", 255),
    )


def launch_authenticate(
    *, method: str, url: str, params: Mapping[str, str], headers: Mapping[str, str], now: float | None = None
) -> tuple[Consumer, LaunchData]:
    """Check a launch request (method, consumer, timestamp, signature, parameters) without
    writing anything. The nonce is checked when it is recorded, in services.launch_record."""
    if method != "POST":
        raise _rejected_method(method)
    now = time.time() if now is None else now
    _check_oauth_parameters(params)
    consumer = _check_consumer(params["oauth_consumer_key"])
    timestamp = _check_timestamp(params["oauth_timestamp"], now)
    _check_signature(consumer, url, params, headers)
    _check_message(params)
    return consumer, _parse(params, timestamp, consumer)
