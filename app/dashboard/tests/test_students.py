"""The instructor's students pages and access changes, through the views (Django's test client)."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attempts import selectors as attempt_selectors
from attempts import services as attempt_services
from attempts.models import AccessChange, Attempt
from attempts.tests.factories import launch, with_exam
from dashboard import selectors
from grading.models import GradeReport, ReportState
from lms.models import ResourceMembership, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(consumer):
    teacher = launch(consumer, user_id="teacher", roles="Instructor")
    resource = with_exam(teacher.membership.resource, max_attempts=1)
    return teacher, resource


def add_students(resource, names, *, attempts_each=0):
    """People who opened the resource, made directly (fast) for list tests."""
    User = get_user_model()
    now = timezone.now()
    memberships = []
    for i, name in enumerate(names):
        first, _, last = name.partition(" ")
        user = User.objects.create(username=f"u-{resource.pk}-{i}-{name.replace(' ', '')}", first_name=first,
                                   last_name=last, email=f"{first.lower()}@example.edu")
        memberships.append(ResourceMembership.objects.create(
            user=user, resource=resource, role=Role.STUDENT, last_launched_at=now - datetime.timedelta(hours=i)))
        for n in range(attempts_each):
            Attempt.objects.create(resource=resource, user=user, exam=_exam(resource), number=n + 1)
    return memberships


def _exam(resource):
    from exams.selectors import exam_current

    return exam_current(resource_id=resource.pk)


def names_on(response):
    return [row["display_name"] for row in response.context["page"].object_list]


def test_everyone_who_opened_the_resource_is_listed_with_attempts_grade_and_activity(course):
    teacher, resource = course
    ada, bob = add_students(resource, ["Ada Lovelace", "Bob Babbage"], attempts_each=0)
    Attempt.objects.create(resource=resource, user=ada.user, exam=_exam(resource), number=1)
    Attempt.objects.create(resource=resource, user=ada.user, exam=_exam(resource), number=2,
                           ended_at=timezone.now(), last_saved_at=timezone.now() + datetime.timedelta(minutes=5))
    GradeReport.objects.create(membership=ada, resource=resource, score=0.75, state=ReportState.DELIVERED,
                               updated_at=timezone.now())

    response = teacher.get(f"/resource/{resource.pk}/instructor/students/")

    assert response.status_code == 200
    rows = {r["display_name"]: r for r in response.context["page"].object_list}
    assert set(rows) == {"Ada Lovelace", "Bob Babbage", teacher.membership.user.get_full_name()
                         or teacher.membership.user.username}
    assert rows["Ada Lovelace"]["attempt_count"] == 2 and rows["Ada Lovelace"]["attempts_open"] == 1
    assert rows["Ada Lovelace"]["grade"] == 0.75 and rows["Ada Lovelace"]["grade_state"] == "delivered"
    assert rows["Ada Lovelace"]["last_activity"] > ada.last_launched_at  # the save after the launch
    assert rows["Bob Babbage"]["attempt_count"] == 0 and rows["Bob Babbage"]["grade"] is None
    text = response.content.decode()
    assert "75\u00a0%" in text and "In the gradebook" in text and "1 open" in text


def test_search_matches_name_and_email_and_is_escaped(course):
    teacher, resource = course
    add_students(resource, ["Ada Lovelace", "Bob Babbage", "Carol Ada-Smith"])
    url = f"/resource/{resource.pk}/instructor/students/"

    assert sorted(names_on(teacher.get(url, {"q": "ada"}))) == ["Ada Lovelace", "Carol Ada-Smith"]
    assert names_on(teacher.get(url, {"q": "bob@example"})) == ["Bob Babbage"]
    response = teacher.get(url, {"q": "<script>x</script>"})
    assert response.status_code == 200 and names_on(response) == []
    assert "<script>x</script>" not in response.content.decode()
    assert "Nobody matches that search." in response.content.decode()


def test_sorting_by_each_column_and_bad_parameters_fall_back(course):
    teacher, resource = course
    a, b, c = add_students(resource, ["Cecil Three", "Anna One", "Bea Two"])
    for membership, attempts in ((a, 3), (b, 1), (c, 2)):
        for n in range(attempts):
            Attempt.objects.create(resource=resource, user=membership.user, exam=_exam(resource), number=n + 1)
    for membership, score in ((a, 0.2), (b, 0.9)):
        GradeReport.objects.create(membership=membership, resource=resource, score=score, updated_at=timezone.now())
    url = f"/resource/{resource.pk}/instructor/students/"
    students = {"Cecil Three", "Anna One", "Bea Two"}

    def order(**params):
        return [n for n in names_on(teacher.get(url, params)) if n in students]

    assert order(sort="name") == ["Anna One", "Bea Two", "Cecil Three"]
    assert order(sort="name", dir="desc") == ["Cecil Three", "Bea Two", "Anna One"]
    assert order(sort="attempts") == ["Cecil Three", "Bea Two", "Anna One"]
    assert order(sort="grade") == ["Anna One", "Cecil Three", "Bea Two"]  # no grade last
    assert order(sort="activity", dir="asc") == ["Bea Two", "Anna One", "Cecil Three"]
    for bad in ({"sort": "password"}, {"dir": "sideways"}, {"page": "x"}, {"page": "-4"}, {"page": "99999999999"}):
        response = teacher.get(url, bad)
        assert response.status_code == 200, bad
        assert len(order(**bad)) == 3 or bad.get("page") == "99999999999"


def test_thousands_of_students_are_paginated_with_a_constant_number_of_queries(course):
    teacher, resource = course
    url = f"/resource/{resource.pk}/instructor/students/"
    add_students(resource, [f"Student {i:04d}" for i in range(20)], attempts_each=1)
    with CaptureQueriesContext(connection) as small:
        assert teacher.get(url).status_code == 200
    add_students(resource, [f"Later {i:04d}" for i in range(120)], attempts_each=2)
    with CaptureQueriesContext(connection) as large:
        response = teacher.get(url, {"page": "2"})
    assert response.status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries), [q["sql"][:120] for q in large.captured_queries]
    page = response.context["page"]
    assert page.paginator.count == 141 and len(page.object_list) == selectors.PER_PAGE and page.number == 2
    assert "Page 2 of 3" in response.content.decode()


def test_one_students_page_shows_their_attempts_and_access(course):
    teacher, resource = course
    student = launch(teacher.membership.resource.consumer, user_id="s1")
    Attempt.objects.create(resource=resource, user=student.membership.user, exam=_exam(resource), number=1,
                           score_raw=3, score_max=4, completion_status="completed", ended_at=timezone.now())
    response = teacher.get(f"/resource/{resource.pk}/instructor/students/{student.membership.pk}/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "Review attempt 1" in text and "3 / 4" in text
    assert "1 attempt allowed" in text and "0 extra minutes" in text


def test_extra_attempt_lets_the_student_start_again(course):
    teacher, resource = course
    student = launch(resource.consumer, user_id="s1")
    attempt_services.attempt_start(membership=student.membership)
    Attempt.objects.update(ended_at=timezone.now())
    assert not attempt_selectors.attempt_options(membership=student.membership).can_start

    response = teacher.post(f"/resource/{resource.pk}/instructor/students/{student.membership.pk}/access/",
                            {"extra_attempts": "1", "extra_minutes": "", "available_until": "", "reason": "ill"})

    assert response.status_code == 302
    options = attempt_selectors.attempt_options(membership=student.membership)
    assert options.can_start and options.attempts_allowed == 2
    change = AccessChange.objects.get()
    assert change.changed_by == teacher.membership.user and change.reason == "ill"
    page = teacher.get(response["Location"]).content.decode()
    assert "Access for" in page and "2 attempts allowed" in page


def test_a_later_closing_time_for_one_student_only(course):
    teacher, resource = course
    resource.settings.available_until = timezone.now() - datetime.timedelta(hours=1)
    resource.settings.save()
    late, other = launch(resource.consumer, user_id="late"), launch(resource.consumer, user_id="other")
    until = timezone.localtime(timezone.now() + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")

    response = teacher.post(f"/resource/{resource.pk}/instructor/students/{late.membership.pk}/access/",
                            {"available_until": until})

    assert response.status_code == 302
    assert attempt_selectors.attempt_options(membership=late.membership).can_start
    refused = attempt_selectors.attempt_options(membership=other.membership)
    assert not refused.can_start and "closed" in refused.reason


def test_extra_time_reaches_the_exams_numbas_keys(course):
    teacher, resource = course
    student = launch(resource.consumer, user_id="s1")
    attempt = attempt_services.attempt_start(membership=student.membership)
    before = student.get(f"/attempt/{attempt.pk}/state/").json()["numbas"]
    assert before["duration_extension.amount"] == "0"

    teacher.post(f"/resource/{resource.pk}/instructor/students/{student.membership.pk}/access/", {"extra_minutes": "15"})

    after = student.get(f"/attempt/{attempt.pk}/state/").json()["numbas"]
    assert after["duration_extension.amount"] == "15" and after["duration_extension.units"] == "minutes"


def test_clearing_every_field_removes_the_change(course):
    teacher, resource = course
    student = launch(resource.consumer, user_id="s1")
    url = f"/resource/{resource.pk}/instructor/students/{student.membership.pk}/access/"
    teacher.post(url, {"extra_attempts": "2"})
    assert AccessChange.objects.count() == 1
    teacher.post(url, {"extra_attempts": "0", "extra_minutes": "0", "available_until": ""})
    assert AccessChange.objects.count() == 0


@pytest.mark.parametrize("data, message", [
    ({"extra_attempts": "-1"}, "greater than or equal to 0"),
    ({"extra_attempts": "lots"}, "whole number"),
    ({"extra_attempts": "1001"}, "less than or equal to 1000"),
    ({"extra_minutes": "1.5"}, "whole number"),
    ({"extra_minutes": "100001"}, "less than or equal to 100000"),
    ({"available_until": "next tuesday"}, "valid date/time"),
    ({"reason": "x" * 501}, "at most 500 characters"),
])
def test_bad_access_change_is_refused_with_a_message_and_writes_nothing(course, data, message):
    teacher, resource = course
    student = launch(resource.consumer, user_id="s1")
    response = teacher.post(f"/resource/{resource.pk}/instructor/students/{student.membership.pk}/access/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert AccessChange.objects.count() == 0


def test_someone_of_another_resource_cannot_be_changed_or_seen(course):
    teacher, resource = course
    elsewhere = launch(resource.consumer, user_id="s9", resource_link_id="res-2")
    base = f"/resource/{resource.pk}/instructor/students/{elsewhere.membership.pk}/"
    assert teacher.get(base).status_code == 404
    assert teacher.post(base + "access/", {"extra_attempts": "3"}).status_code == 404
    assert AccessChange.objects.count() == 0


@pytest.mark.parametrize("who", ["anonymous", "student", "other_instructor"])
def test_students_pages_are_refused_to_everyone_but_the_resources_instructors(course, who):
    teacher, resource = course
    student = launch(resource.consumer, user_id="s1")
    client = {
        "anonymous": Client(),
        "student": student,
        "other_instructor": launch(resource.consumer, user_id="t2", roles="Instructor", resource_link_id="res-x",
                                   context_id="course-2"),
    }[who]
    expected = 401 if who == "anonymous" else 403
    base = f"/resource/{resource.pk}/instructor/students/"
    assert client.get(base).status_code == expected
    assert client.get(f"{base}{student.membership.pk}/").status_code == expected
    assert client.post(f"{base}{student.membership.pk}/access/", {"extra_attempts": "5"}).status_code == expected
    assert AccessChange.objects.count() == 0


def test_the_chosen_identifier_names_students_and_finds_them(course, consumer):
    """The activity's settings choose the LMS username; the students page shows it under each
    name and a search for it finds the person; their page shows username and student number."""
    from lms.models import LtiIdentity

    teacher, resource = course
    ada = launch(consumer, user_id="s-ada", ext_user_username="alovelace", lis_person_sourcedid="S0001",
                 lis_person_name_full="Ada Lovelace")
    url = f"/resource/{resource.pk}/instructor/students/"
    settings_url = f"/resource/{resource.pk}/instructor/settings/"
    rows = {r["display_name"]: r for r in teacher.get(url).context["page"].object_list}
    assert rows["Ada Lovelace"]["identifier"] == ada.membership.user.email  # the LMS's default: e-mail

    form = teacher.get(f"/resource/{resource.pk}/instructor/").context["settings_form"]
    data = {name: value for name, value in form.initial.items() if value not in (None, False)}
    data = {k: (v.strftime("%Y-%m-%dT%H:%M") if hasattr(v, "strftime") else v) for k, v in data.items()}
    data.update(identifier_field="username", late_policy=data.get("late_policy", "accept"))
    response = teacher.post(settings_url, data)
    assert response.status_code == 302, response.content.decode()[:2000]

    response = teacher.get(url)
    rows = {r["display_name"]: r for r in response.context["page"].object_list}
    assert rows["Ada Lovelace"]["identifier"] == "alovelace"
    assert 'data-testid="identifier"' in response.content.decode() and "LMS username" in response.content.decode()
    assert names_on(teacher.get(url, {"q": "alovelace"})) == ["Ada Lovelace"]
    assert names_on(teacher.get(url, {"q": "S0001"})) == ["Ada Lovelace"]

    person = teacher.get(f"{url}{ada.membership.pk}/").content.decode()
    assert "alovelace" in person and "S0001" in person
    assert LtiIdentity.objects.get(lti_user_id="s-ada").username == "alovelace"
