from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils.translation import gettext

from exams.models import CurrentVersionChange, ExamPackage
from grading.scoring import structure_total


def exam_current(*, resource_id: int) -> ExamPackage | None:
    """The version new attempts start on: the one last uploaded or made current again (its
    newest CurrentVersionChange), else the newest version."""
    change = (CurrentVersionChange.objects.filter(resource_id=resource_id).select_related("exam")
              .order_by("-at", "-pk").first())
    if change is not None:
        return change.exam
    return ExamPackage.objects.filter(resource_id=resource_id).order_by("-version").first()


def exam_version_get(*, resource_id: int, exam_id) -> ExamPackage | None:
    """One version of this resource's exam (None for another resource's: never reachable by id)."""
    return ExamPackage.objects.filter(resource_id=resource_id, pk=exam_id).select_related("uploaded_by").first()


@dataclass(frozen=True)
class VersionRow:
    exam: ExamPackage
    is_current: bool
    in_progress: int
    finished: int
    made_current: CurrentVersionChange | None  # the last time it was made current again, if ever

    @property
    def attempts(self) -> int:
        return self.in_progress + self.finished

    @property
    def uploader_name(self) -> str:
        return _name(self.exam.uploaded_by)

    @property
    def made_current_by_name(self) -> str:
        return _name(self.made_current.by) if self.made_current else ""


def _name(user) -> str:
    if user is None:
        return gettext("someone no longer here")
    return user.get_full_name() or user.get_username()


def exam_version_rows(*, resource_id: int) -> list[VersionRow]:
    """Every version of the resource's exam, newest first, with how many attempts (in progress
    and finished; deleted ones not counted) use it and which one is current."""
    current = exam_current(resource_id=resource_id)
    counts = {
        row["exam_id"]: row
        for row in _live_attempts(resource_id).values("exam_id").annotate(
            in_progress=Count("pk", filter=Q(ended_at__isnull=True)),
            finished=Count("pk", filter=Q(ended_at__isnull=False)))
    }
    restored = {}
    for change in (CurrentVersionChange.objects.filter(resource_id=resource_id, why=CurrentVersionChange.Why.RESTORED)
                   .select_related("by").order_by("at", "pk")):
        restored[change.exam_id] = change
    rows = []
    for exam in ExamPackage.objects.filter(resource_id=resource_id).select_related("uploaded_by").order_by("-version"):
        count = counts.get(exam.pk, {})
        rows.append(VersionRow(exam, current is not None and exam.pk == current.pk, count.get("in_progress", 0),
                               count.get("finished", 0), restored.get(exam.pk)))
    return rows


def _live_attempts(resource_id: int):
    from attempts.models import Attempt  # attempts depends on exams, not the reverse

    return Attempt.objects.filter(resource_id=resource_id)


def attempts_started(*, resource_id: int) -> tuple[int, int]:
    """(in progress, finished) attempts of the resource, whatever their version: the upload form
    warns about them before the exam is replaced."""
    counts = _live_attempts(resource_id).aggregate(
        in_progress=Count("pk", filter=Q(ended_at__isnull=True)), finished=Count("pk", filter=Q(ended_at__isnull=False)))
    return counts["in_progress"], counts["finished"]


def structure_shape(structure: list) -> list:
    """What an attempt's saved answers depend on: each question's group and picking, and its parts'
    (and gaps') types, in order. Two versions with the same shape can resume each other's
    attempts; marks, wording and answers may differ."""
    shape = []
    for question in structure or []:
        parts = [(p.get("type"), tuple(g.get("type") for g in p.get("gaps") or [])) for p in question.get("parts") or []]
        shape.append((question.get("group"), question.get("picking"), tuple(parts)))
    return shape


@dataclass(frozen=True)
class MovePreview:
    target: ExamPackage | None
    attempts: list  # the attempts that would move (not deleted, not already on the target)
    in_progress: int
    finished: int
    different_shape: int  # on a version whose questions or parts differ from the target's
    already_current: int  # chosen but already on the target version: left as they are
    unknown: int  # chosen ids that are not live attempts of this resource


def attempts_move_preview(*, resource_id: int, attempt_ids: list[int] | None) -> MovePreview:
    """What moving the chosen attempts (None: all of the resource's) to the current version would
    do, counted for the instructor's confirmation."""
    target = exam_current(resource_id=resource_id)
    chosen = _live_attempts(resource_id).select_related("exam", "user").order_by("user_id", "number")
    if attempt_ids is not None:
        chosen = chosen.filter(pk__in=attempt_ids)
    chosen = list(chosen)
    unknown = 0 if attempt_ids is None else len(set(attempt_ids)) - len(chosen)
    if target is None:
        return MovePreview(None, [], 0, 0, 0, 0, unknown)
    moving = [a for a in chosen if a.exam_id != target.pk]
    target_shape = structure_shape(target.structure)
    return MovePreview(
        target=target,
        attempts=moving,
        in_progress=sum(1 for a in moving if a.ended_at is None),
        finished=sum(1 for a in moving if a.ended_at is not None),
        different_shape=sum(1 for a in moving if structure_shape(a.exam.structure) != target_shape),
        already_current=len(chosen) - len(moving),
        unknown=unknown,
    )


def exam_versions(*, resource_id: int) -> list[ExamPackage]:  # newest first
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
