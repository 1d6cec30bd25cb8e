"""Reads for grading: discounts, the scores that make a student's grade, and what the
instructor and student see about reporting."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Prefetch, Q
from django.utils.translation import gettext, ngettext

from attempts.models import Attempt, CompletionStatus, Element, PartOverride
from grading import ags, scoring
from grading.models import Discount, GradeReport, GradeSend, ReportState
from lms.models import LtiVersion, ResourceMembership, Role


def discounts_for(*, resource_id: int) -> dict[str, str]:
    return dict(Discount.objects.filter(resource_id=resource_id).values_list("target", "behaviour"))


# Only the keys scoring reads: an attempt stores hundreds of other values. LIKE patterns
# narrow the rows (PostgreSQL runs them far faster than regular expressions); scoring's own
# patterns then pick the exact keys.
_SCORING_KEYS = (
    Q(key__startswith="cmi.score.")
    | Q(key__startswith="cmi.objectives.", key__endswith=".id")
    | Q(key__startswith="cmi.objectives.", key__endswith=".score.raw")
    | Q(key__startswith="cmi.objectives.", key__endswith=".score.max")
    | Q(key__startswith="cmi.interactions.", key__endswith=".id")
    | Q(key__startswith="cmi.interactions.", key__endswith=".result")
    | Q(key__startswith="cmi.interactions.", key__endswith=".weighting")
    | Q(key__startswith="cmi.interactions.", key__endswith=".objectives.0.id")
)


def scoring_values(*, attempt_ids: list[int]) -> dict[int, dict[str, str]]:
    values: dict[int, dict[str, str]] = defaultdict(dict)
    rows = Element.objects.filter(_SCORING_KEYS, attempt_id__in=attempt_ids).values_list("attempt_id", "key", "value")
    for attempt_id, key, value in rows.iterator(chunk_size=5000):
        values[attempt_id][key] = value
    return values


def exam_structures(*, exam_ids) -> dict:
    """Exam version id -> its structure (questions, parts, gaps and their marks)."""
    from exams.models import ExamPackage

    return dict(ExamPackage.objects.filter(pk__in=set(exam_ids)).values_list("pk", "structure"))


def attempt_scores(*, attempt_ids: list[int], discounts: dict[str, str] | None = None) -> dict[int, scoring.AttemptScore]:
    """The attempts' scores as they count now, out of their exam version's whole total (every
    question, part and gap, answered or not), with discounts and instructors' marks applied.
    Every page, grade and report that shows an attempt's maxima reads them from here or from
    scoring.attempt_score with the same structure."""
    rows = Attempt.all_objects.filter(pk__in=attempt_ids).values_list(
        "pk", "exam_id", "score_raw", "score_max", "score_scaled")
    exams = {pk: exam_id for pk, exam_id, *_ in rows}
    structures = exam_structures(exam_ids=exams.values())
    values = scoring_values(attempt_ids=list(exams))
    for pk, _, *summary in rows:  # the attempt's summary where its values lack it
        for key, value in zip(("cmi.score.raw", "cmi.score.max", "cmi.score.scaled"), summary):
            if value is not None:
                values[pk].setdefault(key, repr(value))
    overrides = overrides_for(attempt_ids=list(exams))
    return {pk: scoring.attempt_score(values.get(pk, {}), discounts, overrides.get(pk),
                                      structure=structures.get(exam_id))
            for pk, exam_id in exams.items()}


def _summary_score(attempt: Attempt) -> float | None:
    if attempt.score_scaled is not None:
        return max(0.0, min(1.0, attempt.score_scaled))
    if attempt.score_raw is not None and attempt.score_max:
        return max(0.0, min(1.0, attempt.score_raw / attempt.score_max))
    return None


def overrides_for(*, attempt_ids: list[int]) -> dict[int, dict[str, float]]:
    """Instructors' marks for parts: attempt id -> part id -> score."""
    result: dict[int, dict[str, float]] = {}
    for attempt_id, part_id, score in PartOverride.objects.filter(attempt_id__in=attempt_ids).values_list(
            "attempt_id", "part_id", "score"):
        result.setdefault(attempt_id, {})[part_id] = score
    return result


def attempts_for_grade(*, resource_id: int, user_id: int, discounts: dict[str, str]) -> list[scoring.AttemptForGrade]:
    """The student's attempts with their scores as they count now (discounts applied, out of
    the exam's whole total)."""
    attempts = list(
        Attempt.objects.filter(resource_id=resource_id, user_id=user_id).only(
            "id", "number", "completion_status", "score_raw", "score_max", "score_scaled", "exam_id"
        )
    )
    overrides = overrides_for(attempt_ids=[a.id for a in attempts])
    totals = {pk: scoring.structure_total(structure)
              for pk, structure in exam_structures(exam_ids={a.exam_id for a in attempts}).items()}
    # Recomputed: with discounts, all; otherwise those re-marked, and those whose reported
    # maximum falls short of their exam's total (an unfinished attempt of an exam that reports
    # its maximum only as questions are answered).
    recompute = {a.id for a in attempts} if discounts else set(overrides) | {
        a.id for a in attempts if totals.get(a.exam_id) and (a.score_max or 0) < totals[a.exam_id]}
    scores = attempt_scores(attempt_ids=sorted(recompute), discounts=discounts) if recompute else {}
    result = []
    for a in attempts:
        scaled = scores[a.id].scaled if a.id in scores else _summary_score(a)
        result.append(scoring.AttemptForGrade(a.number, a.completion_status == CompletionStatus.COMPLETED, scaled))
    return result


@dataclass(frozen=True)
class GradedAttempt:
    score_max: float | None
    completed: bool


def graded_attempts(*, keys: list[tuple[int, int, int | None]]) -> dict[tuple[int, int, int], GradedAttempt]:
    """The attempts grades come from, by (resource id, user id, attempt number): their maximum
    marks and whether they are completed (what an AGS score says besides the score)."""
    wanted = {k for k in keys if k[2] is not None}
    if not wanted:
        return {}
    found = [row for row in Attempt.objects.filter(
        resource_id__in={k[0] for k in wanted}, user_id__in={k[1] for k in wanted},
        number__in={k[2] for k in wanted}).values_list(
        "resource_id", "user_id", "number", "score_max", "completion_status", "exam_id") if row[:3] in wanted]
    totals = {pk: scoring.structure_total(structure)
              for pk, structure in exam_structures(exam_ids={row[5] for row in found}).items()}

    def out_of(reported, exam_id):  # the exam's whole total when the attempt reported less
        total = totals.get(exam_id)
        return total if total and (reported or 0) < total else reported

    return {(r, u, n): GradedAttempt(out_of(m, e), c == CompletionStatus.COMPLETED) for r, u, n, m, c, e in found}


def membership_can_report(membership: ResourceMembership) -> bool:
    """Whether the student's latest launch gave us somewhere to send their grade: LTI 1.1's
    sourcedid and outcome service, or LTI 1.3's AGS (the score scope, and a line item or a
    container we may add ours to)."""
    if membership.lti_version == LtiVersion.LTI_1P3:
        scopes = set(membership.ags_scopes.split())
        may_find = ags.SCOPE_LINEITEM in scopes or ags.SCOPE_LINEITEM_READONLY in scopes
        return bool(membership.platform_id and ags.SCOPE_SCORE in scopes
                    and (membership.ags_lineitem_url or (membership.ags_lineitems_url and may_find)))
    return bool(membership.lis_result_sourcedid and membership.lis_outcome_service_url)


_REPORT_FIELDS = ("lti_version", "ags_scopes", "platform_id", "ags_lineitem_url", "ags_lineitems_url",
                  "lis_result_sourcedid", "lis_outcome_service_url")


@dataclass(frozen=True)
class GradebookLink:
    """Whether an activity's students' launches offered a gradebook column to report grades to."""

    students: int  # students who have launched it
    reporting: int  # of whom the LMS offered somewhere to send the grade

    @property
    def none(self) -> bool:
        """The LMS offered no gradebook column for anyone: the activity sends no grades."""
        return self.students > 0 and self.reporting == 0

    @property
    def some_missing(self) -> bool:
        return 0 < self.reporting < self.students

    @property
    def missing(self) -> int:
        return self.students - self.reporting


def gradebook_link(*, resource_id: int) -> GradebookLink:
    rows = ResourceMembership.objects.filter(resource_id=resource_id, role=Role.STUDENT).only("id", *_REPORT_FIELDS)
    students = reporting = 0
    for membership in rows.iterator(chunk_size=2000):
        students += 1
        reporting += membership_can_report(membership)
    return GradebookLink(students, reporting)


def grade_report_for(*, membership_id: int) -> GradeReport | None:
    return GradeReport.objects.filter(membership_id=membership_id).first()


def grade_reports_for_resource(*, resource_id: int, recent_sends: int = 10):
    """Every student's grade report, each with its latest tries as `recent_sends` (one query
    for all of them, not one per student)."""
    return (
        GradeReport.objects.filter(resource_id=resource_id)
        .select_related("membership__user")
        .prefetch_related(Prefetch("sends", queryset=GradeSend.objects.order_by("-sent_at", "-id")[:recent_sends],
                                   to_attr="recent_sends"))
        .order_by("membership__user__last_name", "membership__user__first_name", "membership__user__username")
    )



def discount_targets(*, structure: list[dict], discounts: dict[str, str]) -> list[dict]:
    """The exam's questions and parts as discount targets ("q0", "q0p1"), with their names
    and current discount, for the instructor's page."""
    rows = []
    for qi, question in enumerate(structure or []):
        qid = f"q{qi}"
        label = gettext("Question %(number)d: %(name)s") % {"number": qi + 1,
                                                            "name": question.get("name") or gettext("untitled")}
        rows.append({"target": qid, "label": label,
                     "behaviour": discounts.get(qid, ""), "is_part": False})
        for pi, part in enumerate(question.get("parts") or []):
            pid = f"{qid}p{pi}"
            marks = part.get("marks")
            letter = chr(97 + pi) if pi < 26 else pi + 1
            if marks is None:
                label = gettext("Part %(part)s") % {"part": letter}
            else:  # ngettext needs a whole number: a fractional mark counts as "many"
                label = ngettext("Part %(part)s (%(marks)s mark)", "Part %(part)s (%(marks)s marks)",
                                 1 if marks == 1 else marks if isinstance(marks, int) else 2,
                                 ) % {"part": letter, "marks": marks}
            rows.append({"target": pid, "label": label,
                         "behaviour": discounts.get(pid, ""), "is_part": True})
    known = {r["target"] for r in rows}
    for target, behaviour in sorted(discounts.items()):
        if target not in known:  # set for an earlier version of the exam
            rows.append({"target": target, "label": target, "behaviour": behaviour, "is_part": "p" in target})
    return rows


def grade_summary_for_student(*, membership_id: int) -> GradeReport | None:
    return GradeReport.objects.filter(membership_id=membership_id).only(
        "score", "state", "sent_score", "delivered_at", "version", "sent_version", "attempt_number"
    ).first()


# --- what an attempt's review says about marks changed after the exam gave them -------------

_ITEM = re.compile(r"^q(\d+)(?:p(\d+)(?:g(\d+))?)?$")


def item_label(item_id: str) -> str:
    """"Question 1", "Question 1, part b" or "Question 1, part b, gap 3" for "q0", "q0p1", "q0p1g2"."""
    match = _ITEM.match(item_id)
    if not match:
        return item_id
    question, part, gap = match.groups()
    label = gettext("Question %(number)d") % {"number": int(question) + 1}
    if part is not None:
        p = int(part)
        label = gettext("%(question)s, part %(part)s") % {"question": label, "part": chr(97 + p) if p < 26 else p + 1}
    if gap is not None:
        label = gettext("%(part)s, gap %(gap)d") % {"part": label, "gap": int(gap) + 1}
    return label


@dataclass(frozen=True)
class MarkChange:
    label: str
    before: float | None  # None for a discount: the item no longer counts as the exam marked it
    after: float | None
    max: float | None
    note: str = ""


@dataclass(frozen=True)
class MarkChanges:
    """How an attempt's marks differ from what the exam stored (and shows in its review)."""

    changes: tuple[MarkChange, ...]
    before: scoring.AttemptScore
    after: scoring.AttemptScore


def attempt_mark_changes(*, attempt: Attempt) -> MarkChanges | None:
    """Instructors' marks for parts and gaps, and the activity's discounts, as they change this
    attempt's marks from those the exam gave: each changed item (old → new) and the total
    before and after. None when nothing has changed."""
    overrides = overrides_for(attempt_ids=[attempt.pk]).get(attempt.pk, {})
    discounts = discounts_for(resource_id=attempt.resource_id)
    if not overrides and not discounts:
        return None
    values = scoring_values(attempt_ids=[attempt.pk]).get(attempt.pk, {})
    for key, value in (("cmi.score.raw", attempt.score_raw), ("cmi.score.max", attempt.score_max),
                       ("cmi.score.scaled", attempt.score_scaled)):
        if value is not None:
            values.setdefault(key, repr(value))
    structure = exam_structures(exam_ids=[attempt.exam_id]).get(attempt.exam_id)
    before = scoring.attempt_score(values, None, None, structure=structure)
    after = scoring.attempt_score(values, discounts, overrides, structure=structure)
    old_parts = {p.id: p for q in before.questions for p in q.parts}
    changes = []
    for question in after.questions:
        for part in question.parts:
            old = old_parts.get(part.id)
            if old is not None and (part.id in overrides or abs(old.raw - part.raw) > 1e-9):
                changes.append(MarkChange(item_label(part.id), old.raw, part.raw, part.max,
                                          gettext("re-marked by an instructor") if part.id in overrides else ""))
    present = {q.id for q in before.questions} | set(old_parts)
    for target, behaviour in sorted(discounts.items()):
        if target in present:
            note = (gettext("removed from the total") if behaviour == scoring.REMOVE
                    else gettext("full marks for everyone"))
            changes.append(MarkChange(item_label(target), None, None, None, note))
    if not changes:
        return None
    return MarkChanges(tuple(changes), before, after)
