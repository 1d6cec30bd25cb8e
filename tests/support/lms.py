"""An independent LTI 1.1 consumer for tests: signs launches with the PyPI `lti` package
(requests-oauthlib), not with anything the product uses to verify them."""

from __future__ import annotations

import itertools
import time
import uuid

from urllib.parse import parse_qsl

from lti import ToolConsumer
from requests import Request
from requests_oauthlib import OAuth1
from requests_oauthlib.oauth1_auth import SIGNATURE_TYPE_BODY

_counter = itertools.count(1)


def launch_params(**overrides) -> dict[str, str]:
    """A complete, realistic basic launch; `None` in overrides removes a parameter."""
    n = next(_counter)
    params = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "resource_link_id": "res-1",
        "resource_link_title": "Week 1 quiz",
        "context_id": "course-1",
        "context_title": "Number Theory",
        "context_label": "MTH101",
        "user_id": f"user-{n}",
        "roles": "Learner",
        "lis_person_name_full": f"Student Number{n}",
        "lis_person_name_given": "Student",
        "lis_person_name_family": f"Number{n}",
        "lis_person_contact_email_primary": f"student{n}@example.ac.uk",
        "lis_result_sourcedid": f"sourcedid-{n}",
        # A closed loopback port: tests never reach out, and a stray grade report fails fast.
        "lis_outcome_service_url": UNREACHABLE_OUTCOME_URL,
        "launch_presentation_return_url": "https://lms.example.ac.uk/course/1",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


UNREACHABLE_OUTCOME_URL = "http://127.0.0.1:9/outcomes"


def sign(
    params: dict[str, str],
    *,
    key: str,
    secret: str,
    url: str = "http://testserver/lti/launch/",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Sign like an LMS: OAuth1 HMAC-SHA1 in the POST body."""
    kwargs = {}
    if timestamp is not None:
        kwargs["timestamp"] = str(timestamp)
    if nonce is not None:
        kwargs["nonce"] = nonce
    if all(params.get(p) for p in ("lti_message_type", "lti_version", "resource_link_id")):
        tool = ToolConsumer(consumer_key=key, consumer_secret=secret, launch_url=url, params=dict(params))
        return dict(tool.generate_launch_data(**kwargs))
    # The `lti` package fills in a missing message type or version, so incomplete launches
    # are signed with requests-oauthlib directly (what the `lti` package uses underneath).
    request = Request("POST", url, data=params).prepare()
    signed = OAuth1(key, secret, signature_type=SIGNATURE_TYPE_BODY, **kwargs)(request)
    return dict(parse_qsl(signed.body if isinstance(signed.body, str) else signed.body.decode(), keep_blank_values=True))


def fresh_nonce() -> str:
    return uuid.uuid4().hex


def now() -> int:
    return int(time.time())
