"""Exam versions (issue 15, point 5): the instructor lists every version with its attempts,
downloads any one as an attachment, makes an older one current again (audited), moves chosen or
all attempts to the current version (data kept, audited, grades recomputed and re-sent, open exams
told), and is warned — and refused on the server — before replacing an exam students started."""

import asyncio
import io
import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from attempts import services as attempt_services
from attempts.models import Attempt, AttemptEvent, AttemptEventKind, Element, ElementChange, PartOverride
from attempts.tests.factories import batch, batch_message, launch, with_exam
from exams import selectors
from exams.models import CurrentVersionChange, ExamPackage
from exams.services import ReplaceNeedsConfirmation, exam_package_upload, original_path
from grading import services as grading_services
from grading.models import GradeReport, ReportState
from grading.tests.helpers import answer, start
from tests.support.packages import demo_exam_variant

# The corrected version: the last part is worth 4 marks instead of 2 (total 6, not 4), and one
# prompt is reworded. Same questions and parts, so attempts resume on it.
CORRECTED = demo_exam_variant(replace={
    "source.exam": [('{"type": "numberentry", "marks": 2}', '{"type": "numberentry", "marks": 4}')],
    "exam.js": [('answer: "11", marks: 2', 'answer: "11", marks: 4'), ("What is 6 × 7?", "What is 7 × 6?")],
})
# Another shape: the second question gains a part.
RESHAPED = demo_exam_variant(title="Demo exam (three parts)", replace={
    "source.exam": [('{"type": "numberentry", "marks": 2}]', '{"type": "numberentry", "marks": 2}, '
                                                              '{"type": "jme", "marks": 1}]')],
})


@pytest.fixture(autouse=True)
def no_grade_deliveries(monkeypatch):
    """Grades are queued in the outbox; no delivery run is started (the test reads the queue)."""
    monkeypatch.setattr(grading_services, "passback_kick", lambda: None)


@pytest.fixture
def instructor(consumer):
    return launch(consumer, user_id="i1", roles="Instructor")


@pytest.fixture
def student(consumer, instructor):
    student = launch(consumer, user_id="s1")
    with_exam(student.membership.resource, max_attempts=0)
    return student


@pytest.fixture
def resource(student):
    return student.membership.resource


def upload_service(resource, data, by=None, **kwargs):
    return exam_package_upload(resource=resource, upload=io.BytesIO(data), size=len(data), filename="v.zip",
                               uploaded_by=by, **kwargs)


def upload_view(client, resource, data, **extra):
    return client.post(f"/resource/{resource.pk}/instructor/exam/",
                       {"package": SimpleUploadedFile("corrected.zip", data), **extra})


def files_under(root: str) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []


def name(client) -> str:
    user = client.membership.user
    return user.get_full_name() or user.get_username()


def finished_attempt(student, raw=3):
    """A finished attempt: 3 of 4 (q0p0 right, q0p1 wrong, q1p0 right), as the demo exam saves it."""
    attempt = start(student.membership)
    changes = []
    for index, (part, question, score, marks) in enumerate([("q0p0", "q0", 1, 1), ("q0p1", "q0", 0, 1),
                                                            ("q1p0", "q1", raw - 1, 2)]):
        prefix = f"cmi.interactions.{index}."
        changes += [(prefix + "id", part), (prefix + "objectives.0.id", question), (prefix + "weighting", str(marks)),
                    (prefix + "result", str(score))]
    changes.append(("cmi.suspend_data", json.dumps({"answers": {"q0p0": "4", "q0p1": "41", "q1p0": "11"}})))
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id, batch=batch(attempt.writer_token, changes))
    answer(attempt, raw, complete=True, questions=[("q0", 1, 2), ("q1", raw - 1, 2)])
    attempt.refresh_from_db()
    assert attempt.is_ended
    return attempt


# --- warning before replacing an exam students have started ------------------------------------


@pytest.mark.django_db
def test_replacing_a_started_exam_without_confirmation_is_refused_and_writes_nothing(student, instructor, resource):
    start(student.membership)
    files_before = files_under(settings.MEDIA_ROOT) + files_under(settings.PRIVATE_ROOT)
    response = upload_view(instructor, resource, CORRECTED)
    assert response.status_code == 409
    assert response.json()["code"] == "confirm_replace" and response.json()["attempts"] == 1
    assert "1 attempt has been started on this exam" in response.json()["error"]
    assert ExamPackage.objects.filter(resource=resource).count() == 1
    assert CurrentVersionChange.objects.filter(resource=resource).count() == 1  # the first upload's
    assert files_under(settings.MEDIA_ROOT) + files_under(settings.PRIVATE_ROOT) == files_before
    with pytest.raises(ReplaceNeedsConfirmation):
        upload_service(resource, CORRECTED)
    assert ExamPackage.objects.filter(resource=resource).count() == 1


@pytest.mark.django_db
def test_the_upload_form_warns_with_the_counts_and_a_confirmation_replaces(student, instructor, resource):
    finished_attempt(student)
    start(student.membership)
    page = instructor.get(f"/resource/{resource.pk}/instructor/").content.decode()
    assert 'data-testid="replace-warning"' in page
    assert "2 attempts (1 in progress, 1 finished)" in page
    assert 'name="confirm_replace" value="yes" required' in page

    response = upload_view(instructor, resource, CORRECTED, confirm_replace="yes")
    assert response.status_code == 201 and response.json()["version"] == 2
    assert selectors.exam_current(resource_id=resource.pk).version == 2
    assert Attempt.objects.filter(resource=resource, exam__version=1).count() == 2  # they keep their version


@pytest.mark.django_db
def test_an_exam_nobody_started_is_replaced_without_a_warning(student, instructor, resource):
    page = instructor.get(f"/resource/{resource.pk}/instructor/").content.decode()
    assert 'data-testid="replace-warning"' not in page
    assert upload_view(instructor, resource, CORRECTED).status_code == 201
    page = instructor.get(f"/resource/{resource.pk}/instructor/").content.decode()
    v2 = page[page.index('data-testid="version-2"'):page.index('data-testid="version-1"')]
    assert 'data-testid="version-current"' in v2 and f"by {name(instructor)}" in v2


# --- the versions list -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_versions_list_shows_each_version_its_uploader_attempts_and_the_current_one(student, instructor,
                                                                                         resource):
    finished_attempt(student)
    start(student.membership)
    upload_service(resource, CORRECTED, by=instructor.membership.user, replace_confirmed=True)
    rows = selectors.exam_version_rows(resource_id=resource.pk)
    assert [(r.exam.version, r.is_current, r.in_progress, r.finished) for r in rows] == [(2, True, 0, 0),
                                                                                       (1, False, 1, 1)]
    assert rows[0].exam.title == "Demo exam (corrected)" and rows[0].exam.uploaded_by == instructor.membership.user

    page = instructor.get(f"/resource/{resource.pk}/instructor/").content.decode()
    assert 'data-testid="exam-versions"' in page
    v2 = page[page.index('data-testid="version-2"'):page.index('data-testid="version-1"')]
    assert "Demo exam (corrected)" in v2 and 'data-testid="version-current"' in v2 and "0 in progress, 0 finished" in v2
    assert f"by {name(instructor)}" in v2
    v1 = page[page.index('data-testid="version-1"'):]
    assert "1 in progress, 1 finished" in v1 and "Make v1 current" in v1
    assert 'data-testid="move-link"' in page


# --- download ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_version_downloads_as_the_zip_uploaded_as_an_attachment_that_cannot_run(student, instructor, resource):
    upload_service(resource, CORRECTED, by=instructor.membership.user)
    v2 = ExamPackage.objects.get(resource=resource, version=2)
    response = instructor.get(f"/resource/{resource.pk}/instructor/exam/versions/{v2.pk}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CORRECTED  # the bytes uploaded, not our rewritten files
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="Demo-exam--corrected-v2.zip"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox")
    # Kept outside MEDIA_ROOT: no web server serves it.
    assert str(original_path(v2)).startswith(settings.PRIVATE_ROOT)


@pytest.mark.django_db
def test_a_version_uploaded_before_zips_were_kept_downloads_as_its_stored_files(instructor, resource):
    v1 = ExamPackage.objects.get(resource=resource, version=1)
    original_path(v1).unlink()
    response = instructor.get(f"/resource/{resource.pk}/instructor/exam/versions/{v1.pk}/download/")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert {"imsmanifest.xml", "index.html", "exam.js", "source.exam"} <= set(archive.namelist())
    assert archive.read("exam.js") == (Path(__file__).parents[1] / "demo_exam" / "exam.js").read_bytes()


@pytest.mark.django_db
def test_versions_of_other_activities_and_bad_ids_are_refused(consumer, student, instructor, resource):
    other = launch(consumer, user_id="i2", roles="Instructor", resource_link_id="res-2", context_id="course-2")
    with_exam(other.membership.resource)
    theirs = ExamPackage.objects.get(resource=other.membership.resource)
    ours = ExamPackage.objects.get(resource=resource)
    base = f"/resource/{resource.pk}/instructor/exam/versions"
    assert instructor.get(f"{base}/{theirs.pk}/download/").status_code == 404
    assert instructor.post(f"{base}/{theirs.pk}/current/").status_code == 404
    assert instructor.get(f"{base}/not-a-uuid/download/").status_code == 404
    assert instructor.get(f"{base}/00000000-0000-0000-0000-000000000000/download/").status_code == 404
    assert other.get(f"{base}/{ours.pk}/download/").status_code == 403  # not an instructor here
    assert student.get(f"{base}/{ours.pk}/download/").status_code == 403
    assert student.post(f"{base}/{ours.pk}/current/").status_code == 403
    assert CurrentVersionChange.objects.filter(why="restored").count() == 0


# --- make a version current again ----------------------------------------------------------------


@pytest.mark.django_db
def test_an_older_version_made_current_again_is_what_new_attempts_start_on_and_it_is_audited(
        student, instructor, resource):
    upload_service(resource, CORRECTED)
    v1 = ExamPackage.objects.get(resource=resource, version=1)
    assert start(student.membership).exam.version == 2
    Attempt.objects.update(ended_at="2026-01-01T00:00:00Z")
    response = instructor.post(f"/resource/{resource.pk}/instructor/exam/versions/{v1.pk}/current/")
    assert response.status_code == 302
    change = CurrentVersionChange.objects.filter(resource=resource).latest("at", "pk")
    assert (change.exam, change.why, change.by) == (v1, "restored", instructor.membership.user)
    assert selectors.exam_current(resource_id=resource.pk) == v1
    assert start(student.membership).exam == v1
    page = instructor.get(f"/resource/{resource.pk}/instructor/").content.decode()
    assert "Version 1 is current again" in page
    assert "Students start <strong>Demo exam</strong> (version 1," in page
    assert "made current again" in page and f"by {name(instructor)}" in page

    again = instructor.post(f"/resource/{resource.pk}/instructor/exam/versions/{v1.pk}/current/")
    assert again.status_code == 400 and "Version 1 is already the current version." in again.content.decode()
    assert CurrentVersionChange.objects.filter(why="restored").count() == 1
    # A new upload is current again, as before.
    upload_service(resource, CORRECTED, replace_confirmed=True)
    assert selectors.exam_current(resource_id=resource.pk).version == 3


# --- moving attempts ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_moving_keeps_the_data_audits_each_attempt_and_resends_the_changed_grade(student, instructor, resource):
    done = finished_attempt(student)
    grading_services.part_remark(attempt=done, part_id="q0p1", score=1, by=instructor.membership.user)
    report = GradeReport.objects.get(resource=resource)
    assert report.score == 1.0  # 4 of 4 with the re-mark
    GradeReport.objects.filter(pk=report.pk).update(state=ReportState.DELIVERED, sent_version=report.version)
    open_ = start(student.membership)
    attempt_services.batch_store(attempt_id=open_.pk, user_id=open_.user_id,
                                 batch=batch(open_.writer_token, [("cmi.suspend_data", '{"answers": {"q0p0": "4"}}')]))
    values_before = {a.pk: dict(Element.objects.filter(attempt=a).values_list("key", "value")) for a in (done, open_)}
    history_before = ElementChange.objects.filter(attempt__in=[done, open_]).count()
    upload_service(resource, CORRECTED, replace_confirmed=True)

    result = attempt_services.attempts_move_to_version(resource_id=resource.pk, attempt_ids=None,
                                                       by=instructor.membership.user, reason="q1 marks fixed")
    assert sorted(result.moved) == sorted([done.pk, open_.pk]) and result.to_version == 2
    for attempt in (done, open_):
        attempt.refresh_from_db()
        assert attempt.exam.version == 2 and attempt.writer_token == ""
        assert dict(Element.objects.filter(attempt=attempt).values_list("key", "value")) == values_before[attempt.pk]
        event = AttemptEvent.objects.get(attempt=attempt, kind=AttemptEventKind.MOVED)
        assert (event.by, event.reason) == (instructor.membership.user, "q1 marks fixed")
        assert (event.detail["from_version"], event.detail["to_version"]) == (1, 2)
    assert ElementChange.objects.filter(attempt__in=[done, open_]).count() == history_before
    assert PartOverride.objects.get(attempt=done).score == 1
    assert done.ended_at is not None and open_.ended_at is None
    # Out of the corrected total now: (1 + 1 re-marked + 2) / 6; the LMS had 1.0, so it is re-sent.
    report.refresh_from_db()
    assert (report.score, report.state) == (round(4 / 6, 6), ReportState.PENDING)
    assert report.version == report.sent_version + 1
    assert result.grades_changed == 1


@pytest.mark.django_db
def test_only_chosen_attempts_move_and_moving_again_changes_nothing(consumer, student, instructor, resource):
    mine = finished_attempt(student)
    other = launch(consumer, user_id="s2")
    theirs = start(other.membership)
    upload_service(resource, CORRECTED, replace_confirmed=True)
    result = attempt_services.attempts_move_to_version(resource_id=resource.pk, attempt_ids=[theirs.pk],
                                                       by=instructor.membership.user)
    assert result.moved == [theirs.pk]
    assert Attempt.objects.get(pk=mine.pk).exam.version == 1
    again = attempt_services.attempts_move_to_version(resource_id=resource.pk, attempt_ids=[theirs.pk],
                                                      by=instructor.membership.user)
    assert again.moved == [] and AttemptEvent.objects.filter(kind=AttemptEventKind.MOVED).count() == 1


@pytest.mark.django_db
def test_the_move_page_asks_for_confirmation_with_counts_then_moves(student, instructor, resource):
    done = finished_attempt(student)
    open_ = start(student.membership)
    upload_service(resource, RESHAPED, replace_confirmed=True)
    url = f"/resource/{resource.pk}/instructor/exam/move/"
    page = instructor.get(url).content.decode()
    assert f'data-testid="move-row-{done.pk}"' in page and f'data-testid="move-row-{open_.pk}"' in page

    confirm = instructor.post(url, {"all": "yes"})
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "2 attempts will move to version 2" in text
    assert "1 in progress" in text and "1 finished" in text
    assert "2 of them were started on a version whose questions or parts differ" in text
    assert Attempt.objects.filter(exam__version=1).count() == 2  # nothing moved yet

    target = selectors.exam_current(resource_id=resource.pk)
    moved = instructor.post(url, {"attempt": [str(done.pk)], "confirm": "yes", "to": str(target.pk)}, follow=True)
    assert "1 attempt moved to version 2" in moved.content.decode()
    assert Attempt.objects.get(pk=done.pk).exam == target and Attempt.objects.get(pk=open_.pk).exam.version == 1


@pytest.mark.django_db
def test_moving_other_activities_attempts_or_bad_ids_is_refused_and_moves_nothing(consumer, student, instructor,
                                                                                  resource):
    mine = start(student.membership)
    upload_service(resource, CORRECTED, replace_confirmed=True)
    elsewhere = launch(consumer, user_id="s9", resource_link_id="res-2", context_id="course-2")
    with_exam(elsewhere.membership.resource)
    theirs = start(elsewhere.membership)
    teacher_elsewhere = launch(consumer, user_id="i9", roles="Instructor", resource_link_id="res-2",
                               context_id="course-2")
    url = f"/resource/{resource.pk}/instructor/exam/move/"
    target = str(selectors.exam_current(resource_id=resource.pk).pk)
    cases = [
        (instructor, {"attempt": [str(theirs.pk)], "confirm": "yes", "to": target}, 404, "not attempts of this activity"),
        (instructor, {"attempt": [str(mine.pk), str(theirs.pk)], "confirm": "yes", "to": target}, 404, "nothing was moved"),
        (instructor, {"attempt": ["abc"], "confirm": "yes", "to": target}, 400, "“abc” is not an attempt"),
        (instructor, {"attempt": ["99999999999999999999"]}, 400, "is not an attempt"),
        (instructor, {"confirm": "yes", "to": target}, 400, "Choose the attempts to move"),
        (instructor, {"all": "yes", "confirm": "yes", "to": "00000000-0000-0000-0000-000000000000"}, 409,
         "The current version changed"),
        (student, {"all": "yes", "confirm": "yes", "to": target}, 403, ""),
        (teacher_elsewhere, {"all": "yes", "confirm": "yes", "to": target}, 403, ""),
    ]
    for client, data, status, says in cases:
        response = client.post(url, data)
        assert response.status_code == status, (data, response.status_code)
        assert says in response.content.decode()
    assert Attempt.objects.get(pk=mine.pk).exam.version == 1 and Attempt.objects.get(pk=theirs.pk).exam.version == 1
    assert not AttemptEvent.objects.filter(kind=AttemptEventKind.MOVED).exists()
    assert teacher_elsewhere.get(url).status_code == 403


@pytest.mark.django_db
def test_a_moved_attempt_runs_the_new_version_and_an_old_window_is_sent_to_it(student, resource):
    attempt = start(student.membership)
    old_token = attempt.writer_token
    upload_service(resource, CORRECTED, replace_confirmed=True)
    attempt_services.attempts_move_to_version(resource_id=resource.pk, attempt_ids=[attempt.pk], by=None)
    new = selectors.exam_current(resource_id=resource.pk)
    # The old window's writes are refused: nothing from the old version reaches the moved attempt.
    stale = student.post(f"/attempt/{attempt.pk}/batches/",
                         json.dumps(batch_message(old_token, [("cmi.suspend_data", "old")])),
                         content_type="application/json")
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "taken_over"
    assert not Element.objects.filter(attempt=attempt, key="cmi.suspend_data").exists()
    # Taking it over again says which exam to run, so an old page reloads onto the new version.
    taken = student.post(f"/attempt/{attempt.pk}/take-over/")
    assert taken.json()["examPath"] == new.launch_path
    page = student.get(f"/attempt/{attempt.pk}/")
    assert page.context["config"]["examPath"] == new.launch_path


def _cookie(client) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@pytest.fixture
def own_db_thread(monkeypatch):
    """The consumer's database work on a thread of this test's, whose connection is closed
    afterwards (so the test database can be dropped)."""
    from django.db import connections

    from attempts import consumers

    pool = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(consumers, "_db_threads", pool)
    yield
    pool.submit(connections.close_all).result()
    pool.shutdown()


@pytest.mark.django_db(transaction=True)
def test_an_exam_open_in_a_browser_is_told_its_attempt_moved(student, resource, own_db_thread):
    from numbas_lti.asgi import application

    attempt = start(student.membership)
    upload_service(resource, CORRECTED, replace_confirmed=True)

    def move():
        from django.db import connections

        try:
            attempt_services.attempts_move_to_version(resource_id=resource.pk, attempt_ids=[attempt.pk], by=None)
        finally:
            connections.close_all()

    async def run():
        communicator = WebsocketCommunicator(application, f"/ws/attempt/{attempt.pk}/?token={attempt.writer_token}",
                                             headers=[(b"cookie", _cookie(student).encode()),
                                                      (b"origin", b"http://testserver")])
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        messages = [await communicator.receive_json_from(timeout=5)]
        await asyncio.get_running_loop().run_in_executor(None, move)
        messages.append(await communicator.receive_json_from(timeout=5))
        closed = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return messages, closed

    with ThreadPoolExecutor(1) as pool:
        messages, closed = pool.submit(asyncio.run, run()).result(timeout=30)
    assert messages[0] == {"type": "ready"}
    assert messages[1]["type"] == "moved" and "version 2" in messages[1]["message"]
    assert closed == {"type": "websocket.close", "code": 4412}


@pytest.mark.django_db
def test_the_attempts_history_shows_the_move_with_both_versions(student, instructor, resource):
    attempt = start(student.membership)
    upload_service(resource, CORRECTED, replace_confirmed=True)
    attempt_services.attempts_move_to_version(resource_id=resource.pk, attempt_ids=[attempt.pk],
                                              by=instructor.membership.user, reason="typo fixed")
    page = instructor.get(f"/resource/{resource.pk}/instructor/attempts/{attempt.pk}/").content.decode()
    story = page[page.index('data-testid="story"'):]
    assert "moved the attempt to version 2 of the exam (from version 1)" in story and "typo fixed" in story


@pytest.mark.django_db
def test_behind_nginx_the_zip_is_sent_from_the_private_location(instructor, resource, settings):
    settings.PRIVATE_X_ACCEL_PREFIX = "/_private"
    v1 = ExamPackage.objects.get(resource=resource, version=1)
    response = instructor.get(f"/resource/{resource.pk}/instructor/exam/versions/{v1.pk}/download/")
    assert response["X-Accel-Redirect"] == f"/_private/exam-packages/{v1.directory}.zip"
    assert response["Content-Disposition"] == 'attachment; filename="Demo-exam-v1.zip"'
    assert response["Content-Security-Policy"].startswith("sandbox") and response.content == b""
