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


def _gap_parent(part_id: str) -> str | None:
    """"q0p1" for the gap "q0p1g2"; None for a part."""
    head, sep, _ = part_id.rpartition("g")
    return head if sep and "p" in head else None


def _override(part: PartScore, value: float) -> float:
    return _clamp(value, 0.0, part.max) if part.max > 0 else max(value, 0.0)


def overridden(questions: list[QuestionScore], overrides: Mapping[str, float]) -> list[QuestionScore]:
    """The questions with instructors' marks for parts and gaps in place of the exam's (a mark is
    kept within 0..its marks; the question's score moves by the difference). A re-marked gap
    moves its gap-fill part's score too; when the gap-fill part itself is re-marked, its mark
    wins and marks for its gaps do not count again."""
    result = []
    for question in questions:
        raw = question.raw
        by_id = {p.id: p for p in question.parts}
        gap_delta: dict[str, float] = {}
        new_parts: dict[str, PartScore] = {}
        for part in question.parts:
            parent = _gap_parent(part.id)
            if parent is None or part.id not in overrides:
                continue
            score = _override(part, overrides[part.id])
            new_parts[part.id] = PartScore(part.id, score, part.max)
            if parent not in overrides:
                gap_delta[parent] = gap_delta.get(parent, 0.0) + score - part.raw
        for parent, delta in gap_delta.items():
            part = by_id.get(parent)
            if part is None:  # a gap whose part the exam has not reported: the question moves
                raw += delta
                continue
            score = _clamp(part.raw + delta, 0.0, part.max) if part.max > 0 else max(part.raw + delta, 0.0)
            raw += score - part.raw
            new_parts[parent] = PartScore(parent, score, part.max)
        for part in question.parts:
            if _gap_parent(part.id) is None and part.id in overrides:
                score = _override(part, overrides[part.id])
                raw += score - part.raw
                new_parts[part.id] = PartScore(part.id, score, part.max)
        parts = [new_parts.get(p.id, p) for p in question.parts]
        result.append(QuestionScore(question.id, _clamp(raw, 0.0, question.max), question.max, parts))
    return result


def _marks_of(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _numbered_questions(structure) -> list[dict]:
    """The structure's questions whose number in every attempt is known: those before the
    first question group that shuffles or picks a random subset."""
    fixed = []
    for question in structure or []:
        if not isinstance(question, dict) or question.get("picking", "all-ordered") != "all-ordered":
            break
        fixed.append(question)
    return fixed


def structure_total(structure) -> float | None:
    """The exam's total marks from its structure (exams.packages), or None when the package
    cannot tell: no structure, a part without marks, or a group that picks a random subset (the
    total is then each attempt's own)."""
    if not structure or any(not isinstance(q, dict) or q.get("picking") == "random-subset" for q in structure):
        return None
    marks = [_marks_of(q.get("marks")) for q in structure]
    return None if any(m is None for m in marks) else sum(marks)


def _index(item_id: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", item_id))


def with_structure(questions: list[QuestionScore], structure) -> list[QuestionScore]:
    """The reported questions completed from the exam's structure: questions, parts and gaps
    not reported yet count with 0 marks scored out of their marks, and a reported maximum below
    the package's is raised to it (what an unfinished attempt has not answered still counts)."""
    by_id = {q.id: q for q in questions}
    for qi, known in enumerate(_numbered_questions(structure)):
        qid = f"q{qi}"
        reported = by_id.get(qid)
        parts = {p.id: p for p in reported.parts} if reported else {}
        expected: list[tuple[str, float | None]] = []
        for pi, part in enumerate(known.get("parts") or []):
            if not isinstance(part, dict):
                continue
            pid = f"{qid}p{pi}"
            expected.append((pid, _marks_of(part.get("marks"))))
            expected.extend((f"{pid}g{gi}", _marks_of(gap.get("marks")) if isinstance(gap, dict) else None)
                            for gi, gap in enumerate(part.get("gaps") or []))
        for pid, marks in expected:
            part = parts.get(pid)
            if part is None:
                parts[pid] = PartScore(pid, 0.0, marks or 0.0)
            elif marks is not None and marks > part.max:
                parts[pid] = PartScore(pid, part.raw, marks)
        marks = _marks_of(known.get("marks"))
        raw = reported.raw if reported else 0.0
        max_ = max(reported.max if reported else 0.0, marks or 0.0)
        by_id[qid] = QuestionScore(qid, raw, max_, sorted(parts.values(), key=lambda p: _index(p.id)))
    return sorted(by_id.values(), key=lambda q: _index(q.id))


def attempt_score(values: Mapping[str, str], discounts: Mapping[str, str] | None = None,
                  overrides: Mapping[str, float] | None = None, structure=None) -> AttemptScore:
    """An attempt's score, out of the whole exam. Without discounts or re-marked parts it is
    what the exam said (cmi.score.scaled, or raw / max); otherwise it is recomputed from the
    questions. With the exam's structure (exams.packages), questions, parts and gaps not yet
    answered count too: the maximum is the exam's total, not only what was answered (an
    attempt that has reported no score and no question yet is left without one)."""
    questions = questions_from(values) if any(k.startswith("cmi.objectives.") for k in values) else []
    raw, max_ = _number(values.get("cmi.score.raw")), _number(values.get("cmi.score.max"))
    if structure and (questions or raw is not None):  # an attempt that has reported nothing stays empty
        questions = with_structure(questions, structure)
    else:
        structure = None
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
    total = structure_total(structure) if structure else None
    if total is None and structure and questions:  # a random subset: this attempt's own questions
        total = sum(q.max for q in questions)
    if total is not None and total > (max_ or 0.0):
        if raw is None and questions:
            raw = sum(q.raw for q in questions)
        max_ = total
        scaled = raw / max_ if raw is not None and max_ > 0 else None
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
