from __future__ import annotations

import math

from exams.models import ExamPackage


def exam_current(*, resource_id: int) -> ExamPackage | None:
    """The resource's newest exam version; new attempts start on it."""
    return ExamPackage.objects.filter(resource_id=resource_id).order_by("-version").first()


def exam_versions(*, resource_id: int) -> list[ExamPackage]:
    return list(ExamPackage.objects.filter(resource_id=resource_id).order_by("-version"))


def exam_total_marks(*, resource_id: int) -> float | None:
    """The current exam's total marks, when its source says them all: the sum of its parts'
    marks. None when there is no exam, or when a part's marks are not a positive number in the
    source (a gap-fill's marks are its gaps', which the structure does not keep)."""
    exam = exam_current(resource_id=resource_id)
    if exam is None or not exam.structure:
        return None
    total = 0.0
    for question in exam.structure:
        parts = question.get("parts") if isinstance(question, dict) else None
        if not parts:
            return None
        for part in parts:
            if not isinstance(part, dict) or part.get("type") == "gapfill":
                return None
            marks = part.get("marks")
            if isinstance(marks, bool) or not isinstance(marks, (int, float)) or not math.isfinite(marks) \
                    or marks <= 0:
                return None
            total += marks
    return total
