"""The reports page, status and download: instructors of the resource only."""

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from attempts.tests.factories import launch
from reports import storage
from reports.models import ReportFile


def url(resource, rest=""):
    return f"/resource/{resource.pk}/instructor/reports/{rest}"


def ask(client, resource, kind, capture, **headers):
    with capture(execute=True):  # the task is queued on commit; Huey runs it inline in tests
        return client.post(url(resource), {"kind": kind}, **headers)


@pytest.fixture
def done(known, django_capture_on_commit_callbacks):
    response = ask(known.instructor, known.resource, "scores", django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response["Location"] == url(known.resource)
    return ReportFile.objects.get()


@pytest.mark.django_db
def test_instructor_asks_follows_and_downloads(known, done):
    page = known.instructor.get(url(known.resource))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="request-scores"' in html and 'data-testid="request-attempts"' in html
    assert f'href="{url(known.resource, f"{done.pk}/download/")}"' in html and "reports/reports.js" in html

    status = known.instructor.get(url(known.resource, f"{done.pk}/status/")).json()
    assert status["state"] == "done" and status["progress"] == 100 and status["rows"] == 3
    assert status["download_url"] == url(known.resource, f"{done.pk}/download/")

    response = known.instructor.get(status["download_url"])
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="week-1-quiz-scores-') and disposition.endswith('.csv"')
    assert "no-cache" in response["Cache-Control"] or "private" in response["Cache-Control"]
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert next(csv.reader(io.StringIO(body)))[:4] == ["name", "identifier", "email", "lms_user_id"]


@pytest.mark.django_db
def test_json_request_answers_with_the_status(known, django_capture_on_commit_callbacks):
    response = ask(known.instructor, known.resource, "attempts", django_capture_on_commit_callbacks,
                   HTTP_ACCEPT="application/json")
    assert response.status_code == 202
    body = response.json()
    assert body["kind"] == "attempts" and body["state"] == "queued"  # the state when it was asked for
    assert known.instructor.get(body["status_url"]).json()["state"] == "done"


@pytest.mark.django_db
def test_unknown_kind_is_a_readable_400_and_writes_nothing(known, django_capture_on_commit_callbacks):
    response = ask(known.instructor, known.resource, "everything", django_capture_on_commit_callbacks)
    assert response.status_code == 400 and "There is no “everything” report" in response.content.decode()
    response = ask(known.instructor, known.resource, "", django_capture_on_commit_callbacks,
                   HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and "choose the scores or the attempts" in response.json()["error"]
    assert not ReportFile.objects.exists() and not storage.reports_dir().exists()


@pytest.mark.django_db
def test_others_cannot_ask_see_or_download(known, done, client, django_capture_on_commit_callbacks):
    other_instructor = launch(known.instructor.membership.resource.consumer, user_id="t2", roles="Instructor",
                              resource_link_id="res-2", context_id="course-2")
    # the other instructor's own resource: the report is not theirs, so it is not there
    own = other_instructor.membership.resource
    paths = {
        "page": url(known.resource),
        "status": url(known.resource, f"{done.pk}/status/"),
        "download": url(known.resource, f"{done.pk}/download/"),
    }
    for what, path in paths.items():
        assert client.get(path).status_code == 401, what
        assert known.ada.get(path).status_code == 403, what
        assert other_instructor.get(path).status_code == 403, what
    assert other_instructor.get(url(own, f"{done.pk}/status/")).status_code == 404
    assert other_instructor.get(url(own, f"{done.pk}/download/")).status_code == 404
    for who in (client, known.ada, other_instructor):
        response = ask(who, known.resource, "attempts", django_capture_on_commit_callbacks)
        assert response.status_code in (401, 403)
        assert b"lms_user_id" not in response.content
    assert ReportFile.objects.count() == 1
    # unknown ids and method
    missing = "00000000-0000-4000-8000-000000000000"
    assert known.instructor.get(url(known.resource, f"{missing}/download/")).status_code == 404
    assert known.instructor.get(url(known.resource, f"{missing}/status/")).status_code == 404
    assert known.instructor.post(url(known.resource, f"{done.pk}/download/")).status_code == 405


@pytest.mark.django_db
def test_no_public_url(known, done, client, settings):
    path = storage.absolute_path(done.relative_path)
    assert not path.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    for guess in (f"/media/{done.relative_path}", f"/media/exams/../../private/{done.relative_path}",
                  f"/static/{done.relative_path}", f"/{done.relative_path}"):
        response = client.get(guess)
        assert response.status_code == 404, guess
        assert b"lms_user_id" not in b"".join(getattr(response, "streaming_content", [response.content]))


@pytest.mark.django_db
def test_x_accel_redirect_when_nginx_serves_private_files(known, done, settings):
    settings.PRIVATE_X_ACCEL_PREFIX = "/_private/"
    response = known.instructor.get(url(known.resource, f"{done.pk}/download/"))
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/_private/reports/{done.pk}.csv"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert response.content == b""
    refused = known.ada.get(url(known.resource, f"{done.pk}/download/"))
    assert refused.status_code == 403 and not refused.has_header("X-Accel-Redirect")


@pytest.mark.django_db
def test_expired_or_missing_files_are_404(known, done):
    download = url(known.resource, f"{done.pk}/download/")
    storage.absolute_path(done.relative_path).unlink()
    assert known.instructor.get(download).status_code == 404
    ReportFile.objects.filter(pk=done.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert known.instructor.get(download).status_code == 404
    assert "report-download" not in known.instructor.get(url(known.resource)).content.decode()
