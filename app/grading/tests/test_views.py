"""Who may use the grading page, and bad input refused with a message and no write."""

import pytest
from django.test import Client

from attempts.models import ResourceSettings
from attempts.tests.factories import launch
from grading.models import Discount, GradeReport, ReportState
from grading.tests.helpers import answer, start, student_with_exam


@pytest.fixture
def course(consumer):
    student = student_with_exam(consumer, user_id="s1")
    answer(start(student), 2, complete=True)
    instructor = launch(consumer, user_id="t1", roles="Instructor")
    other_instructor = launch(consumer, user_id="t2", roles="Instructor", resource_link_id="other", context_id="other")
    student_client = launch(consumer, user_id="s1")
    return {"resource": student.resource, "instructor": instructor, "other": other_instructor,
            "student": student_client, "anonymous": Client(), "report": GradeReport.objects.get()}


def endpoints(resource_id, report_id):
    base = f"/resource/{resource_id}/instructor/grades/"
    return [
        ("get", base, {}),
        ("post", base + "settings/", {"grading_method": "last", "report_when": "manual"}),
        ("post", base + "discounts/", {"target": "q0", "behaviour": "remove"}),
        ("post", base + "report-all/", {}),
        ("post", base + f"{report_id}/resend/", {}),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("who, status", [("anonymous", 401), ("student", 403), ("other", 403)])
def test_only_the_resources_instructors_may_use_the_grading_page(course, who, status):
    client = course[who]
    before = GradeReport.objects.values().get()
    for method, url, data in endpoints(course["resource"].pk, course["report"].pk):
        response = getattr(client, method)(url, data)
        assert response.status_code == status, (url, response.status_code)
    assert not Discount.objects.exists()
    settings_ = ResourceSettings.objects.get(resource=course["resource"])
    assert (settings_.grading_method, settings_.report_when) == ("highest", "completion")
    assert GradeReport.objects.values().get() == before


@pytest.mark.django_db
def test_the_instructor_sees_grades_and_changes_settings(course):
    client, resource = course["instructor"], course["resource"]
    page = client.get(f"/resource/{resource.pk}/instructor/grades/")
    assert page.status_code == 200 and "50\u00a0%".encode() in page.content and b"Question 1" in page.content
    response = client.post(f"/resource/{resource.pk}/instructor/grades/settings/",
                           {"grading_method": "last", "report_when": "manual", "email_receipt": "on"})
    assert response.status_code == 302
    settings_ = ResourceSettings.objects.get(resource=resource)
    assert (settings_.grading_method, settings_.report_when, settings_.email_receipt) == ("last", "manual", True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, data, message",
    [
        ("discounts/", {"target": "question 1", "behaviour": "remove"}, b"Choose a question"),
        ("discounts/", {"target": "q0", "behaviour": "half"}, b"Choose how the question counts"),
        ("discounts/", {}, b"required"),
        ("settings/", {"grading_method": "average", "report_when": "manual"}, b"Select a valid choice"),
        ("settings/", {"grading_method": "last"}, b"required"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_writes_nothing(course, url, data, message):
    resource = course["resource"]
    response = course["instructor"].post(f"/resource/{resource.pk}/instructor/grades/{url}", data)
    assert response.status_code == 400 and message in response.content
    assert not Discount.objects.exists()
    settings_ = ResourceSettings.objects.get(resource=resource)
    assert (settings_.grading_method, settings_.report_when) == ("highest", "completion")


@pytest.mark.django_db
def test_a_grade_of_another_resource_cannot_be_resent_from_this_one(course, consumer):
    other = student_with_exam(consumer, user_id="s9")  # same resource; make a second resource's report
    instructor_elsewhere = launch(consumer, user_id="t3", roles="Instructor", resource_link_id="res-2")
    resource_2 = instructor_elsewhere.membership.resource
    response = instructor_elsewhere.post(f"/resource/{resource_2.pk}/instructor/grades/{course['report'].pk}/resend/")
    assert response.status_code == 404
    assert GradeReport.objects.get(pk=course["report"].pk).state == ReportState.PENDING
    assert other.resource_id == course["resource"].pk


@pytest.mark.django_db
@pytest.mark.parametrize("show_score, shows_number", [("always", True), ("never", False)])
def test_the_student_sees_whether_their_grade_is_in_the_gradebook(course, show_score, shows_number):
    ResourceSettings.objects.filter(resource=course["resource"]).update(show_score=show_score)
    GradeReport.objects.update(state=ReportState.DELIVERED, sent_score=0.5, sent_version=1)
    page = course["student"].get(f"/resource/{course['resource'].pk}/").content.decode()
    assert "It is in your course&#x27;s gradebook" in page or "It is in your course's gradebook" in page
    assert ("50\u00a0%" in page) is shows_number
