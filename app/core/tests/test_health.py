import os

import pytest

from tests.support.net import free_port


@pytest.mark.django_db
def test_health_is_200_with_database_up(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_health_checks_redis_when_configured(client, settings):
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("TEST_REDIS_URL not set (scripts/test starts Redis and sets it)")
    settings.REDIS_URL = redis_url
    assert client.get("/health/").json()["checks"] == {"database": "ok", "redis": "ok"}

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "error"}
