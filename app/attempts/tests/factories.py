"""Launched users, resources with the demo exam, and batches, for attempt tests."""

import io
import itertools
import uuid

from django.test import Client

from attempts.models import ResourceSettings
from attempts.protocol import parse_batch
from exams.demo import demo_exam_zip
from exams.services import exam_package_upload
from lms.models import Resource, ResourceMembership
from tests.support import lms as test_lms

_seq = itertools.count(1)


def launch(consumer, *, user_id, resource_link_id="res-1", roles="Learner", context_id="course-1", **params):
    client = Client()
    response = client.post(
        "/lti/launch/",
        test_lms.sign(
            test_lms.launch_params(user_id=user_id, resource_link_id=resource_link_id, roles=roles, context_id=context_id,
                                   **params),
            key=consumer.key,
            secret=consumer.secret,
        ),
    )
    assert response.status_code == 302, response.content
    resource = Resource.objects.get(consumer=consumer, resource_link_id=resource_link_id)
    client.membership = ResourceMembership.objects.get(resource=resource, user__lti_identity__lti_user_id=user_id)
    return client


def with_exam(resource, **settings):
    data = demo_exam_zip()
    # As an instructor who confirmed replacing an exam students have started.
    exam_package_upload(resource=resource, upload=io.BytesIO(data), size=len(data), replace_confirmed=True)
    ResourceSettings.objects.update_or_create(resource=resource, defaults=settings)
    return resource


def batch_message(token, changes, *, batch_id=None, terminate=False):
    return {
        "type": "batch",
        "batch": batch_id or uuid.uuid4().hex,
        "token": token,
        "changes": [
            {"seq": seq if seq is not None else next(_seq), "key": key, "value": value, "t": 1764000000000}
            for key, value, *rest in changes
            for seq in [rest[0] if rest else None]
        ],
        "terminate": terminate,
    }


def batch(token, changes, **kwargs):
    return parse_batch(batch_message(token, changes, **kwargs))
