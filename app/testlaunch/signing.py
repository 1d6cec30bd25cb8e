"""Build a signed LTI 1.1 launch exactly as an LMS does (OAuth1 HMAC-SHA1 body signature)."""

from urllib.parse import parse_qsl

from oauthlib.oauth1 import SIGNATURE_TYPE_BODY, Client

from lms.models import Consumer, Resource


def launch_params(*, resource: Resource, role: str, user_id: str, full_name: str, email: str = "") -> dict[str, str]:
    params = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "resource_link_id": resource.resource_link_id,
        "resource_link_title": resource.title,
        "user_id": user_id,
        "roles": "Instructor" if role == "instructor" else "Learner",
        "lis_person_name_full": full_name,
        "tool_consumer_info_product_family_code": "numbas-lti-test-launch",
    }
    if email:
        params["lis_person_contact_email_primary"] = email
    if resource.context is not None:
        params.update(
            context_id=resource.context.context_id,
            context_title=resource.context.title,
            context_label=resource.context.label,
        )
    return params


def sign_launch(*, consumer: Consumer, url: str, params: dict[str, str]) -> dict[str, str]:
    """Return the params with oauth_* fields added, signed with the consumer's secret."""
    client = Client(consumer.key, client_secret=consumer.secret, signature_type=SIGNATURE_TYPE_BODY)
    _, _, body = client.sign(
        url, http_method="POST", body=params, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    return dict(parse_qsl(body, keep_blank_values=True))
