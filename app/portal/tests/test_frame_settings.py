"""Issue 16, problems 3, 4, 12 and 15 as the server answers them: the settings form in groups with
checkboxes beside their labels, posted to the overview's own address (a reload after a refused save
opens a page, not a 405), errors tied to their fields, branded error pages on both origins and a
favicon."""

import asyncio
import re

import pytest
from django.test import Client, override_settings

from attempts.tests.factories import launch, with_exam
from portal.forms import ResourceSettingsForm

pytestmark = pytest.mark.django_db

GOOD = {"max_attempts": "3", "allow_review": "on", "show_score": "complete", "grading_method": "last",
        "report_when": "completion"}


@pytest.fixture
def course(consumer):
    teacher = launch(consumer, user_id="teacher", roles="Instructor")
    resource = with_exam(teacher.membership.resource)
    return teacher, resource


def test_the_settings_form_posts_to_the_overview_and_a_refused_save_stays_there(course):
    teacher, resource = course
    overview = f"/resource/{resource.pk}/instructor/"
    page = teacher.get(overview).content.decode()
    form = re.search(r'<form[^>]*data-testid="settings-form"[^>]*>', page).group(0)
    assert f'action="{overview}#settings"' in form
    refused = teacher.post(overview, {**GOOD, "max_attempts": "-1"})
    assert refused.status_code == 400
    assert teacher.get(overview).status_code == 200  # what a reload of that address asks for


def test_the_old_settings_address_answers_a_reload_with_the_settings(course):
    teacher, resource = course
    response = teacher.get(f"/resource/{resource.pk}/instructor/settings/")
    assert response.status_code == 302
    assert response["Location"] == f"/resource/{resource.pk}/instructor/#settings"
    saved = teacher.post(f"/resource/{resource.pk}/instructor/settings/", GOOD)
    assert saved.status_code == 302 and saved["Location"].startswith(f"/resource/{resource.pk}/instructor/")


def test_a_field_with_an_error_is_marked_invalid_and_names_its_message(course):
    teacher, resource = course
    page = teacher.post(f"/resource/{resource.pk}/instructor/", {**GOOD, "max_attempts": "-1"}).content.decode()
    field = re.search(r'<input[^>]*id="id_max_attempts"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in field
    described = re.search(r'aria-describedby="([^"]*)"', field).group(1).split()
    assert "id_max_attempts_error" in described
    error = re.search(r'<[^>]*id="id_max_attempts_error"[^>]*>([^<]*)<', page)
    assert error and "greater than or equal to 0" in error.group(1)
    # The summary at the top links to the field.
    assert 'href="#id_max_attempts"' in page
    # Fields without errors are not marked.
    other = re.search(r'<select[^>]*id="id_grading_method"[^>]*>', page).group(0)
    assert "aria-invalid" not in other


def test_settings_are_grouped_and_checkboxes_come_before_their_plain_labels(course):
    teacher, resource = course
    page = teacher.get(f"/resource/{resource.pk}/instructor/").content.decode()
    legends = re.findall(r"<legend>([^<]*)</legend>", page)
    assert legends == ["Availability", "Attempts", "Marks and review", "Grades to the LMS", "Names on your pages"]
    form = ResourceSettingsForm()
    grouped = [field.name for _, fields in form.groups() for field in fields]
    assert sorted(grouped) == sorted(form.fields) and len(grouped) == len(set(grouped))
    for name, field in form.fields.items():
        if field.widget.input_type != "checkbox":
            continue
        # The box, then its label, whose text does not end with a colon.
        match = re.search(rf'<input type="checkbox" name="{name}"[^>]*>\s*<div><label for="id_{name}">([^<]*)</label>', page)
        assert match, name
        assert not match.group(1).strip().endswith(":"), name


def test_help_text_adds_to_the_label_rather_than_repeating_it():
    form = ResourceSettingsForm()
    for name, field in form.fields.items():
        if not field.help_text:
            continue
        label = str(field.label).strip(" .:").lower()
        help_text = str(field.help_text).strip(" .").lower()
        assert label not in help_text and help_text not in label, (name, field.label, field.help_text)
        words = set(re.findall(r"\w+", help_text))
        assert len(words - set(re.findall(r"\w+", label))) >= 3, (name, field.help_text)


def test_grading_settings_are_in_one_place(course):
    teacher, resource = course
    grades = teacher.get(f"/resource/{resource.pk}/instructor/grades/").content.decode()
    assert 'name="grading_method"' not in grades and 'name="report_when"' not in grades
    assert f'/resource/{resource.pk}/instructor/#settings' in grades
    overview = teacher.get(f"/resource/{resource.pk}/instructor/").content.decode()
    assert overview.count('name="grading_method"') == 1


def test_the_instructor_pages_share_the_activity_header_with_the_current_tab(course):
    teacher, resource = course
    base = f"/resource/{resource.pk}/instructor/"
    for path, current in (("", "overview"), ("students/", "students"), ("grades/", "grades"),
                          ("reports/", "reports"), ("statistics/", "statistics"), ("live/", "live")):
        page = teacher.get(base + path).content.decode()
        assert page.count('data-testid="activity-header"') == 1, path
        tabs = re.findall(r'<a href="[^"]*" data-testid="(\w+)-link"( aria-current="page")?>', page)
        assert [t for t, _ in tabs] == ["overview", "students", "grades", "reports", "statistics", "live"], path
        assert [t for t, cur in tabs if cur] == [current], path


@override_settings(DEBUG=False)
def test_error_pages_are_the_sites_own(course):
    teacher, resource = course
    missing = teacher.get("/no-such-page/")
    assert missing.status_code == 404
    assert b'data-testid="error-page"' in missing.content and b"site.css" in missing.content
    not_allowed = teacher.get(f"/resource/{resource.pk}/instructor/grades/report-all/")
    assert not_allowed.status_code == 405 and "POST" in not_allowed["Allow"]
    assert b'data-testid="error-page"' in not_allowed.content
    # A script's request keeps the plain answer.
    xhr = teacher.get(f"/resource/{resource.pk}/instructor/grades/report-all/", headers={"X-Requested-With": "XMLHttpRequest"})
    assert xhr.status_code == 405 and b"error-page" not in xhr.content


@override_settings(DEBUG=False)
def test_a_403_uses_the_sites_page(rf):
    from django.core.exceptions import PermissionDenied
    from django.views.defaults import permission_denied

    response = permission_denied(rf.get("/x/"), PermissionDenied())
    assert response.status_code == 403 and b'data-testid="error-page"' in response.content


def test_the_500_page_is_branded_without_a_request_context(rf, django_assert_num_queries):
    from core.views import server_error

    request = rf.get("/x/")
    with django_assert_num_queries(0):
        response = server_error(request)
    assert response.status_code == 500
    assert b'data-testid="error-page"' in response.content and b"site.css" in response.content


def test_favicon_on_the_application_origin():
    response = Client().get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"


def test_every_page_links_its_icon(course):
    teacher, resource = course
    page = teacher.get(f"/resource/{resource.pk}/").content.decode()
    assert re.search(r'<link rel="icon" href="[^"]*favicon\.svg"', page)


def _content(path, method="GET"):
    from content.server import ContentServer

    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": b"", "scheme": "http",
             "headers": [(b"host", b"exams.testserver")]}
    asyncio.run(ContentServer(serve=True)(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_the_content_origin_has_a_favicon_and_plain_branded_error_pages():
    status, headers, body = _content("/favicon.ico")
    assert status == 200 and body[:4] == b"\x00\x00\x01\x00" and "set-cookie" not in headers
    status, headers, body = _content("/nothing-here")
    assert status == 404 and headers["content-type"].startswith("text/html") and b"<h1>Page not found</h1>" in body
    assert b"<script" not in body and "set-cookie" not in headers
    status, headers, body = _content("/exams/x", method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD" and b"<h1>" in body and b"<script" not in body
