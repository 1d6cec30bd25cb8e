from __future__ import annotations

from exams.models import ExamPackage


def exam_current(*, resource_id: int) -> ExamPackage | None:
    """The resource's newest exam version; new attempts start on it."""
    return ExamPackage.objects.filter(resource_id=resource_id).order_by("-version").first()


def exam_versions(*, resource_id: int) -> list[ExamPackage]:
    return list(ExamPackage.objects.filter(resource_id=resource_id).order_by("-version"))
