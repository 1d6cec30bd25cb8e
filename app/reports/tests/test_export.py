"""The full JSON export of an activity: settings, exam versions, access changes, discounts, grades,
and every student attempt with its values, complete history, events and marks as they count —
streamed in chunks through the report-file pipeline, test runs left out."""

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from attempts import services as attempt_services
from attempts.models import Attempt, Element, ElementChange
from attempts.tests.factories import launch
from grading import selectors as grading_selectors
from grading import services as grading_services
from grading.models import GradeReport
from grading.tests.helpers import answer, start, student_with_exam
from reports import export, services, storage
from reports.models import ReportFile

pytestmark = pytest.mark.django_db(transaction=True)


def activity(consumer):
    ada = student_with_exam(consumer, user_id="s1", report_when="manual")
    bob = launch(consumer, user_id="s2").membership
    instructor = launch(consumer, user_id="i1", roles="Instructor")
    resource_id = ada.resource_id
    first = start(ada)
    answer(first, 3, complete=True, questions=[("q0", 1, 2), ("q1", 2, 2)])
    second = start(ada)
    answer(second, 1, questions=[("q0", 1, 2)])
    gone = start(bob)
    answer(gone, 2, complete=True, questions=[("q0", 2, 2)])
    attempt_services.attempt_delete(attempt=gone, by=instructor.membership.user, reason="duplicate")
    run = attempt_services.test_run_start(membership=instructor.membership)
    attempt_services.attempt_take_over(attempt=run)
    run.refresh_from_db()
    answer(run, 4, complete=True)
    first.refresh_from_db()
    grading_services.part_remark(attempt=first, part_id="q1p0", score=1, by=instructor.membership.user,
                                 reason="half marks")
    grading_services.discount_set(resource_id=resource_id, target="q0", behaviour="full_marks", user=instructor.membership.user)
    attempt_services.access_change_set(resource_id=resource_id, user_id=bob.user_id,
                                       changed_by=instructor.membership.user, extra_attempts=2, reason="illness",
                                       extra_percent=25, time_limit_off=False)
    from attempts.models import PendingAccessChange
    from django.utils import timezone

    PendingAccessChange.objects.create(resource_id=resource_id, kind="email", value="Later@example.edu",
                                       value_key="later@example.edu", time_limit_off=True, reason="pasted",
                                       changed_by=instructor.membership.user, changed_at=timezone.now())
    return ada, bob, instructor, (first, second, gone, run)


def generate(resource_id, user, django_capture_on_commit_callbacks) -> tuple[ReportFile, dict]:
    with django_capture_on_commit_callbacks(execute=True):
        report = services.report_request(resource_id=resource_id, kind="export", user=user)
    report.refresh_from_db()
    assert report.state == "done", report.error
    path = storage.absolute_path(report.relative_path)
    assert path.suffix == ".json"
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # no byte-order mark in JSON
    return report, json.loads(raw)


def test_the_export_holds_everything_about_the_activity(consumer, django_capture_on_commit_callbacks):
    ada, bob, instructor, (first, second, gone, run) = activity(consumer)
    resource_id = ada.resource_id
    report, data = generate(resource_id, instructor.membership.user, django_capture_on_commit_callbacks)
    assert (data["format"], data["version"]) == ("numbas-lti-activity-export", 1)
    assert data["activity"]["id"] == resource_id and data["activity"]["settings"]["report_when"] == "manual"
    exam = first.exam
    assert [(v["version"], v["sha256"]) for v in data["exam_versions"]] == [(1, exam.sha256)]
    assert len(exam.sha256) == 64
    assert [(c["student"]["lms_user_id"], c["extra_attempts"], c["extra_percent"], c["reason"])
            for c in data["access_changes"]] == [("s2", 2, 25, "illness")]
    assert [(c["identifier_kind"], c["identifier"], c["time_limit_off"], c["changed_by"]["lms_user_id"])
            for c in data["pending_access_changes"]] == [("email", "Later@example.edu", True, "i1")]
    assert [(d["target"], d["behaviour"]) for d in data["discounts"]] == [("q0", "full_marks")]
    grades = {g["student"]["lms_user_id"]: g for g in data["grades"]}
    ada_grade = GradeReport.objects.get(membership=ada)
    assert grades["s1"]["grade"] == ada_grade.score and grades["s1"]["state"] == ada_grade.state
    # Students' attempts, deleted ones too; never the test run.
    attempts = {a["id"]: a for a in data["attempts"]}
    assert sorted(attempts) == sorted([first.pk, second.pk, gone.pk]) and run.pk not in attempts
    assert report.rows == 3
    assert attempts[gone.pk]["deleted_at"] is not None
    assert [e["kind"] for e in attempts[gone.pk]["events"]] == ["deleted"]
    for attempt in (first, second, gone):
        exported = attempts[attempt.pk]
        assert exported["values"] == dict(Element.objects.filter(attempt=attempt).values_list("key", "value"))
        history = list(ElementChange.objects.filter(attempt=attempt).order_by("sequence", "id").values_list(
            "sequence", "key", "value"))
        assert [(c["sequence"], c["key"], c["value"]) for c in exported["changes"]] == history and history
        assert all(c["received_at"] for c in exported["changes"])
    # Marks as they count now: the re-mark and the discount applied.
    marks = grading_selectors.attempt_scores(attempt_ids=[first.pk], discounts={"q0": "full_marks"})[first.pk]
    assert attempts[first.pk]["marks"]["raw"] == marks.raw and attempts[first.pk]["marks"]["max"] == marks.max
    assert [(o["part"], o["score"]) for o in attempts[first.pk]["overrides"]] == [("q1p0", 1)]
    assert [e["kind"] for e in attempts[first.pk]["events"]] == ["remarked"]
    # The download: JSON, named .json, for the activity's instructors.
    response = instructor.get(reverse("reports:download", args=[resource_id, report.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert ".json" in response["Content-Disposition"]
    assert json.loads(b"".join(response.streaming_content))["version"] == 1


def test_the_export_is_streamed_in_chunks(consumer, monkeypatch, django_capture_on_commit_callbacks):
    """Attempts are held a chunk at a time and the whole still parses across chunk borders."""
    monkeypatch.setattr(export, "CHUNK", 2)
    ada = student_with_exam(consumer, user_id="s1")
    instructor = launch(consumer, user_id="i1", roles="Instructor")
    for index in range(5):
        answer(start(ada), index % 4, complete=True)
    seen = []
    original = export._attempt_pieces

    def counting(chunk, discounts, *, lead):
        seen.append(len(chunk))
        yield from original(chunk, discounts, lead=lead)

    monkeypatch.setattr(export, "_attempt_pieces", counting)
    report, data = generate(ada.resource_id, instructor.membership.user, django_capture_on_commit_callbacks)
    assert seen == [2, 2, 1]
    assert [a["number"] for a in data["attempts"]] == [1, 2, 3, 4, 5]
    assert all(a["changes"] for a in data["attempts"])
    assert Attempt.objects.count() == 5 and report.rows == 5


def test_an_activity_without_attempts_exports_cleanly(consumer, django_capture_on_commit_callbacks):
    instructor = launch(consumer, user_id="i1", roles="Instructor")
    report, data = generate(instructor.membership.resource_id, instructor.membership.user,
                            django_capture_on_commit_callbacks)
    assert data["attempts"] == [] and data["exam_versions"] == [] and data["grades"] == []
    assert data["exported_at"] <= timezone.localtime().isoformat()
