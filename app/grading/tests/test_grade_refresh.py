"""A student's grade follows their attempts, the grading method and the reporting policy;
the outbox row is written with the score, and delivery is only asked for after commit."""

import pytest

from attempts.models import ResourceSettings
from grading import services
from grading.models import Discount, GradeReport, ReportState
from attempts import services as attempt_services
from attempts.tests.factories import batch
from grading.tests.helpers import answer, start, student_with_exam


def report_of(membership):
    return GradeReport.objects.filter(membership=membership).first()


@pytest.mark.django_db
def test_on_completion_the_grade_waits_until_the_attempt_is_completed(consumer, django_capture_on_commit_callbacks):
    membership = student_with_exam(consumer, report_when="completion")
    attempt = start(membership)
    with django_capture_on_commit_callbacks() as kicks:
        answer(attempt, 1)
    assert report_of(membership) is None and not kicks  # incomplete attempts do not count by default
    with django_capture_on_commit_callbacks() as kicks:
        assert answer(attempt, 3, complete=True).ended
    report = report_of(membership)
    assert (report.score, report.state, report.attempt_number) == (0.75, ReportState.PENDING, 1)
    assert len(kicks) >= 1  # the delivery is asked for only once the batch has committed


@pytest.mark.django_db
def test_immediately_every_score_change_is_queued(consumer):
    membership = student_with_exam(consumer, report_when="immediately", include_incomplete=True)
    attempt = start(membership)
    answer(attempt, 1)
    report = report_of(membership)
    assert (report.score, report.state, report.version) == (0.25, ReportState.PENDING, 1)
    answer(attempt, 2)
    report.refresh_from_db()
    assert (report.score, report.state, report.version) == (0.5, ReportState.PENDING, 2)


@pytest.mark.django_db
def test_manual_reporting_waits_for_report_all(consumer, django_capture_on_commit_callbacks):
    membership = student_with_exam(consumer, report_when="manual")
    answer(start(membership), 4, complete=True)
    assert report_of(membership).state == ReportState.WAITING
    with django_capture_on_commit_callbacks():
        assert services.grades_report_all(resource_id=membership.resource_id) == 1
    report = report_of(membership)
    assert (report.state, report.score) == (ReportState.PENDING, 1.0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method, include_incomplete, expected",
    [("highest", False, (0.75, 1)), ("last", False, (0.25, 2)), ("highest", True, (1.0, 3)), ("last", True, (1.0, 3))],
)
def test_grading_method_over_stored_attempts(consumer, method, include_incomplete, expected):
    membership = student_with_exam(consumer, report_when="completion", grading_method=method,
                                   include_incomplete=include_incomplete)
    answer(start(membership), 3, complete=True)
    answer(start(membership), 1, complete=True)
    answer(start(membership), 4)  # in progress
    services.grade_refresh(resource_id=membership.resource_id, user_id=membership.user_id,
                           trigger=services.Trigger.RECOMPUTE)
    report = report_of(membership)
    assert (report.score, report.attempt_number) == expected


@pytest.mark.django_db
def test_a_discount_recomputes_and_resends_reported_grades(consumer, django_capture_on_commit_callbacks):
    membership = student_with_exam(consumer, report_when="completion")
    # q0 1/2, q1 0/2: half marks overall.
    answer(start(membership), 1, complete=True, questions=[("q0", 1, 2), ("q1", 0, 2)])
    GradeReport.objects.filter(membership=membership).update(
        state=ReportState.DELIVERED, sent_score=0.25, sent_version=1
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.discount_set(resource_id=membership.resource_id, target="q1", behaviour="full_marks", user=None)
    report = report_of(membership)
    assert (report.score, report.state, report.version) == (0.75, ReportState.PENDING, 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.discount_set(resource_id=membership.resource_id, target="q1", behaviour="remove", user=None)
    assert report_of(membership).score == 0.5
    with django_capture_on_commit_callbacks(execute=True):
        services.discount_set(resource_id=membership.resource_id, target="q1", behaviour=None, user=None)
    assert report_of(membership).score == 0.25 and not Discount.objects.exists()


@pytest.mark.django_db
def test_a_grade_the_lms_already_has_is_not_queued_again(consumer):
    membership = student_with_exam(consumer, report_when="completion")
    answer(start(membership), 2, complete=True)
    report = report_of(membership)
    GradeReport.objects.filter(pk=report.pk).update(state=ReportState.DELIVERED, sent_score=0.5,
                                                     sent_version=report.version)
    services.grade_refresh(resource_id=membership.resource_id, user_id=membership.user_id,
                           trigger=services.Trigger.COMPLETED)
    assert report_of(membership).state == ReportState.DELIVERED


@pytest.mark.django_db
def test_a_student_without_a_gradebook_entry_is_shown_as_such(consumer):
    membership = student_with_exam(consumer, report_when="immediately", include_incomplete=True)
    type(membership).objects.filter(pk=membership.pk).update(lis_result_sourcedid="")
    answer(start(membership), 2)
    report = report_of(membership)
    assert report.state == ReportState.NO_OUTCOME and "outcome service" in report.last_error


@pytest.mark.django_db
def test_a_fault_in_grading_does_not_lose_the_answer(consumer, monkeypatch):
    membership = student_with_exam(consumer, report_when="immediately")
    attempt = start(membership)

    def broken(**kwargs):
        raise RuntimeError("grading bug")

    monkeypatch.setattr(services, "grade_refresh", broken)
    assert answer(attempt, 2).stored
    attempt.refresh_from_db()
    assert attempt.score_raw == 2.0


@pytest.mark.django_db
def test_settings_defaults_report_on_completion_with_highest_attempt(consumer):
    membership = student_with_exam(consumer)
    settings_ = ResourceSettings.objects.get(resource_id=membership.resource_id)
    assert (settings_.report_when, settings_.grading_method, settings_.include_incomplete) == (
        "completion", "highest", False)


@pytest.mark.django_db
def test_a_completed_attempt_still_open_updates_the_grade_when_its_score_changes(consumer):
    membership = student_with_exam(consumer, report_when="immediately")
    attempt = start(membership)
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id, batch=batch(
        attempt.writer_token, [("cmi.completion_status", "completed"), ("cmi.score.raw", "1"), ("cmi.score.max", "4")]))
    assert report_of(membership).score == 0.25
    answer(attempt, 3)  # not completing again: the completed attempt's new score still counts
    assert report_of(membership).score == 0.75
