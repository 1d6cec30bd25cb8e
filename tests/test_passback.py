"""Grades reach a local LMS that verifies every request's OAuth1 signature and body hash
independently (tests/support/lms_stub.py) — once, with the latest score, however long the
LMS fails first, and never before the score's transaction has committed."""

import os
import threading

import pytest
from django.db import transaction

from grading import services
from grading.models import GradeReport, GradeSend, ReportState, SendOutcome
from grading.tests.helpers import answer, start, student_with_exam
from lms.models import ResourceMembership
from tests.support.lms_stub import LmsStub

pytestmark = pytest.mark.django_db(transaction=True)
# Concurrent transactions (a worker beside an open one, two workers) need a real server;
# scripts/test always runs on PostgreSQL.
needs_postgresql = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL (scripts/test)"
)


@pytest.fixture
def stub(consumer):
    with LmsStub(consumers={consumer.key: consumer.secret}, timeout_delay=1.5) as stub:
        yield stub


@pytest.fixture
def fast_retries(settings):
    settings.PASSBACK_RETRY_BASE_SECONDS = 0.05
    settings.PASSBACK_RETRY_MAX_SECONDS = 0.2
    settings.PASSBACK_TIMEOUT_SECONDS = 0.5


def enrolled(consumer, stub, user_id="s1", **settings):
    membership = student_with_exam(consumer, user_id=user_id, **settings)
    ResourceMembership.objects.filter(pk=membership.pk).update(lis_outcome_service_url=stub.url)
    membership.refresh_from_db()
    return membership


def report_of(membership):
    return GradeReport.objects.get(membership=membership)


def deliver_until_quiet(budget=10.0):
    return services.passback_deliver_due(budget_seconds=budget, wait_for_retries=True)


def test_a_completed_attempt_grade_arrives_once_with_its_value(consumer, stub):
    membership = enrolled(consumer, stub)
    answer(start(membership), 3, complete=True)  # on commit, the (immediate) queue delivers it
    sid = membership.lis_result_sourcedid
    assert stub.accepted_for(sid) == [0.75]
    assert [r.outcome for r in stub.requests] == ["accepted"]  # signature and body hash verified
    report = report_of(membership)
    assert (report.state, report.sent_score, report.failures) == (ReportState.DELIVERED, 0.75, 0)
    assert list(GradeSend.objects.values_list("outcome", "score")) == [(SendOutcome.DELIVERED, 0.75)]
    # Nothing is sent twice after success: more runs, a sweep, the same completion again.
    deliver_until_quiet(budget=1)
    services.grade_refresh(resource_id=membership.resource_id, user_id=membership.user_id,
                           trigger=services.Trigger.COMPLETED)
    deliver_until_quiet(budget=1)
    assert len(stub.requests) == 1


@pytest.mark.parametrize("mode", ["500", "timeout", "failure"])
def test_the_grade_arrives_after_the_lms_recovers(consumer, stub, fast_retries, mode):
    membership = enrolled(consumer, stub)
    stub.fail(mode)
    answer(start(membership), 2, complete=True)
    for _ in range(3):  # the LMS stays down over several runs: the grade stays owed
        deliver_until_quiet(budget=1.2)
    report = report_of(membership)
    assert report.state == ReportState.PENDING and report.failures >= 2 and report.last_error
    assert stub.grades == {}
    stub.recover()
    deliver_until_quiet()
    assert stub.accepted_for(membership.lis_result_sourcedid) == [0.5]
    report.refresh_from_db()
    assert report.state == ReportState.DELIVERED and report.failures == 0
    outcomes = list(GradeSend.objects.order_by("sent_at", "id").values_list("outcome", flat=True))
    assert outcomes[-1] == SendOutcome.DELIVERED and set(outcomes[:-1]) == {SendOutcome.RETRY}
    deliver_until_quiet(budget=1)
    assert len(stub.accepted_for(membership.lis_result_sourcedid)) == 1


def test_retries_never_give_up_however_long_the_lms_is_down(consumer, stub, settings):
    settings.PASSBACK_RETRY_MAX_SECONDS = 0.1
    membership = enrolled(consumer, stub)
    stub.fail("500")
    answer(start(membership), 4, complete=True)
    GradeReport.objects.filter(membership=membership).update(failures=500)  # down for days
    deliver_until_quiet(budget=1)
    report = report_of(membership)
    assert report.state == ReportState.PENDING and report.failures > 500
    stub.recover()
    deliver_until_quiet()
    assert stub.grades == {membership.lis_result_sourcedid: 1.0}


def test_a_newer_score_supersedes_a_pending_one(consumer, stub, fast_retries):
    membership = enrolled(consumer, stub, report_when="immediately", include_incomplete=True)
    attempt = start(membership)
    stub.fail("500")
    answer(attempt, 1)
    answer(attempt, 2)
    answer(attempt, 3)
    assert report_of(membership).version == 3
    stub.recover()
    deliver_until_quiet()
    assert stub.accepted_for(membership.lis_result_sourcedid) == [0.75]


def test_a_score_that_changes_while_its_older_value_is_in_flight_is_sent_next(consumer, stub, monkeypatch):
    membership = enrolled(consumer, stub, report_when="immediately", include_incomplete=True)
    attempt = start(membership)
    real_send = services.passback.send
    changed = []

    def send_then_change(delivery, **kwargs):
        result = real_send(delivery, **kwargs)
        if not changed:  # the student answers again while the first score is on its way
            changed.append(True)
            answer(attempt, 4)
        return result

    monkeypatch.setattr(services.passback, "send", send_then_change)
    answer(attempt, 1)
    deliver_until_quiet()
    assert stub.accepted_for(membership.lis_result_sourcedid) == [0.25, 1.0]
    assert report_of(membership).state == ReportState.DELIVERED


def test_an_unknown_sourcedid_is_marked_failed_and_not_retried_until_resent(consumer, stub, fast_retries):
    membership = enrolled(consumer, stub)
    stub.known_sourcedids = {"someone-else"}
    answer(start(membership), 1, complete=True)
    deliver_until_quiet(budget=1)
    report = report_of(membership)
    assert report.state == ReportState.FAILED and "unknownobject" in report.last_error
    assert len(stub.requests) == 1
    stub.known_sourcedids = None  # the LMS admin fixed the gradebook column
    services.grade_resend(report=report)
    deliver_until_quiet()
    assert stub.accepted_for(membership.lis_result_sourcedid) == [0.25]


@needs_postgresql
def test_no_report_is_sent_before_the_score_commits(consumer, stub):
    membership = enrolled(consumer, stub)
    attempt = start(membership)
    written, release, done = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def student_completes():
        try:
            with transaction.atomic():
                answer(attempt, 3, complete=True)
                written.set()
                assert release.wait(10)
        except Exception as error:  # reported to the test below
            errors.append(error)
        finally:
            from django.db import connection

            connection.close()
            done.set()

    thread = threading.Thread(target=student_completes)
    thread.start()
    assert written.wait(10)
    # The outbox row exists in the open transaction; a worker cannot see it yet.
    stats = services.passback_deliver_due(budget_seconds=1, wait_for_retries=False)
    assert stats.sent == 0 and stub.requests == []
    release.set()
    assert done.wait(10) and not errors
    thread.join(5)
    assert stub.accepted_for(membership.lis_result_sourcedid) == [0.75]  # never a 0 first


@needs_postgresql
def test_two_workers_never_send_the_same_grade_twice(consumer, stub, django_capture_on_commit_callbacks):
    memberships = [enrolled(consumer, stub, user_id=f"s{i}", report_when="manual") for i in range(12)]
    for m in memberships:
        answer(start(m), 2, complete=True)
    services.grades_report_all(resource_id=memberships[0].resource_id)  # kicks run inline; undo to race
    GradeReport.objects.update(state=ReportState.PENDING, sent_version=None)
    stub.reset()
    from django.db import connection

    def worker():
        services.passback_deliver_due(limit=3, budget_seconds=5, wait_for_retries=False, concurrency=2)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    accepted = [r.sourcedid for r in stub.requests if r.outcome == "accepted"]
    assert sorted(accepted) == sorted(m.lis_result_sourcedid for m in memberships)
