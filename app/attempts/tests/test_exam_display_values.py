"""What the exam is told through its SCORM data about the person and the activity's rules:
cmi.learner_id / learner_name are the LMS's (Numbas shows them as "Name (id)"), and
numbas.review_allowed follows "allow review" / "review allowed from"."""

import datetime
import re
from unittest import mock

import pytest
from django.utils import timezone

from attempts import services
from attempts.models import ResourceSettings
from attempts.tests.factories import launch, with_exam
from lms.models import LtiIdentity

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(consumer):
    student = launch(consumer, user_id="lms-user-7731")
    teacher = launch(consumer, user_id="lms-teacher-1", roles="Instructor")
    with_exam(student.membership.resource, max_attempts=0)
    attempt = services.attempt_start(membership=student.membership)
    return {"student": student, "teacher": teacher, "attempt": attempt}


def state(client, attempt):
    response = client.get(f"/attempt/{attempt.pk}/state/")
    assert response.status_code == 200
    return response.json()


def test_the_exam_gets_the_lms_identity_not_our_row_id(course):
    attempt, student = course["attempt"], course["student"]
    identity = LtiIdentity.objects.get(user=attempt.user)
    LtiIdentity.objects.filter(pk=identity.pk).update(full_name="Alice Student")
    body = state(student, attempt)
    assert body["learner_id"] == "lms-user-7731" != str(attempt.user_id)
    assert body["learner_name"] == "Alice Student"
    # the instructor opening the student's attempt sees the student, not themselves
    assert state(course["teacher"], attempt)["learner_id"] == "lms-user-7731"


def test_a_person_only_seen_in_lti_1_3_is_their_sub(course):
    attempt = course["attempt"]
    LtiIdentity.objects.filter(user=attempt.user).update(lti_user_id="f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
                                                         sub="f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    assert state(course["student"], attempt)["learner_id"] == "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"


def test_an_account_without_an_lms_identity_is_its_username(course):
    attempt = course["attempt"]
    LtiIdentity.objects.filter(user=attempt.user).delete()
    attempt.user.first_name, attempt.user.last_name = "", ""
    attempt.user.save(update_fields=["first_name", "last_name"])
    body = state(course["student"], attempt)
    assert body["learner_id"] == body["learner_name"] == attempt.user.get_username()


@pytest.mark.parametrize("allow_review, review_from_days, expected", [
    (True, None, "true"), (False, None, "false"), (True, 2, "false"), (True, -2, "true")])
def test_review_allowed_follows_the_activity(course, allow_review, review_from_days, expected):
    attempt = course["attempt"]
    now = timezone.now()
    review_from = now + datetime.timedelta(days=review_from_days) if review_from_days is not None else None
    ResourceSettings.objects.filter(resource_id=attempt.resource_id).update(allow_review=allow_review,
                                                                            review_from=review_from)
    with mock.patch("django.utils.timezone.now", return_value=now):
        assert state(course["student"], attempt)["numbas"]["review_allowed"] == expected
        # an instructor always reviews with the answers revealed
        assert state(course["teacher"], attempt)["numbas"] == {**state(course["teacher"], attempt)["numbas"],
                                                                "review_allowed": "true", "user_role": "instructor"}


def test_the_settings_page_says_what_the_exam_itself_cannot_be_told(course):
    html = course["teacher"].get(f"/resource/{course['attempt'].resource_id}/instructor/").content.decode()
    show_score = re.search(r'id="id_show_score_helptext">([^<]+)<', html)[1]
    assert "The exam itself cannot be told" in show_score and "upload the exam again" in show_score
    allow_review = re.search(r'id="id_allow_review_helptext">([^<]+)<', html)[1]
    assert "Enter review mode immediately" in allow_review and "cannot change it" in allow_review
