"""The course list (LTI Names and Role Provisioning Services 2.0), against the independent test
platform (tests/support/lti13_platform.py): real 1.3 launches through the tool's login and
launch URLs, the platform's token endpoint checking our client assertion against our key set,
and its paged memberships endpoint checking the Bearer token."""

from __future__ import annotations

from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from lms.models import Context, LtiIdentity, ResourceMembership
from lti13 import keys, nrps, services
from lti13.models import Roster, RosterMember, RosterStatus
from tests.support.lti13_platform import (
    AGS_SCOPES, ROLE_INSTRUCTOR, ROLE_LEARNER, ROLE_TEACHING_ASSISTANT, Lti13Platform,
)

TOOL = "http://testserver"
COURSE = "course-1"

#: Seven members: two who teach (an instructor and a teaching assistant) and five students,
#: one of whom the LMS marks inactive.
MEMBERS = [
    {"user_id": "t-1", "roles": [ROLE_INSTRUCTOR], "name": "Tess Teacher", "email": "tess@example.edu"},
    {"user_id": "s-1", "name": "Ada Lovelace", "email": "ada@example.edu"},
    {"user_id": "s-2", "given_name": "Bob", "family_name": "Babbage", "email": "bob@example.edu"},
    {"user_id": "s-3", "name": "Carol Shaw", "email": "carol@example.edu"},
    {"user_id": "ta-1", "roles": [ROLE_TEACHING_ASSISTANT], "name": "Tom Assistant"},
    {"user_id": "s-4", "name": "Dan Inactive", "email": "dan@example.edu", "status": "Inactive"},
    {"user_id": "s-5", "name": "Eve Newcomer", "email": "eve@example.edu"},
]
STUDENTS = {"Ada Lovelace", "Bob Babbage", "Carol Shaw", "Dan Inactive", "Eve Newcomer"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # access tokens and locks of other tests' platforms
    yield
    cache.clear()


@pytest.fixture
def lms():
    with Lti13Platform(name="Test LMS") as platform:
        platform.max_page_size = 3  # 7 members: 3 pages
        platform.set_members(COURSE, MEMBERS)
        yield platform


def register(lms: Lti13Platform, *, jwks_url: str = TOOL + "/lti13/jwks/", allowed_scopes=None):
    """The tool on the platform and the platform on the tool, as their administrators would."""
    lms.register_tool(login_url=TOOL + "/lti13/login/", redirect_uris=[TOOL + "/lti13/launch/"], jwks_url=jwks_url,
                      **({"allowed_scopes": allowed_scopes} if allowed_scopes is not None else {}))
    platform, _ = services.platform_create_or_update(
        values=services.PlatformValues(name="Test LMS", issuer=lms.issuer, client_id=lms.client_id,
                                       auth_login_url=lms.auth_url, auth_token_url=lms.token_url,
                                       keyset_url=lms.jwks_url),
        deployment_ids=[lms.deployment_id])
    return platform


@pytest.fixture
def tool_jwks_fetched():
    """Where the platform fetched the tool's keys from (the platform runs in another thread,
    which cannot see this test's uncommitted rows: it is given what our JWKS URL answers)."""
    return []


@pytest.fixture
def registered(lms, db, tool_jwks_fetched):
    keys.signing_key()
    published = Client().get("/lti13/jwks/")
    assert published.status_code == 200

    def fetch(url):
        tool_jwks_fetched.append(url)
        assert url == TOOL + "/lti13/jwks/"
        return published.json()

    lms.jwks_fetcher = fetch
    return register(lms)


def launch(lms: Lti13Platform, sub: str, *, roles=(ROLE_LEARNER,), nrps_claim: bool = True,
           client: Client | None = None) -> Client:
    """A 1.3 launch of the exam in COURSE, through the tool's login and launch URLs."""
    client = client or Client()
    prepared = lms.prepare_launch(sub=sub, roles=list(roles), context=COURSE, nrps=True if nrps_claim else None,
                                  resource_link={"id": "exam-1", "title": "Numbas exam"})
    login = prepared.login_request()
    answer = client.post(login.path, login.params)
    assert answer.status_code == 302, text_of(answer)[:2000]
    redirect_uri, fields = lms.authorize_url(answer["Location"])
    answer = client.post(urlsplit(redirect_uri).path, fields)
    assert answer.status_code == 302, text_of(answer)[:2000]
    client.resource_id = ResourceMembership.objects.get(user__lti_identity__sub=sub).resource_id
    return client


def course() -> Context:
    return Context.objects.get(lti13_id=COURSE)


def students_url(client) -> str:
    return f"/resource/{client.resource_id}/instructor/students/"


def membership_requests(lms) -> list:
    return [r for r in lms.service_requests if r.kind == "memberships"]


def text_of(response) -> str:
    return unescape(response.content.decode())


def rows_of(response) -> dict[str, dict]:
    return {row["display_name"]: row for row in response.context["page"].object_list}


# --- reading and storing ------------------------------------------------------------------------


def test_a_course_list_of_seven_over_three_pages_is_stored_once_each(lms, registered, tool_jwks_fetched):
    teacher = launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    assert course().nrps_url == lms.memberships_url(COURSE)

    result = services.roster_sync(context=course())

    assert result.ok and result.complete, result.error
    assert (result.members, result.added, result.kept, result.removed) == (7, 7, 0, 0)
    stored = RosterMember.objects.filter(context=course())
    assert sorted(stored.values_list("user_id", flat=True)) == sorted(m["user_id"] for m in MEMBERS)
    # Three pages, each with the token the platform issued for the NRPS scope (and only that).
    pages = membership_requests(lms)
    assert len(pages) == 3 and all(r.status == 200 for r in pages)
    [token] = [t for t in lms.token_requests if t.accepted]
    assert token.granted_scopes == (nrps.SCOPE,)
    assert token.assertion_claims["iss"] == lms.client_id and tool_jwks_fetched == [TOOL + "/lti13/jwks/"]
    assert all(r.headers.get("Authorization") == f"Bearer {token.access_token}" for r in pages)
    # What each member is.
    bob = stored.get(user_id="s-2")
    assert (bob.given_name, bob.family_name, bob.email, bob.is_instructor) == ("Bob", "Babbage", "bob@example.edu",
                                                                              False)
    assert stored.get(user_id="ta-1").is_instructor and stored.get(user_id="t-1").is_instructor
    assert stored.get(user_id="s-4").status == RosterStatus.INACTIVE
    # The instructor has launched: linked. The others have not.
    assert stored.get(user_id="t-1").identity == LtiIdentity.objects.get(sub="t-1")
    assert stored.filter(identity__isnull=False).count() == 1
    roster = Roster.objects.get(context=course())
    assert roster.member_count == 7 and roster.source_url == lms.memberships_url(COURSE) and not roster.last_error
    assert teacher.get(students_url(teacher)).status_code == 200


def test_students_who_never_launched_are_on_the_students_page(lms, registered):
    teacher = launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    services.roster_sync(context=course())

    response = teacher.get(students_url(teacher))

    assert response.status_code == 200
    rows = rows_of(response)
    # The five students, not launched yet; the teaching assistant is not listed as a student.
    assert STUDENTS <= set(rows) and "Tom Assistant" not in rows
    for name in STUDENTS:
        assert rows[name]["pk"] is None and rows[name]["attempt_count"] == 0 and rows[name]["grade"] is None
    assert rows["Ada Lovelace"]["email"] == "ada@example.edu"
    assert rows["Dan Inactive"]["roster_status"] == RosterStatus.INACTIVE
    text = text_of(response)
    assert text.count('data-testid="not-launched"') == 5 and "inactive in the LMS" in text
    assert "Read from Test LMS (LTI Names and Role Provisioning): 7 people in the course." in text
    assert "5 students have not opened this activity yet." in text
    fetched_at = timezone.localtime(Roster.objects.get().fetched_at)
    assert f'datetime="{fetched_at.isoformat(timespec="seconds")}"' in text and 'data-testid="roster-refresh"' in text
    # Search and sorting cover them too.
    found = teacher.get(students_url(teacher), {"q": "babbage"})
    assert list(rows_of(found)) == ["Bob Babbage"]
    ordered = [name for name in rows_of(teacher.get(students_url(teacher), {"sort": "name", "dir": "desc"}))
               if name in STUDENTS]
    assert ordered == sorted(STUDENTS, reverse=True)
    for sort in ("attempts", "grade", "delivery", "activity"):
        assert teacher.get(students_url(teacher), {"sort": sort}).status_code == 200


def test_a_member_who_launches_later_is_linked_and_listed_once(lms, registered):
    teacher = launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    services.roster_sync(context=course())
    assert RosterMember.objects.get(user_id="s-5").identity is None

    eve = launch(lms, "s-5")

    member = RosterMember.objects.get(user_id="s-5")
    assert member.identity == LtiIdentity.objects.get(sub="s-5")
    assert eve.get(students_url(eve)).status_code == 403  # a student, not an instructor
    rows = teacher.get(students_url(teacher)).context["page"].object_list
    eves = [row for row in rows if row["display_name"] == "Eve Newcomer"]
    assert len(eves) == 1 and eves[0]["pk"] == ResourceMembership.objects.get(user=member.identity.user).pk
    assert len([row for row in rows if row["pk"] is None]) == 4


def test_a_second_read_removes_whom_the_lms_dropped_and_updates_the_rest(lms, registered):
    launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    services.roster_sync(context=course())
    lms.set_members(COURSE, [dict(m, name="Ada King") if m["user_id"] == "s-1" else m
                             for m in MEMBERS if m["user_id"] != "s-3"])

    result = services.roster_sync(context=course())

    assert result.ok and (result.members, result.added, result.kept, result.removed) == (6, 0, 6, 1)
    assert not RosterMember.objects.filter(user_id="s-3").exists()
    assert RosterMember.objects.get(user_id="s-1").name == "Ada King"
    assert Roster.objects.get().member_count == 6


def test_a_read_cut_short_by_its_bounds_keeps_everyone(lms, registered):
    launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    services.roster_sync(context=course())
    # s-1 leaves, s-6 joins: listed last, on the third page.
    lms.set_members(COURSE, [m for m in MEMBERS if m["user_id"] != "s-1"] + [{"user_id": "s-6", "name": "Fay"}])

    result = services.roster_sync(context=course(), limits=nrps.Limits(pages=2))

    assert result.ok and not result.complete and result.removed == 0
    assert RosterMember.objects.filter(user_id="s-1").exists()  # not seen, kept
    assert not RosterMember.objects.filter(user_id="s-6").exists()  # on the third page: not read
    assert len(membership_requests(lms)) == 3 + 2
    assert not Roster.objects.get().complete


def test_what_the_lms_lists_is_kept_only_as_far_as_it_is_sound(lms, registered):
    launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    lms.set_members(COURSE, MEMBERS + [
        {"user_id": "s-7", "name": "  Odd  " + "x" * 600, "email": "not an address",
         "roles": [ROLE_LEARNER, 42, {"role": "Instructor"}], "lti11_legacy_user_id": ["not", "text"]},
    ])

    result = services.roster_sync(context=course())

    assert result.ok and result.members == 8
    odd = RosterMember.objects.get(user_id="s-7")
    assert odd.name == "Odd  " + "x" * 495 and odd.email == "" and odd.legacy_user_id == ""
    assert odd.roles == ROLE_LEARNER and not odd.is_instructor


# --- when the LMS says no, or is not there --------------------------------------------------------


def _refuse_token(lms):
    lms.expire_tokens()  # the cached token is refused (401); a new one is asked for and refused
    register(lms, allowed_scopes=AGS_SCOPES)


@pytest.mark.parametrize("trouble, code, words", [
    (_refuse_token, "token_refused", "refused this tool an access token"),
    (lambda lms: lms.fail("503", on="memberships"), "members_failed", "could not list this course's members"),
    (lambda lms: lms.fail("401", on="memberships"), "members_refused", "refused to list this course's members"),
    (lambda lms: lms.stop(), "unreachable", "could not be reached"),
], ids=["token-refused", "lms-error", "token-revoked", "lms-down"])
def test_trouble_is_told_to_the_instructor_and_nothing_is_lost(lms, registered, trouble, code, words):
    teacher = launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    services.roster_sync(context=course())
    fetched_at = Roster.objects.get().fetched_at
    trouble(lms)

    result = services.roster_sync(context=course())

    assert not result.ok and result.code == code and words in result.error, result
    assert RosterMember.objects.count() == 7
    roster = Roster.objects.get()
    assert roster.fetched_at == fetched_at and roster.member_count == 7 and roster.last_error == result.error
    # The button says so too, and the page still lists the course list's students.
    answer = teacher.post(students_url(teacher) + "course-list/", follow=True)
    assert answer.status_code == 200 and words in text_of(answer)
    assert answer.redirect_chain == [(students_url(teacher), 302)]
    assert STUDENTS <= set(rows_of(answer))
    assert "The latest try to read it" in text_of(answer)


def test_a_course_without_the_nrps_claim_has_no_list_to_read(lms, registered):
    teacher = launch(lms, "t-1", roles=[ROLE_INSTRUCTOR], nrps_claim=False)

    result = services.roster_sync(context=course())

    assert result.code == "no_service" and "has not offered this course's list" in result.error
    assert not Roster.objects.exists() and not lms.token_requests
    page = teacher.get(students_url(teacher)).content.decode()
    assert 'data-testid="roster"' not in page
    answer = teacher.post(students_url(teacher) + "course-list/", follow=True)
    assert "has not offered this course's list" in text_of(answer)


def test_an_lms_on_a_private_address_is_not_called(lms, registered, settings):
    launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    settings.OUTBOUND_ALLOWED_NETWORKS = []

    result = services.roster_sync(context=course())

    assert result.code == "refused_destination" and "loopback address" in result.error
    assert not lms.token_requests


# --- the refresh button ----------------------------------------------------------------------------


def test_the_instructors_refresh_button_reads_the_list(lms, registered):
    teacher = launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])

    answer = teacher.post(students_url(teacher) + "course-list/", follow=True)

    assert answer.status_code == 200
    assert "Course list read from the LMS: 7 people, 7 new, 0 no longer listed." in text_of(answer)
    assert RosterMember.objects.count() == 7 and len(membership_requests(lms)) == 3
    assert teacher.get(students_url(teacher) + "course-list/").status_code == 405


def test_only_the_courses_instructors_may_refresh_the_list(lms, registered):
    teacher = launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    student = launch(lms, "s-1")
    url = students_url(teacher) + "course-list/"

    assert student.post(url).status_code == 403
    assert Client().post(url).status_code == 401
    assert not membership_requests(lms) and not RosterMember.objects.exists()
    # Instructor POSTs are CSRF-protected like every other form.
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = teacher.cookies
    assert strict.post(url).status_code == 403 and not membership_requests(lms)


# --- after a launch ----------------------------------------------------------------------------------


def test_a_launch_with_the_claim_has_an_old_list_read_in_the_background(lms, registered,
                                                                        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # Huey runs tasks at once in the tests
        launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])
    assert RosterMember.objects.count() == 7 and len(membership_requests(lms)) == 3

    with django_capture_on_commit_callbacks(execute=True):
        launch(lms, "s-1")  # the list is fresh: not read again
    assert len(membership_requests(lms)) == 3
    assert RosterMember.objects.get(user_id="s-1").identity is not None  # linked by the launch

    Roster.objects.update(tried_at=timezone.now() - timedelta(hours=2))
    cache.clear()  # the launches' "queued already" marks
    with django_capture_on_commit_callbacks(execute=True):
        launch(lms, "s-2")
    assert len(membership_requests(lms)) == 6


def test_a_launch_without_the_claim_reads_nothing(lms, registered, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        launch(lms, "t-1", roles=[ROLE_INSTRUCTOR], nrps_claim=False)
    assert not lms.token_requests and not Roster.objects.exists()


# --- with the tool on a live server: the platform fetches our key set itself --------------------------


@pytest.mark.django_db(transaction=True)
def test_the_lms_checks_our_token_request_against_our_published_keys(lms, live_server):
    register(lms, jwks_url=live_server.url + "/lti13/jwks/")

    launch(lms, "t-1", roles=[ROLE_INSTRUCTOR])  # its background read runs at once (Huey immediate)

    [token] = lms.token_requests
    assert token.accepted, token.reason
    assert lms.tool_jwks_fetches == 1
    assert RosterMember.objects.filter(context=course()).count() == 7
