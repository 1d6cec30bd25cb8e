"""What a person sees when something underneath fails: a database that is down or restarting is
503 with Retry-After (the attempt page retries by itself), anything else a plain 500 page; neither
shows a traceback."""

from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


def test_a_database_outage_is_503_with_retry_after_and_a_message(client):
    with mock.patch("core.views.health_check", side_effect=OperationalError("connection refused")):
        response = client.get("/health/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    text = response.content.decode()
    assert "cannot reach its database" in text and "Nothing you sent was lost" in text
    assert "connection refused" not in text and "Traceback" not in text


def test_a_json_client_gets_json(client):
    with mock.patch("core.views.health_check", side_effect=OperationalError("server closed the connection")):
        response = client.get("/health/", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert "database" in response.json()["message"]


def test_any_other_failure_is_a_plain_500_without_details(client):
    with mock.patch("core.views.health_check", side_effect=RuntimeError("secret internals")):
        response = client.get("/health/")
    assert response.status_code == 500
    assert "Retry-After" not in response
    assert "secret internals" not in response.content.decode()
    assert "Something went wrong" in response.content.decode()
