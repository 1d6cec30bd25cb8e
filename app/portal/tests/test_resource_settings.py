"""The instructor's settings form on the resource page: every setting, checked together."""

import datetime

import pytest
from django.utils import timezone

from attempts import selectors
from attempts.models import Attempt, ResourceSettings
from attempts.tests.factories import launch, with_exam
from exams.selectors import exam_current

pytestmark = pytest.mark.django_db

GOOD = {"max_attempts": "3", "allow_review": "on", "show_score": "complete", "grading_method": "last",
        "report_when": "completion"}


def local(dt):
    return timezone.localtime(dt).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def course(consumer):
    teacher = launch(consumer, user_id="teacher", roles="Instructor")
    resource = with_exam(teacher.membership.resource)
    return teacher, resource


def test_settings_are_saved_and_shown(course):
    teacher, resource = course
    opens = timezone.now() + datetime.timedelta(days=1)
    data = {**GOOD, "available_from": local(opens), "available_until": local(opens + datetime.timedelta(days=7)),
            "due_at": local(opens + datetime.timedelta(days=6)), "email_receipt": "on"}
    response = teacher.post(f"/resource/{resource.pk}/instructor/settings/", data)
    assert response.status_code == 302
    saved = ResourceSettings.objects.get(resource=resource)
    assert (saved.max_attempts, saved.show_score, saved.grading_method, saved.email_receipt) == (3, "complete", "last", True)
    assert saved.available_from.replace(second=0, microsecond=0) == opens.replace(second=0, microsecond=0)
    page = teacher.get(response["Location"]).content.decode()
    assert "Settings saved" in page and 'value="3"' in page


def test_the_opening_time_applies_to_students(course):
    teacher, resource = course
    student = launch(resource.consumer, user_id="s1")
    teacher.post(f"/resource/{resource.pk}/instructor/settings/",
                 {**GOOD, "available_from": local(timezone.now() + datetime.timedelta(days=1))})
    options = selectors.attempt_options(membership=student.membership)
    assert not options.can_start and "opens on" in options.reason


def test_review_from_in_the_future_keeps_review_closed_until_then(course):
    teacher, resource = course
    student = launch(resource.consumer, user_id="s1")
    attempt = Attempt.objects.create(resource=resource, user=student.membership.user, exam=exam_current(resource_id=resource.pk),
                                     number=1, ended_at=timezone.now())
    later = timezone.now() + datetime.timedelta(days=2)
    assert teacher.post(f"/resource/{resource.pk}/instructor/settings/",
                        {**GOOD, "review_from": local(later)}).status_code == 302
    response = student.get(f"/attempt/{attempt.pk}/")
    assert response.status_code == 403
    assert "You can review your finished attempts from" in response.content.decode()
    settings = ResourceSettings.objects.get(resource=resource)
    assert selectors.review_open(settings=settings, now=later + datetime.timedelta(minutes=1))


@pytest.mark.parametrize("change, field, message", [
    ({"available_from": "2030-01-02T10:00", "available_until": "2030-01-01T10:00"}, "available_until", "after the opening"),
    ({"available_until": "2030-01-01T10:00", "due_at": "2030-01-05T10:00"}, "due_at", "cannot be after the closing"),
    ({"available_from": "2030-01-02T10:00", "due_at": "2030-01-01T10:00"}, "due_at", "after the opening"),
    ({"max_attempts": "-1"}, "max_attempts", "greater than or equal to 0"),
    ({"max_attempts": "5000"}, "max_attempts", "less than or equal to 1000"),
    ({"max_attempts": ""}, "max_attempts", "required"),
    ({"show_score": "sometimes"}, "show_score", "Select a valid choice"),
    ({"grading_method": "average"}, "grading_method", "Select a valid choice"),
    ({"report_when": "never"}, "report_when", "Select a valid choice"),
    ({"available_from": "soon"}, "available_from", "valid date/time"),
    ({"allow_review": None, "review_from": "2030-01-01T10:00"}, "review_from", "Allow review first"),
])
def test_bad_settings_are_refused_with_a_message_and_change_nothing(course, change, field, message):
    teacher, resource = course
    before = list(ResourceSettings.objects.filter(resource=resource).values())
    data = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    response = teacher.post(f"/resource/{resource.pk}/instructor/settings/", data)
    assert response.status_code == 400
    form = response.context["settings_form"]
    assert field in form.errors and message in " ".join(form.errors[field]), form.errors
    assert message in response.content.decode().replace("&#x27;", "'")
    assert list(ResourceSettings.objects.filter(resource=resource).values()) == before


def test_changing_the_grading_method_recomputes_grades(course, monkeypatch, django_capture_on_commit_callbacks):
    teacher, resource = course
    calls = []
    monkeypatch.setattr("grading.services._recompute_later", lambda rid: calls.append(rid))
    with django_capture_on_commit_callbacks(execute=True):
        teacher.post(f"/resource/{resource.pk}/instructor/settings/", {**GOOD, "grading_method": "highest"})
    assert calls == []  # unchanged (highest is the default)
    with django_capture_on_commit_callbacks(execute=True):
        teacher.post(f"/resource/{resource.pk}/instructor/settings/", GOOD)  # last
    assert calls == [resource.pk]
