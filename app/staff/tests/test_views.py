"""The staff dashboard page and its JSON: who may see them, what they show, and a number of
queries that does not grow with the data."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from grading.models import ReportState, SendOutcome
from staff import services
from staff.tests import world

pytestmark = pytest.mark.django_db

URLS = ["/staff/", "/staff/health.json"]


@pytest.fixture(autouse=True)
def _no_heartbeat():
    services.heartbeat_cache().delete(services.HEARTBEAT_KEY)
    yield
    services.heartbeat_cache().delete(services.HEARTBEAT_KEY)


@pytest.fixture
def staff_client():
    user = get_user_model().objects.create_user("operator", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def populate(n: int):
    """n resources, each launched, saved, with a pending grade and a failing try, now."""
    now = timezone.now()
    consumer = world.consumer(f"LMS {n}")
    for i in range(n):
        resource = world.resource(consumer, f"Exam {n}-{i}")
        membership = world.member(resource, name=f"Student {i}")
        world.launch(membership, now - timedelta(minutes=i + 1))
        world.attempt(membership, saved_at=now - timedelta(minutes=i + 1))
        report = world.report(membership, due_at=now - timedelta(minutes=i))
        world.send(report, at=now - timedelta(seconds=i + 1), http_status=500, answer=f"LMS said no {n}-{i}")
        world.send(report, at=now - timedelta(minutes=2), outcome=SendOutcome.DELIVERED, http_status=200)


@pytest.mark.parametrize("url", URLS)
def test_anonymous_callers_are_sent_to_the_admin_login(url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url}"


@pytest.mark.parametrize("url", URLS)
def test_users_who_are_not_staff_are_sent_to_the_admin_login(url):
    user = get_user_model().objects.create_user("student", password="pw")
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={url}"


@pytest.mark.parametrize("url", URLS)
def test_staff_see_it_uncached_and_unframed(staff_client, url):
    response = staff_client.get(url)
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("url", URLS)
def test_other_methods_are_refused_without_an_error(staff_client, url):
    assert staff_client.post(url, {"x": "1"}).status_code == 405
    assert Client().post(url).status_code == 302  # outsiders learn nothing more


def test_the_dashboard_shows_every_section(staff_client):
    populate(3)
    world.consumer("Quiet LMS", key="quiet-key", active=False)
    services.heartbeat_record()
    response = staff_client.get("/staff/")
    html = response.content.decode()
    assert html.count("<h1") == 1
    for heading in ("Health", "Grade delivery", "Resources active in the last 24 hours", "Consumers"):
        assert f">{heading}</h2>" in html
    assert 'scope="col"' in html and "<caption" in html
    assert "quiet-key" in html and "No: launches are refused" in html
    assert "Exam 3-0" in html and "LMS said no 3-0" in html
    assert html.count('data-testid="error"') == 3
    assert "Everything checked is working." in html  # database, Redis (not configured here) and a fresh worker
    assert response.context["backlog"].pending == 3
    consumer = world.Consumer.objects.get(key="quiet-key")
    assert f"/admin/lms/consumer/{consumer.pk}/change/" in html
    assert "/resource/" in html and "/instructor/" in html


def test_a_problem_is_said_in_words_not_only_colour(staff_client):
    html = staff_client.get("/staff/").content.decode()  # no heartbeat: the worker was never seen
    assert "Something needs attention" in html
    assert "Problem" in html and "Never seen" in html


def test_secrets_are_never_shown(staff_client):
    populate(2)
    for url in URLS:
        assert world.SECRET not in staff_client.get(url).content.decode()


def test_an_empty_site_renders(staff_client):
    html = staff_client.get("/staff/").content.decode()
    assert "No consumers yet" in html
    assert "No launches or saved attempts in the last 24 hours." in html
    assert "No failed tries recorded." in html


def test_health_json_has_every_check_and_the_backlog(staff_client):
    populate(2)
    services.heartbeat_record(now=timezone.now() - timedelta(seconds=10))
    data = staff_client.get("/staff/health.json").json()
    assert set(data) == {"status", "checked_at", "checks", "grade_delivery"}
    assert data["status"] == "ok"
    assert set(data["checks"]) == {"database", "redis", "worker", "backups"}  # backups: not expected here
    assert data["checks"]["backups"]["status"] == "not_configured"
    for name, check in data["checks"].items():
        assert set(check) == {"name", "label", "status", "ok", "detail", "hint", "latency_ms", "age_seconds"}
        assert check["name"] == name
    assert data["checks"]["database"]["status"] == "ok"
    assert 10 <= data["checks"]["worker"]["age_seconds"] < 60
    delivery = data["grade_delivery"]
    assert (delivery["pending"], delivery["pending_due"], delivery["failed"]) == (2, 2, 0)
    assert delivery["tries_last_hour"] == {"delivered": 2, "retry": 2, "failed": 0}
    assert delivery["oldest_due_age_seconds"] >= 60


def test_health_json_says_problem_when_the_worker_is_gone(staff_client):
    services.heartbeat_record(now=timezone.now() - timedelta(minutes=10))
    data = staff_client.get("/staff/health.json").json()
    assert data["status"] == "problem"
    assert data["checks"]["worker"]["ok"] is False
    assert data["checks"]["worker"]["age_seconds"] >= 600


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", URLS)
def test_the_number_of_queries_does_not_grow_with_the_data(staff_client, url):
    populate(2)
    few = _queries(staff_client, url)
    populate(40)
    world.report(world.member(world.resource(world.consumer("Other"))), state=ReportState.FAILED)
    many = _queries(staff_client, url)
    assert many == few
    assert few <= 12
