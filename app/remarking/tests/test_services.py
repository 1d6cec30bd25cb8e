"""Re-marking every attempt: what the exam reports is compared with what is stored, nothing
reaches an attempt until the run is applied, applying writes one audited change per changed
attempt (and re-sends changed grades to the LMS), twice applies once, and an attempt that
changed after it was marked is left alone."""

import pytest

from attempts import services as attempt_services
from attempts.models import Attempt, AttemptEvent, Batch, Element, ElementChange
from attempts.tests.factories import batch
from grading.models import GradeReport
from grading.tests.helpers import start, student_with_exam
from lms.models import ResourceMembership
from remarking import selectors, services
from remarking.models import RemarkItemStatus, RemarkRunStatus
from tests.support.lms_stub import LmsStub

pytestmark = pytest.mark.django_db(transaction=True)

# The demo exam: q0 (q0p0 1 mark, q0p1 1 mark), q1 (q1p0 2 marks); 4 in all.
PARTS = [("q0p0", "q0", 1), ("q0p1", "q0", 1), ("q1p0", "q1", 2)]


def answered(attempt, scores, *, complete=True):
    """The attempt as the demo exam leaves it: each part's score, its questions' and the total."""
    changes = [("cmi.score.max", "4"), ("cmi.score.min", "0")]
    for index, (pid, qid, marks) in enumerate(PARTS):
        changes += [(f"cmi.interactions.{index}.id", pid), (f"cmi.interactions.{index}.objectives.0.id", qid),
                    (f"cmi.interactions.{index}.weighting", str(marks)),
                    (f"cmi.interactions.{index}.result", str(scores[pid]))]
    for index, qid in enumerate(["q0", "q1"]):
        raw = sum(scores[p] for p, q, _ in PARTS if q == qid)
        changes += [(f"cmi.objectives.{index}.id", qid), (f"cmi.objectives.{index}.score.raw", str(raw)),
                    (f"cmi.objectives.{index}.score.max", str(sum(m for _, q, m in PARTS if q == qid)))]
    total = sum(scores.values())
    changes += [("cmi.score.raw", str(total)), ("cmi.score.scaled", str(total / 4)),
                ("cmi.suspend_data", '{"answers":{}}')]
    if complete:
        changes += [("cmi.completion_status", "completed"), ("cmi.exit", "normal")]
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id,
                                 batch=batch(attempt.writer_token, changes, terminate=complete))
    attempt.refresh_from_db()
    return attempt


# What a corrected exam reports for the attempt above when q0p1 is now right.
REMARKED = {"cmi.interactions.1.result": "1", "cmi.objectives.0.score.raw": "2", "cmi.objectives.0.score.scaled": "1",
            "cmi.objectives.0.success_status": "passed", "cmi.score.raw": "2", "cmi.score.scaled": "0.5",
            # written by the exam while marking, never kept:
            "cmi.suspend_data": '{"answers":{"changed":true}}', "cmi.location": "1", "cmi.exit": "suspend"}


@pytest.fixture
def stub(consumer):
    with LmsStub(consumers={consumer.key: consumer.secret}) as stub:
        yield stub


def enrolled(consumer, stub, user_id="s1"):
    membership = student_with_exam(consumer, user_id=user_id, report_when="completion")
    ResourceMembership.objects.filter(pk=membership.pk).update(lis_outcome_service_url=stub.url)
    membership.refresh_from_db()
    return membership


def marked(run, attempt, values):
    handed = services.remark_item_hand_out(run=run)
    assert handed.attempt_id == attempt.pk
    return services.remark_item_record(run=run, attempt_id=attempt.pk, values=values)


def stored(attempt):
    return dict(Element.objects.filter(attempt=attempt).values_list("key", "value"))


def test_preview_then_apply_changes_the_attempt_audits_it_and_resends_the_grade(consumer, stub, teacher_of):
    membership = enrolled(consumer, stub)
    attempt = answered(start(membership), {"q0p0": 1, "q0p1": 0, "q1p0": 0})
    assert stub.accepted_for(membership.lis_result_sourcedid) == [0.25]
    instructor = teacher_of(membership.resource)
    before = stored(attempt)

    run = services.remark_run_start(resource_id=membership.resource_id, scope="all", by=instructor)
    handed = services.remark_item_hand_out(run=run)
    assert handed.state["entry"] == "resume" and handed.state["values"]["cmi.score.raw"] == "1"
    assert handed.exam_path == attempt.exam.launch_path
    item = services.remark_item_record(run=run, attempt_id=attempt.pk, values=REMARKED)

    # The preview: old → new, the parts and questions that changed; the attempt untouched.
    assert (item.status, item.changed, item.old_raw, item.new_raw, item.new_max) == ("marked", True, 1, 2, 4)
    assert {d["id"]: (d["old"], d["new"]) for d in item.differences} == {"q0": (1, 2), "q0p1": (0, 1)}
    assert set(item.new_values) == {"cmi.interactions.1.result", "cmi.objectives.0.score.raw",
                                    "cmi.objectives.0.score.scaled", "cmi.objectives.0.success_status",
                                    "cmi.score.raw", "cmi.score.scaled"}
    assert stored(attempt) == before and not AttemptEvent.objects.filter(attempt=attempt).exists()
    assert selectors.remark_progress(run=run).as_dict()["changed"] == 1

    result = services.remark_run_apply(run=run, by=instructor)
    assert (result.applied, result.stale, result.unchanged) == (1, 0, 0)
    after = stored(attempt)
    assert after["cmi.score.raw"] == "2" and after["cmi.interactions.1.result"] == "1"
    assert after["cmi.suspend_data"] == before["cmi.suspend_data"]  # only scores are changed
    history = ElementChange.objects.filter(attempt=attempt, batch__batch_id=f"remark-{run.pk}")
    assert sorted(history.values_list("key", flat=True)) == sorted(item.new_values)
    attempt.refresh_from_db()
    assert (attempt.score_raw, attempt.score_scaled) == (2.0, 0.5)
    event = AttemptEvent.objects.get(attempt=attempt)
    assert (event.kind, event.by, event.detail["before"]["raw"], event.detail["after"]["raw"]) == (
        "remarked", instructor, 1, 2)
    assert GradeReport.objects.get(membership=membership).score == 0.5
    assert stub.accepted_for(membership.lis_result_sourcedid) == [0.25, 0.5]
    run.refresh_from_db()
    assert run.status == RemarkRunStatus.APPLIED


def test_applying_twice_applies_once(consumer, stub, teacher_of):
    membership = enrolled(consumer, stub)
    attempt = answered(start(membership), {"q0p0": 1, "q0p1": 0, "q1p0": 0})
    instructor = teacher_of(membership.resource)
    run = services.remark_run_start(resource_id=membership.resource_id, scope="finished", by=instructor)
    marked(run, attempt, REMARKED)
    services.remark_run_apply(run=run, by=instructor)
    again = services.remark_run_apply(run=run, by=instructor)
    assert (again.applied, again.stale, again.unchanged) == (0, 0, 0)
    assert AttemptEvent.objects.filter(attempt=attempt).count() == 1
    assert Batch.objects.filter(attempt=attempt, batch_id=f"remark-{run.pk}").count() == 1
    assert stub.accepted_for(membership.lis_result_sourcedid) == [0.25, 0.5]
    with pytest.raises(services.RemarkRefused):
        services.remark_run_discard(run=run, by=instructor)


def test_an_attempt_changed_after_it_was_marked_is_not_applied(consumer, teacher_of):
    membership = student_with_exam(consumer)
    attempt = answered(start(membership), {"q0p0": 1, "q0p1": 0, "q1p0": 0}, complete=False)
    instructor = teacher_of(membership.resource)
    run = services.remark_run_start(resource_id=membership.resource_id, scope="in_progress", by=instructor)
    marked(run, attempt, REMARKED)
    # The student answers again after the preview was computed.
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id,
                                 batch=batch(attempt.writer_token, [("cmi.interactions.2.result", "2")]))
    before = stored(attempt)
    result = services.remark_run_apply(run=run, by=instructor)
    assert (result.applied, result.stale) == (0, 1)
    assert stored(attempt) == before and not AttemptEvent.objects.filter(attempt=attempt).exists()
    assert run.items.get().status == RemarkItemStatus.STALE


def test_unchanged_attempts_are_left_alone(consumer, teacher_of):
    membership = student_with_exam(consumer)
    attempt = answered(start(membership), {"q0p0": 1, "q0p1": 1, "q1p0": 2})
    instructor = teacher_of(membership.resource)
    run = services.remark_run_start(resource_id=membership.resource_id, scope="all", by=instructor)
    item = marked(run, attempt, {"cmi.score.raw": "4.0", "cmi.interactions.2.result": "2",
                                 "cmi.objectives.1.score.raw": "2"})
    assert (item.changed, item.new_values, item.old_raw, item.new_raw) == (False, {}, 4, 4)
    sequences = ElementChange.objects.filter(attempt=attempt).count()
    result = services.remark_run_apply(run=run, by=instructor)
    assert (result.applied, result.unchanged) == (0, 1)
    assert ElementChange.objects.filter(attempt=attempt).count() == sequences
    assert not AttemptEvent.objects.filter(attempt=attempt).exists()
    assert Attempt.objects.get(pk=attempt.pk).exam_id == attempt.exam_id


def test_refusals_say_why_and_write_nothing(consumer, teacher_of):
    membership = student_with_exam(consumer)
    attempt = answered(start(membership), {"q0p0": 1, "q0p1": 0, "q1p0": 0})
    instructor = teacher_of(membership.resource)
    with pytest.raises(services.RemarkRefused, match="Choose which"):
        services.remark_run_start(resource_id=membership.resource_id, scope="some", by=instructor)
    with pytest.raises(services.RemarkRefused, match="no attempts"):
        services.remark_run_start(resource_id=membership.resource_id, scope="in_progress", by=instructor)
    run = services.remark_run_start(resource_id=membership.resource_id, scope="all", by=instructor)
    with pytest.raises(services.RemarkRefused, match="already under way"):
        services.remark_run_start(resource_id=membership.resource_id, scope="all", by=instructor)
    with pytest.raises(services.RemarkRefused, match="not been handed out"):
        services.remark_item_record(run=run, attempt_id=attempt.pk, values=REMARKED)
    with pytest.raises(services.RemarkRefused, match="let the re-mark finish"):
        services.remark_run_apply(run=run, by=instructor)
    services.remark_item_hand_out(run=run)
    for bad in ({"cmi.score.raw": "two"}, {"cmi.interactions.0.result": "maybe"}, ["cmi.score.raw"],
                {"cmi.score.raw": True}, {"cmi.objectives.0.success_status": "great"}):
        with pytest.raises(services.RemarkRefused):
            services.remark_item_record(run=run, attempt_id=attempt.pk, values=bad)
    with pytest.raises(services.RemarkRefused, match="not part of this re-mark"):
        services.remark_item_record(run=run, attempt_id=attempt.pk + 1000, values=REMARKED)
    assert run.items.get().status == RemarkItemStatus.PENDING
    services.remark_run_discard(run=run, by=instructor)
    with pytest.raises(services.RemarkRefused, match="discarded"):
        services.remark_run_apply(run=run, by=instructor)
    assert not AttemptEvent.objects.exists()


def test_an_exam_that_cannot_mark_an_attempt_is_recorded_and_the_others_go_on(consumer, teacher_of):
    first = student_with_exam(consumer, user_id="s1")
    second = student_with_exam(consumer, user_id="s2")
    a1 = answered(start(first), {"q0p0": 1, "q0p1": 0, "q1p0": 0})
    a2 = answered(start(second), {"q0p0": 1, "q0p1": 0, "q1p0": 0})
    instructor = teacher_of(first.resource)
    run = services.remark_run_start(resource_id=first.resource_id, scope="all", by=instructor)
    services.remark_item_hand_out(run=run)
    services.remark_item_record(run=run, attempt_id=a1.pk, error="The exam took too long to mark this attempt.")
    assert services.remark_item_hand_out(run=run, after_attempt_id=a1.pk).attempt_id == a2.pk
    services.remark_item_record(run=run, attempt_id=a2.pk, values=REMARKED)
    assert services.remark_item_hand_out(run=run, after_attempt_id=a2.pk) is None
    progress = selectors.remark_progress(run=run)
    assert (progress.pending, progress.failed, progress.marked, progress.changed) == (0, 1, 1, 1)
    assert services.remark_run_apply(run=run, by=instructor).applied == 1
    assert not AttemptEvent.objects.filter(attempt=a1).exists()


def test_two_lanes_mark_different_attempts(consumer, teacher_of):
    attempts = [answered(start(student_with_exam(consumer, user_id=f"s{i}")), {"q0p0": 1, "q0p1": 0, "q1p0": 0})
                for i in range(4)]
    run = services.remark_run_start(resource_id=attempts[0].resource_id, scope="all",
                                    by=teacher_of(attempts[0].resource))
    seen = {lane: [] for lane in (0, 1)}
    for lane in (0, 1):
        after = 0
        while (handed := services.remark_item_hand_out(run=run, after_attempt_id=after, lane=lane, lanes=2)):
            assert len(seen[lane]) < 4
            seen[lane].append(handed.attempt_id)
            after = handed.attempt_id
    assert sorted(seen[0] + seen[1]) == sorted(a.pk for a in attempts)
    assert seen[0] and seen[1] and not set(seen[0]) & set(seen[1])
