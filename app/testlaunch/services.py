"""Writes of the test-launch page's demo LMS: the demo course and activity (for LTI 1.1 and
1.3 alike), its LTI 1.3 registration with the tool, and what it records as a 1.3 platform."""

import io
import secrets

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from attempts.models import ResourceSettings
from exams.demo import demo_exam_zip
from exams.models import ExamPackage
from exams.services import exam_package_upload
from lms.models import Consumer, Context, Resource
from lti13.models import Platform
from lti13.services import PlatformValues, platform_create_or_update
from testlaunch import outcomes
from testlaunch import platform as demo_platform
from testlaunch.models import DemoLineItem, DemoOutcomeResult, DemoPlatformKey, DemoScore

DEMO_CONTEXT_ID = "demo-course"
DEMO_RESOURCE_LINK_ID = "demo-exam"
#: The score maximum of the gradebook column the demo LMS makes for a link launched with 1.3.
DEFAULT_LINEITEM_MAXIMUM = 100.0


@transaction.atomic
def demo_data_ensure(*, secret: str | None = None, base_url: str | None = None) -> Resource:
    """The demo consumer (key settings.DEMO_CONSUMER_KEY), a demo course and a demo resource
    with the project's own test exam and unlimited attempts; and, given the site's address
    (`base_url`), the demo LMS's LTI 1.3 registration there, which launches into the same
    courses and activities. (The test-launch page also ensures it for the address it is
    opened at.)"""
    consumer, created = Consumer.objects.get_or_create(
        key=settings.DEMO_CONSUMER_KEY,
        defaults={"name": "Demo LMS (test launches)", "secret": secret or secrets.token_urlsafe(32)},
    )
    if secret and not created and consumer.secret != secret:
        consumer.secret = secret
        consumer.save(update_fields=["secret", "updated_at"])
    context, _ = Context.objects.get_or_create(
        consumer=consumer, context_id=DEMO_CONTEXT_ID, defaults={"title": "Demo course", "label": "DEMO101"}
    )
    resource, _ = Resource.objects.get_or_create(
        consumer=consumer,
        resource_link_id=DEMO_RESOURCE_LINK_ID,
        defaults={"title": "Demo exam", "context": context},
    )
    if not ExamPackage.objects.filter(resource=resource).exists():
        data = demo_exam_zip()
        exam_package_upload(resource=resource, upload=io.BytesIO(data), size=len(data), filename="demo-exam.zip")
    ResourceSettings.objects.get_or_create(resource=resource, defaults={"max_attempts": 0})
    if base_url:
        demo_platform_ensure(base_url=base_url)
    return resource


def platform_key_ensure() -> DemoPlatformKey:
    """The demo LMS's signing key, made on first use."""
    key = DemoPlatformKey.objects.filter(slot=1).first()
    if key is not None:
        return key
    kid, pem, public = demo_platform.new_key_material()
    key, _ = DemoPlatformKey.objects.get_or_create(slot=1, defaults={"kid": kid, "private_key_pem": pem,
                                                                     "public_jwk": public})
    return key


def platform_urls(*, base_url: str) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {"issuer": base + reverse("testlaunch:platform"), "auth": base + reverse("testlaunch:platform_auth"),
            "token": base + reverse("testlaunch:platform_token"), "jwks": base + reverse("testlaunch:platform_jwks"),
            "tool_launch": base + reverse("lti13:launch"), "tool_login": base + reverse("lti13:login")}


@transaction.atomic
def demo_platform_ensure(*, base_url: str) -> Platform:
    """The tool's registration of the demo LMS as seen at `base_url` (its issuer is that site's
    address + /test-launch/platform): its key given as a stored keyset (nothing to fetch), and
    the demo consumer's courses, people and activities. Raises ValueError (for people) when
    the demo consumer does not exist or the address is not one a registration accepts."""
    urls = platform_urls(base_url=base_url)
    key = platform_key_ensure()
    keyset = {"keys": [key.public_jwk]}
    current = Platform.objects.filter(
        issuer=urls["issuer"], client_id=demo_platform.CLIENT_ID, active=True, auth_login_url=urls["auth"],
        auth_token_url=urls["token"], consumer__key=settings.DEMO_CONSUMER_KEY,
        deployments__deployment_id=demo_platform.DEPLOYMENT_ID).first()
    if current is not None and current.keyset == keyset:
        return current
    platform, _ = platform_create_or_update(
        values=PlatformValues(name=demo_platform.PLATFORM_NAME, issuer=urls["issuer"],
                              client_id=demo_platform.CLIENT_ID, auth_login_url=urls["auth"],
                              auth_token_url=urls["token"], keyset=keyset),
        deployment_ids=[demo_platform.DEPLOYMENT_ID], consumer_key=settings.DEMO_CONSUMER_KEY)
    if not platform.active:
        platform.active = True
        platform.save(update_fields=["active", "updated_at"])
    return platform


@transaction.atomic
def lineitem_for_link_ensure(*, context: Context, resource_link_id: str, label: str) -> DemoLineItem:
    """The gradebook column of a resource link, made at its first 1.3 launch (as LMSs do for a
    graded link)."""
    Context.objects.select_for_update().filter(pk=context.pk).first()  # one column, even for two first launches
    found = DemoLineItem.objects.filter(context=context, resource_link_id=resource_link_id).first()
    return found or DemoLineItem.objects.create(context=context, resource_link_id=resource_link_id,
                                                label=(label or resource_link_id)[:500],
                                                score_maximum=DEFAULT_LINEITEM_MAXIMUM)


def lineitem_create(*, context: Context, values: demo_platform.LineItemValues) -> DemoLineItem:
    return DemoLineItem.objects.create(context=context, label=values.label, score_maximum=values.score_maximum,
                                       resource_link_id=values.resource_link_id, resource_id=values.resource_id,
                                       tag=values.tag)


def score_record(*, lineitem: DemoLineItem, values: demo_platform.ScoreValues) -> DemoScore:
    return DemoScore.objects.create(
        lineitem=lineitem, user_id=values.user_id, score_given=values.score_given, score_maximum=values.score_maximum,
        activity_progress=values.activity_progress, grading_progress=values.grading_progress, comment=values.comment,
        timestamp=values.timestamp)


# --- LTI 1.1: the demo LMS's gradebook and its outcome service ---------------------------------


def outcome_result_ensure(*, resource: Resource, user_id: str, full_name: str) -> DemoOutcomeResult:
    """The gradebook cell of a person in an activity, made at their first 1.1 launch as a student:
    its sourcedid goes in every launch (lis_result_sourcedid)."""
    result, created = DemoOutcomeResult.objects.get_or_create(
        resource=resource, user_id=user_id,
        defaults={"full_name": full_name, "sourcedid": secrets.token_urlsafe(24)})
    if not created and full_name and result.full_name != full_name:
        result.full_name = full_name
        result.save(update_fields=["full_name"])
    return result


def outcome_nonce_is_new(key: str, nonce: str) -> bool:
    """Record an OAuth nonce of the outcome service; False when it was used already (a replay)."""
    return cache.add(f"testlaunch:outcome-nonce:{key}:{nonce}", 1, timeout=2 * outcomes.TIMESTAMP_WINDOW)


def outcome_request_answer(*, url: str, authorization: str, body: bytes) -> tuple[int, bytes]:
    """Answer one request to the outcome service as an LMS does: verify its signature with the
    consumer's secret, then replace, read or delete the score of the sourcedid's gradebook cell.
    Returns the HTTP status and the imsx_POXEnvelopeResponse."""
    def secret_for(key: str) -> str | None:
        return Consumer.objects.filter(key=key, active=True).values_list("secret", flat=True).first()

    request = None
    try:
        key = outcomes.verify_signature(method="POST", url=url, authorization=authorization, body=body,
                                        secret_for=secret_for, nonce_is_new=outcome_nonce_is_new)
        request = outcomes.parse_request(body)
        with transaction.atomic():
            result = (DemoOutcomeResult.objects.select_for_update().select_related("resource__consumer")
                      .filter(sourcedid=request.sourcedid).first())
            if result is None or result.resource.consumer.key != key:
                raise outcomes.Refused(f"Unknown sourcedid: {request.sourcedid}", "unknownobject")
            if request.operation == "readResult":
                return 200, outcomes.response_xml(
                    major="success", description=f"Score for {request.sourcedid} read.",
                    message_ref=request.message_id, operation="readResult",
                    body=outcomes.read_result_body(result.score))
            result.score = request.score  # None for deleteResult
            result.received_at = timezone.now()
            result.save(update_fields=["score", "received_at"])
        described = ("deleted" if request.score is None else f"now {request.score:g}")
        return 200, outcomes.response_xml(
            major="success", description=f"Score for {request.sourcedid} is {described}.",
            message_ref=request.message_id, operation=request.operation,
            body=f"<{request.operation}Response/>")
    except outcomes.Refused as refused:
        major = "unsupported" if refused.code_minor == "unsupported" else "failure"
        return refused.status, outcomes.response_xml(
            major=major, description=str(refused), message_ref=request.message_id if request else "",
            operation=request.operation if request else "", minor=refused.code_minor)
