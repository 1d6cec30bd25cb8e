import re
from html import unescape

import pytest

from lms.models import LaunchLog, ResourceMembership
from testlaunch.services import demo_data_ensure


def form_fields(html: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form id="lti-launch" method="post" action="([^"]+)"', html).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    return action, {k: unescape(v) for k, v in fields.items()}


@pytest.mark.django_db
def test_page_is_hidden_from_anonymous_and_students_outside_debug(client, settings):
    settings.DEBUG = False
    assert client.get("/test-launch/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("role, page", [("student", "/resource/{}/"), ("instructor", "/resource/{}/instructor/")])
def test_staff_launch_is_a_real_signed_launch(client, admin_user, settings, role, page):
    settings.DEBUG = False
    resource = demo_data_ensure(secret="demo-secret")
    client.force_login(admin_user)
    assert client.get("/test-launch/").status_code == 200

    response = client.post(
        "/test-launch/",
        {"resource": resource.pk, "role": role, "user_id": "demo-1", "full_name": "Demo Person", "in_frame": "on"},
    )
    assert response.status_code == 200
    action, fields = form_fields(response.content.decode())
    assert action == "http://testserver/lti/launch/"
    assert fields["oauth_consumer_key"] == "demo" and fields["oauth_signature_method"] == "HMAC-SHA1"

    client.logout()
    launched = client.post("/lti/launch/", fields)
    assert launched.status_code == 302
    assert launched["Location"].split("?")[0] == page.format(resource.pk)
    membership = ResourceMembership.objects.get(resource=resource)
    assert membership.role == role and membership.user.get_full_name() == "Demo Person"
    assert LaunchLog.objects.count() == 1


@pytest.mark.django_db
def test_demo_data_is_idempotent():
    first = demo_data_ensure(secret="s")
    second = demo_data_ensure()
    assert first.pk == second.pk and second.consumer.secret == "s"
