"""What is happening in a resource right now, for the instructor's live view: one aggregate
query and who is taking the exam now (each open attempt's student, progress, score, last save and
whether a window is connected), recomputed by the live consumer every few seconds and whenever an
attempt starts or ends or a window connects or leaves."""

from __future__ import annotations

from datetime import timedelta

import re

from django.db.models import Count, Q
from django.utils import timezone

from attempts.models import Attempt, Element
from insights.presence import connected_attempts
from lms import selectors as lms_selectors

ACTIVE_WITHIN = timedelta(minutes=5)  # "saving now": an answer arrived this recently
QUIET_AFTER = timedelta(minutes=10)  # in progress but nothing for this long: the window may be closed
PROBLEMS_WITHIN = timedelta(minutes=15)  # answers that arrived late this recently
PROBLEM_LIST = 20
TAKING_LIST = 500  # open attempts listed, the most recently saved first
_RESPONSE = re.compile(r"^cmi\.interactions\.(\d+)\.(id|objectives\.0\.id|learner_response)$")


def _answered_questions(attempt_ids: list[int]) -> dict[int, int]:
    """How many questions of each attempt have at least one part answered (an interaction with a
    learner response)."""
    rows = (Element.objects.filter(attempt_id__in=attempt_ids, key__startswith="cmi.interactions.")
            .filter(Q(key__endswith=".id") | Q(key__endswith=".learner_response"))
            .values_list("attempt_id", "key", "value"))
    interactions: dict[int, dict[int, dict[str, str]]] = {}
    for attempt_id, key, value in rows.iterator(chunk_size=5000):
        match = _RESPONSE.match(key)
        if match:
            interactions.setdefault(attempt_id, {}).setdefault(int(match[1]), {})[match[2]] = value
    answered = {}
    for attempt_id, parts in interactions.items():
        questions = {p.get("objectives.0.id") or p.get("id", "").partition("p")[0]
                     for p in parts.values() if p.get("learner_response", "") != ""}
        answered[attempt_id] = len(questions - {""})
    return answered


def taking_now(*, resource_id: int) -> list[dict]:
    """Who is taking the exam now: every open attempt with its student, progress (questions
    answered of the exam's questions), current score, last save and whether a window of it is
    connected."""
    from grading import selectors as grading_selectors

    field = lms_selectors.identifier_field_for(resource_id=resource_id)
    rows = list(Attempt.objects.filter(resource_id=resource_id, ended_at__isnull=True)
                .annotate(identifier=lms_selectors.identifier_expression(field))
                .order_by("-last_saved_at", "-started_at")
                .values("id", "number", "user__first_name", "user__last_name", "user__username", "identifier",
                        "started_at", "last_saved_at", "exam__structure")[:TAKING_LIST])
    ids = [r["id"] for r in rows]
    answered = _answered_questions(ids)
    scores = grading_selectors.attempt_scores(
        attempt_ids=ids, discounts=grading_selectors.discounts_for(resource_id=resource_id)) if ids else {}
    connected = connected_attempts(ids)
    result = []
    for r in rows:
        score = scores.get(r["id"])
        result.append({
            "attempt": r["id"], "number": r["number"],
            "name": f"{r['user__first_name']} {r['user__last_name']}".strip() or r["user__username"],
            "identifier": r["identifier"] or "",
            "started_at": r["started_at"].isoformat(),
            "answered": answered.get(r["id"], 0),
            "questions": len(r["exam__structure"] or []),
            "score": None if score is None or score.raw is None else round(score.raw, 2),
            "max": None if score is None or not score.max else round(score.max, 2),
            "last_saved_at": r["last_saved_at"].isoformat() if r["last_saved_at"] else None,
            "connected": r["id"] in connected,
        })
    return result


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
    return {**counts, "problems": problems, "taking": taking_now(resource_id=resource_id), "at": now.isoformat()}
