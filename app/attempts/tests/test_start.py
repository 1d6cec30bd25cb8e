from datetime import timedelta

import pytest
from django.utils import timezone

from attempts import services
from attempts.models import Attempt
from attempts.tests.factories import launch, with_exam


@pytest.mark.django_db
def test_student_page_starts_an_attempt_and_lists_it(consumer):
    student = launch(consumer, user_id="s1")
    resource = with_exam(student.membership.resource, max_attempts=2)
    page = student.get(f"/resource/{resource.pk}/")
    assert b'data-testid="start-attempt"' in page.content and b"Attempt 1 of 2" in page.content

    response = student.post(f"/resource/{resource.pk}/attempts/start/")
    attempt = Attempt.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/attempt/{attempt.pk}/"
    assert attempt.number == 1 and attempt.exam.title == "Demo exam"

    page = student.get(f"/resource/{resource.pk}/").content.decode()
    assert 'data-testid="resume"' in page and "resume it instead" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "settings_, message",
    [
        ({"available_from": timezone.now() + timedelta(days=1)}, "This exam opens on"),
        ({"available_until": timezone.now() - timedelta(minutes=1)}, "This exam closed on"),
    ],
)
def test_availability_window(consumer, settings_, message):
    student = launch(consumer, user_id="s1")
    resource = with_exam(student.membership.resource, **settings_)
    response = student.post(f"/resource/{resource.pk}/attempts/start/", follow=True)
    assert message in response.content.decode()
    assert Attempt.objects.count() == 0


@pytest.mark.django_db
def test_max_attempts_and_no_exam(consumer):
    student = launch(consumer, user_id="s1")
    with pytest.raises(services.AttemptRefused, match="no exam in this activity"):
        services.attempt_start(membership=student.membership)
    with_exam(student.membership.resource, max_attempts=1)
    attempt = services.attempt_start(membership=student.membership)
    Attempt.objects.filter(pk=attempt.pk).update(ended_at=timezone.now())
    with pytest.raises(services.AttemptRefused, match="used all 1 attempt allowed"):
        services.attempt_start(membership=student.membership)
    assert Attempt.objects.count() == 1


@pytest.mark.django_db
def test_unlimited_attempts_are_numbered(consumer):
    student = launch(consumer, user_id="s1")
    with_exam(student.membership.resource, max_attempts=0)
    for expected in (1, 2, 3):
        attempt = services.attempt_start(membership=student.membership)
        assert attempt.number == expected
        Attempt.objects.filter(pk=attempt.pk).update(ended_at=timezone.now())


@pytest.mark.django_db
def test_replacing_the_exam_keeps_started_attempts_on_their_version(consumer):
    student = launch(consumer, user_id="s1")
    resource = with_exam(student.membership.resource, max_attempts=0)
    first = services.attempt_start(membership=student.membership)
    with_exam(resource, max_attempts=0)  # version 2
    first.refresh_from_db()
    assert first.exam.version == 1
    Attempt.objects.filter(pk=first.pk).update(ended_at=timezone.now())
    assert services.attempt_start(membership=student.membership).exam.version == 2
