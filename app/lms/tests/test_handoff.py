"""When the LMS iframe drops our session cookie, the student can continue in a new window."""

from datetime import timedelta

import pytest
from django.test import Client

from lms.models import LaunchLog
from tests.support import lms as test_lms


@pytest.fixture
def launch_location(client, consumer):
    response = client.post(
        "/lti/launch/", test_lms.sign(test_lms.launch_params(), key=consumer.key, secret=consumer.secret)
    )
    assert response.status_code == 302
    return response["Location"]


@pytest.mark.django_db
def test_page_without_cookie_offers_a_new_window_that_logs_in_once(launch_location):
    iframe = Client()  # the browser dropped the cookie set by the launch
    offer = iframe.get(launch_location)
    assert offer.status_code == 200
    assert b"Continue in a new window" in offer.content
    handoff_url = offer.context["handoff_url"]
    assert 'target="_blank"' in offer.content.decode()

    window = Client()
    response = window.get(handoff_url)
    assert response.status_code == 302
    assert response["Location"] == launch_location.split("?")[0]
    page = window.get(response["Location"])
    assert page.status_code == 200 and page.context["membership"].pk == LaunchLog.objects.get().membership_id

    # used up: neither the link nor the offer works again
    assert Client().get(handoff_url).status_code == 410
    assert Client().get(launch_location).status_code == 401


@pytest.mark.django_db
def test_handoff_link_expires(launch_location, settings):
    LaunchLog.objects.update(launched_at=LaunchLog.objects.get().launched_at - timedelta(minutes=16))
    offer = Client().get(launch_location)
    assert offer.status_code == 401
    token = launch_location.split("launch=")[1]
    assert Client().get(f"/lti/handoff/{token}/").status_code == 410


@pytest.mark.django_db
def test_viewing_the_page_with_a_session_uses_up_the_handoff_token(client, launch_location):
    assert client.get(launch_location).status_code == 200
    assert LaunchLog.objects.get().handoff_used_at is not None
    token = launch_location.split("launch=")[1]
    assert Client().get(f"/lti/handoff/{token}/").status_code == 410


@pytest.mark.django_db
def test_handoff_token_only_works_for_its_own_resource(client, consumer, launch_location):
    token = launch_location.split("launch=")[1]
    # a second resource the same LMS user launched earlier
    other = client.post(
        "/lti/launch/",
        test_lms.sign(test_lms.launch_params(resource_link_id="res-2"), key=consumer.key, secret=consumer.secret),
    )
    other_page = other["Location"].split("?")[0]
    assert Client().get(f"{other_page}?launch={token}").status_code == 401


@pytest.mark.django_db
def test_unknown_handoff_token_is_410():
    assert Client().get("/lti/handoff/not-a-token/").status_code == 410
