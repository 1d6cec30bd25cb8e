"""A student who arrives through the reference's launch path (/lti_entry) gets their grade in the
gradebook column the LMS named: the LMS stub (which checks every signature itself) receives it
under that launch's lis_result_sourcedid, at its lis_outcome_service_url."""

import pytest
from django.test import Client

from attempts.tests.factories import with_exam
from compat.tests.test_reference_urls import MOODLE_SOURCEDID, signed_for
from grading.tests.helpers import answer, start
from lms.models import ResourceMembership
from tests.support.lms_stub import LmsStub

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_grade_after_a_launch_through_lti_entry_reaches_the_lms_under_its_sourcedid(consumer):
    with LmsStub(consumers={consumer.key: consumer.secret}) as stub:
        response = Client().post("/lti_entry", signed_for(
            consumer, "http://testserver/lti_entry", user_id="3101", resource_link_id="41",
            lis_result_sourcedid=MOODLE_SOURCEDID, lis_outcome_service_url=stub.url))
        assert response.status_code == 302
        membership = ResourceMembership.objects.get(user__lti_identity__lti_user_id="3101")
        with_exam(membership.resource, max_attempts=0)

        answer(start(membership), 3, complete=True)  # on commit, the (immediate) queue sends it

        assert stub.accepted_for(MOODLE_SOURCEDID) == [0.75]
        assert [r.outcome for r in stub.requests] == ["accepted"]
