from __future__ import annotations

from exams.models import ExamPackage
from grading.scoring import structure_total


def exam_current(*, resource_id: int) -> ExamPackage | None:
    """The resource's newest exam version; new attempts start on it."""
    return ExamPackage.objects.filter(resource_id=resource_id).order_by("-version").first()


def exam_versions(*, resource_id: int) -> list[ExamPackage]:
    return list(ExamPackage.objects.filter(resource_id=resource_id).order_by("-version"))


def exam_total_marks(*, resource_id: int) -> float | None:
    """The current exam's total marks, when its package says them (grading.scoring's
    structure_total: gap-fills count their gaps' marks). None when there is no exam, when a part's
    marks are unknown, or when a question group picks a random subset (each attempt's total is
    then its own)."""
    exam = exam_current(resource_id=resource_id)
    if exam is None:
        return None
    total = structure_total(exam.structure)
    return total if total else None
