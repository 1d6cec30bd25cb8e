"""Old addresses naming a reference id find what the import made of it, through the import's
links (reference_import.ImportLink). Skipped where the import app is not installed."""

import pytest
from django.apps import apps
from django.test import Client

from compat import links
from compat.tests.test_reference_urls import OURS, signed_for
from grading.tests.helpers import start, student_with_exam
from lms.models import ResourceMembership

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not apps.is_installed("reference_import"), reason="the import app is not installed"),
]


def link(kind, reference_pk, local_pk):
    apps.get_model("reference_import", "ImportLink").objects.create(
        kind=kind, reference_pk=reference_pk, local_pk=str(local_pk))


def test_bookmarks_of_imported_activities_and_attempts_lead_to_ours(consumer):
    membership = student_with_exam(consumer, user_id="3101")
    attempt = start(membership)
    instructor = Client()
    instructor.post(OURS, signed_for(consumer, "http://testserver" + OURS, user_id="2001", roles="Instructor"))
    link(links.RESOURCE, 3, membership.resource_id)
    link(links.ATTEMPT, 10, attempt.pk)

    assert links.find(links.RESOURCE, 3) == links.Found(pk=str(membership.resource_id),
                                                        resource_id=membership.resource_id)
    assert instructor.get("/resource/3/stats")["Location"] == \
        f"/resource/{membership.resource_id}/instructor/statistics/"
    assert instructor.get("/attempt/10/timeline")["Location"] == \
        f"/resource/{membership.resource_id}/instructor/attempts/{attempt.pk}/"
    assert Client().get("/run_attempt/10")["Location"] == f"/attempt/{attempt.pk}/"
    assert Client().get("/resource/4/stats").status_code == 404  # not imported
    assert ResourceMembership.objects.count() == 2
