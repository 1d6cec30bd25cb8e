"""Opening the attempt page changes nothing; taking the attempt over is a CSRF-protected POST,
made at once only when the page was opened from our own site (issue 12, point 5)."""

import pytest
from django.test import Client
from django.utils import timezone

from attempts import services
from attempts.models import Attempt
from attempts.tests.factories import launch, with_exam


@pytest.fixture
def student(consumer):
    student = launch(consumer, user_id="s1")
    with_exam(student.membership.resource, max_attempts=0)
    return student


@pytest.fixture
def attempt(student):
    attempt = services.attempt_start(membership=student.membership)
    services.attempt_take_over(attempt=attempt)  # a window holds it
    attempt.refresh_from_db()
    return attempt


@pytest.mark.django_db
@pytest.mark.parametrize("headers", [
    {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_SEC_FETCH_DEST": "image"},  # <img src> on any site
    {"HTTP_SEC_FETCH_SITE": "same-site", "HTTP_SEC_FETCH_DEST": "iframe"},  # e.g. from the exam-content host
    {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_SEC_FETCH_DEST": "document"},
    {},
])
def test_opening_the_attempt_page_never_takes_the_attempt_over(student, attempt, headers):
    before = attempt.writer_token
    response = student.get(f"/attempt/{attempt.pk}/", **headers)
    assert response.status_code == 200
    assert "token" not in response.context["config"]
    assert Attempt.objects.get(pk=attempt.pk).writer_token == before


@pytest.mark.django_db
@pytest.mark.parametrize("headers, at_once", [
    ({"HTTP_SEC_FETCH_SITE": "same-origin"}, True),  # the Start / Resume buttons
    ({"HTTP_SEC_FETCH_SITE": "none"}, True),  # typed, bookmarked, reloaded
    ({"HTTP_SEC_FETCH_SITE": "cross-site"}, False),
    ({"HTTP_SEC_FETCH_SITE": "same-site"}, False),  # a sibling host name: the exam-content origin
    ({"HTTP_REFERER": "http://testserver/resource/1/"}, True),  # a browser without Fetch Metadata
    ({"HTTP_REFERER": "https://evil.example/page"}, False),
    ({}, False),
])
def test_the_page_takes_over_at_once_only_when_opened_from_our_site(student, attempt, headers, at_once):
    config = student.get(f"/attempt/{attempt.pk}/", **headers).context["config"]
    assert config["takeOverAtOnce"] is at_once


@pytest.mark.django_db
def test_take_over_needs_the_csrf_token(consumer, attempt):
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = launch(consumer, user_id="s1").cookies  # the same student, another window
    before = Attempt.objects.get(pk=attempt.pk).writer_token
    refused = strict.post(f"/attempt/{attempt.pk}/take-over/")
    assert refused.status_code == 403
    assert Attempt.objects.get(pk=attempt.pk).writer_token == before
    page = strict.get(f"/attempt/{attempt.pk}/")
    token = page.context["config"]["csrfToken"]
    taken = strict.post(f"/attempt/{attempt.pk}/take-over/", HTTP_X_CSRFTOKEN=token)
    assert taken.status_code == 200
    assert taken.json()["token"] == Attempt.objects.get(pk=attempt.pk).writer_token != before


@pytest.mark.django_db
def test_only_the_owner_takes_over_an_open_attempt(consumer, student, attempt, client):
    instructor = launch(consumer, user_id="t1", roles="Instructor")
    other = launch(consumer, user_id="s2")
    before = Attempt.objects.get(pk=attempt.pk).writer_token
    assert client.post(f"/attempt/{attempt.pk}/take-over/").status_code == 401
    assert other.post(f"/attempt/{attempt.pk}/take-over/").status_code == 403
    assert instructor.post(f"/attempt/{attempt.pk}/take-over/").status_code == 403
    assert student.get(f"/attempt/{attempt.pk}/take-over/").status_code == 405
    assert Attempt.objects.get(pk=attempt.pk).writer_token == before
    Attempt.objects.filter(pk=attempt.pk).update(ended_at=timezone.now())
    ended = student.post(f"/attempt/{attempt.pk}/take-over/")
    assert ended.status_code == 409 and ended.json()["error"]["code"] == "ended"
