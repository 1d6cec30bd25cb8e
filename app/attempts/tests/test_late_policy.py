"""The due date and the activity's late policy (issue 15, point 1): refuse answers after the due
date, or accept them and mark the attempt late (shown to instructors and in the attempts CSV);
and whether grades that change after the due date go to the LMS. The clock is moved, never slept on."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from attempts import selectors, services
from attempts.models import Attempt, LatePolicy
from attempts.tests.factories import batch_message, launch, with_exam
from exams.models import ExamPackage
from grading.models import GradeReport, ReportState
from reports import tables
from reports.selectors import attempt_chunks

START = timezone.now().replace(microsecond=0) + timedelta(days=1)
DUE = START + timedelta(minutes=30)
CLOSES = START + timedelta(hours=2)

FINISH = [("cmi.score.raw", "3"), ("cmi.score.max", "4"), ("cmi.score.scaled", "0.75"),
          ("cmi.completion_status", "completed"), ("cmi.exit", "normal")]


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        at = START

    monkeypatch.setattr(timezone, "now", lambda: Clock.at)
    return Clock


def student_with(consumer, **settings):
    student = launch(consumer, user_id="s1")
    with_exam(student.membership.resource, max_attempts=0, due_at=DUE, available_until=CLOSES, **settings)
    ExamPackage.objects.filter(resource=student.membership.resource).update(duration_seconds=None)
    return student


def post_batch(client, attempt, message):
    return client.post(f"/attempt/{attempt.pk}/batches/", json.dumps(message), content_type="application/json")


def started(student):
    attempt = services.attempt_start(membership=student.membership)
    token = services.attempt_take_over(attempt=attempt)
    return attempt, token


@pytest.mark.django_db
def test_refuse_policy_the_due_date_closes_answers_and_starting(consumer, clock):
    student = student_with(consumer, late_policy=LatePolicy.REFUSE)
    attempt, token = started(student)
    assert Attempt.objects.get(pk=attempt.pk).deadline_at == DUE
    assert post_batch(student, attempt, batch_message(token, [("cmi.location", "1")])).status_code == 200

    clock.at = DUE + timedelta(seconds=5)
    late = post_batch(student, attempt, batch_message(token, [("cmi.location", "2")]))
    assert late.status_code == 409 and late.json()["error"]["code"] == "closed"
    assert "This exam was due at" in late.json()["error"]["message"]
    assert services.attempts_end_past_deadline() == 1
    attempt.refresh_from_db()
    assert attempt.ended_at == DUE and attempt.late is False

    options = selectors.attempt_options(membership=student.membership)
    assert not options.can_start and "late attempts are not accepted" in options.reason
    refused = student.post(f"/resource/{attempt.resource_id}/attempts/start/", follow=True)
    assert "late attempts are not accepted" in refused.content.decode()
    assert Attempt.objects.count() == 1


@pytest.mark.django_db
def test_accept_policy_marks_an_attempt_ended_after_the_due_date_late(consumer, clock):
    student = student_with(consumer, late_policy=LatePolicy.ACCEPT)
    on_time, token = started(student)
    assert post_batch(student, on_time, batch_message(token, FINISH, terminate=True)).json()["ended"] is True
    on_time.refresh_from_db()
    assert on_time.late is False

    clock.at = DUE - timedelta(minutes=1)
    late, token = started(student)
    assert late.deadline_at == CLOSES  # the due date does not stop answers under this policy
    clock.at = DUE + timedelta(minutes=10)
    response = post_batch(student, late, batch_message(token, FINISH, terminate=True))
    assert response.status_code == 200 and response.json()["ended"] is True
    late.refresh_from_db()
    assert late.late is True and late.ended_at == DUE + timedelta(minutes=10)

    # shown to instructors, and in the attempts CSV
    teacher = launch(consumer, user_id="t1", roles="Instructor")
    page = teacher.get(f"/resource/{late.resource_id}/instructor/students/{student.membership.pk}/").content.decode()
    assert 'data-testid="late-2"' in page and 'data-testid="late-1"' not in page
    assert 'data-testid="attempt-late"' in teacher.get(
        f"/resource/{late.resource_id}/instructor/attempts/{late.pk}/").content.decode()
    rows = [row for chunk, _ in attempt_chunks(resource_id=late.resource_id, discounts={}) for row in chunk]
    cells = {row.number: tables.attempts_row(row, {}, {}, [])[tables.ATTEMPTS_HEADER.index("late")] for row in rows}
    assert cells == {1: "", 2: "late"}


@pytest.mark.django_db
def test_accept_policy_an_attempt_ended_at_closing_after_the_due_date_is_late(consumer, clock):
    student = student_with(consumer, late_policy=LatePolicy.ACCEPT)
    attempt, _ = started(student)
    clock.at = CLOSES + timedelta(seconds=1)
    assert services.attempts_end_past_deadline() == 1
    attempt.refresh_from_db()
    assert attempt.ended_at == CLOSES and attempt.late is True


@pytest.mark.django_db
@pytest.mark.parametrize("report_after_due, sent", [(True, True), (False, False)])
def test_grades_after_the_due_date_go_to_the_lms_only_when_the_activity_says_so(consumer, clock, report_after_due,
                                                                                 sent):
    student = student_with(consumer, late_policy=LatePolicy.ACCEPT, report_after_due=report_after_due)
    attempt, token = started(student)
    clock.at = DUE + timedelta(minutes=1)
    assert post_batch(student, attempt, batch_message(token, FINISH, terminate=True)).status_code == 200
    report = GradeReport.objects.get(membership=student.membership)
    assert report.score == 0.75
    assert (report.state != ReportState.WAITING) is sent


@pytest.mark.django_db
def test_before_the_due_date_grades_go_to_the_lms_whatever_the_setting(consumer, clock):
    student = student_with(consumer, late_policy=LatePolicy.ACCEPT, report_after_due=False)
    attempt, token = started(student)
    assert post_batch(student, attempt, batch_message(token, FINISH, terminate=True)).status_code == 200
    assert GradeReport.objects.get(membership=student.membership).state != ReportState.WAITING


@pytest.mark.django_db
def test_the_settings_form_saves_the_late_policy(consumer):
    teacher = launch(consumer, user_id="t1", roles="Instructor")
    resource = with_exam(teacher.membership.resource)
    due = timezone.localtime(timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = teacher.post(f"/resource/{resource.pk}/instructor/settings/", {
        "max_attempts": "1", "show_score": "always", "grading_method": "highest", "report_when": "completion",
        "due_at": due, "late_policy": "refuse"})
    assert response.status_code == 302
    resource.settings.refresh_from_db()
    assert resource.settings.late_policy == LatePolicy.REFUSE and resource.settings.report_after_due is False
    bad = teacher.post(f"/resource/{resource.pk}/instructor/settings/", {
        "max_attempts": "1", "show_score": "always", "grading_method": "highest", "report_when": "completion",
        "late_policy": "whenever"})
    assert bad.status_code == 400
    resource.settings.refresh_from_db()
    assert resource.settings.late_policy == LatePolicy.REFUSE
