"""Who may frame which page: LMS pages by the LMS sites, everything else by nobody."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

NOBODY = "frame-ancestors 'none'"


def assert_not_framable(response):
    assert response["Content-Security-Policy"] == NOBODY, response.get("Content-Security-Policy")
    assert response["X-Frame-Options"] == "DENY"


@pytest.fixture
def staff():
    user = get_user_model().objects.create_user("operator", password="pw", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("path, status", [
    ("/admin/login/", 200),
    ("/admin/", 302),  # to the login page
    ("/admin", 301),  # CommonMiddleware's slash redirect, made outside the URLconf
    ("/admin/no-such-page/", 302),
    ("/staff/", 302),
    ("/staff/health.json", 302),
    ("/test-launch/", 404),
    ("/", 200),
    ("/health/", 200),
    ("/no-such-page/", 404),
    ("/lti13/platforms/1/", 302),  # the operator's setup page: to the admin login
])
def test_pages_no_lms_embeds_cannot_be_framed_by_anyone(path, status):
    response = Client().get(path)
    assert response.status_code == status
    assert_not_framable(response)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/", "/admin/lms/consumer/", "/admin/lms/consumer/999/change/", "/staff/",
                                  "/test-launch/"])
def test_staff_pages_cannot_be_framed_when_signed_in_either(staff, settings, path):
    settings.DEBUG, settings.TEST_LAUNCH_ENABLED = False, True
    response = staff.get(path, follow=False)
    assert response.status_code in (200, 302)
    assert_not_framable(response)


@pytest.mark.django_db
def test_a_refused_admin_login_cannot_be_framed():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "operator", "password": "guess"})
    assert response.status_code == 403  # no CSRF token: refused by CsrfViewMiddleware
    assert_not_framable(response)


@pytest.mark.django_db
@pytest.mark.parametrize("path, status", [("/lti/launch/", 405), ("/resource/1/", 401), ("/attempt/1/", 401),
                                          ("/resource/1/instructor/", 401), ("/lti13/login/", 400),
                                          ("/lti13/launch/", 405), ("/lti13/deep-linking/", 405)])
def test_lms_pages_keep_the_lms_sites_as_frame_ancestors(settings, path, status):
    response = Client().get(path)
    assert response.status_code == status
    assert response["Content-Security-Policy"] == f"frame-ancestors {settings.FRAME_ANCESTORS}"
    assert "X-Frame-Options" not in response


@pytest.mark.parametrize("decorator, policy, header", [
    ("xframe_options_sameorigin", "frame-ancestors 'self'", "SAMEORIGIN"),
    ("xframe_options_deny", NOBODY, "DENY"),
    ("xframe_options_exempt", NOBODY, "DENY"),
])
def test_outside_lms_pages_a_view_may_choose_its_own_site_but_nobody_else(rf, decorator, policy, header):
    from django.http import HttpResponse
    from django.views.decorators import clickjacking

    from core.middleware import FrameAncestorsMiddleware

    view = getattr(clickjacking, decorator)(lambda request: HttpResponse("x"))
    response = FrameAncestorsMiddleware(view)(rf.get("/test-launch/platform/auth"))
    assert response["Content-Security-Policy"] == policy
    assert response["X-Frame-Options"] == header
