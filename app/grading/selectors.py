"""Reads for grading: discounts, the scores that make a student's grade, and what the
instructor and student see about reporting."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Q

from attempts.models import Attempt, CompletionStatus, Element
from grading import scoring
from grading.models import Discount, GradeReport, GradeSend


def discounts_for(*, resource_id: int) -> dict[str, str]:
    return dict(Discount.objects.filter(resource_id=resource_id).values_list("target", "behaviour"))


# Only the keys scoring reads: an attempt stores hundreds of other values.
_SCORING_KEYS = (
    Q(key__startswith="cmi.score.")
    | Q(key__regex=r"^cmi\.objectives\.[0-9]+\.(id|score\.raw|score\.max)$")
    | Q(key__regex=r"^cmi\.interactions\.[0-9]+\.(id|result|weighting|objectives\.0\.id)$")
)


def scoring_values(*, attempt_ids: list[int]) -> dict[int, dict[str, str]]:
    values: dict[int, dict[str, str]] = defaultdict(dict)
    rows = Element.objects.filter(_SCORING_KEYS, attempt_id__in=attempt_ids).values_list("attempt_id", "key", "value")
    for attempt_id, key, value in rows.iterator(chunk_size=5000):
        values[attempt_id][key] = value
    return values


def _summary_score(attempt: Attempt) -> float | None:
    if attempt.score_scaled is not None:
        return max(0.0, min(1.0, attempt.score_scaled))
    if attempt.score_raw is not None and attempt.score_max:
        return max(0.0, min(1.0, attempt.score_raw / attempt.score_max))
    return None


def attempts_for_grade(*, resource_id: int, user_id: int, discounts: dict[str, str]) -> list[scoring.AttemptForGrade]:
    """The student's attempts with their scores as they count now (discounts applied)."""
    attempts = list(
        Attempt.objects.filter(resource_id=resource_id, user_id=user_id).only(
            "id", "number", "completion_status", "score_raw", "score_max", "score_scaled"
        )
    )
    values = scoring_values(attempt_ids=[a.id for a in attempts]) if discounts else {}
    result = []
    for a in attempts:
        if discounts:
            scaled = scoring.attempt_score(values.get(a.id, {}), discounts).scaled
        else:
            scaled = _summary_score(a)
        result.append(scoring.AttemptForGrade(a.number, a.completion_status == CompletionStatus.COMPLETED, scaled))
    return result


def grade_report_for(*, membership_id: int) -> GradeReport | None:
    return GradeReport.objects.filter(membership_id=membership_id).first()


def grade_reports_for_resource(*, resource_id: int):
    return (
        GradeReport.objects.filter(resource_id=resource_id)
        .select_related("membership__user")
        .order_by("membership__user__last_name", "membership__user__first_name", "membership__user__username")
    )


def grade_sends(*, report_id: int, limit: int = 50) -> list[GradeSend]:
    return list(GradeSend.objects.filter(report_id=report_id)[:limit])
