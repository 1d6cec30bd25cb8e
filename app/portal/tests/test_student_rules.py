"""Issue 16, problem 11: the student's page says the activity's rules before they start —
attempts allowed and left, the time limit with their extra time, opening, closing and due times,
how the grade is worked out, what they see afterwards, the late policy; with an attempt in
progress, the time left in it."""

import datetime
import html as html_lib
import re

import pytest
from django.utils import timezone

from attempts.models import AccessChange, Attempt, ResourceSettings
from attempts.tests.factories import launch, with_exam
from core.when import when_text
from exams.selectors import exam_current
from portal.selectors import duration_text

pytestmark = pytest.mark.django_db


def text_of(html: str, test_id: str) -> str:
    match = re.search(rf'data-testid="{test_id}"[^>]*>(.*?)</dd>', html, re.S)
    assert match, f"{test_id} is not on the page"
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", match[1])).split())


@pytest.fixture
def student(consumer):
    teacher = launch(consumer, user_id="teacher", roles="Instructor")
    resource = with_exam(teacher.membership.resource)
    return launch(consumer, user_id="s1"), resource


def page(client, resource) -> str:
    response = client.get(f"/resource/{resource.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_rules_are_shown_before_the_first_attempt(student):
    client, resource = student
    opens = timezone.now() - datetime.timedelta(days=1)
    due = timezone.now() + datetime.timedelta(days=6)
    closes = timezone.now() + datetime.timedelta(days=7)
    ResourceSettings.objects.filter(resource=resource).update(
        max_attempts=3, available_from=opens, available_until=closes, due_at=due, late_policy="refuse",
        grading_method="highest", show_score="complete", allow_review=False)
    html = page(client, resource)
    assert html.index('data-testid="rules"') < html.index('data-testid="start-attempt"')
    assert text_of(html, "rules-attempts") == "3 attempts allowed; 3 left"
    assert text_of(html, "rules-time-limit") == "30 minutes"  # the demo exam's 1800 s
    assert text_of(html, "rules-opens") == when_text(opens)
    assert text_of(html, "rules-closes") == when_text(closes)
    assert text_of(html, "rules-due").startswith(when_text(due))
    assert "Answers given after the due time are not accepted." in text_of(html, "rules-due")
    assert text_of(html, "rules-grading") == ("Your best attempt counts. Only attempts you finish count "
                                              "towards your grade.")
    assert text_of(html, "rules-marks") == "You see your score when you finish an attempt."
    assert text_of(html, "rules-review") == "You cannot review your attempts once they are finished."


def test_extra_time_attempts_left_and_time_left_on_a_resumed_attempt(student):
    client, resource = student
    ResourceSettings.objects.filter(resource=resource).update(max_attempts=2, grading_method="last",
                                                              include_incomplete=True)
    user = client.membership.user
    AccessChange.objects.create(resource=resource, user=user, extra_minutes=15, extra_attempts=1,
                                changed_at=timezone.now())
    Attempt.objects.create(resource=resource, user=user, exam=exam_current(resource_id=resource.pk), number=1,
                           ended_at=timezone.now())
    attempt = Attempt.objects.create(resource=resource, user=user, exam=exam_current(resource_id=resource.pk),
                                     number=2)
    Attempt.objects.filter(pk=attempt.pk).update(started_at=timezone.now() - datetime.timedelta(minutes=20))
    html = page(client, resource)
    assert text_of(html, "rules-attempts") == "3 attempts allowed; 1 left"
    assert text_of(html, "rules-time-limit") == "45 minutes (including your extra time: 15 minutes)"
    assert text_of(html, "rules-time-left") == "25 minutes in your attempt in progress"
    assert text_of(html, "rules-grading") == "Your last attempt counts."
    assert text_of(html, "rules-closes") == "No closing time"


def test_review_from_later_and_accepted_late_answers(student):
    client, resource = student
    later = timezone.now() + datetime.timedelta(days=3)
    ResourceSettings.objects.filter(resource=resource).update(
        max_attempts=1, review_from=later, due_at=timezone.now() + datetime.timedelta(days=1), show_score="never")
    html = page(client, resource)
    assert text_of(html, "rules-attempts") == "1 attempt allowed; 1 left"
    assert text_of(html, "rules-grading").startswith("Your attempt's score is your grade.")
    assert text_of(html, "rules-review") == ("You can review your finished attempts from: "
                                             + when_text(later))
    assert "accepted, and the attempt is marked late" in text_of(html, "rules-due")
    assert text_of(html, "rules-marks") == "Your score is not shown to you here."


@pytest.mark.parametrize("seconds, text", [(60, "1 minute"), (1800, "30 minutes"), (3600, "1 hour"),
                                           (5400, "1 hour 30 minutes"), (7200, "2 hours"), (61, "2 minutes")])
def test_durations_read_as_minutes_and_hours(seconds, text):
    assert duration_text(datetime.timedelta(seconds=seconds)) == text
