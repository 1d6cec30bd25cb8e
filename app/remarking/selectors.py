"""Reads for re-marking: runs, their progress and preview, and what the marking frame starts
an attempt from."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from attempts import selectors as attempt_selectors
from attempts.models import Attempt
from remarking.models import RemarkItem, RemarkItemStatus, RemarkRun, RemarkRunStatus


def remark_run_latest(*, resource_id: int) -> RemarkRun | None:
    """The resource's newest run that was not discarded (the one its page shows)."""
    run = RemarkRun.objects.filter(resource_id=resource_id).select_related("exam").order_by("-pk").first()
    return None if run is None or run.status == RemarkRunStatus.DISCARDED else run


def remark_run_of(*, resource_id: int, run_id: int) -> RemarkRun | None:
    return RemarkRun.objects.filter(resource_id=resource_id, pk=run_id).select_related("exam").first()


@dataclass(frozen=True)
class Progress:
    total: int
    pending: int
    marked: int
    failed: int
    applied: int
    stale: int
    changed: int

    @property
    def done(self) -> int:
        return self.total - self.pending

    def as_dict(self) -> dict:
        return {"total": self.total, "done": self.done, "pending": self.pending, "marked": self.marked,
                "failed": self.failed, "applied": self.applied, "stale": self.stale, "changed": self.changed}


def remark_progress(*, run: RemarkRun) -> Progress:
    counts = dict(run.items.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    changed = run.items.filter(changed=True).count()
    return Progress(total=sum(counts.values()), pending=counts.get(RemarkItemStatus.PENDING, 0),
                    marked=counts.get(RemarkItemStatus.MARKED, 0), failed=counts.get(RemarkItemStatus.FAILED, 0),
                    applied=counts.get(RemarkItemStatus.APPLIED, 0), stale=counts.get(RemarkItemStatus.STALE, 0),
                    changed=changed)


PREVIEW_LIMIT = 1000


def remark_preview(*, run: RemarkRun, limit: int = PREVIEW_LIMIT) -> list[RemarkItem]:
    """The attempts whose marks change (or that could not be marked), for the preview table."""
    from django.db.models import Q

    return list(run.items.filter(Q(changed=True) | Q(status__in=[RemarkItemStatus.FAILED, RemarkItemStatus.STALE]))
                .select_related("attempt__user").order_by("pk")[:limit])


def remark_state(*, attempt: Attempt, values: dict[str, str]) -> dict:
    """What the marking frame loads the exam with: the attempt's stored values, resumed (so the
    exam restores the answers and marks them with its own code), in normal mode."""
    learner_id, learner_name = attempt_selectors.learner_identity(user=attempt.user)
    access = attempt_selectors.student_access_of(resource_id=attempt.resource_id, user_id=attempt.user_id)
    return {
        "values": values,
        "entry": "resume" if values else "ab-initio",
        "mode": "normal",
        "learner_id": learner_id,
        "learner_name": learner_name,
        "numbas": {"user_role": "instructor", "review_allowed": "true",
                   **attempt_selectors.numbas_keys(access=access)},
    }
