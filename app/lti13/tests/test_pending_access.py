"""Access changes pasted for people who have not launched yet apply at their first LTI 1.3
launch, matched by their `sub`, LMS username or e-mail address in the same LMS (issue 15, point 3)."""

import pytest

from attempts import services as attempt_services
from attempts.models import AccessChange, PendingAccessChange
from attempts.tests.factories import with_exam
from lms.models import LtiIdentity, Resource
from lti13.tests.helpers import launch, register
from tests.support.lti13_platform import ROLE_INSTRUCTOR, ROLE_LEARNER, Lti13Platform

pytestmark = pytest.mark.django_db

EXT = "https://purl.imsglobal.org/spec/lti/claim/ext"


@pytest.fixture
def lms():
    with Lti13Platform(client_id="tool-1", deployment_id="dep-1") as platform:
        platform.add_context("course-7", title="Algebra 1", label="ALG1")
        yield platform


@pytest.fixture
def platform(lms):
    return register(lms)


def person(sub, roles, **kwargs):
    return dict(sub=sub, roles=roles, name=f"Person {sub}", context={"id": "course-7", "title": "Algebra 1"},
                resource_link={"id": "link-1", "title": "Week 1 quiz"}, **kwargs)


@pytest.fixture
def activity(client, lms, platform):
    assert launch(client, lms, **person("teacher-1", [ROLE_INSTRUCTOR])).status_code == 302
    resource = Resource.objects.get(lti13_id="link-1")
    with_exam(resource, max_attempts=1)
    teacher = LtiIdentity.objects.get(sub="teacher-1").user
    return resource, teacher


@pytest.mark.parametrize("kind, entry, claims", [
    ("user_id", "stu-9", {}),
    ("any", "stu-9", {}),
    ("username", "ALovelace", {"extra": {EXT: {"user_username": "alovelace"}}}),
    ("email", "ada@example.edu", {"email": "Ada@Example.edu"}),
])
def test_a_pending_change_applies_at_the_first_lti_1p3_launch(django_user_model, lms, activity, kind, entry, claims):
    from django.test import Client

    resource, teacher = activity
    result = attempt_services.access_change_for_list(
        resource_id=resource.pk, changed_by=teacher, membership_ids=[], entries=[entry], kind=kind,
        extra_attempts=1, extra_percent=25, reason="Exam arrangements")
    assert result.pending == [entry] and not result.applied
    other = launch(Client(), lms, **person("stu-8", [ROLE_LEARNER], email="someone@example.edu"))
    assert other.status_code == 302 and not AccessChange.objects.exists()

    response = launch(Client(), lms, **person("stu-9", [ROLE_LEARNER], **claims))

    assert response.status_code == 302, response.content[:500]
    change = AccessChange.objects.get(resource=resource, user=LtiIdentity.objects.get(sub="stu-9").user)
    assert (change.extra_attempts, change.extra_percent, change.reason, change.changed_by) == (
        1, 25, "Exam arrangements", teacher)
    assert not PendingAccessChange.objects.exists()


def test_a_pending_change_does_not_cross_to_another_lms(client, lms, activity):
    resource, teacher = activity
    attempt_services.access_change_for_list(resource_id=resource.pk, changed_by=teacher, membership_ids=[],
                                            entries=["stu-9"], kind="user_id", extra_attempts=1)
    with Lti13Platform(client_id="tool-2", deployment_id="dep-2") as other_lms:
        other_lms.add_context("course-7", title="Algebra 1")
        register(other_lms, client_id="tool-2", deployment_id="dep-2")
        assert launch(client, other_lms, **person("stu-9", [ROLE_LEARNER])).status_code == 302
    assert not AccessChange.objects.exists() and PendingAccessChange.objects.count() == 1
