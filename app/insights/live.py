"""What is happening in a resource right now, for the instructor's live view: one aggregate
query, recomputed by the live consumer every few seconds and whenever an attempt starts or ends."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from attempts.models import Attempt

ACTIVE_WITHIN = timedelta(minutes=5)  # "saving now": an answer arrived this recently
QUIET_AFTER = timedelta(minutes=10)  # in progress but nothing for this long: the window may be closed
PROBLEMS_WITHIN = timedelta(minutes=15)  # answers that arrived late this recently
PROBLEM_LIST = 20


def live_summary(*, resource_id: int, now=None) -> dict:
    now = now or timezone.now()
    open_ = Q(ended_at__isnull=True)
    counts = Attempt.objects.filter(resource_id=resource_id).aggregate(
        in_progress=Count("id", filter=open_),
        saving_now=Count("id", filter=open_ & Q(last_saved_at__gte=now - ACTIVE_WITHIN)),
        quiet=Count("id", filter=open_ & (Q(last_saved_at__lt=now - QUIET_AFTER)
                                          | Q(last_saved_at__isnull=True, started_at__lt=now - QUIET_AFTER))),
        saving_problems=Count("id", filter=open_ & Q(save_delayed_at__gte=now - PROBLEMS_WITHIN)),
        completed=Count("id", filter=Q(ended_at__isnull=False)),
        completed_last_hour=Count("id", filter=Q(ended_at__gte=now - timedelta(hours=1))),
        started_last_hour=Count("id", filter=Q(started_at__gte=now - timedelta(hours=1))),
    )
    problems = []
    if counts["saving_problems"]:
        rows = (Attempt.objects.filter(resource_id=resource_id, ended_at__isnull=True,
                                       save_delayed_at__gte=now - PROBLEMS_WITHIN)
                .order_by("-save_delayed_at")
                .values("id", "number", "user__first_name", "user__last_name", "user__username",
                        "save_delayed_at", "last_saved_at")[:PROBLEM_LIST])
        problems = [{
            "attempt": r["id"], "number": r["number"],
            "name": f"{r['user__first_name']} {r['user__last_name']}".strip() or r["user__username"],
            "late_at": r["save_delayed_at"].isoformat(),
            "last_saved_at": r["last_saved_at"].isoformat() if r["last_saved_at"] else None,
        } for r in rows]
    return {**counts, "problems": problems, "at": now.isoformat()}
