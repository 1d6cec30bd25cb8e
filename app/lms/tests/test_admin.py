import pytest
from django.contrib import admin
from django.urls import reverse

from lms.models import LaunchLog
from tests.support import lms as test_lms

MODELS = [m for m in admin.site._registry]


@pytest.fixture
def launched(client, consumer):
    """One real launch, so every model has a row to show."""
    client.post("/lti/launch/", test_lms.sign(test_lms.launch_params(), key=consumer.key, secret=consumer.secret))
    return LaunchLog.objects.get()


@pytest.mark.django_db
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_admin_pages_load_for_a_superuser(client, admin_user, launched, model):
    client.force_login(admin_user)
    opts = model._meta
    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    obj = model.objects.first()
    if obj is not None:
        change = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        assert change.status_code == 200
    add = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    model_admin = admin.site._registry[model]
    can_add = model_admin.has_add_permission(changelist.wsgi_request)
    assert add.status_code == (200 if can_add else 403)


@pytest.mark.django_db
def test_admin_refuses_launched_users(client, launched):
    client.force_login(launched.membership.user)
    response = client.get("/admin/lms/consumer/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
