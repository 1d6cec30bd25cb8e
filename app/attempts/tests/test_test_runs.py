"""Instructors' test runs: the exam as a student gets it, saved the same way, in a sandbox attempt
that never counts anywhere, never reaches the LMS and can be removed for good (audited)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from attempts import selectors, services
from attempts.models import Attempt, Element, ElementChange, ResourceSettings
from attempts.models import TestRunRemoval as Removal
from attempts.tests.factories import batch, launch, with_exam
from dashboard import selectors as dashboard_selectors
from grading import services as grading_services
from grading.models import AttemptQuestionScore, GradeReport
from grading.tests.helpers import answer, start
from insights import live as insights_live
from insights import selectors as insights_selectors
from lms.models import ResourceMembership
from reports import selectors as report_selectors
from tests.support.lms_stub import LmsStub

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stub(consumer):
    with LmsStub(consumers={consumer.key: consumer.secret}, timeout_delay=1.5) as stub:
        yield stub


def people(consumer, stub=None, **settings):
    """A student and an instructor of one resource with the demo exam; both have somewhere to
    send grades when a stub LMS is given."""
    student = launch(consumer, user_id="s1")
    instructor = launch(consumer, user_id="i1", roles="Instructor")
    with_exam(student.membership.resource, **{"max_attempts": 1, "report_when": "immediately",
                                              "email_receipt": True, **settings})
    if stub is not None:
        ResourceMembership.objects.filter(resource=student.membership.resource).update(
            lis_outcome_service_url=stub.url, lis_result_sourcedid="sid-" + "x")
        ResourceMembership.objects.filter(pk=instructor.membership.pk).update(lis_result_sourcedid="sid-instructor")
    student.membership.refresh_from_db()
    instructor.membership.refresh_from_db()
    return student, instructor


def run_to_the_end(attempt, raw=3):
    services.attempt_take_over(attempt=attempt)
    attempt.refresh_from_db()
    answer(attempt, raw, complete=True, questions=[("q0", raw, 4)])
    attempt.refresh_from_db()
    return attempt


def test_a_test_run_is_saved_like_an_attempt_but_never_counts_nor_reaches_the_lms(consumer, stub, mailoutbox):
    student, instructor = people(consumer, stub)
    resource_id = student.membership.resource_id
    run = run_to_the_end(services.test_run_start(membership=instructor.membership))
    assert run.is_test_run and run.is_ended and run.score_raw == 3  # saved by the students' saving path
    assert Element.objects.filter(attempt=run, key="cmi.score.raw").exists()
    # The LMS and the outbox get nothing, whatever is asked of them.
    assert not GradeReport.objects.filter(membership=instructor.membership).exists()
    grading_services.grades_report_all(resource_id=resource_id)
    grading_services.grades_refresh_resource(resource_id=resource_id, trigger=grading_services.Trigger.RECOMPUTE)
    grading_services.passback_deliver_due(budget_seconds=1, wait_for_retries=True)
    assert not GradeReport.objects.exists() and stub.requests == []
    assert mailoutbox == []  # no receipt for a test run
    assert not AttemptQuestionScore.objects.filter(attempt=run).exists()  # not in statistics
    # A student's attempt alongside it counts as ever, alone.
    attempt = start(student.membership)
    answer(attempt, 2, complete=True, questions=[("q0", 2, 4)])
    grading_services.passback_deliver_due(budget_seconds=2, wait_for_retries=True)
    assert [r.outcome for r in stub.requests] == ["accepted"] and stub.accepted_for("sid-x") == [0.5]
    # Students list, CSVs, statistics, live counts.
    rows = {r["user_id"]: r for r in dashboard_selectors.students_page(
        resource_id=resource_id, query=dashboard_selectors.StudentQuery()).object_list}
    assert rows[instructor.membership.user_id]["attempt_count"] == 0
    assert rows[student.membership.user_id]["attempt_count"] == 1
    assert report_selectors.attempts_count(resource_id=resource_id) == 1
    assert [a.id for chunk, _ in report_selectors.attempt_chunks(resource_id=resource_id, discounts={})
            for a in chunk] == [attempt.pk]
    assert report_selectors.students_count(resource_id=resource_id) == 1
    headline = insights_selectors.statistics_headline(resource_id=resource_id, all_attempts=True)
    assert (headline.attempts, headline.completed, headline.mean) == (1, 1, 0.5)
    averages = insights_selectors.question_averages(resource_id=resource_id, all_attempts=True)
    assert {q.id: q.attempts for q in averages} == {"q0": 1, "q1": 1}
    assert insights_live.live_summary(resource_id=resource_id)["completed"] == 1
    assert dashboard_selectors.attempts_of_student(resource_id=resource_id, user_id=run.user_id) == []


def test_an_open_test_run_is_not_in_the_live_counts_and_is_resumed_not_doubled(consumer):
    student, instructor = people(consumer)
    run = services.test_run_start(membership=instructor.membership)
    assert insights_live.live_summary(resource_id=run.resource_id)["in_progress"] == 0
    assert services.test_run_start(membership=instructor.membership).pk == run.pk
    assert selectors.test_runs_of(resource_id=run.resource_id, user_id=run.user_id) == [run]


def test_closing_times_due_dates_and_the_attempt_limit_do_not_stop_a_test_run(consumer):
    past = timezone.now() - timedelta(days=1)
    student, instructor = people(consumer, available_from=past - timedelta(days=2), available_until=past,
                                 due_at=past, late_policy="refuse", max_attempts=1)
    assert not selectors.attempt_options(membership=student.membership).can_start
    first = run_to_the_end(services.test_run_start(membership=instructor.membership))
    second = services.test_run_start(membership=instructor.membership)
    assert second.pk != first.pk and (first.number, second.number) == (1, 2) and second.deadline_at is None
    assert selectors.attempt_closed_message(attempt=second) == ""
    services.attempt_take_over(attempt=second)
    second.refresh_from_db()
    result = services.batch_store(attempt_id=second.pk, user_id=second.user_id,
                                  batch=batch(second.writer_token, [("cmi.location", "q1")]))
    assert result.stored
    # The student's own limit is untouched by the instructor's runs.
    ResourceSettings.objects.filter(resource_id=second.resource_id).update(available_until=None, due_at=None)
    assert selectors.attempt_options(membership=student.membership).can_start


def test_only_instructors_start_test_runs_and_only_with_an_exam(consumer):
    student = launch(consumer, user_id="s1")
    instructor = launch(consumer, user_id="i1", roles="Instructor")
    with pytest.raises(services.AttemptRefused, match="upload one"):
        services.test_run_start(membership=instructor.membership)
    with_exam(student.membership.resource)
    with pytest.raises(services.AttemptRefused, match="Only instructors"):
        services.test_run_start(membership=student.membership)
    assert not Attempt.all_objects.exists()


def test_removing_a_test_run_deletes_it_and_its_data_and_audits_it(consumer):
    student, instructor = people(consumer)
    run = run_to_the_end(services.test_run_start(membership=instructor.membership))
    changes = ElementChange.objects.filter(attempt_id=run.pk).count()
    assert changes > 0
    attempt = start(student.membership)
    # Not someone else's test run, not a student's attempt, not in another resource.
    other = launch(consumer, user_id="i2", roles="Instructor")
    for resource_id, attempt_id, by in ((run.resource_id, run.pk, other.membership.user),
                                        (run.resource_id, attempt.pk, instructor.membership.user),
                                        (run.resource_id + 1000, run.pk, instructor.membership.user)):
        with pytest.raises(services.AttemptActionRefused):
            services.test_run_remove(resource_id=resource_id, attempt_id=attempt_id, by=by)
    assert Attempt.all_objects.filter(pk=run.pk).exists() and not Removal.objects.exists()
    removal = services.test_run_remove(resource_id=run.resource_id, attempt_id=run.pk, by=instructor.membership.user)
    assert not Attempt.all_objects.filter(pk=run.pk).exists()
    assert not ElementChange.objects.filter(attempt_id=run.pk).exists()
    assert not Element.objects.filter(attempt_id=run.pk).exists()
    assert (removal.attempt_id, removal.number, removal.changes, removal.score_raw, removal.by_id) == (
        run.pk, run.number, changes, 3, instructor.membership.user_id)
    assert Attempt.objects.filter(pk=attempt.pk).exists()  # the student's is untouched


def test_the_pages_of_a_test_run(consumer):
    student, instructor = people(consumer)
    resource_id = student.membership.resource_id
    response = instructor.post(reverse("attempts:test_run_start", args=[resource_id]))
    run = Attempt.test_runs.get()
    assert response.status_code == 302 and response["Location"] == reverse("attempts:run", args=[run.pk])
    page = instructor.get(reverse("attempts:run", args=[run.pk]))
    assert page.status_code == 200 and "Test run" in page.content.decode()
    assert page.context["config"]["mode"] == "normal"
    assert page.context["config"]["backUrl"] == reverse("attempts:test_runs", args=[resource_id])
    listing = instructor.get(reverse("attempts:test_runs", args=[resource_id]))
    assert listing.status_code == 200 and 'data-testid="test-run-1"' in listing.content.decode()
    state = instructor.get(reverse("attempts:state", args=[run.pk])).json()
    assert state["mode"] == "normal" and state["numbas"]["user_role"] == "learner"
    # A student can neither list, start nor remove test runs.
    assert student.get(reverse("attempts:test_runs", args=[resource_id])).status_code == 403
    assert student.post(reverse("attempts:test_run_start", args=[resource_id])).status_code == 403
    assert student.post(reverse("attempts:test_run_remove", args=[resource_id, run.pk])).status_code == 403
    # A wrong id is a clear 404 that removes nothing.
    missing = instructor.post(reverse("attempts:test_run_remove", args=[resource_id, run.pk + 999]))
    assert missing.status_code == 404 and "no such test run" in missing.content.decode()
    removed = instructor.post(reverse("attempts:test_run_remove", args=[resource_id, run.pk]), follow=True)
    assert removed.status_code == 200 and "removed" in removed.content.decode()
    assert not Attempt.all_objects.exists() and Removal.objects.count() == 1
