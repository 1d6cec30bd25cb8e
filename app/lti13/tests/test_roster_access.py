"""Access changes for a student on the course list (LTI Names and Role Provisioning) who has
not launched yet: the instructor sets them from the students page, the person is provisioned
from the list ahead of their launch (no membership), and their first LTI 1.3 launch finds them
by their `sub`, so that the change applies. Against the independent test platform
(tests/support/lti13_platform.py): real launches through the tool's login and launch URLs, the
course list read from the platform's paged memberships endpoint."""

from __future__ import annotations

from html import unescape
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from attempts.models import AccessChange, Attempt
from attempts.tests.factories import with_exam
from lms import services as lms_services
from lms.models import Context, LtiIdentity, ResourceMembership
from lti13 import keys, services
from lti13.models import RosterMember
from tests.support.authz import snapshot, snapshot_diff
from tests.support.lti13_platform import ROLE_INSTRUCTOR, ROLE_LEARNER, ROLE_TEACHING_ASSISTANT, Lti13Platform

TOOL = "http://testserver"
COURSE, OTHER_COURSE = "course-1", "course-2"
MEMBERS = [
    {"user_id": "t-1", "roles": [ROLE_INSTRUCTOR], "name": "Tess Teacher", "email": "tess@example.edu"},
    {"user_id": "s-1", "name": "Ada Lovelace", "email": "ada@example.edu"},
    {"user_id": "s-2", "given_name": "Bob", "family_name": "Babbage", "email": "bob@example.edu"},
    {"user_id": "ta-1", "roles": [ROLE_TEACHING_ASSISTANT], "name": "Tom Assistant"},
]
OTHER_MEMBERS = [
    {"user_id": "t-2", "roles": [ROLE_INSTRUCTOR], "name": "Olga Other"},
    {"user_id": "s-9", "name": "Zed Elsewhere", "email": "zed@example.edu"},
]
User = get_user_model()


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # access tokens and locks of other tests' platforms
    yield
    cache.clear()


@pytest.fixture
def lms():
    with Lti13Platform(name="Test LMS") as platform:
        platform.max_page_size = 2  # the course list comes in pages
        platform.set_members(COURSE, MEMBERS)
        platform.set_members(OTHER_COURSE, OTHER_MEMBERS)
        yield platform


@pytest.fixture
def registered(lms, db):
    """The tool on the platform and the platform on the tool. The platform runs in another
    thread, which cannot see this test's uncommitted rows: it is given what our JWKS URL answers."""
    keys.signing_key()
    published = Client().get("/lti13/jwks/").json()
    lms.jwks_fetcher = lambda url: published
    lms.register_tool(login_url=TOOL + "/lti13/login/", redirect_uris=[TOOL + "/lti13/launch/"],
                      jwks_url=TOOL + "/lti13/jwks/")
    platform, _ = services.platform_create_or_update(
        values=services.PlatformValues(name="Test LMS", issuer=lms.issuer, client_id=lms.client_id,
                                       auth_login_url=lms.auth_url, auth_token_url=lms.token_url,
                                       keyset_url=lms.jwks_url),
        deployment_ids=[lms.deployment_id])
    return platform


def launch(lms: Lti13Platform, sub: str, *, roles=(ROLE_LEARNER,), course: str = COURSE,
           link: str = "exam-1") -> Client:
    """A 1.3 launch of the course's exam, through the tool's login and launch URLs."""
    client = Client()
    prepared = lms.prepare_launch(sub=sub, roles=list(roles), context=course, nrps=True,
                                  resource_link={"id": link, "title": "Numbas exam"})
    login = prepared.login_request()
    answer = client.post(login.path, login.params)
    assert answer.status_code == 302, text_of(answer)[:2000]
    redirect_uri, fields = lms.authorize_url(answer["Location"])
    answer = client.post(urlsplit(redirect_uri).path, fields)
    assert answer.status_code == 302, text_of(answer)[:2000]
    membership = ResourceMembership.objects.select_related("resource").get(
        user__lti_identity__sub=sub, resource__resource_link_id=link)
    client.resource, client.user = membership.resource, membership.user
    return client


def course(lti13_id: str = COURSE) -> Context:
    return Context.objects.get(lti13_id=lti13_id)


def listed(sub: str) -> RosterMember:
    return RosterMember.objects.get(user_id=sub)


def students_url(resource) -> str:
    return reverse("dashboard:students", args=[resource.pk])


def page_url(resource, member: RosterMember) -> str:
    return reverse("dashboard:roster_student", args=[resource.pk, member.pk])


def access_url(resource, member: RosterMember) -> str:
    return reverse("dashboard:roster_access", args=[resource.pk, member.pk])


def text_of(response) -> str:
    return unescape(response.content.decode())


def rows_named(response, name: str) -> list[dict]:
    return [row for row in response.context["page"].object_list if row["display_name"] == name]


@pytest.fixture
def teacher(lms, registered):
    """The course's instructor has launched its exam (one attempt allowed) and read its list."""
    client = launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    with_exam(client.resource, max_attempts=1)
    assert services.roster_sync(context=course()).ok
    return client


def test_extra_attempts_for_a_student_who_has_not_launched_apply_from_their_first_launch(lms, teacher):
    resource = teacher.resource
    ada = listed("s-1")
    listed_before = RosterMember.objects.filter(pk=ada.pk).values().get()
    users_before = User.objects.count()
    # The students page offers the change on Ada's row; her page says what the course list says.
    students = teacher.get(students_url(resource))
    assert page_url(resource, ada) in text_of(students)
    page = teacher.get(page_url(resource, ada))
    assert page.status_code == 200
    text = text_of(page)
    assert "Ada Lovelace" in text and "ada@example.edu" in text and "not launched yet" in text
    assert "1 attempt allowed" in text and f'action="{access_url(resource, ada)}"' in text

    answer = teacher.post(access_url(resource, ada), {"extra_attempts": "2", "reason": "Missed the first sitting"})

    assert answer.status_code == 302 and answer["Location"] == page_url(resource, ada)
    # Provisioned as her launch would make her, and the change is hers; nothing else about her.
    identity = LtiIdentity.objects.get(sub="s-1")
    assert (identity.lti_user_id, identity.consumer_id) == ("s-1", resource.consumer_id)
    assert (identity.full_name, identity.email) == ("Ada Lovelace", "ada@example.edu")
    assert User.objects.count() == users_before + 1
    change = AccessChange.objects.get()
    assert (change.resource_id, change.user_id, change.extra_attempts) == (resource.pk, identity.user_id, 2)
    assert change.reason == "Missed the first sitting" and change.changed_by == teacher.user
    assert not ResourceMembership.objects.filter(user=identity.user).exists()
    assert not Attempt.all_objects.filter(user=identity.user).exists()
    assert RosterMember.objects.filter(pk=ada.pk).values().get() == {**listed_before, "identity_id": identity.pk}
    page = teacher.get(page_url(resource, ada))
    assert "3 attempts allowed" in text_of(page) and "Changed by Tess Teacher" in text_of(page)
    # Still once on the students page: not launched yet, her access changed.
    students = teacher.get(students_url(resource))
    [row] = rows_named(students, "Ada Lovelace")
    assert row["pk"] is None and row["has_access_change"] and row["roster_id"] == ada.pk
    assert "access changed" in text_of(students)
    assert students.context["not_launched"] == 2  # Ada and Bob

    # Her first launch finds her: one identity, one user, and her three attempts.
    student = launch(lms, "s-1")

    assert student.user == identity.user and User.objects.count() == users_before + 1
    assert LtiIdentity.objects.filter(sub="s-1").count() == 1
    assert "Attempt 1 of 3." in text_of(student.get(f"/resource/{resource.pk}/"))
    for number in (1, 2, 3):
        started = student.post(f"/resource/{resource.pk}/attempts/start/")
        attempt = Attempt.objects.get(user=student.user, number=number)
        assert started.status_code == 302 and started["Location"] == f"/attempt/{attempt.pk}/"
        Attempt.objects.filter(pk=attempt.pk).update(ended_at=timezone.now())
    refused = student.post(f"/resource/{resource.pk}/attempts/start/", follow=True)
    assert "You have used all 3 attempts allowed." in text_of(refused)
    assert Attempt.objects.filter(user=student.user).count() == 3
    # Now she is a student who launched, still once, her change kept.
    membership = ResourceMembership.objects.get(user=student.user, resource=resource)
    [row] = rows_named(teacher.get(students_url(resource)), "Ada Lovelace")
    assert row["pk"] == membership.pk and row["has_access_change"] and row["attempt_count"] == 3
    moved = teacher.get(page_url(resource, ada))
    assert moved.status_code == 302
    assert moved["Location"] == reverse("dashboard:student", args=[resource.pk, membership.pk])


def test_a_person_known_already_is_not_provisioned_again(lms, teacher):
    # Bob launched another activity of the course: he is known, with no membership of this one.
    launch(lms, "s-2", link="exam-2")
    bob = LtiIdentity.objects.get(sub="s-2")
    users_before = User.objects.count()

    answer = teacher.post(access_url(teacher.resource, listed("s-2")), {"extra_minutes": "30"})

    assert answer.status_code == 302 and User.objects.count() == users_before
    assert AccessChange.objects.get().user == bob.user and listed("s-2").identity == bob
    assert not ResourceMembership.objects.filter(user=bob.user, resource=teacher.resource).exists()
    [row] = rows_named(teacher.get(students_url(teacher.resource)), "Bob Babbage")
    assert row["pk"] is None and row["has_access_change"]


def test_a_person_known_from_lti_1p1_is_taken_up_not_duplicated(lms, teacher):
    # Carol launched an activity of this LMS with LTI 1.1 under the id the course list gives
    # (as Moodle does): the list links her, and so does her first 1.3 launch.
    carol_user = User.objects.create(username="lti-legacy-carol")
    carol = LtiIdentity.objects.create(consumer=teacher.resource.consumer, lti_user_id="s-3", user=carol_user)
    lms.set_members(COURSE, MEMBERS + [{"user_id": "s-3", "name": "Carol Shaw"}])
    assert services.roster_sync(context=course()).ok
    users_before = User.objects.count()

    answer = teacher.post(access_url(teacher.resource, listed("s-3")), {"extra_attempts": "2"})

    assert answer.status_code == 302 and User.objects.count() == users_before
    assert AccessChange.objects.get().user == carol_user and listed("s-3").identity == carol
    student = launch(lms, "s-3")
    assert student.user == carol_user and LtiIdentity.objects.get(pk=carol.pk).sub == "s-3"
    assert "Attempt 1 of 3." in text_of(student.get(f"/resource/{teacher.resource.pk}/"))


def test_saving_no_change_provisions_nobody_and_clearing_a_change_removes_it(lms, teacher):
    ada = listed("s-1")
    users_before = User.objects.count()

    empty = teacher.post(access_url(teacher.resource, ada), {"extra_attempts": "0", "reason": "nothing yet"})

    assert empty.status_code == 302 and User.objects.count() == users_before
    assert not AccessChange.objects.exists() and listed("s-1").identity is None

    teacher.post(access_url(teacher.resource, ada), {"extra_attempts": "2"})
    cleared = teacher.post(access_url(teacher.resource, ada), {"extra_attempts": "0"}, follow=True)

    assert cleared.status_code == 200 and not AccessChange.objects.exists()
    assert "1 attempt allowed" in text_of(cleared)
    [row] = rows_named(teacher.get(students_url(teacher.resource)), "Ada Lovelace")
    assert row["pk"] is None and not row["has_access_change"]


def test_two_provisionings_at_once_give_one_person(lms, teacher, monkeypatch):
    """The unique constraints decide: the one who loses the race gets the winner's identity."""
    ada = listed("s-1")
    winner = lms_services.identity_provision(consumer=teacher.resource.consumer, sub="s-1", full_name="Ada")
    looked_up = lms_services._identity_of_sub
    calls = []

    def not_there_yet(**kwargs):  # as if the winner had not committed when the loser looked
        calls.append(kwargs)
        return None if len(calls) == 1 else looked_up(**kwargs)

    monkeypatch.setattr(lms_services, "_identity_of_sub", not_there_yet)

    answer = teacher.post(access_url(teacher.resource, ada), {"extra_attempts": "1"})

    assert answer.status_code == 302 and len(calls) == 2
    assert LtiIdentity.objects.filter(sub="s-1").count() == 1 and AccessChange.objects.get().user == winner.user
    assert listed("s-1").identity == winner


def test_a_student_of_another_course_or_someone_who_teaches_is_not_found(lms, teacher):
    launch(lms, "t-2", roles=[ROLE_INSTRUCTOR], course=OTHER_COURSE, link="exam-9")
    assert services.roster_sync(context=course(OTHER_COURSE)).ok
    before = snapshot()

    for member in (listed("s-9"), listed("ta-1"), listed("t-1")):
        assert teacher.get(page_url(teacher.resource, member)).status_code == 404, member
        assert teacher.post(access_url(teacher.resource, member), {"extra_attempts": "2"}).status_code == 404
    gone = reverse("dashboard:roster_student", args=[teacher.resource.pk, 10**12])
    assert teacher.get(gone).status_code == 404

    assert not snapshot_diff(before, snapshot())
    assert not LtiIdentity.objects.filter(sub="s-9").exists()


def test_only_the_activitys_instructors_may_change_access(lms, teacher):
    student = launch(lms, "s-2")
    ada = listed("s-1")
    before = snapshot()

    assert student.get(page_url(teacher.resource, ada)).status_code == 403
    assert student.post(access_url(teacher.resource, ada), {"extra_attempts": "2"}).status_code == 403
    assert Client().post(access_url(teacher.resource, ada), {"extra_attempts": "2"}).status_code == 401
    strict = Client(enforce_csrf_checks=True)  # the instructor's form is CSRF-protected too
    strict.cookies = teacher.cookies
    assert strict.post(access_url(teacher.resource, ada), {"extra_attempts": "2"}).status_code == 403
    assert teacher.get(access_url(teacher.resource, ada)).status_code == 405

    assert not snapshot_diff(before, snapshot())
    assert not LtiIdentity.objects.filter(sub="s-1").exists() and listed("s-1").identity is None


@pytest.mark.parametrize("data, message", [
    ({"extra_attempts": "-1"}, "greater than or equal to 0"),
    ({"extra_attempts": "lots"}, "Enter a whole number."),
    ({"extra_minutes": "100001"}, "less than or equal to"),
    ({"available_until": "next Tuesday"}, "Enter a valid date/time."),
    ({"extra_attempts": "1", "reason": "x" * 501}, "at most 500 characters"),
], ids=["negative", "not-a-number", "too-long-an-extension", "not-a-time", "too-long-a-reason"])
def test_bad_input_is_refused_with_a_message_and_nothing_is_written(lms, teacher, data, message):
    ada = listed("s-1")
    before = snapshot()

    answer = teacher.post(access_url(teacher.resource, ada), data)

    assert answer.status_code == 400 and message in text_of(answer)
    assert 'data-testid="access-error"' in text_of(answer) and "Ada Lovelace" in text_of(answer)
    assert not snapshot_diff(before, snapshot())
    assert not LtiIdentity.objects.filter(sub="s-1").exists()
