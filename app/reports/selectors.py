"""Reads for reports: the report files of a resource, and the rows that go into the CSVs."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from attempts.models import Attempt, Element
from exams.models import ExamPackage
from lms import selectors as lms_selectors
from lms.models import ResourceMembership, Role
from reports import tables
from reports.models import ReportFile, ReportFileState

CHUNK_SIZE = 2000  # attempts fetched at a time
VALUES_CHUNK_SIZE = 500  # attempts whose values are fetched (and held) at a time
MAX_QUESTION_COLUMNS = 500


def reports_of(*, resource_id: int, limit: int = 50) -> list[ReportFile]:
    """The resource's report files that have not expired, latest first."""
    return list(
        ReportFile.objects.filter(resource_id=resource_id)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .select_related("requested_by")
        .order_by("-created_at")[:limit]
    )


def report_get(*, report_id: uuid.UUID, resource_id: int) -> ReportFile | None:
    return ReportFile.objects.filter(pk=report_id, resource_id=resource_id).first()


def report_for_download(*, report_id: uuid.UUID, user, now: datetime | None = None) -> ReportFile | None:
    """The finished, unexpired report if `user` may download it: an instructor of the report's
    own resource (or staff). Callers still check the resource in the URL."""
    if not user.is_authenticated:
        return None
    reports = ReportFile.objects.select_related("resource").filter(
        pk=report_id, state=ReportFileState.DONE, expires_at__gt=now or timezone.now()
    )
    if not user.is_staff:
        instructors = ResourceMembership.objects.filter(resource_id=OuterRef("resource_id"), user=user, role=Role.INSTRUCTOR)
        reports = reports.filter(Exists(instructors))
    return reports.first()


# --- scores CSV ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudentRow:
    name: str
    email: str
    lms_user_id: str
    attempts: int
    grade: float | None
    counted_attempt: int | None
    report_state: str
    reported_score: float | None
    reported_at: datetime | None
    identifier: str = ""


def _identifier(resource_id: int):
    """The activity's chosen identifier of each row's person (lms.IdentifierField)."""
    return lms_selectors.identifier_expression(lms_selectors.identifier_field_for(resource_id=resource_id))


def _students(resource_id: int):
    attempt_count = (
        Attempt.objects.filter(resource_id=OuterRef("resource_id"), user_id=OuterRef("user_id"))
        .order_by()
        .values("user_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        ResourceMembership.objects.filter(resource_id=resource_id, role=Role.STUDENT)
        .annotate(attempt_count=Coalesce(Subquery(attempt_count, output_field=IntegerField()), Value(0)))
        .filter(Q(attempt_count__gt=0) | Q(grade_report__isnull=False))
    )


def students_count(*, resource_id: int) -> int:
    return _students(resource_id).count()


def students_for_scores(*, resource_id: int) -> Iterator[StudentRow]:
    """Each student of the resource who has an attempt or a grade, by name."""
    rows = (
        _students(resource_id)
        .annotate(identifier=_identifier(resource_id))
        .order_by("user__last_name", "user__first_name", "user__lti_identity__full_name", "user__username", "id")
        .values_list(
            "user__lti_identity__full_name", "user__first_name", "user__last_name", "user__lti_identity__email",
            "user__email", "user__lti_identity__lti_user_id", "attempt_count", "grade_report__score",
            "grade_report__attempt_number", "grade_report__state", "grade_report__sent_score", "grade_report__delivered_at",
            "identifier",
        )
    )
    for (full_name, first, last, identity_email, user_email, lti_user_id, attempts, grade, counted, state,
         sent, delivered_at, identifier) in rows.iterator(chunk_size=CHUNK_SIZE):
        yield StudentRow(
            name=full_name or f"{first} {last}".strip(),
            email=identity_email or user_email or "",
            lms_user_id=lti_user_id or "",
            attempts=attempts,
            grade=grade,
            counted_attempt=counted,
            report_state=state or "",
            reported_score=sent,
            reported_at=delivered_at,
            identifier=identifier,
        )


# --- attempts CSV --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptRow:
    id: int
    name: str
    lms_user_id: str
    number: int
    started_at: datetime
    ended_at: datetime | None
    completion_status: str
    late: bool = False
    exam_id: int | None = None
    identifier: str = ""


def attempts_count(*, resource_id: int) -> int:
    return Attempt.objects.filter(resource_id=resource_id).count()


_INTERACTION_ID = re.compile(r"^(cmi\.interactions\.[0-9]+\.)id$")


def _scoring_keys(discounts: dict[str, str]) -> Q:
    """The Element rows that an attempt's scores in the CSV depend on (see grading.scoring):
    cmi.score.*, each objective's id and score.raw, and with discounts each objective's
    score.max and the ids of the interactions (parts) that a discount is about. LIKE patterns
    only narrow the rows down (PostgreSQL runs them ~10x faster than regular expressions);
    grading.scoring's own patterns then pick the exact keys."""
    objective_fields = Q(key__endswith=".id") | Q(key__endswith=".score.raw")
    if discounts:
        objective_fields |= Q(key__endswith=".score.max")
    keys = Q(key__startswith="cmi.score.") | (Q(key__startswith="cmi.objectives.") & objective_fields)
    parts = _discounted_parts(discounts)
    if parts:
        keys |= Q(key__startswith="cmi.interactions.", key__endswith=".id", value__in=parts)
    return keys


def _discounted_parts(discounts: dict[str, str]) -> list[str]:
    return sorted(target for target in discounts if "p" in target)


def _values(attempt_ids: list[int], keys: Q, discounted_parts: list[str]) -> dict[int, dict[str, str]]:
    """The attempts' scoring values. Of the interactions (parts), only those a discount is about
    are read — their id, result, weighting and question: scoring changes a question's score by
    its discounted parts alone, and an exam stores an interaction for every part."""
    values: dict[int, dict[str, str]] = defaultdict(dict)
    rows = Element.objects.filter(keys, attempt_id__in=attempt_ids).values_list("attempt_id", "key", "value")
    for attempt_id, key, value in rows.iterator(chunk_size=10_000):
        values[attempt_id][key] = value
    if discounted_parts:
        prefixes, attempts = set(), set()
        for attempt_id, attempt_values in values.items():
            for key in attempt_values:
                if key.startswith("cmi.interactions.") and (match := _INTERACTION_ID.match(key)):
                    prefixes.add(match[1])
                    attempts.add(attempt_id)
        if attempts:
            wanted = [prefix + field for prefix in prefixes for field in ("result", "weighting", "objectives.0.id")]
            rows = Element.objects.filter(attempt_id__in=attempts, key__in=wanted).values_list("attempt_id", "key", "value")
            for attempt_id, key, value in rows.iterator(chunk_size=10_000):
                values[attempt_id][key] = value
    return values


def attempt_chunks(
    *, resource_id: int, discounts: dict[str, str], chunk_size: int = VALUES_CHUNK_SIZE
) -> Iterator[tuple[list[AttemptRow], dict[int, dict[str, str]]]]:
    """The resource's attempts by id, `chunk_size` at a time, each chunk with the scoring values
    of its attempts (one query per chunk, so memory stays flat whatever the number of attempts)."""
    rows = (
        Attempt.objects.filter(resource_id=resource_id)
        .annotate(identifier=_identifier(resource_id))
        .order_by("id")
        .values_list(
            "id", "user__lti_identity__full_name", "user__first_name", "user__last_name",
            "user__lti_identity__lti_user_id", "number", "started_at", "ended_at", "completion_status", "late",
            "exam_id", "identifier",
        )
    )
    keys, parts = _scoring_keys(discounts), _discounted_parts(discounts)
    chunk: list[AttemptRow] = []
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        attempt_id, full_name, first, last, lti_user_id, number, started_at, ended_at, status, late, exam_id, ident = row
        chunk.append(AttemptRow(attempt_id, full_name or f"{first} {last}".strip(), lti_user_id or "", number,
                                started_at, ended_at, status, late, exam_id, ident))
        if len(chunk) >= chunk_size:
            yield chunk, _values([a.id for a in chunk], keys, parts)
            chunk = []
    if chunk:
        yield chunk, _values([a.id for a in chunk], keys, parts)


def question_columns(*, resource_id: int) -> list[tuple[str, str]]:
    """The question columns: (id, name) for every question of any exam version of the resource
    (names from the newest version that has the question), and any other objective id the
    attempts reported."""
    names: dict[str, str] = {}
    for structure in ExamPackage.objects.filter(resource_id=resource_id).order_by("-version").values_list(
        "structure", flat=True
    ):
        for index, question in enumerate(structure or []):
            name = question.get("name", "") if isinstance(question, dict) else ""
            names.setdefault(f"q{index}", str(name))
    reported = (
        Element.objects.filter(attempt__resource_id=resource_id, attempt__is_test_run=False,
                               key__startswith="cmi.objectives.", key__endswith=".id")
        .exclude(value="")
        .values_list("value", flat=True)
        .distinct()[:MAX_QUESTION_COLUMNS]
    )
    for qid in reported:
        names.setdefault(qid, "")
    # Exams write objective ids; a misbehaving one must not make a sheet of a million columns.
    return sorted(names.items(), key=lambda item: tables.question_order(item[0]))[:MAX_QUESTION_COLUMNS]
