"""The full JSON export of an activity, written as a stream of text pieces (reads only).

Format "numbas-lti-activity-export", version 1 — one JSON object:

    format, version, exported_at (ISO 8601 with offset)
    activity        the resource (id, title, LMS link id, course) and its settings, field by field
    exam_versions   each uploaded version: number, title, Numbas version, duration, uploader, upload
                    time, file count, unpacked size, sha256 of the uploaded package (not the files)
    access_changes  per student: extra attempts, own opening, closing and due times, extra minutes
                    or percent, time limit off, reason, by, when
    pending_access_changes  the same for people not launched yet, by the identifier pasted
    discounts       target (q0, q0p1), behaviour, by, when
    grades          per student: the grade (0..1), the attempt it comes from, its state towards the
                    LMS (waiting, pending, delivered, failed, no_outcome), what the LMS was last sent
                    and when, and every send (outcome, HTTP status, the LMS's answer)
    test_run_removals  instructors' test runs removed (test runs themselves are not exported)
    attempts        students' attempts (deleted ones too, with deleted_at): number, student, exam
                    version, times, status, late, the summary score, `marks` (as they count now:
                    discounts and instructors' marks applied, out of the exam's whole total, per
                    question), `overrides` (instructors' marks per part), `values` (the current
                    SCORM values), `changes` (every value the exam set, in order: sequence, key,
                    value, the student's clock, when the server received it) and `events` (what
                    instructors did: re-marks, deletions, re-openings, ends at the deadline)

Large activities never load everything: attempts are read CHUNK at a time and each chunk's change
history is streamed in order, so memory stays flat whatever the number of attempts or changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime

from django.db.models import F
from django.utils import timezone

FORMAT = "numbas-lti-activity-export"
VERSION = 1
CHUNK = 100  # attempts whose values, marks and events are held at a time


def _moment(value: datetime | None) -> str | None:
    return timezone.localtime(value, timezone.get_default_timezone()).isoformat() if value else None


def _plain(value):
    if isinstance(value, datetime):
        return _moment(value)
    if hasattr(value, "hex") and not isinstance(value, (bytes, str, float)):  # UUID
        return str(value)
    return value


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _person(user) -> dict | None:
    if user is None:
        return None
    identity = getattr(user, "lti_identity", None)
    return {
        "name": user.get_full_name() or (identity.full_name if identity else "") or user.get_username(),
        "email": user.email or (identity.email if identity else ""),
        "lms_user_id": identity.lti_user_id if identity else "",
    }


def _terms(change) -> dict:
    """An access change's terms (attempts.models.AccessTerms), with its reason and author."""
    return {
        "extra_attempts": change.extra_attempts, "available_from": _moment(change.available_from),
        "available_until": _moment(change.available_until), "due_at": _moment(change.due_at),
        "extra_minutes": change.extra_minutes, "extra_percent": change.extra_percent,
        "time_limit_off": change.time_limit_off, "reason": change.reason,
        "changed_by": _person(change.changed_by), "changed_at": _moment(change.changed_at),
    }


def _head(resource_id: int) -> dict:
    from attempts.models import AccessChange, PendingAccessChange, ResourceSettings, TestRunRemoval
    from exams.models import ExamPackage
    from grading.models import Discount
    from lms.models import Resource

    resource = Resource.objects.select_related("context").get(pk=resource_id)
    settings_ = ResourceSettings.objects.filter(resource_id=resource_id).first() or ResourceSettings(
        resource_id=resource_id)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": _moment(timezone.now()),
        "activity": {
            "id": resource.pk,
            "title": resource.title,
            "resource_link_id": resource.resource_link_id,
            "course": {"id": resource.context.context_id, "title": resource.context.title} if resource.context else None,
            "settings": {f.name: _plain(getattr(settings_, f.attname)) for f in ResourceSettings._meta.concrete_fields
                         if f.name != "resource"},
        },
        "exam_versions": [{
            "version": e.version, "title": e.title, "numbas_version": e.numbas_version,
            "duration_seconds": e.duration_seconds, "questions": e.question_count, "launch_href": e.launch_href,
            "file_count": e.file_count, "expanded_bytes": e.expanded_bytes, "sha256": e.sha256,
            "original_filename": e.original_filename, "uploaded_by": _person(e.uploaded_by),
            "uploaded_at": _moment(e.uploaded_at),
        } for e in ExamPackage.objects.filter(resource_id=resource_id).select_related(
            "uploaded_by__lti_identity").order_by("version")],
        "access_changes": [{
            "student": _person(c.user), **_terms(c),
        } for c in AccessChange.objects.filter(resource_id=resource_id).select_related(
            "user__lti_identity", "changed_by__lti_identity").order_by("pk")],
        "pending_access_changes": [{
            "identifier_kind": c.kind, "identifier": c.value, **_terms(c),
        } for c in PendingAccessChange.objects.filter(resource_id=resource_id).select_related(
            "changed_by__lti_identity").order_by("pk")],
        "discounts": [{
            "target": d.target, "behaviour": d.behaviour, "created_by": _person(d.created_by),
            "created_at": _moment(d.created_at),
        } for d in Discount.objects.filter(resource_id=resource_id).select_related(
            "created_by__lti_identity").order_by("target")],
        "test_run_removals": [{
            "attempt_id": r.attempt_id, "number": r.number, "owner": _person(r.owner), "started_at": _moment(r.started_at),
            "ended_at": _moment(r.ended_at), "score_raw": r.score_raw, "values_removed": r.changes,
            "removed_by": _person(r.by), "removed_at": _moment(r.at),
        } for r in TestRunRemoval.objects.filter(resource_id=resource_id).select_related(
            "owner__lti_identity", "by__lti_identity")],
    }


def _grades(resource_id: int) -> Iterator[dict]:
    from grading.models import GradeReport, GradeSend

    reports = GradeReport.objects.filter(resource_id=resource_id).select_related(
        "membership__user__lti_identity").order_by("pk")
    for report in reports.iterator(chunk_size=500):
        yield {
            "student": _person(report.membership.user), "grade": report.score, "attempt": report.attempt_number,
            "version": report.version, "state": report.state, "sent_score": report.sent_score,
            "sent_version": report.sent_version, "delivered_at": _moment(report.delivered_at),
            "due_at": _moment(report.due_at), "failures": report.failures, "last_error": report.last_error,
            "sends": [{"sent_at": _moment(s.sent_at), "score": s.score, "version": s.version, "outcome": s.outcome,
                       "http_status": s.http_status, "lms_answer": s.lms_answer}
                      for s in GradeSend.objects.filter(report=report).order_by("sent_at", "pk")],
        }


def attempts_count(*, resource_id: int) -> int:
    from attempts.models import Attempt

    return Attempt.all_objects.filter(resource_id=resource_id, is_test_run=False).count()


def _attempt_chunks(resource_id: int) -> Iterator[list]:
    from attempts.models import Attempt

    rows = (Attempt.all_objects.filter(resource_id=resource_id, is_test_run=False)
            .select_related("user__lti_identity", "exam").order_by("pk"))
    chunk = []
    for attempt in rows.iterator(chunk_size=CHUNK * 5):
        chunk.append(attempt)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _marks(score) -> dict | None:
    if score is None:
        return None
    return {"raw": score.raw, "max": score.max, "scaled": score.scaled,
            "questions": [{"id": q.id, "raw": q.raw, "max": q.max} for q in score.questions]}


def _attempt_pieces(chunk: list, discounts: dict, *, lead: str) -> Iterator[str]:
    """Each attempt of the chunk as JSON text (the first one after `lead`, the others after a
    comma); its change history streamed in order."""
    from attempts.models import AttemptEvent, Element, ElementChange, PartOverride
    from grading import selectors as grading_selectors

    ids = [a.pk for a in chunk]
    marks = grading_selectors.attempt_scores(attempt_ids=ids, discounts=discounts)
    values: dict[int, dict[str, str]] = {}
    for attempt_id, key, value in Element.objects.filter(attempt_id__in=ids).order_by("attempt_id", "key").values_list(
            "attempt_id", "key", "value").iterator(chunk_size=5000):
        values.setdefault(attempt_id, {})[key] = value
    overrides: dict[int, list] = {}
    for o in PartOverride.objects.filter(attempt_id__in=ids).select_related("by__lti_identity").order_by("part_id"):
        overrides.setdefault(o.attempt_id, []).append(
            {"part": o.part_id, "score": o.score, "by": _person(o.by), "at": _moment(o.at)})
    events: dict[int, list] = {}
    for e in AttemptEvent.objects.filter(attempt_id__in=ids).select_related("by__lti_identity"):
        events.setdefault(e.attempt_id, []).append(
            {"kind": e.kind, "by": _person(e.by), "at": _moment(e.at), "reason": e.reason, "detail": e.detail})
    changes = (ElementChange.objects.filter(attempt_id__in=ids).order_by("attempt_id", "sequence", "id")
               .annotate(received_at=F("batch__received_at"))
               .values_list("attempt_id", "sequence", "key", "value", "client_time", "received_at")
               .iterator(chunk_size=5000))
    pending = next(changes, None)
    for attempt in chunk:
        head = {
            "id": attempt.pk, "number": attempt.number, "student": _person(attempt.user),
            "exam_version": attempt.exam.version, "started_at": _moment(attempt.started_at),
            "ended_at": _moment(attempt.ended_at), "completion_status": attempt.completion_status,
            "success_status": attempt.success_status, "late": attempt.late, "deleted_at": _moment(attempt.deleted_at),
            "score": {"raw": attempt.score_raw, "min": attempt.score_min, "max": attempt.score_max,
                      "scaled": attempt.score_scaled},
            "marks": _marks(marks.get(attempt.pk)), "overrides": overrides.get(attempt.pk, []),
            "events": events.get(attempt.pk, []), "values": values.get(attempt.pk, {}),
        }
        text = _dumps(head)
        yield lead + text[:-1] + ', "changes": ['
        first = True
        while pending is not None and pending[0] == attempt.pk:
            _, sequence, key, value, client_time, received_at = pending
            yield ("" if first else ",") + _dumps(
                {"sequence": sequence, "key": key, "value": value, "client_time": _moment(client_time),
                 "received_at": _moment(received_at)})
            first = False
            pending = next(changes, None)
        yield "]}"
        lead = ","


def export_pieces(*, resource_id: int, on_attempts: Callable[[int], None] = lambda n: None) -> Iterator[str]:
    """The export as JSON text pieces; `on_attempts(n)` is told after each chunk of n attempts."""
    from grading import selectors as grading_selectors

    head = _dumps(_head(resource_id))
    yield head[:-1] + ', "grades": ['
    for index, grade in enumerate(_grades(resource_id)):
        yield ("," if index else "") + _dumps(grade)
    yield '], "attempts": ['
    discounts = grading_selectors.discounts_for(resource_id=resource_id)
    lead = ""
    for chunk in _attempt_chunks(resource_id):
        yield from _attempt_pieces(chunk, discounts, lead=lead)
        lead = ","
        on_attempts(len(chunk))
    yield "]}\n"
