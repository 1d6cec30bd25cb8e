"""The LTI 1.1 → 1.3 upgrade: a 1.3 launch whose lti1p1 claim proves it continues a 1.1
connection carries on with the same person, course, activity, attempts and grade."""

import pytest

from attempts.models import Attempt
from attempts.tests.factories import launch as launch_1p1, with_exam
from grading import services
from grading.models import GradeReport, ReportState
from grading.tests.helpers import answer, start
from lms.models import Context, LtiIdentity, LtiVersion, Resource, ResourceMembership
from lti13.tests.helpers import launch, register
from tests.support.lti13_platform import ROLE_LEARNER, Lti13Platform, forged_lti1p1_sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def lms():
    with Lti13Platform(client_id="tool-1", deployment_id="dep-1") as platform:
        platform.add_context("course-13")
        yield platform


def history_in_1p1(consumer):
    """A student who took the exam through LTI 1.1: one completed attempt, a grade in the LMS."""
    client = launch_1p1(consumer, user_id="moodle-42", resource_link_id="res-1", context_id="course-1")
    membership = client.membership
    with_exam(membership.resource, max_attempts=0)
    answer(start(membership), 3, 4, complete=True)
    return membership


def upgraded_launch(client, lms, consumer, **overrides):
    claim = {"oauth_consumer_key": consumer.key, "user_id": "moodle-42", "context_id": "course-1",
             "resource_link_id": "res-1", "secret": consumer.secret, **overrides}
    claim = {k: v for k, v in claim.items() if v is not None}
    return launch(client, lms, sub="0ae8-new-sub", roles=[ROLE_LEARNER], name="Ada Lovelace",
                  context={"id": "course-13"}, resource_link={"id": "link-13", "title": "Week 1 quiz"},
                  ags=True, lti1p1=claim)


def test_an_upgraded_launch_continues_the_same_person_course_activity_and_history(client, lms, consumer):
    old = history_in_1p1(consumer)
    register(lms)  # a new registration of its own: the verified claim ties it to the 1.1 consumer
    counts = {m: m.objects.count() for m in (LtiIdentity, Context, Resource, ResourceMembership)}
    response = upgraded_launch(client, lms, consumer)
    assert response.status_code == 302, response.content[:1000]
    assert {m: m.objects.count() for m in counts} == counts  # no duplicate people, courses or links
    identity = LtiIdentity.objects.get(consumer=consumer, lti_user_id="moodle-42")
    assert identity.sub == "0ae8-new-sub" and identity.user_id == old.user_id
    membership = ResourceMembership.objects.get(pk=old.pk)
    assert membership.resource.lti13_id == "link-13" and membership.resource.context.lti13_id == "course-13"
    assert membership.lti_version == LtiVersion.LTI_1P3
    assert response["Location"].startswith(f"/resource/{old.resource_id}/")
    assert Attempt.objects.filter(user=old.user, resource=old.resource).count() == 1
    # from now on the grade goes through AGS, not Basic Outcomes
    services.grades_report_all(resource_id=old.resource_id)
    report = GradeReport.objects.get(membership=membership)
    assert report.state == ReportState.PENDING
    assert services.passback_deliver_due(wait_for_retries=False).delivered == 1
    assert lms.wait_for_score("0ae8-new-sub", timeout=5).score["scoreGiven"] == 3
    # and the next launch needs no claim: the person is found by their sub
    assert launch(client, lms, sub="0ae8-new-sub", roles=[ROLE_LEARNER], context={"id": "course-13"},
                  resource_link={"id": "link-13"}).status_code == 302
    assert LtiIdentity.objects.count() == counts[LtiIdentity]


def test_a_forged_lti1p1_claim_is_refused_and_nothing_is_written(client, lms, consumer):
    history_in_1p1(consumer)
    register(lms)
    counts = {m: list(m.objects.values()) for m in (LtiIdentity, Context, Resource, ResourceMembership)}
    for forged in ({"secret": "not-the-secret"}, {"secret": None, "oauth_consumer_key_sign": forged_lti1p1_sign()}):
        response = upgraded_launch(client, lms, consumer, **forged)
        assert response.status_code == 403
        assert b'data-error-code="bad_lti1p1_sign"' in response.content
    assert {m: list(m.objects.values()) for m in counts} == counts


def test_an_lms_using_the_same_ids_in_both_versions_continues_when_registered_with_its_1p1_key(
        client, lms, consumer):
    old = history_in_1p1(consumer)
    register(lms, consumer_key=consumer.key)
    response = launch(client, lms, sub="moodle-42", roles=[ROLE_LEARNER], context={"id": "course-1"},
                      resource_link={"id": "res-1"})
    assert response.status_code == 302
    assert LtiIdentity.objects.get(consumer=consumer).sub == "moodle-42"
    assert ResourceMembership.objects.get().pk == old.pk
