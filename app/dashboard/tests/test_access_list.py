"""One access change for several students from the Students page: students ticked in the table
and a pasted list of usernames, e-mail addresses or LMS user ids. Those who have launched get it
at once; entries that match nobody yet wait as pending changes and apply at that person's first
LTI 1.1 launch; entries that cannot be applied are refused with the reason (issue 15, point 3)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from attempts import selectors as attempt_selectors
from attempts import services as attempt_services
from attempts.models import AccessChange, Attempt, IdentifierKind, PendingAccessChange
from attempts.tests.factories import launch, with_exam
from exams.models import ExamPackage
from lms.models import LtiIdentity, ResourceMembership
from tests.support import lms as test_lms

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(consumer):
    teacher = launch(consumer, user_id="teacher", roles="Instructor")
    resource = with_exam(teacher.membership.resource, max_attempts=1)
    ExamPackage.objects.filter(resource=resource).update(duration_seconds=30 * 60)
    return teacher, resource


def student(consumer, user_id, *, email=None, username=""):
    client = launch(consumer, user_id=user_id)
    LtiIdentity.objects.filter(user=client.membership.user).update(email=email or f"{user_id}@example.edu",
                                                                    username=username)
    return client


def first_launch(consumer, **params):
    """A student's first launch from the LMS (LTI 1.1), with the e-mail, username and user id given."""
    client = Client()
    response = client.post("/lti/launch/", test_lms.sign(test_lms.launch_params(**params), key=consumer.key,
                                                          secret=consumer.secret))
    assert response.status_code == 302, response.content
    return ResourceMembership.objects.get(user__lti_identity__lti_user_id=params["user_id"])


def url(resource, tail="access/"):
    return f"/resource/{resource.pk}/instructor/students/{tail}"


def written():
    return (list(AccessChange.objects.values_list("user_id", "extra_attempts", "extra_percent")),
            list(PendingAccessChange.objects.values_list("value", flat=True)))


def test_the_students_page_offers_ticking_students_and_pasting_a_list(course, consumer):
    teacher, resource = course
    ada = student(consumer, "ada")
    page = teacher.get(url(resource, ""))
    text = page.content.decode()
    assert page.status_code == 200
    assert f'name="students" value="{ada.membership.pk}" form="access-list-form"' in text
    assert f'value="{teacher.membership.pk}" form="access-list-form"' not in text  # instructors are not offered
    assert 'name="entries"' in text and 'name="kind"' in text and 'name="extra_percent"' in text


def test_ticked_students_and_a_pasted_list_applied_now_pending_or_refused(course, consumer):
    teacher, resource = course
    ada, bob = student(consumer, "ada"), student(consumer, "bob")
    cy = student(consumer, "cy", username="cy.lee")
    twin1, twin2 = student(consumer, "twin1", email="twins@example.edu"), student(consumer, "twin2",
                                                                                   email="twins@example.edu")
    LtiIdentity.objects.filter(user=teacher.membership.user).update(email="prof@example.edu")
    pasted = "CY.LEE\nnew.person@example.edu, lms-user-77\n\ntwins@example.edu;prof@example.edu\nnew.person@example.edu"

    response = teacher.post(url(resource), {
        "students": [str(ada.membership.pk), str(bob.membership.pk)], "entries": pasted, "kind": "any",
        "extra_percent": "50", "reason": "Learning support plans"})

    assert response.status_code == 200
    result = response.context["list_result"]
    assert sorted(result.applied) == sorted(
        [LtiIdentity.objects.get(user=m.membership.user).full_name for m in (ada, bob, cy)])
    assert result.pending == ["new.person@example.edu", "lms-user-77"]
    refused = dict(result.refused)
    assert "2 people match it" in refused["twins@example.edu"] and "instructor" in refused["prof@example.edu"]
    text = response.content.decode()
    assert "Applied to 3 students now." in text and "Pending for 2 entries" in text
    assert "2 people match it" in text
    changes = {c.user_id: c for c in AccessChange.objects.all()}
    assert set(changes) == {ada.membership.user_id, bob.membership.user_id, cy.membership.user_id}
    assert all(c.extra_percent == 50 and c.reason == "Learning support plans" and c.changed_by == teacher.membership.user
               for c in changes.values())
    assert not AccessChange.objects.filter(user__in=[twin1.membership.user, twin2.membership.user]).exists()
    pending = teacher.get(url(resource, "")).content.decode()
    assert "new.person@example.edu" in pending and "lms-user-77" in pending and "50% more exam time" in pending


@pytest.mark.parametrize("kind, entry, launch_params", [
    ("email", "New.Person@Example.edu", {"lis_person_contact_email_primary": "new.person@example.edu"}),
    ("username", "npers", {"ext_user_username": "NPers"}),
    ("user_id", "lms-user-77", {}),
    ("any", "npers", {"custom_username": "npers"}),
])
def test_a_pending_change_applies_at_the_first_lti_1p1_launch(course, consumer, kind, entry, launch_params):
    teacher, resource = course
    response = teacher.post(url(resource), {"entries": entry, "kind": kind, "extra_attempts": "2",
                                            "time_limit_off": "on", "reason": "EC-2291"})
    assert response.status_code == 200 and response.context["list_result"].pending == [entry]
    assert PendingAccessChange.objects.count() == 1

    someone_else = first_launch(consumer, user_id="other", lis_person_contact_email_primary="other@example.edu")
    assert not AccessChange.objects.filter(user=someone_else.user).exists()
    assert PendingAccessChange.objects.count() == 1

    membership = first_launch(consumer, user_id="lms-user-77", **launch_params)

    access = AccessChange.objects.get(resource=resource, user=membership.user)
    assert (access.extra_attempts, access.time_limit_off, access.reason) == (2, True, "EC-2291")
    assert access.changed_by == teacher.membership.user
    assert not PendingAccessChange.objects.exists()
    options = attempt_selectors.attempt_options(membership=membership)
    assert options.attempts_allowed == 3
    attempt = attempt_services.attempt_start(membership=membership)
    assert attempt.deadline_at is None  # no time limit, no closing time
    student_page = teacher.get(url(resource, f"{membership.pk}/")).content.decode()
    assert "no time limit" in student_page and "EC-2291" in student_page


def test_an_instructors_launch_does_not_take_a_pending_change(course, consumer):
    teacher, resource = course
    teacher.post(url(resource), {"entries": "ta@example.edu", "kind": "email", "extra_attempts": "1"})
    first_launch(consumer, user_id="ta", roles="Instructor", lis_person_contact_email_primary="ta@example.edu")
    assert not AccessChange.objects.exists() and PendingAccessChange.objects.count() == 1


def test_pending_changes_are_listed_and_removable_only_in_their_activity(course, consumer):
    teacher, resource = course
    teacher.post(url(resource), {"entries": "a@example.edu\nb@example.edu", "kind": "email", "extra_minutes": "10"})
    a, b = PendingAccessChange.objects.order_by("value_key")
    other_teacher = launch(consumer, user_id="teacher2", roles="Instructor", resource_link_id="res-2")
    other = other_teacher.membership.resource

    assert other_teacher.post(url(other, f"pending/{a.pk}/remove/")).status_code == 404
    assert teacher.post(url(resource, "pending/999999/remove/")).status_code == 404
    response = teacher.post(url(resource, f"pending/{a.pk}/remove/"), follow=True)
    assert response.status_code == 200 and "Pending access change removed." in response.content.decode()
    assert list(PendingAccessChange.objects.values_list("value", flat=True)) == ["b@example.edu"]
    assert teacher.get(url(resource, f"pending/{b.pk}/remove/")).status_code == 405

    first_launch(consumer, user_id="a", lis_person_contact_email_primary="a@example.edu")
    assert not AccessChange.objects.exists()


@pytest.mark.parametrize("data, message", [
    ({"students": ["{ada}"], "extra_attempts": "-1"}, "greater than or equal to 0"),
    ({"students": ["{ada}"], "extra_minutes": "100001"}, "less than or equal to 100000"),
    ({"students": ["{ada}"], "extra_percent": "99999999999999999999"}, "less than or equal to 1000"),
    ({"students": ["{ada}"], "extra_minutes": "10", "extra_percent": "10"}, "not both"),
    ({"students": ["{ada}"], "due_at": "tomorrow-ish"}, "valid date/time"),
    ({"students": ["{ada}", "abc"], "extra_attempts": "1"}, "valid choice"),
    ({"students": ["{ada}", "987654321"], "extra_attempts": "1"}, "not students of this activity"),
    ({"students": ["{teacher}"], "extra_attempts": "1"}, "not students of this activity"),
    ({"students": ["{elsewhere}"], "extra_attempts": "1"}, "not students of this activity"),
    ({"entries": "", "extra_attempts": "1"}, "Choose students or paste a list"),
    ({"entries": " ,\n ; ", "extra_attempts": "1"}, "Choose students or paste a list"),
    ({"entries": "x@example.edu", "kind": "fingerprint", "extra_attempts": "1"}, "valid choice"),
    ({"entries": "\n".join(f"s{i}" for i in range(10_000)), "extra_attempts": "1"}, "at most 1000 entries"),
    ({"entries": "\n".join(f"student{i:05d}@example.edu" for i in range(10_000))}, "at most 100000 characters"),
    ({"entries": "not-an-address", "kind": "email", "extra_attempts": "1"}, "Not an e-mail address"),
    ({"entries": "x" * 300, "extra_attempts": "1"}, "Too long"),
])
def test_bad_input_is_refused_with_a_message_and_writes_nothing(course, consumer, data, message):
    teacher, resource = course
    ada = student(consumer, "ada")
    elsewhere = launch(consumer, user_id="ada", resource_link_id="res-2")
    ids = {"{ada}": ada.membership.pk, "{teacher}": teacher.membership.pk, "{elsewhere}": elsewhere.membership.pk}
    if "students" in data:
        data = {**data, "students": [str(ids.get(s, s)) for s in data["students"]]}
    before = written()

    response = teacher.post(url(resource), data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert written() == before == ([], [])


def test_a_list_of_ten_thousand_lines_is_refused_quickly(course, consumer):
    """Bounded: the form counts the entries before anything is matched or written."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    teacher, resource = course
    entries = "\n".join(f"s{i}" for i in range(10_000))
    with CaptureQueriesContext(connection) as queries:
        response = teacher.post(url(resource), {"entries": entries, "extra_attempts": "1"})
    assert response.status_code == 400
    assert not any("pendingaccesschange" in q["sql"].lower() and "insert" in q["sql"].lower()
                   for q in queries.captured_queries)


def test_a_thousand_entries_are_applied_in_one_go(course, consumer):
    teacher, resource = course
    entries = "\n".join(f"student{i:04d}@example.edu" for i in range(1000))
    response = teacher.post(url(resource), {"entries": entries, "kind": "email", "extra_minutes": "5"})
    assert response.status_code == 200
    assert PendingAccessChange.objects.count() == 1000


def test_the_same_entry_again_replaces_its_pending_change(course):
    teacher, resource = course
    teacher.post(url(resource), {"entries": "Sam@Example.edu", "kind": "email", "extra_minutes": "5"})
    teacher.post(url(resource), {"entries": "sam@example.edu", "kind": "email", "extra_percent": "25"})
    [pending] = PendingAccessChange.objects.all()
    assert (pending.kind, pending.value_key, pending.extra_minutes, pending.extra_percent) == (
        IdentifierKind.EMAIL, "sam@example.edu", 0, 25)


def test_a_change_for_the_list_reaches_a_launched_students_open_attempt(course, consumer):
    teacher, resource = course
    ada = student(consumer, "ada", username="alovelace")
    attempt = attempt_services.attempt_start(membership=ada.membership)
    before = Attempt.objects.get(pk=attempt.pk).deadline_at
    assert teacher.post(url(resource), {"entries": "alovelace", "kind": "username", "extra_percent": "50"}
                        ).status_code == 200
    assert Attempt.objects.get(pk=attempt.pk).deadline_at == before + timedelta(minutes=15)
    numbas = ada.get(f"/attempt/{attempt.pk}/state/").json()["numbas"]
    assert (numbas["duration_extension.amount"], numbas["duration_extension.units"]) == ("50", "percent")


def test_a_course_list_student_keeps_their_own_access_page(course):
    """The single-student forms take the new fields too (own opening and due times)."""
    teacher, resource = course
    from attempts.tests.factories import launch as launch_

    ada = launch_(resource.consumer, user_id="ada")
    opens = timezone.localtime(timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = teacher.post(url(resource, f"{ada.membership.pk}/access/"),
                            {"available_from": opens, "due_at": "", "time_limit_off": "on", "reason": "ill"})
    assert response.status_code == 302
    change = AccessChange.objects.get()
    assert change.available_from is not None and change.time_limit_off and change.reason == "ill"
