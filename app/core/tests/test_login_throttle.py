"""Admin logins are throttled (django-axes): a few failures for one user name from one address
lock that pair out for a while, with a page that says so; LTI launches are not involved."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.support import lms as test_lms

LOGIN = "/admin/login/"


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_user("operator", password="right-password", is_staff=True,
                                                is_superuser=True)


def sign_in(client, password, username="operator", **extra):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_documented_defaults():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


@pytest.mark.django_db
def test_five_failures_lock_the_user_name_out_from_that_address_with_a_page_that_says_so(operator):
    client = Client()
    for _ in range(4):
        response = sign_in(client, "guess")
        assert response.status_code == 200 and "Please enter the correct username and password" in response.text
    locked = sign_in(client, "guess")
    assert locked.status_code == 429
    assert 'data-testid="login-locked"' in locked.text
    assert "failed to sign in 5 times from your network address" in locked.text
    assert "paused for 15 minutes" in locked.text
    assert locked["Retry-After"] == "900"
    assert locked["X-Frame-Options"] == "DENY"  # the admin's pages are never framed

    right = sign_in(client, "right-password")
    assert right.status_code == 429 and not signed_in(client)
    # another address, or another user name from this one, may still sign in
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert sign_in(elsewhere, "right-password").status_code == 302 and signed_in(elsewhere)
    get_user_model().objects.create_user("colleague", password="theirs", is_staff=True)
    colleague = Client()
    assert sign_in(colleague, "theirs", username="colleague").status_code == 302


@pytest.mark.django_db
def test_after_the_cool_off_the_right_password_works_and_clears_the_failures(operator):
    client = Client()
    for _ in range(5):
        sign_in(client, "guess")
    assert sign_in(client, "right-password").status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))
    assert sign_in(client, "right-password").status_code == 302 and signed_in(client)
    assert not AccessAttempt.objects.exists()


@pytest.mark.django_db
def test_a_success_starts_the_count_again(operator):
    client = Client()
    for _ in range(4):
        sign_in(client, "guess")
    assert sign_in(client, "right-password").status_code == 302
    client.logout()
    for _ in range(4):
        assert sign_in(client, "guess").status_code == 200
    assert sign_in(client, "right-password").status_code == 302


@pytest.mark.django_db
def test_a_claimed_address_does_not_escape_the_lockout(operator):
    """X-Forwarded-For is not the address: REMOTE_ADDR is (set by daphne, from nginx's header only
    behind nginx). A client that sends a new X-Forwarded-For each time is still locked out."""
    client = Client()
    for n in range(5):
        sign_in(client, "guess", headers={"X-Forwarded-For": f"198.51.100.{n}"})
    assert sign_in(client, "right-password", headers={"X-Forwarded-For": "198.51.100.99"}).status_code == 429
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["127.0.0.1"]


@pytest.mark.django_db
def test_a_launch_signs_in_without_touching_the_login_throttle(consumer):
    client = Client()
    params = test_lms.sign(test_lms.launch_params(roles="Instructor"), key=consumer.key, secret=consumer.secret)
    with CaptureQueriesContext(connection) as queries:
        assert client.post("/lti/launch/", params).status_code == 302
    assert signed_in(client)
    assert not [q["sql"] for q in queries.captured_queries if "axes_" in q["sql"]]


@pytest.mark.django_db
def test_another_administrator_sees_the_lockout_and_lifts_it(operator):
    client = Client()
    for _ in range(5):
        sign_in(client, "guess")
    colleague = Client()
    colleague.force_login(get_user_model().objects.create_user("colleague", is_staff=True, is_superuser=True))
    attempt = AccessAttempt.objects.get()
    assert "operator" in colleague.get("/admin/axes/accessattempt/").text
    assert colleague.get("/admin/axes/accesslog/").status_code == 404  # not kept, not listed
    deleted = colleague.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert sign_in(client, "right-password").status_code == 302 and signed_in(client)
