"""Ids in URLs: every route takes them through the bigint-bounded `<id:…>` converter, so a
number a database id cannot be is "not found" on SQLite as on PostgreSQL — never a 500."""

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls.converters import IntConverter

from core.converters import MAX_ID, DatabaseIdConverter
from tests.support.authz import http_routes
from tests.support.lms import launch_params, sign

BEYOND = [2**63, 10**20, int("9" * 40)]
ID_ROUTES = [r for r in http_routes() if "<id:" in r.route]


def test_every_route_with_a_number_in_it_uses_the_id_converter():
    from django.urls import get_resolver

    def walk(patterns):
        for pattern in patterns:
            yield pattern
            yield from walk(getattr(pattern, "url_patterns", []))

    from numbas_lti.routing import websocket_urlpatterns

    for pattern in [*walk(get_resolver().url_patterns), *walk(websocket_urlpatterns)]:
        converters = getattr(pattern.pattern, "converters", {})
        assert not [name for name, c in converters.items() if isinstance(c, IntConverter)], pattern
    assert len(ID_ROUTES) >= 25


def test_the_converter_stops_at_a_bigint():
    converter = DatabaseIdConverter()
    assert converter.to_python(str(MAX_ID)) == 2**63 - 1
    with pytest.raises(ValueError):
        converter.to_python(str(2**63))
    assert re.fullmatch(converter.regex, str(10**20)) is None


def _path(route: str, beyond: int) -> str:
    path = re.sub(r"<id:[^>]+>", str(beyond), route)
    return "/" + re.sub(r"<uuid:[^>]+>", str(uuid.uuid4()), path)


@pytest.fixture
def clients(consumer):
    """Those most likely to reach a view: a superuser and an instructor (of resource 1)."""
    staff = Client(raise_request_exception=False)
    staff.force_login(get_user_model().objects.create_user("op", password="pw", is_staff=True, is_superuser=True))
    instructor = Client(raise_request_exception=False)
    launched = instructor.post("/lti/launch/", sign(launch_params(roles="Instructor"), key=consumer.key,
                                                    secret=consumer.secret))
    assert launched.status_code == 302
    return {"staff": staff, "instructor": instructor, "anonymous": Client(raise_request_exception=False)}


@pytest.mark.django_db
@pytest.mark.parametrize("route", ID_ROUTES, ids=lambda r: r.key)
def test_an_id_beyond_a_bigint_is_not_found(clients, route):
    for beyond in BEYOND:
        path = _path(route.route, beyond)
        for who, client in clients.items():
            for method in ("get", "post"):
                response = getattr(client, method)(path)
                assert response.status_code == 404, (who, method.upper(), path, response.status_code)
