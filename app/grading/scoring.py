"""How scores are computed — pure functions, no database.

An attempt's score comes from what the exam reported: per question from
`cmi.objectives.N.*` (id "q0", score.raw, score.max), per part from `cmi.interactions.N.*`
(id "q0p1", result = the part's score, weighting = its marks), and in total from
`cmi.score.*`. Discounts change questions or parts ("remove from the total" or "full marks for
everyone"); a resource's grade for a student is then picked from their attempts by the
resource's grading method.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

REMOVE = "remove"
FULL_MARKS = "full_marks"

_OBJECTIVE = re.compile(r"^cmi\.objectives\.(\d+)\.(id|score\.raw|score\.max)$")
_INTERACTION = re.compile(r"^cmi\.interactions\.(\d+)\.(id|result|weighting|objectives\.0\.id)$")


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass
class PartScore:
    id: str
    raw: float  # the part's score
    max: float  # its marks


@dataclass
class QuestionScore:
    id: str
    raw: float
    max: float
    parts: list[PartScore] = field(default_factory=list)


@dataclass(frozen=True)
class AttemptScore:
    raw: float | None
    max: float | None
    scaled: float | None  # 0..1, what is reported to the LMS
    questions: tuple[QuestionScore, ...] = ()


def _part_score(result: str | None, weighting: float) -> float:
    """A part's score from cmi.interactions.N.result: Numbas writes the score itself; SCORM's
    symbolic results mean all or nothing."""
    value = _number(result)
    if value is not None:
        return value
    return weighting if result == "correct" else 0.0


def questions_from(values: Mapping[str, str]) -> list[QuestionScore]:
    """Per-question scores (with their parts) from an attempt's current values."""
    objectives: dict[int, dict[str, str]] = {}
    interactions: dict[int, dict[str, str]] = {}
    for key, value in values.items():
        if key.startswith("cmi.objectives."):
            match = _OBJECTIVE.match(key)
            if match:
                objectives.setdefault(int(match[1]), {})[match[2]] = value
        elif key.startswith("cmi.interactions."):
            match = _INTERACTION.match(key)
            if match:
                interactions.setdefault(int(match[1]), {})[match[2]] = value
    questions: dict[str, QuestionScore] = {}
    for index in sorted(objectives):
        o = objectives[index]
        qid = o.get("id")
        if not qid:
            continue
        questions[qid] = QuestionScore(qid, _number(o.get("score.raw")) or 0.0, _number(o.get("score.max")) or 0.0)
    for index in sorted(interactions):
        i = interactions[index]
        pid = i.get("id", "")
        qid = i.get("objectives.0.id") or pid.partition("p")[0]
        question = questions.get(qid)
        if not pid or question is None:
            continue
        weighting = _number(i.get("weighting")) or 0.0
        question.parts.append(PartScore(pid, _part_score(i.get("result"), weighting), weighting))
    return list(questions.values())


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def discounted_question(question: QuestionScore, discounts: Mapping[str, str]) -> QuestionScore | None:
    """The question as it counts after discounts; None when removed from the total."""
    behaviour = discounts.get(question.id)
    if behaviour == REMOVE:
        return None
    if behaviour == FULL_MARKS:
        return QuestionScore(question.id, question.max, question.max, question.parts)
    raw, max_ = question.raw, question.max
    for part in question.parts:
        behaviour = discounts.get(part.id)
        if behaviour == REMOVE:
            raw, max_ = raw - part.raw, max_ - part.max
        elif behaviour == FULL_MARKS:
            raw += part.max - part.raw
    max_ = max(max_, 0.0)
    return QuestionScore(question.id, _clamp(raw, 0.0, max_), max_, question.parts)


def overridden(questions: list[QuestionScore], overrides: Mapping[str, float]) -> list[QuestionScore]:
    """The questions with instructors' marks for parts in place of the exam's (a part's mark is
    kept within 0..its marks; the question's score moves by the difference)."""
    result = []
    for question in questions:
        parts, raw = [], question.raw
        for part in question.parts:
            if part.id in overrides:
                score = _clamp(overrides[part.id], 0.0, part.max) if part.max > 0 else max(overrides[part.id], 0.0)
                raw += score - part.raw
                part = PartScore(part.id, score, part.max)
            parts.append(part)
        result.append(QuestionScore(question.id, _clamp(raw, 0.0, question.max), question.max, parts))
    return result


def attempt_score(values: Mapping[str, str], discounts: Mapping[str, str] | None = None,
                  overrides: Mapping[str, float] | None = None) -> AttemptScore:
    """An attempt's score. Without discounts or re-marked parts it is what the exam said
    (cmi.score.scaled, or raw / max); otherwise it is recomputed from the questions."""
    questions = questions_from(values) if any(k.startswith("cmi.objectives.") for k in values) else []
    raw, max_ = _number(values.get("cmi.score.raw")), _number(values.get("cmi.score.max"))
    part_ids = {p.id for q in questions for p in q.parts}
    if overrides and set(overrides) & part_ids:
        questions = overridden(questions, overrides)
        discounts = discounts or {}
    applicable = {target for target in (discounts or {})} & ({q.id for q in questions} | part_ids)
    if applicable or (overrides and set(overrides) & part_ids):
        counted = [d for q in questions if (d := discounted_question(q, discounts)) is not None]
        raw = sum(q.raw for q in counted)
        max_ = sum(q.max for q in counted)
        scaled = raw / max_ if max_ > 0 else None
        return AttemptScore(raw, max_, _clamp(scaled, 0.0, 1.0) if scaled is not None else None, tuple(questions))
    scaled = _number(values.get("cmi.score.scaled"))
    if scaled is None and raw is not None and max_:
        scaled = raw / max_
    return AttemptScore(raw, max_, _clamp(scaled, 0.0, 1.0) if scaled is not None else None, tuple(questions))


HIGHEST = "highest"
LAST = "last"


@dataclass(frozen=True)
class AttemptForGrade:
    number: int
    completed: bool
    scaled: float | None


def resource_grade(attempts: Iterable[AttemptForGrade], *, method: str, include_incomplete: bool) -> AttemptForGrade | None:
    """The attempt whose score is the student's grade for the resource, or None if no attempt
    counts. `method` is HIGHEST or LAST; incomplete attempts count only when asked."""
    counted = [a for a in attempts if a.scaled is not None and (a.completed or include_incomplete)]
    if not counted:
        return None
    if method == LAST:
        return max(counted, key=lambda a: a.number)
    return max(counted, key=lambda a: (a.scaled, a.number))
