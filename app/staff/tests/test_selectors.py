"""The dashboard's reads against a known data set: counts, ages, order."""

from datetime import timedelta

import pytest

from grading.models import ReportState, SendOutcome
from lms.models import Role
from staff import selectors
from staff.tests import world
from staff.tests.world import NOW, ago

pytestmark = pytest.mark.django_db


@pytest.fixture
def lms():
    moodle = world.consumer("Moodle", key="moodle")
    canvas = world.consumer("Canvas", key="canvas", active=False)
    blackboard = world.consumer("Blackboard", key="blackboard")

    algebra = world.resource(moodle, "Algebra", "Maths 101")
    s1, s2 = world.member(algebra), world.member(algebra, name="Bo Chen")
    t1 = world.member(algebra, role=Role.INSTRUCTOR)
    for at in (ago(hours=1), ago(hours=2), ago(hours=30)):
        world.launch(s1, at)
    world.launch(t1, ago(hours=5))
    world.attempt(s1, saved_at=ago(minutes=10))
    world.attempt(s2, saved_at=ago(hours=25))

    calculus = world.resource(moodle, "Calculus")
    c1 = world.member(calculus)
    world.launch(c1, ago(hours=30))
    world.attempt(c1, saved_at=ago(hours=23))

    old = world.resource(blackboard, "Old exam")
    o1 = world.member(old)
    world.launch(o1, ago(hours=48))
    world.attempt(o1, saved_at=ago(hours=48))
    world.attempt(o1, saved_at=None)
    return locals()


def test_consumers_have_their_resource_count_and_last_launch(lms):
    rows = {c.key: c for c in selectors.consumers_overview()}
    assert [c.name for c in selectors.consumers_overview()] == ["Blackboard", "Canvas", "Moodle"]
    assert (rows["moodle"].resource_count, rows["moodle"].last_launch_at) == (2, ago(hours=1))
    assert (rows["blackboard"].resource_count, rows["blackboard"].last_launch_at) == (1, ago(hours=48))
    assert (rows["canvas"].resource_count, rows["canvas"].last_launch_at, rows["canvas"].active) == (0, None, False)


def test_consumers_overview_never_loads_the_secret(lms):
    consumer = selectors.consumers_overview().first()
    assert "secret" in consumer.get_deferred_fields()


def test_active_resources_count_launches_and_saves_of_the_last_24_hours(lms):
    active = selectors.active_resources(now=NOW)
    assert active.since == NOW - timedelta(hours=24)
    assert [(r.title, r.launches_recent, r.attempts_saved_recent) for r in active.rows] == [
        ("Algebra", 3, 1),  # 30 h-old launch and 25 h-old save left out
        ("Calculus", 0, 1),  # only a save in the window
    ]  # "Old exam": nothing in 24 h
    assert active.total == 2
    assert active.rows[0].consumer.name == "Moodle" and active.rows[0].context.title == "Maths 101"


def test_active_resources_shows_the_busiest_and_says_how_many_there_are(lms):
    active = selectors.active_resources(now=NOW, limit=1)
    assert [r.title for r in active.rows] == ["Algebra"]
    assert active.total == 2


def test_nothing_active_when_the_window_has_moved_on(lms):
    active = selectors.active_resources(now=NOW + timedelta(days=3))
    assert (active.rows, active.total) == ([], 0)


@pytest.fixture
def outbox(lms):
    members = [world.member(lms["algebra"], name=f"Student {i}") for i in range(6)]
    reports = {
        "p1": world.report(members[0], due_at=ago(minutes=10)),
        "p2": world.report(members[1], due_at=ago(hours=2), failures=3),
        "p3": world.report(members[2], due_at=NOW + timedelta(minutes=5), failures=2),
        "f1": world.report(members[3], state=ReportState.FAILED, failures=1),
        "d1": world.report(members[4], state=ReportState.DELIVERED),
        "w1": world.report(members[5], state=ReportState.WAITING),
    }
    sends = [
        world.send(reports["d1"], at=ago(minutes=5), outcome=SendOutcome.DELIVERED, http_status=200),
        world.send(reports["d1"], at=ago(minutes=50), outcome=SendOutcome.DELIVERED, http_status=200),
        world.send(reports["p2"], at=ago(minutes=1), http_status=503, answer="Service Unavailable"),
        world.send(reports["p3"], at=ago(minutes=20), answer="Connection refused"),
        world.send(reports["p3"], at=ago(minutes=20), http_status=500, answer="failure: internal error"),
        world.send(reports["f1"], at=ago(minutes=30), outcome=SendOutcome.FAILED, http_status=200,
                   answer="failure: unknown sourcedid"),
    ] + [world.send(reports["p2"], at=ago(hours=2, minutes=i)) for i in range(5)]
    return reports, sends


def test_backlog_counts_pending_due_retrying_and_failed(outbox):
    backlog = selectors.grade_backlog(now=NOW)
    assert backlog.pending == 3
    assert backlog.pending_due == 2  # p3 waits for its backoff
    assert backlog.pending_retrying == 2
    assert backlog.oldest_due_age_seconds == 7200.0
    assert backlog.failed == 1
    assert backlog.tries_last_hour == {"delivered": 2, "retry": 3, "failed": 1}  # the 2 h-old tries left out


def test_an_empty_outbox_has_zeros_and_no_age(db):
    backlog = selectors.grade_backlog(now=NOW)
    assert backlog.as_json() == {"pending": 0, "pending_due": 0, "pending_retrying": 0, "oldest_due_age_seconds": None,
                                 "failed": 0, "tries_last_hour": {"delivered": 0, "retry": 0, "failed": 0}}


def test_recent_errors_are_the_latest_refused_or_retried_tries_newest_first(outbox):
    reports, sends = outbox
    errors = list(selectors.recent_send_errors())
    assert SendOutcome.DELIVERED not in {e.outcome for e in errors}
    assert [e.pk for e in errors] == [sends[2].pk, sends[4].pk, sends[3].pk, sends[5].pk] + [s.pk for s in sends[6:]]
    first = errors[0]
    assert (first.http_status, first.lms_answer, first.report.resource.title) == (503, "Service Unavailable", "Algebra")
    assert first.report.membership.user.get_full_name() == "Student 1"
    assert len(list(selectors.recent_send_errors(limit=3))) == 3


def test_at_most_twenty_recent_errors(outbox):
    reports, _ = outbox
    for i in range(30):
        world.send(reports["p1"], at=ago(minutes=i))
    assert len(list(selectors.recent_send_errors())) == selectors.RECENT_ERRORS == 20
