"""Reading a course's members from its LMS: LTI Names and Role Provisioning Services 2.0.

A 1.3 launch that carries the NRPS claim tells us where the course's membership container is
(`lms.Context.nrps_url`). pylti1p3's `NamesRolesProvisioningService` asks for it, page after
page (`Link: <...>; rel="next"`), with an access token for the NRPS scope that the connector
gets from the platform's token endpoint (a JWT client assertion signed with the tool's key).

A read is bounded — at most `Limits.pages` pages, `Limits.members` members and
`Limits.seconds` seconds in all — and every request goes through `core.outbound` (no private
addresses, no redirects, bounded answers). A read cut short by the bounds is returned as
incomplete; anything that stops it otherwise is a `RosterUnavailable` whose message says, for
the instructor, what went wrong. Nothing here writes: `lti13.services.roster_sync` does.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import requests
from django.utils.translation import gettext
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.names_roles import NamesRolesProvisioningService

from core import outbound
from grading.ags import CachingConnector, KeyUnusable, NotAnAgsAnswer, TokenRequestFailed
from lms.launch import MAX_ID_LENGTH, _valid_email_or_blank
from lti13.launch import registration_for
from lti13.models import Platform, RosterStatus

logger = logging.getLogger(__name__)

SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
#: Seconds one request (the token, a page) may take, within the read's whole time.
REQUEST_TIMEOUT = 20.0


@dataclass(frozen=True)
class Limits:
    pages: int = 100
    members: int = 20_000
    seconds: float = 60.0


#: For a background sync; an instructor waiting for the page gets `INTERACTIVE`.
BACKGROUND = Limits()
INTERACTIVE = Limits(seconds=25.0)


@dataclass(frozen=True)
class Member:
    user_id: str
    legacy_user_id: str = ""
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    email: str = ""
    roles: tuple[str, ...] = ()
    status: str = RosterStatus.ACTIVE


class Stop:
    """Why a read ended before the LMS's last page (`Fetched.stopped`)."""

    PAGES = "pages"
    MEMBERS = "members"
    TIME = "time"


@dataclass(frozen=True)
class Fetched:
    members: list[Member]
    pages: int
    stopped: str = ""  # a `Stop` value when the bounds cut the read short, else ""
    skipped: int = 0  # entries that were not a member we can keep (no user_id, say)

    @property
    def complete(self) -> bool:
        return not self.stopped


class RosterUnavailable(Exception):
    """The course list could not be read. `message` is for the instructor; `code` for logs and tests."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


# --- members as the LMS lists them ----------------------------------------------------------------


def _text(value, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def member_from(entry) -> Member | None:
    """A member of the container, or None for an entry we cannot keep (no usable user_id)."""
    if not isinstance(entry, dict):
        return None
    user_id = entry.get("user_id")
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_ID_LENGTH:
        return None
    roles = entry.get("roles")
    roles = tuple(r.strip()[:255] for r in roles if isinstance(r, str) and r.strip()) if isinstance(roles, list) else ()
    status = entry.get("status")
    legacy = entry.get("lti11_legacy_user_id")
    return Member(
        user_id=user_id,
        legacy_user_id=legacy if isinstance(legacy, str) and len(legacy) <= MAX_ID_LENGTH else "",
        name=_text(entry.get("name"), 500),
        given_name=_text(entry.get("given_name"), 200),
        family_name=_text(entry.get("family_name"), 200),
        email=_valid_email_or_blank(_text(entry.get("email"), 254)),
        roles=roles[:50],
        status=status if status in RosterStatus.values else RosterStatus.ACTIVE,
    )


# --- the read ---------------------------------------------------------------------------------------


def _connector(platform: Platform, *, deadline: float) -> CachingConnector:
    """The AGS sender's connector (access tokens cached in Django's cache for every process,
    a new token once after a 401, `Link: rel="next"` read without lowercasing it, every request
    through `core.outbound.session()` within the deadline), for this registration."""
    return CachingConnector(registration_for(platform), outbound.session(), timeout=REQUEST_TIMEOUT,
                            deadline=deadline)


def members_fetch(*, platform: Platform, url: str, limits: Limits = BACKGROUND) -> Fetched:
    """Every member the LMS lists at `url` (the context's memberships URL), within `limits`.
    Raises RosterUnavailable."""
    if not platform.active:
        raise RosterUnavailable("platform_inactive", gettext(
            "The LMS's registration on this tool (%(name)s) is switched off, so its course list is not read.")
            % {"name": platform.name})
    if not platform.auth_token_url:
        raise RosterUnavailable("no_token_url", gettext(
            "This tool does not know the LMS's access token URL, so it cannot ask for the course list. The "
            "operator adds it to the LMS's registration (%(name)s).") % {"name": platform.name})
    started = time.monotonic()
    deadline = started + limits.seconds
    connector = _connector(platform, deadline=deadline)
    service = NamesRolesProvisioningService(connector, {"context_memberships_url": url})
    try:
        connector.get_access_token([SCOPE])  # first, so that a refusal is told as the token's
    except Exception as error:  # noqa: BLE001 — judged below, never a 500
        raise _unavailable(error, step="token", platform=platform) from None
    found: dict[str, Member] = {}
    pages, skipped, stopped = 0, 0, ""
    next_url: str | None = url
    while next_url:
        if pages >= limits.pages:
            stopped = Stop.PAGES
            break
        if time.monotonic() >= deadline:
            stopped = Stop.TIME
            break
        try:
            data = service.get_nrps_data(members_url=next_url)
        except requests.exceptions.Timeout as error:
            if pages and time.monotonic() >= deadline - 0.5:
                stopped = Stop.TIME
                break
            raise _unavailable(error, step="token" if connector.in_token_request else "members",
                               platform=platform) from None
        except Exception as error:  # noqa: BLE001
            raise _unavailable(error, step="token" if connector.in_token_request else "members",
                               platform=platform) from None
        body = data.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            raise RosterUnavailable("not_a_membership_container", gettext(
                "The LMS's course list address answered, but not with a list of members (page %(page)d).")
                % {"page": pages + 1})
        pages += 1
        for entry in body["members"]:
            member = member_from(entry)
            if member is None:
                skipped += 1
            elif member.user_id in found or len(found) < limits.members:
                found[member.user_id] = member  # listed twice (pages shifted while we read): the later wins
            else:
                stopped = Stop.MEMBERS
        if stopped:
            break
        next_url = data.get("next_page_url")
    logger.info("Read %d members in %d pages from %s in %.1f s%s", len(found), pages, url,
                time.monotonic() - started, f" (stopped: {stopped})" if stopped else "")
    return Fetched(members=list(found.values()), pages=pages, stopped=stopped, skipped=skipped)


# --- what went wrong, for the instructor --------------------------------------------------------


def _lms_said(response: requests.Response | None) -> str:
    from grading.passback import excerpt

    if response is None or not response.content:
        return ""
    try:
        value = json.loads(response.content)
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("error"), str):  # OAuth 2: the code first
        description = value.get("error_description")
        said = excerpt(value["error"] + (f": {description}" if isinstance(description, str) else ""))
    else:
        said = excerpt(response.content)
    return " " + gettext("The LMS answered: “%(excerpt)s”") % {"excerpt": said} if said else ""


def _refusal_message(refused: outbound.DestinationRefused, *, step: str) -> str:
    from grading.passback import excerpt

    which = gettext("access token URL") if step == "token" else gettext("course list address")
    if refused.reason in outbound.Refusal.ADDRESS_KINDS:
        return gettext(
            "The LMS's %(which)s (%(host)s) points to %(kind)s, %(address)s, so this tool does not call it. If the "
            "LMS really is on that network, the operator can allow it with OUTBOUND_ALLOWED_NETWORKS."
        ) % {"which": which, "host": excerpt(refused.host, limit=100),
             "kind": outbound.ADDRESS_KIND_NAMES[refused.reason], "address": refused.address}
    return gettext("The LMS's %(which)s is not an http or https address this tool calls.") % {"which": which}


def _unavailable(error: Exception, *, step: str, platform: Platform) -> RosterUnavailable:
    logger.warning("Could not read a course list from %s (%s): %s", platform.issuer, step, type(error).__name__)
    if isinstance(error, outbound.DestinationRefused):
        return RosterUnavailable("refused_destination", _refusal_message(error, step=step))
    if isinstance(error, requests.exceptions.Timeout):
        return RosterUnavailable("timeout", gettext(
            "The LMS did not answer in time, so the course list could not be read. Try again later."))
    if isinstance(error, requests.exceptions.ConnectionError):
        return RosterUnavailable("unreachable", gettext(
            "The LMS could not be reached, so the course list could not be read. Try again later."))
    if isinstance(error, KeyUnusable):
        return RosterUnavailable("key_unusable", gettext(
            "This tool's signing key cannot sign its access token request. The operator rotates the tool's key "
            "(manage.py lti13_rotate_key)."))
    if isinstance(error, NotAnAgsAnswer):
        return RosterUnavailable("bad_answer", gettext(
            "The LMS's course list address answered with a web page, not a list of members: it may be a login or "
            "error page."))
    if isinstance(error, LtiServiceException):
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", 0)
        said = _lms_said(response)
        if step == "token" or isinstance(error, TokenRequestFailed):
            return RosterUnavailable("token_refused", gettext(
                "The LMS refused this tool an access token for its course lists (HTTP %(status)s). In the LMS, "
                "the tool's registration must allow Names and Role Provisioning (the course's members), and its "
                "public keyset URL must be this tool's.") % {"status": status} + said)
        if status in (401, 403):
            return RosterUnavailable("members_refused", gettext(
                "The LMS refused to list this course's members (HTTP %(status)s): the tool may not be allowed to "
                "see them in this course.") % {"status": status} + said)
        if status == 404:
            return RosterUnavailable("members_not_found", gettext(
                "The LMS does not know this course's list any more (HTTP 404). Opening the activity from the "
                "course again gives the tool its current address."))
        return RosterUnavailable("members_failed", gettext(
            "The LMS could not list this course's members (HTTP %(status)s). Try again later.")
            % {"status": status} + said)
    if isinstance(error, (ValueError, LtiException, requests.exceptions.RequestException)):
        return RosterUnavailable("bad_answer", gettext(
            "The LMS's answer could not be read, so the course list could not be read."))
    logger.exception("Unexpected error reading a course list", exc_info=error)
    return RosterUnavailable("failed", gettext("The course list could not be read (%(error)s).")
                             % {"error": type(error).__name__})
