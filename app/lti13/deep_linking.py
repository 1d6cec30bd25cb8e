"""LTI Deep Linking 2.0: an instructor adding the tool in the LMS chooses the activity the new
link opens — a new activity, which they name, or an existing one of the course — and the tool
answers with one signed `ltiResourceLink` content item.

The flow, after `lti13.launch.launch_check` has verified the LtiDeepLinkingRequest id_token
(signature, registration, deployment, pylti1p3's DeepLinkMessageValidator):

1. `request_check` — only an instructor of the course may choose (the consumer's instructor
   roles count); the settings' return URL must be a web address. Nothing is written before.
2. the login state is bound to this browser and used up, as for a resource link launch
   (`lti13.views`), and `services.deep_linking_request_record` keeps the checked request under a
   random one-time token: the picker page posts the token back, so it works in an LMS iframe
   without cookies, and nobody is logged in (the request names no activity to be a member of).
3. the picker: "New activity" (a title) or an activity of the course (`selectors`).
4. `services.deep_linking_complete` uses the token up and makes the new activity, or checks the
   chosen one is the course's; `response_jwt` signs the answer with the tool's current key
   (pylti1p3's `DeepLink`); the page auto-posts it as `JWT` to the platform's return URL.

The content item carries our custom parameter `lms.launch.ACTIVITY_CUSTOM_PARAMETER` (the
activity's id); the link's launches then open that activity (`lms.services`), so several links
may open one activity, with one set of attempts and grades.

Its line item's `scoreMaximum` is the activity's exam's total marks when the exam says them all
(`exams.selectors.exam_total_marks`), else 100 — a new activity has no exam yet, and a grade is
a fraction of the maximum anyway: AGS scores carry their own scoreMaximum, which platforms
scale to the line item's.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from lms.launch import ACTIVITY_CUSTOM_PARAMETER, MAX_ID_LENGTH, LaunchRejected, _valid_url_or_blank
from lms.models import Consumer, Resource
from lms.roles import is_instructor
from lti13.launch import CONTEXT, DEEP_LINKING, LTI1P1, ROLES, Lti13Launch, registration_for
from lti13.models import DeepLinkingRequest, Platform

#: The line item's maximum when the activity's exam does not say its total marks.
DEFAULT_SCORE_MAXIMUM = 100
#: The line item's tag: what the tool's line items are for (AGS lets a tool find them by it).
LINE_ITEM_TAG = "numbas-lti"
DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"


@dataclass(frozen=True)
class DeepLinkingAsk:
    """A checked deep linking request: who asks, from which course, and where to answer."""

    sub: str
    name: str
    roles: str
    context_id: str  # "" when the platform named no course
    legacy_context_id: str
    context_title: str
    context_label: str
    return_url: str
    settings: dict


def _text(value, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _refused(status: int, code: str, title: str, detail: str, *checks: str) -> LaunchRejected:
    return LaunchRejected(status=status, code=code, title=title, detail=detail, admin_checks=list(checks))


def request_check(checked: Lti13Launch, *, legacy_consumer: Consumer | None) -> DeepLinkingAsk:
    """Who may choose, and where the answer goes. Raises LaunchRejected (nothing written).
    `legacy_consumer`: the LTI 1.1 consumer a verified lti1p1 claim names (its course id counts)."""
    claims = checked.claims
    roles = claims.get(ROLES) if isinstance(claims.get(ROLES), list) else []
    roles_text = ",".join(r for r in roles if isinstance(r, str))[:5000]
    if not is_instructor(roles_text, extra_instructor_roles=checked.platform.consumer.instructor_roles):
        raise _refused(
            403, "deep_linking_not_instructor", gettext("Only instructors can add this activity"),
            gettext("Choosing the activity a new link opens is for the course's instructors. Your role in this "
                    "course does not allow it."),
            gettext("The person adding the tool has an instructor role in the course (Instructor, Teaching "
                    "assistant, Content developer, course Administrator or Manager), or a role listed as an extra "
                    "instructor role for this LMS on the tool."))
    settings = claims.get(DEEP_LINKING)
    return_url = _valid_url_or_blank(_text(settings.get("deep_link_return_url"), 1000), "deep_link_return_url") \
        if isinstance(settings, dict) else ""
    if not return_url:
        raise _refused(
            400, "deep_linking_no_return_url", gettext("The learning platform gave no address to answer to"),
            gettext("The deep linking request has no usable deep_link_return_url, so the tool cannot send the "
                    "activity back."),
            gettext("The platform's deep linking settings include a deep_link_return_url (an http or https URL)."))
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_ID_LENGTH:
        raise _refused(400, "invalid_parameter", gettext("The launch contains an invalid identifier"),
                       gettext("sub is not text of at most %(max)d characters.") % {"max": MAX_ID_LENGTH})
    context = claims.get(CONTEXT) if isinstance(claims.get(CONTEXT), dict) else {}
    context_id = context.get("id") if isinstance(context.get("id"), str) else ""
    if len(context_id) > MAX_ID_LENGTH:
        raise _refused(400, "invalid_parameter", gettext("The launch contains an invalid identifier"),
                       gettext("context.id is longer than %(max)d characters.") % {"max": MAX_ID_LENGTH})
    legacy = claims.get(LTI1P1) if legacy_consumer is not None and isinstance(claims.get(LTI1P1), dict) else {}
    name = _text(claims.get("name"), 500) or " ".join(
        p for p in (_text(claims.get("given_name"), 200), _text(claims.get("family_name"), 200)) if p)
    return DeepLinkingAsk(
        sub=sub, name=name, roles=roles_text, context_id=context_id,
        legacy_context_id=str(legacy.get("context_id") or "")[:MAX_ID_LENGTH] if context_id else "",
        context_title=_text(context.get("title"), 500), context_label=_text(context.get("label"), 255),
        return_url=return_url, settings=settings)


def default_title(ask: DeepLinkingRequest) -> str:
    """The title the platform suggests for the new link, if any."""
    return _text(ask.settings.get("title"), 500)


def score_maximum(resource: Resource | None) -> float | int:
    from exams.selectors import exam_total_marks

    total = exam_total_marks(resource_id=resource.pk) if resource is not None else None
    if total is None:
        return DEFAULT_SCORE_MAXIMUM
    return int(total) if total == int(total) else total


def content_item(*, resource: Resource, title: str, launch_url: str) -> DeepLinkResource:
    """The `ltiResourceLink` a link to `resource` is: our launch URL, our custom parameter
    naming the activity, and a line item for its grades."""
    line_item = (LineItem().set_score_maximum(score_maximum(resource)).set_label(title)
                 .set_resource_id(str(resource.pk)).set_tag(LINE_ITEM_TAG))
    return (DeepLinkResource().set_title(title).set_url(launch_url).set_lineitem(line_item)
            .set_custom_params({ACTIVITY_CUSTOM_PARAMETER: str(resource.pk)}))


def response_jwt(*, platform: Platform, ask: DeepLinkingRequest, item: DeepLinkResource) -> str:
    """The LtiDeepLinkingResponse, signed with the tool's current key (its kid in the header):
    iss our client id, aud the platform's issuer, the request's deployment id, and its `data`
    echoed when it had one."""
    deep_link = DeepLink(registration_for(platform), ask.deployment_id, ask.settings)
    message = deep_link.get_message_jwt([item])
    if "data" not in ask.settings:
        message.pop(DATA, None)  # the library sends null; the claim is for echoing data that was sent
    return deep_link.encode_jwt(message)
