"""LTI 1.1 launches, signed by an independent consumer (the PyPI `lti` package)."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session

from lms.models import Context, LaunchLog, LtiIdentity, Resource, ResourceMembership, UsedNonce
from tests.support import lms as test_lms

User = get_user_model()
LAUNCH = "/lti/launch/"


def signed(consumer, **overrides):
    return test_lms.sign(test_lms.launch_params(**overrides), key=consumer.key, secret=consumer.secret)


def row_counts():
    return {
        m.__name__: m.objects.count()
        for m in (User, LtiIdentity, Context, Resource, ResourceMembership, LaunchLog, UsedNonce, Session)
    }


@pytest.mark.django_db
def test_student_launch_creates_everything_once_and_lands_on_student_page(client, consumer):
    response = client.post(LAUNCH, signed(consumer, user_id="stu-1", lis_person_name_full="Ada Lovelace"))

    resource = Resource.objects.get(consumer=consumer, resource_link_id="res-1")
    assert response.status_code == 302
    assert response["Location"].split("?")[0] == f"/resource/{resource.pk}/"
    identity = LtiIdentity.objects.select_related("user").get(consumer=consumer, lti_user_id="stu-1")
    assert identity.full_name == "Ada Lovelace"
    assert identity.user.get_full_name() == "Ada Lovelace"
    assert resource.title == "Week 1 quiz"
    assert resource.context.context_id == "course-1" and resource.context.title == "Number Theory"
    membership = ResourceMembership.objects.get(user=identity.user, resource=resource)
    assert membership.role == "student"
    assert membership.lis_result_sourcedid.startswith("sourcedid-")
    assert membership.lis_outcome_service_url == test_lms.UNREACHABLE_OUTCOME_URL
    assert membership.return_url == "https://lms.example.ac.uk/course/1"
    assert LaunchLog.objects.filter(membership=membership).count() == 1

    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"Ada Lovelace" in page.content and b"Week 1 quiz" in page.content
    assert page.context["membership"] == membership


@pytest.mark.django_db
def test_relaunch_with_changed_details_updates_and_creates_nothing(client, consumer):
    client.post(LAUNCH, signed(consumer, user_id="stu-1", lis_person_name_full="Ada Byron"))
    before = row_counts()

    response = client.post(
        LAUNCH,
        signed(
            consumer,
            user_id="stu-1",
            lis_person_name_full="Ada Lovelace",
            lis_person_contact_email_primary="ada@example.org",
            resource_link_title="Week 1 quiz (revised)",
            context_title="Number Theory II",
            lis_result_sourcedid="new-sourcedid",
        ),
    )

    assert response.status_code == 302
    after = row_counts()
    # The second launch adds a log row, a used nonce and a session; nothing else.
    assert after["LaunchLog"] == before["LaunchLog"] + 1
    assert after["UsedNonce"] == before["UsedNonce"] + 1
    for model in ("User", "LtiIdentity", "Context", "Resource", "ResourceMembership"):
        assert after[model] == before[model], model
    identity = LtiIdentity.objects.select_related("user").get(lti_user_id="stu-1")
    assert identity.full_name == "Ada Lovelace" and identity.email == "ada@example.org"
    assert identity.user.email == "ada@example.org" and identity.user.last_name == "Lovelace"
    assert Resource.objects.get().title == "Week 1 quiz (revised)"
    assert Context.objects.get().title == "Number Theory II"
    assert ResourceMembership.objects.get().lis_result_sourcedid == "new-sourcedid"


INSTRUCTOR_ROLES = [
    "Instructor",
    "Administrator",
    "ContentDeveloper",
    "Manager",
    "TeachingAssistant",
    "urn:lti:role:ims/lis/Instructor",
    "urn:lti:role:ims/lis/Administrator",
    "urn:lti:role:ims/lis/ContentDeveloper",
    "urn:lti:role:ims/lis/Manager",
    "urn:lti:role:ims/lis/TeachingAssistant",
    "urn:lti:role:ims/lis/Instructor/PrimaryInstructor",
    "urn:lti:role:ims/lis/TeachingAssistant/Grader",
    "Learner,Instructor",
    "instructor",
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
]
STUDENT_ROLES = [
    "Learner",
    "urn:lti:role:ims/lis/Learner",
    "Student",
    "Mentor",
    "urn:lti:role:ims/lis/Member",
    "urn:lti:instrole:ims/lis/Student",
    # institution and system roles are not course roles (lms.roles)
    "urn:lti:instrole:ims/lis/Administrator",
    "urn:lti:sysrole:ims/lis/Administrator",
    "Learner,urn:lti:sysrole:ims/lis/SysAdmin",
    "Guest",
    "SomethingNew",
    "",
]


@pytest.mark.django_db
@pytest.mark.parametrize("roles", INSTRUCTOR_ROLES)
def test_instructor_roles_land_on_instructor_page(client, consumer, roles):
    response = client.post(LAUNCH, signed(consumer, roles=roles))
    resource = Resource.objects.get()
    assert response.status_code == 302
    assert response["Location"].split("?")[0] == f"/resource/{resource.pk}/instructor/"
    assert ResourceMembership.objects.get().role == "instructor"
    assert client.get(response["Location"]).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("roles", STUDENT_ROLES)
def test_other_roles_land_on_student_page(client, consumer, roles):
    response = client.post(LAUNCH, signed(consumer, roles=roles))
    resource = Resource.objects.get()
    assert response["Location"].split("?")[0] == f"/resource/{resource.pk}/"
    assert ResourceMembership.objects.get().role == "student"
    # and a student cannot open the instructor page
    assert client.get(f"/resource/{resource.pk}/instructor/").status_code == 403


def _bad_cases(consumer, other_consumer):
    p = test_lms.launch_params
    key, secret = consumer.key, consumer.secret
    return {
        "bad_signature": (403, "bad_signature", test_lms.sign(p(), key=key, secret="not-the-secret")),
        "tampered": (403, "bad_signature", {**test_lms.sign(p(), key=key, secret=secret), "roles": "Instructor"}),
        "wrong_url": (
            403,
            "bad_signature",
            test_lms.sign(p(), key=key, secret=secret, url="http://testserver/somewhere-else/"),
        ),
        "unknown_key": (403, "unknown_consumer", test_lms.sign(p(), key="nobody", secret=secret)),
        "inactive_key": (
            403,
            "inactive_consumer",
            test_lms.sign(p(), key=other_consumer.key, secret=other_consumer.secret),
        ),
        "stale_timestamp": (
            403,
            "stale_timestamp",
            test_lms.sign(p(), key=key, secret=secret, timestamp=test_lms.now() - 301),
        ),
        "future_timestamp": (
            403,
            "stale_timestamp",
            test_lms.sign(p(), key=key, secret=secret, timestamp=test_lms.now() + 400),
        ),
        "missing_resource_link_id": (
            400,
            "missing_parameter",
            test_lms.sign(p(resource_link_id=None), key=key, secret=secret),
        ),
        "missing_message_type": (
            400,
            "missing_parameter",
            test_lms.sign(p(lti_message_type=None), key=key, secret=secret),
        ),
        "missing_version": (400, "missing_parameter", test_lms.sign(p(lti_version=None), key=key, secret=secret)),
        "missing_user_id": (400, "missing_user_id", test_lms.sign(p(user_id=None), key=key, secret=secret)),
        "unsupported_message_type": (
            400,
            "unsupported_message_type",
            test_lms.sign(p(lti_message_type="ContentItemSelectionRequest"), key=key, secret=secret),
        ),
        "unsupported_version": (
            400,
            "unsupported_version",
            test_lms.sign(p(lti_version="LTI-2p0"), key=key, secret=secret),
        ),
        "unsigned": (400, "not_signed", p()),
        "plaintext_signature": (
            400,
            "unsupported_signature_method",
            {**test_lms.sign(p(), key=key, secret=secret), "oauth_signature_method": "PLAINTEXT"},
        ),
        "nul_character": (400, "invalid_parameter", {**p(), "oauth_consumer_key": "moodle\x00key"}),
        "overlong_user_id": (400, "invalid_parameter", test_lms.sign(p(user_id="u" * 300), key=key, secret=secret)),
    }


BAD_CASES = [
    "bad_signature",
    "tampered",
    "wrong_url",
    "unknown_key",
    "inactive_key",
    "stale_timestamp",
    "future_timestamp",
    "missing_resource_link_id",
    "missing_message_type",
    "missing_version",
    "missing_user_id",
    "unsupported_message_type",
    "unsupported_version",
    "unsigned",
    "plaintext_signature",
    "nul_character",
    "overlong_user_id",
]


@pytest.mark.django_db
@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_launch_is_refused_with_a_message_and_writes_nothing(client, consumer, case):
    from lms.models import Consumer

    inactive = Consumer.objects.create(key="old-lms", secret="old-secret", name="Old LMS", active=False)
    status, code, data = _bad_cases(consumer, inactive)[case]
    before = row_counts()

    response = client.post(LAUNCH, data)

    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert f'data-error-code="{code}"' in response.content.decode()
    assert b"Nothing was recorded" in response.content
    assert row_counts() == before
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_get_is_refused_with_405_and_explanation(client, consumer):
    before = row_counts()
    response = client.get(LAUNCH, test_lms.launch_params())
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert b"signed POST" in response.content
    assert row_counts() == before


@pytest.mark.django_db
def test_identical_signed_post_twice_is_rejected_as_replay(client, consumer):
    data = signed(consumer)
    first = client.post(LAUNCH, data)
    assert first.status_code == 302
    before = row_counts()

    second = client.post(LAUNCH, data)

    assert second.status_code == 403
    assert 'data-error-code="replayed"' in second.content.decode()
    assert row_counts() == before


@pytest.mark.django_db
def test_same_nonce_from_another_consumer_is_not_a_replay(client, consumer):
    from lms.services import consumer_create_or_update

    other, _, _ = consumer_create_or_update(key="canvas-key", secret="canvas-secret")
    nonce = test_lms.fresh_nonce()
    a = test_lms.sign(test_lms.launch_params(), key=consumer.key, secret=consumer.secret, nonce=nonce)
    b = test_lms.sign(test_lms.launch_params(), key=other.key, secret=other.secret, nonce=nonce)
    assert client.post(LAUNCH, a).status_code == 302
    assert client.post(LAUNCH, b).status_code == 302


@pytest.mark.django_db
def test_launch_behind_tls_proxy_verifies_against_https_url(client, consumer, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    data = test_lms.sign(
        test_lms.launch_params(), key=consumer.key, secret=consumer.secret, url="https://testserver/lti/launch/"
    )
    # what nginx passes on: the original Host and the scheme
    response = client.post(LAUNCH, data, HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="testserver")
    assert response.status_code == 302

    # Without the proxy telling us it was HTTPS, the same kind of launch cannot verify.
    settings.SECURE_PROXY_SSL_HEADER = None
    data = test_lms.sign(
        test_lms.launch_params(), key=consumer.key, secret=consumer.secret, url="https://testserver/lti/launch/"
    )
    assert client.post(LAUNCH, data).status_code == 403


@pytest.mark.django_db
def test_launch_without_context_still_works(client, consumer):
    response = client.post(LAUNCH, signed(consumer, context_id=None, context_title=None, context_label=None))
    assert response.status_code == 302
    assert Resource.objects.get().context is None
    assert Context.objects.count() == 0


@pytest.mark.django_db
def test_invalid_optional_values_are_dropped_not_fatal(client, consumer):
    response = client.post(
        LAUNCH,
        signed(
            consumer,
            lis_person_contact_email_primary="not an email",
            lis_outcome_service_url="javascript:alert(1)",
            launch_presentation_return_url="ftp://x",
        ),
    )
    assert response.status_code == 302
    membership = ResourceMembership.objects.get()
    assert membership.lis_outcome_service_url == "" and membership.return_url == ""
    assert LtiIdentity.objects.get().email == ""


@pytest.mark.django_db
def test_session_cookie_is_samesite_none_and_secure(client, consumer):
    response = client.post(LAUNCH, signed(consumer))
    # __Host-: a sibling host name (the exam-content origin) cannot plant a cookie of this name.
    assert settings.SESSION_COOKIE_NAME == "__Host-sessionid"
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["samesite"] == "None" and cookie["path"] == "/" and not cookie["domain"]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True


@pytest.mark.django_db
def test_pages_allow_lms_framing(client, consumer):
    response = client.post(LAUNCH, signed(consumer))
    page = client.get(response["Location"])
    assert "frame-ancestors" in page["Content-Security-Policy"]
    assert "X-Frame-Options" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("parameter", ["ext_user_username", "ext_d2l_username", "custom_canvas_user_login_id",
                                       "custom_username", "ext_sakai_eid"])
def test_the_lms_username_and_student_record_id_are_kept_for_the_person(client, consumer, parameter):
    response = client.post(LAUNCH, signed(consumer, user_id="stu-1", lis_person_sourcedid="S1234567",
                                          **{parameter: "alovelace"}))
    assert response.status_code == 302
    identity = LtiIdentity.objects.get(consumer=consumer, lti_user_id="stu-1")
    assert (identity.username, identity.sourcedid) == ("alovelace", "S1234567")

    client.post(LAUNCH, signed(consumer, user_id="stu-1", **{parameter: "aking"}))
    identity.refresh_from_db()
    assert (identity.username, identity.sourcedid) == ("aking", "S1234567"), "kept when not sent again"


@pytest.mark.django_db
def test_an_unsubstituted_lms_variable_is_not_a_username(client, consumer):
    client.post(LAUNCH, signed(consumer, user_id="stu-1", custom_username="$User.username",
                               ext_user_username="alovelace"))
    assert LtiIdentity.objects.get(lti_user_id="stu-1").username == "alovelace"
