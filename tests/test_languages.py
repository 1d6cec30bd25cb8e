"""Which language pages are in (core.languages): the person's own choice with the language switch,
then the LMS's locale from the launch (LTI 1.1 launch_presentation_locale; LTI 1.3 the
launch_presentation claim's locale or the top-level locale claim), then the browser's
Accept-Language, then British English. <html lang> and Content-Language follow it."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client

from lti13.tests.helpers import launch as lti13_launch, register
from tests.support import lms as test_lms
from tests.support.lti13_platform import ROLE_LEARNER, Lti13Platform

pytestmark = pytest.mark.django_db

HTML_LANG = re.compile(r"<html[^>]*\blang=\"([^\"]*)\"")


def html_lang(response) -> str:
    found = HTML_LANG.search(response.content.decode())
    assert found, "the page has no <html lang>"
    return found.group(1)


def launch_11(client, consumer, **params):
    """A signed 1.1 launch through the test client, following it to the landing page."""
    signed = test_lms.sign(test_lms.launch_params(**params), key=consumer.key, secret=consumer.secret)
    response = client.post("/lti/launch/", signed)
    assert response.status_code == 302, response.content[:500]
    page = client.get(response["Location"])
    assert page.status_code == 200
    return page


@pytest.mark.parametrize("locale,expected", [
    ("de-DE", "de"), ("de_DE", "de"), ("DE", "de"), ("de-AT", "de"), ("es-419", "es"), ("es_ES", "es"),
    ("en-US", "en-gb"),
])
def test_the_lti_11_launch_locale_chooses_the_language(client, consumer, locale, expected):
    page = launch_11(client, consumer, launch_presentation_locale=locale, user_id="lang-1")
    assert html_lang(page) == expected
    assert page["Content-Language"] == expected
    assert page.wsgi_request.LANGUAGE_CODE == expected


def test_a_locale_we_do_not_have_falls_back_to_the_browser_then_british_english(client, consumer):
    signed = test_lms.sign(test_lms.launch_params(launch_presentation_locale="fr-FR", user_id="lang-2"),
                           key=consumer.key, secret=consumer.secret)
    location = client.post("/lti/launch/", signed, HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9")["Location"]
    assert html_lang(client.get(location, HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9")) == "es"
    assert html_lang(client.get(location, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")) == "en-gb"
    assert html_lang(client.get(location)) == "en-gb"


def test_the_launch_locale_beats_the_browser(client, consumer):
    signed = test_lms.sign(test_lms.launch_params(launch_presentation_locale="de-DE", user_id="lang-3"),
                           key=consumer.key, secret=consumer.secret)
    location = client.post("/lti/launch/", signed, HTTP_ACCEPT_LANGUAGE="es")["Location"]
    assert html_lang(client.get(location, HTTP_ACCEPT_LANGUAGE="es")) == "de"


def test_a_new_launch_with_another_locale_switches_to_it(client, consumer):
    assert html_lang(launch_11(client, consumer, launch_presentation_locale="de-DE", user_id="lang-4")) == "de"
    assert html_lang(launch_11(client, consumer, launch_presentation_locale="es-ES", user_id="lang-4")) == "es"
    # A launch without a locale leaves the session's language as it was.
    assert html_lang(launch_11(client, consumer, user_id="lang-4")) == "es"


def test_accept_language_chooses_without_a_launch():
    assert html_lang(Client().get("/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")) == "de"
    assert html_lang(Client().get("/", HTTP_ACCEPT_LANGUAGE="es")) == "es"
    assert html_lang(Client().get("/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr")) == "en-gb"
    assert html_lang(Client().get("/")) == "en-gb"


def switch(client, language: str, next_url: str, **extra):
    return client.post("/lti/language/", {"language": language, "next": next_url}, **extra)


def test_the_switch_offers_every_language_named_in_itself_with_a_label(client):
    page = client.get("/").content.decode()
    form = re.search(r'<form class="language-switch".*?</form>', page, re.S)
    assert form, "no language switch on the page"
    form = form.group(0)
    assert 'action="/lti/language/"' in form and 'method="post"' in form
    assert re.search(r'<label for="language-switch-select">', form) and 'id="language-switch-select"' in form
    for code, name in (("en-gb", "English"), ("de", "Deutsch"), ("es", "Español")):
        assert f'<option value="{code}" lang="{code}"' in form and f">{name}</option>" in form
    assert re.search(r'<button type="submit">', form), "the switch needs a button (no change-on-select)"


def test_an_explicit_choice_beats_the_launch_and_the_browser(client, consumer):
    page = launch_11(client, consumer, launch_presentation_locale="de-DE", user_id="lang-5")
    here = page.wsgi_request.get_full_path()
    response = switch(client, "es", here)
    assert response.status_code == 302 and response["Location"] == here
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "es" and cookie["httponly"] and cookie["samesite"] == settings.SESSION_COOKIE_SAMESITE
    assert html_lang(client.get(here, HTTP_ACCEPT_LANGUAGE="de")) == "es"
    # Their choice stays when the LMS launches them again with its own locale (decided: the person's
    # choice wins until they choose again).
    assert html_lang(launch_11(client, consumer, launch_presentation_locale="de-DE", user_id="lang-5")) == "es"
    switch(client, "de", here)
    assert html_lang(client.get(here)) == "de"


def test_the_choice_is_kept_in_the_session_when_the_browser_drops_the_cookie(client, consumer):
    page = launch_11(client, consumer, launch_presentation_locale="es", user_id="lang-6")
    here = page.wsgi_request.get_full_path()
    switch(client, "de", here)
    del client.cookies[settings.LANGUAGE_COOKIE_NAME]  # an iframe whose browser keeps only the session
    assert html_lang(client.get(here)) == "de"


def test_the_switch_refuses_other_languages_and_other_sites(client):
    refused = switch(client, "fr", "/")
    assert refused.status_code == 400 and b"not one this site offers" in refused.content
    assert html_lang(client.get("/")) == "en-gb"
    response = switch(client, "de", "https://evil.example.com/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/lti/language/").status_code == 405


def test_the_new_window_hand_off_takes_the_launch_locale():
    from lms.services import consumer_create_or_update

    consumer, _, _ = consumer_create_or_update(key="lang-key", secret="lang-secret", name="LMS")
    iframe = Client()
    signed = test_lms.sign(test_lms.launch_params(launch_presentation_locale="de_DE", user_id="lang-7"),
                           key=consumer.key, secret=consumer.secret)
    location = iframe.post("/lti/launch/", signed)["Location"]
    offer = Client().get(location)  # the iframe's browser dropped the session cookie
    window = Client()
    landing = window.get(offer.context["handoff_url"])
    assert landing.status_code == 302
    assert html_lang(window.get(landing["Location"], HTTP_ACCEPT_LANGUAGE="en")) == "de"


# --- LTI 1.3 ----------------------------------------------------------------------------------


@pytest.fixture
def lms():
    with Lti13Platform(client_id="tool-1", deployment_id="dep-1") as platform:
        platform.add_context("course-7", title="Algebra 1", label="ALG1")
        yield platform


def lti13_page(client, lms, **claims):
    register(lms)
    response = lti13_launch(client, lms, sub="lang-13", roles=[ROLE_LEARNER], name="Ada Lovelace",
                            context={"id": "course-7", "title": "Algebra 1", "label": "ALG1"}, **claims)
    assert response.status_code == 302, response.content[:500]
    return client.get(response["Location"])


def test_the_lti_13_launch_presentation_locale_chooses_the_language(client, lms):
    page = lti13_page(client, lms, locale="de-DE")  # the platform puts it in both claims
    assert html_lang(page) == "de" and page["Content-Language"] == "de"


def test_the_lti_13_top_level_locale_claim_counts_without_a_launch_presentation_locale(client, lms):
    page = lti13_page(client, lms, locale="es-MX", launch_presentation={"document_target": "iframe"})
    assert html_lang(page) == "es"


def test_a_refused_launch_is_explained_in_the_launch_locale(consumer):
    signed = test_lms.sign(test_lms.launch_params(launch_presentation_locale="de-DE"), key=consumer.key,
                           secret="not-the-secret")
    refused = Client().post("/lti/launch/", signed, HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code in (401, 403) and html_lang(refused) == "de"


def test_the_lti_13_deep_linking_picker_is_in_the_launch_locale(client, lms):
    from tests.support.lti13_platform import MSG_DEEP_LINKING, ROLE_INSTRUCTOR

    register(lms)
    picker = lti13_launch(client, lms, message_type=MSG_DEEP_LINKING, sub="lang-dl", roles=[ROLE_INSTRUCTOR],
                          context={"id": "course-7", "title": "Algebra 1", "label": "ALG1"}, locale="de-DE")
    assert picker.status_code == 200, picker.content[:500]
    assert html_lang(picker) == "de"
