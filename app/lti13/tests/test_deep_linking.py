"""LTI Deep Linking 2.0, driven by the independent test platform (tests/support/lti13_platform.py)
through the OIDC login, the launch, the picker and the signed answer; then resource link
launches from the links the answers made."""

from __future__ import annotations

import functools
import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from attempts.models import Attempt
from exams.demo import demo_exam_zip
from lms.models import Context, Resource, ResourceAlias, ResourceMembership
from lti13 import keys, services
from lti13.models import DeepLinkingRequest, LoginState
from tests.support.lti13_platform import (
    CLAIM_DEPLOYMENT_ID, CLAIM_DL_CONTENT_ITEMS, CLAIM_DL_DATA, CLAIM_MESSAGE_TYPE, MSG_DEEP_LINKING,
    MSG_RESOURCE_LINK, ROLE_INSTITUTION_ADMINISTRATOR, ROLE_INSTRUCTOR, ROLE_LEARNER, ROLE_MENTOR, DeepLinkError,
    Lti13Platform, SigningKey, decode_jwt_unverified, parse_form)

pytestmark = pytest.mark.django_db

TOOL = "http://testserver"
LAUNCH_URL = TOOL + "/lti13/launch/"
COURSE = {"id": "course-1", "title": "Linear algebra", "label": "MATH101"}


@pytest.fixture(autouse=True)
def _outbound_session(monkeypatch):
    """lti13.launch asks core.outbound for a requests session, which this branch's core.outbound
    does not make yet (the AGS work adds it). The platforms here give their keys as a stored
    keyset, so nothing is fetched: any session will do."""
    from core import outbound

    if not hasattr(outbound, "requests_session"):
        import requests

        monkeypatch.setattr(outbound, "requests_session", requests.Session, raising=False)


_make_tool_key = keys._new_key_material


@functools.lru_cache(maxsize=None)
def _key(name: str):
    """RSA keys made once per test run (making one takes a good part of a second)."""
    return SigningKey.generate() if name.startswith("platform") else _make_tool_key()


@pytest.fixture(autouse=True)
def _tool_key_made_once(monkeypatch):
    monkeypatch.setattr(keys, "_new_key_material", lambda: _key("tool"))


def _connect(lms: Lti13Platform, *, name: str = "Test LMS"):
    """Register the tool in the platform and the platform in the tool (keys stored, one deployment)."""
    lms.register_tool(login_url=TOOL + "/lti13/login/", redirect_uris=[LAUNCH_URL], jwks_url=TOOL + "/lti13/jwks/")
    lms.jwks_fetcher = lambda url: json.loads(Client().get(urlsplit(url).path).content)
    platform, _ = services.platform_create_or_update(
        values=services.PlatformValues(name=name, issuer=lms.issuer, client_id=lms.client_id,
                                       auth_login_url=lms.auth_url, keyset=lms.jwks()),
        deployment_ids=[lms.deployment_id])
    return platform


@pytest.fixture
def lms():
    with Lti13Platform(client_id="numbas-tool", deployment_id="dep-1", signing_key=_key("platform-1")) as platform:
        platform.tool_platform_record = _connect(platform)
        yield platform


@pytest.fixture
def other_lms():
    """Another LMS (another issuer, so another consumer)."""
    with Lti13Platform(client_id="numbas-tool-2", deployment_id="dep-9", signing_key=_key("platform-2")) as platform:
        platform.tool_platform_record = _connect(platform, name="Other LMS")
        yield platform


def oidc_launch(client: Client, lms: Lti13Platform, message_type: str, **token_kwargs):
    """Login → the platform's authorization → the id_token posted to the launch URL."""
    prepared = lms.prepare_launch(message_type, **token_kwargs)
    login = prepared.login_request()
    answer = client.post(login.path, login.params)
    assert answer.status_code == 302, answer.content[:500]
    redirect_uri, fields = lms.authorize_url(answer["Location"])
    assert redirect_uri == LAUNCH_URL
    return client.post(urlsplit(redirect_uri).path, fields)


def deep_link(client: Client, lms: Lti13Platform, *, sub: str = "teacher-1", roles=(ROLE_INSTRUCTOR,),
              context=COURSE, **token_kwargs):
    """A deep linking request of an instructor; the picker page it answers with."""
    return oidc_launch(client, lms, MSG_DEEP_LINKING, sub=sub, roles=list(roles), context=context, **token_kwargs)


def picker_token(page, *, status: int = 200) -> str:
    assert page.status_code == status, page.content[:1000]
    match = re.search(rb'name="token" value="([^"]+)"', page.content)
    assert match, page.content[:1000]
    return match.group(1).decode()


def choose(client: Client, token: str, *, activity: str = "new", title: str = ""):
    return client.post("/lti13/deep-linking/", {"token": token, "activity": activity, "title": title})


def returned(page) -> tuple[str, str]:
    """(the platform's return URL, the JWT) of the page that auto-posts the answer."""
    assert page.status_code == 200, page.content[:1000]
    action, method, fields = parse_form(page.content)
    assert method == "POST"
    return action, fields["JWT"]


def resource_launch(client: Client, lms: Lti13Platform, *, link_id: str, custom: dict | None,
                    sub: str = "student-1", roles=(ROLE_LEARNER,), context=COURSE, title: str = "Week 1 quiz"):
    answer = oidc_launch(client, lms, MSG_RESOURCE_LINK, sub=sub, roles=list(roles), context=context,
                         resource_link={"id": link_id, "title": title}, custom=custom)
    assert answer.status_code == 302, answer.content[:1000]
    return answer


def landed_on(answer) -> int:
    match = re.match(r"^/resource/(\d+)/", answer["Location"])
    assert match, answer["Location"]
    return int(match.group(1))


def new_activity_link(lms: Lti13Platform, *, title: str = "Week 1 quiz", context=COURSE) -> dict:
    """An instructor's deep link to a new activity: the content item the platform received."""
    client = Client()
    token = picker_token(deep_link(client, lms, context=context))
    _, jwt = returned(choose(client, token, title=title))
    [item] = lms.verify_deep_link_response(jwt)
    return item


# --- the round trip ------------------------------------------------------------------------------


def test_an_instructor_links_a_new_activity_and_its_launches_land_on_it(lms):
    client = Client()
    settings = lms.deep_linking_settings(title="Suggested title")
    picker = deep_link(client, lms, deep_linking_settings=settings)
    assert b'data-testid="choice-new"' in picker.content and b"Suggested title" in picker.content
    assert b'data-testid="no-activities"' in picker.content  # a course without activities yet
    assert not Resource.objects.exists()  # nothing made until the instructor chooses

    return_url, jwt = returned(choose(client, picker_token(picker), title="Week 1 quiz"))

    # The answer: verified by the platform against the tool's JWKS URL, with the library's claims.
    assert return_url == settings["deep_link_return_url"]
    [item] = lms.verify_deep_link_response(jwt, expected_data=settings["data"])
    header, claims = decode_jwt_unverified(jwt)
    assert header["alg"] == "RS256" and header["kid"] == keys.signing_key().kid
    assert claims["iss"] == lms.client_id
    assert claims["aud"] in (lms.issuer, [lms.issuer])
    assert claims[CLAIM_DEPLOYMENT_ID] == "dep-1"
    assert claims[CLAIM_MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    assert claims["nonce"] and claims[CLAIM_DL_DATA] == settings["data"]
    assert claims[CLAIM_DL_CONTENT_ITEMS] == [item]
    resource = Resource.objects.get()
    assert item == {
        "type": "ltiResourceLink", "title": "Week 1 quiz", "url": LAUNCH_URL,
        "custom": {"numbas_activity": str(resource.pk)},
        "lineItem": {"scoreMaximum": 100, "label": "Week 1 quiz", "resourceId": str(resource.pk), "tag": "numbas-lti"},
    }
    # The new activity: in the course (made now), waiting for its first launch.
    assert resource.title == "Week 1 quiz" and resource.lti13_id is None
    assert resource.context == Context.objects.get(lti13_id="course-1", title="Linear algebra")
    ask = DeepLinkingRequest.objects.get()
    assert ask.used_at is not None and ask.resource == resource and ask.sub == "teacher-1"
    assert LoginState.objects.get().used_at is not None

    # The platform makes the link; its instructor's first launch lands on the activity, which
    # takes an exam as any other.
    teacher = Client()
    answer = resource_launch(teacher, lms, link_id="link-A", custom=item["custom"], sub="teacher-1",
                             roles=[ROLE_INSTRUCTOR])
    assert answer["Location"].startswith(f"/resource/{resource.pk}/instructor/")
    assert teacher.get(answer["Location"]).status_code == 200
    upload = teacher.post(f"/resource/{resource.pk}/instructor/exam/",
                          {"package": _zip_upload()})
    assert upload.status_code == 201, upload.content
    resource.refresh_from_db()
    assert resource.lti13_id == "link-A"  # the first link owns it

    # A student's launch from the link lands there too.
    assert landed_on(resource_launch(Client(), lms, link_id="link-A", custom=item["custom"])) == resource.pk
    assert Resource.objects.count() == 1 and not ResourceAlias.objects.exists()


def _zip_upload():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("exam.zip", demo_exam_zip(), content_type="application/zip")


def test_a_second_link_to_an_existing_activity_shares_its_attempts(lms):
    item = new_activity_link(lms)
    teacher = Client()
    resource_launch(teacher, lms, link_id="link-A", custom=item["custom"], sub="teacher-1", roles=[ROLE_INSTRUCTOR])
    resource = Resource.objects.get()
    assert teacher.post(f"/resource/{resource.pk}/instructor/exam/", {"package": _zip_upload()}).status_code == 201
    student = Client()
    resource_launch(student, lms, link_id="link-A", custom=item["custom"])
    assert student.post(f"/resource/{resource.pk}/attempts/start/").status_code in (200, 302)
    assert Attempt.objects.filter(resource=resource).count() == 1

    # Another deep link in the course offers the activity (with its exam); the instructor picks it.
    client = Client()
    picker = deep_link(client, lms)
    assert b'data-testid="choice-existing"' in picker.content and b"Demo exam" in picker.content
    _, jwt = returned(choose(client, picker_token(picker), activity=str(resource.pk), title="Week 1 quiz (resit)"))
    [second] = lms.verify_deep_link_response(jwt)
    assert second["title"] == "Week 1 quiz (resit)"
    assert second["custom"] == {"numbas_activity": str(resource.pk)}
    assert second["lineItem"]["scoreMaximum"] == 4  # the demo exam's marks: 1 + 1 + 2
    assert Resource.objects.count() == 1

    # Launches from the new link open the same activity: same membership, same attempts.
    student_b = Client()
    answer = resource_launch(student_b, lms, link_id="link-B", custom=second["custom"], title="Week 1 quiz (resit)")
    assert landed_on(answer) == resource.pk
    assert ResourceAlias.objects.get().lti13_id == "link-B"
    assert ResourceMembership.objects.filter(resource=resource, user__lti_identity__sub="student-1").count() == 1
    page = student_b.get(answer["Location"])
    assert page.status_code == 200 and page.context["attempts"] == list(Attempt.objects.filter(resource=resource))
    resource.refresh_from_db()
    assert resource.lti13_id == "link-A" and resource.title == "Week 1 quiz"  # the owning link's

    # Later launches of either link keep landing there.
    assert landed_on(resource_launch(Client(), lms, link_id="link-B", custom=second["custom"])) == resource.pk
    assert landed_on(resource_launch(Client(), lms, link_id="link-A", custom=item["custom"])) == resource.pk
    assert Resource.objects.count() == 1 and ResourceAlias.objects.count() == 1


def test_several_links_to_a_new_activity_before_its_first_launch(lms):
    item = new_activity_link(lms)
    resource = Resource.objects.get()
    client = Client()
    _, jwt = returned(choose(client, picker_token(deep_link(client, lms)), activity=str(resource.pk)))
    [second] = lms.verify_deep_link_response(jwt)
    assert second["title"] == "Week 1 quiz"  # no title given: the activity's
    # The second link launches first: it owns the activity; the first becomes the alias.
    assert landed_on(resource_launch(Client(), lms, link_id="link-B", custom=second["custom"])) == resource.pk
    assert landed_on(resource_launch(Client(), lms, link_id="link-A", custom=item["custom"])) == resource.pk
    resource.refresh_from_db()
    assert resource.lti13_id == "link-B" and ResourceAlias.objects.get().lti13_id == "link-A"


# --- who may ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("roles", [[ROLE_LEARNER], [ROLE_MENTOR], [ROLE_INSTITUTION_ADMINISTRATOR], []])
def test_a_deep_linking_request_from_a_non_instructor_is_refused_and_nothing_written(lms, roles):
    page = deep_link(Client(), lms, sub="student-1", roles=roles)
    assert page.status_code == 403
    assert b'data-error-code="deep_linking_not_instructor"' in page.content
    assert not DeepLinkingRequest.objects.exists() and not Resource.objects.exists()
    assert not Context.objects.exists() and not ResourceMembership.objects.exists()
    assert LoginState.objects.get().used_at is None


def test_the_lms_extra_instructor_roles_count(lms):
    consumer = lms.tool_platform_record.consumer
    consumer.instructor_roles = ROLE_INSTITUTION_ADMINISTRATOR
    consumer.save()
    picker_token(deep_link(Client(), lms, sub="admin-1", roles=[ROLE_INSTITUTION_ADMINISTRATOR]))


def test_the_picker_without_a_valid_token_is_refused(lms):
    assert Client().get("/lti13/deep-linking/").status_code == 405
    for token in ("", "x" * 43, "x" * 5000):
        answer = choose(Client(), token, title="Sneaky")
        assert answer.status_code == 403 and b'data-error-code="deep_linking_token"' in answer.content
    # Used up: a token answers once.
    client = Client()
    token = picker_token(deep_link(client, lms))
    returned(choose(client, token, title="Week 1 quiz"))
    again = choose(client, token, title="Week 1 quiz again")
    assert again.status_code == 403 and b'data-error-code="deep_linking_token"' in again.content
    # Expired.
    token = picker_token(deep_link(client, lms))
    DeepLinkingRequest.objects.filter(used_at__isnull=True).update(
        created_at=timezone.now() - timedelta(hours=1), expires_at=timezone.now() - timedelta(minutes=1))
    assert choose(client, token, title="Late").status_code == 403
    assert list(Resource.objects.values_list("title", flat=True)) == ["Week 1 quiz"]


def test_the_deep_linking_request_is_used_once(lms):
    prepared = lms.prepare_launch(MSG_DEEP_LINKING, sub="teacher-1", roles=[ROLE_INSTRUCTOR], context=COURSE)
    client = Client()
    login = prepared.login_request()
    redirect_uri, fields = lms.authorize_url(client.post(login.path, login.params)["Location"])
    picker_token(client.post(urlsplit(redirect_uri).path, fields))
    replay = client.post(urlsplit(redirect_uri).path, fields)
    assert replay.status_code == 403 and b'data-error-code="state_mismatch"' in replay.content
    assert DeepLinkingRequest.objects.count() == 1


def test_a_deep_linking_request_in_a_window_without_the_state_cookie_starts_again_in_a_new_window(lms):
    prepared = lms.prepare_launch(MSG_DEEP_LINKING, sub="teacher-1", roles=[ROLE_INSTRUCTOR], context=COURSE)
    login = prepared.login_request()
    redirect_uri, fields = lms.authorize_url(Client().post(login.path, login.params)["Location"])
    page = Client().post(urlsplit(redirect_uri).path, fields)  # another browser: no state cookie
    assert page.status_code == 200 and b'data-testid="restart-link"' in page.content
    assert not DeepLinkingRequest.objects.exists()
    assert LoginState.objects.get().used_at is not None  # that id_token cannot be used again


def _storage_config(page) -> dict:
    match = re.search(rb'<script id="lti-storage" type="application/json">(.*?)</script>', page.content, re.S)
    assert match, page.content[:1000]
    return json.loads(match.group(1))


def test_deep_linking_works_in_an_iframe_without_cookies_through_platform_storage(lms):
    """No cookie survives anywhere: the login keeps a secret in the platform's storage, the launch
    gets it back from there, and the picker's answer needs only its token."""
    prepared = lms.prepare_launch(MSG_DEEP_LINKING, sub="teacher-1", roles=[ROLE_INSTRUCTOR], context=COURSE)
    login = prepared.login_request(storage_target="_parent")
    put = _storage_config(Client().post(login.path, login.params))
    assert put["action"] == "put"
    redirect_uri, fields = lms.authorize_url(put["next"])
    get = _storage_config(Client().post(urlsplit(redirect_uri).path, fields))
    assert get["action"] == "get" and get["key"] == put["key"] and not DeepLinkingRequest.objects.exists()
    # A wrong secret is refused; the one the login stored opens the picker.
    refused = Client().post(urlsplit(get["next"]).path, {**get["fields"], "lti_storage_value": "-"})
    assert refused.status_code == 403 and not DeepLinkingRequest.objects.exists()
    token = picker_token(Client().post(urlsplit(get["next"]).path, {**get["fields"], "lti_storage_value": put["value"]}))
    _, jwt = returned(choose(Client(), token, title="Week 1 quiz"))
    assert lms.verify_deep_link_response(jwt)[0]["title"] == "Week 1 quiz"


def test_a_new_activity_needs_a_title_and_the_token_survives_the_mistake(lms):
    client = Client()
    token = picker_token(deep_link(client, lms))
    mistake = choose(client, token, title="   ")
    assert mistake.status_code == 400 and b'data-testid="title-error"' in mistake.content
    assert not Resource.objects.exists()
    assert picker_token(mistake, status=400) == token
    returned(choose(client, token, title="Week 1 quiz"))
    assert Resource.objects.get().title == "Week 1 quiz"


# --- custom parameters are only followed within the LMS and the course -------------------------------


def test_a_link_naming_an_activity_of_another_course_gets_an_activity_of_its_own(lms):
    item = new_activity_link(lms)
    mine = Resource.objects.get()
    answer = resource_launch(Client(), lms, link_id="link-other-course", custom=item["custom"],
                             context={"id": "course-2", "title": "Copied course"})
    other = Resource.objects.exclude(pk=mine.pk).get()
    assert landed_on(answer) == other.pk and other.context.lti13_id == "course-2"
    assert not ResourceAlias.objects.exists()
    mine.refresh_from_db()
    assert mine.lti13_id is None  # still waiting for its own link


def test_a_link_of_another_lms_naming_an_activity_gets_an_activity_of_its_own(lms, other_lms):
    item = new_activity_link(lms)
    mine = Resource.objects.get()
    answer = resource_launch(Client(), other_lms, link_id="link-A", custom=item["custom"])
    other = Resource.objects.exclude(pk=mine.pk).get()
    assert landed_on(answer) == other.pk
    assert other.consumer == other_lms.tool_platform_record.consumer != mine.consumer
    assert not ResourceAlias.objects.exists()


@pytest.mark.parametrize("value", ["999999", "{pk}x", "-{pk}", "{pk}.0", "{pk}e0", "1{pk:018d}", "١", ""])
def test_a_link_naming_no_activity_of_the_course_gets_an_activity_of_its_own(lms, value):
    new_activity_link(lms)
    mine = Resource.objects.get()
    answer = resource_launch(Client(), lms, link_id="link-A", custom={"numbas_activity": value.format(pk=mine.pk)})
    assert landed_on(answer) == Resource.objects.get(lti13_id="link-A").pk != mine.pk
    assert not ResourceAlias.objects.exists()


def test_the_picker_cannot_link_an_activity_of_another_course_or_lms(lms, other_lms):
    new_activity_link(lms, context={"id": "course-2", "title": "Other course"})
    new_activity_link(other_lms)
    foreign = list(Resource.objects.values_list("pk", flat=True))
    client = Client()
    picker = deep_link(client, lms)  # course-1 of the first LMS has no activities
    assert b'data-testid="choice-existing"' not in picker.content
    token = picker_token(picker)
    for pk in foreign:
        answer = choose(client, token, activity=str(pk))
        assert answer.status_code == 400 and b'data-testid="form-error"' in answer.content
    assert DeepLinkingRequest.objects.get(used_at__isnull=True).resource is None
    assert Resource.objects.count() == 2


def test_without_a_course_only_a_new_activity_is_offered_and_its_link_opens_it(lms):
    client = Client()
    picker = deep_link(client, lms, context=None)
    assert b'data-testid="no-activities"' in picker.content and b'data-testid="choice-existing"' not in picker.content
    _, jwt = returned(choose(client, picker_token(picker), title="Placement test"))
    [item] = lms.verify_deep_link_response(jwt)
    resource = Resource.objects.get()
    assert resource.context is None and not Context.objects.exists()
    assert landed_on(resource_launch(Client(), lms, link_id="link-A", custom=item["custom"], context=None)) == \
        resource.pk


def test_the_answer_without_data_in_the_request_has_no_data_claim(lms):
    client = Client()
    settings = lms.deep_linking_settings(data=None)
    _, jwt = returned(choose(client, picker_token(deep_link(client, lms, deep_linking_settings=settings)),
                             title="Week 1 quiz"))
    lms.verify_deep_link_response(jwt)
    assert CLAIM_DL_DATA not in decode_jwt_unverified(jwt)[1]


def test_the_platform_refuses_an_answer_signed_with_a_key_the_tool_does_not_publish(lms):
    """The verification is real: the same answer signed by an unpublished key is refused."""
    from lti13.models import ToolKey

    client = Client()
    _, jwt = returned(choose(client, picker_token(deep_link(client, lms)), title="Week 1 quiz"))
    ToolKey.objects.update(retires_at=timezone.now() - timedelta(seconds=1), signs_from=timezone.now() - timedelta(
        days=1))
    lms.forget_tool_keys()
    with pytest.raises(DeepLinkError):
        lms.verify_deep_link_response(jwt)


def test_answered_and_expired_requests_are_purged_a_day_after_they_expire(lms):
    from huey.contrib.djhuey import HUEY

    from lti13 import tasks

    client = Client()
    returned(choose(client, picker_token(deep_link(client, lms)), title="Week 1 quiz"))
    ask = DeepLinkingRequest.objects.get()
    assert services.deep_linking_requests_purge(now=ask.expires_at + timedelta(hours=23)) == 0
    assert services.deep_linking_requests_purge(now=ask.expires_at + timedelta(hours=25)) == 1
    assert Resource.objects.exists()  # the activity stays
    assert tasks.purge_expired_lti13_requests.task_class in HUEY._registry._periodic_tasks
