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
    settings.TEST_LAUNCH_ENABLED = True  # an operator's explicit choice outside DEBUG
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


@pytest.mark.django_db
def test_outside_debug_the_page_is_off_even_for_staff_unless_an_operator_enables_it(client, admin_user, settings):
    settings.DEBUG = False
    client.force_login(admin_user)
    assert settings.TEST_LAUNCH_ENABLED is False  # the default without DEBUG
    assert client.get("/test-launch/").status_code == 404
    assert client.post("/test-launch/", {"role": "student"}).status_code == 404
    settings.TEST_LAUNCH_ENABLED = True
    assert client.get("/test-launch/").status_code == 200
    client.logout()
    assert client.get("/test-launch/").status_code == 404  # enabled: still staff only


@pytest.mark.django_db
def test_in_debug_it_is_open_unless_turned_off(client, settings):
    settings.DEBUG, settings.TEST_LAUNCH_ENABLED = True, True
    assert client.get("/test-launch/").status_code == 200
    settings.TEST_LAUNCH_ENABLED = False
    assert client.get("/test-launch/").status_code == 404


def _setting(tmp_path, **env) -> str:
    import os
    import subprocess
    import sys
    from pathlib import Path

    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "TEST_LAUNCH_ENABLED", "DATABASE_URL",
                                                             "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    clean.update({"DJANGO_SETTINGS_MODULE": "numbas_lti.settings", "VAR_DIR": str(tmp_path), "SECRET_KEY": "x", **env})
    probe = "from django.conf import settings; print(settings.TEST_LAUNCH_ENABLED)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[2], env=clean,
                            capture_output=True, text=True, timeout=60)
    return result.stdout.strip() or result.stderr[-500:]


@pytest.mark.parametrize("env, enabled", [({"DEBUG": "1"}, "True"), ({}, "False"), ({"DEBUG": "0"}, "False"),
                                          ({"TEST_LAUNCH_ENABLED": "1"}, "True"),
                                          ({"DEBUG": "1", "TEST_LAUNCH_ENABLED": "0"}, "False")])
def test_the_setting_follows_debug_unless_set(tmp_path, env, enabled):
    assert _setting(tmp_path, **env) == enabled
