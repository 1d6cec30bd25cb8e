"""The CSV layouts: headers and rows from plain values — no database, no files.

Text that people or exams supply (names, e-mail addresses, LMS ids, question names, statuses
the exam writes) is guarded against spreadsheet formula injection: a cell starting with
= + - @ (or a tab or carriage return) gets a leading apostrophe, so Excel and LibreOffice
show it as text instead of running it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from django.utils import timezone

from grading import scoring

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text(value) -> str:
    """A cell for user-supplied text."""
    if value is None:
        return ""
    value = str(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def number(value: float | None, digits: int = 6) -> str:
    """A cell for a number computed here: "" for none, no trailing ".0"."""
    if value is None or not math.isfinite(value):
        return ""
    value = round(float(value), digits)
    if value == int(value):
        return str(int(value))
    return repr(value)


def moment(value: datetime | None) -> str:
    """A date and time in the site's time zone (TIME_ZONE, UTC by default; never the viewer's), ISO 8601 with its offset."""
    return timezone.localtime(value, timezone.get_default_timezone()).isoformat(timespec="seconds") if value else ""


# --- scores: one row per student --------------------------------------------------------------

SCORES_HEADER = (
    "name", "identifier", "email", "lms_user_id", "attempts", "grade", "grade_percent", "counted_attempt",
    "reported_to_lms", "reported_score", "reported_at",
)


def scores_row(student) -> list[str]:
    """`student` is a selectors.StudentRow."""
    return [
        text(student.name),
        text(student.identifier),
        text(student.email),
        text(student.lms_user_id),
        str(student.attempts),
        number(student.grade),
        number(student.grade * 100 if student.grade is not None else None, 2),
        str(student.counted_attempt) if student.counted_attempt is not None else "",
        text(student.report_state),
        number(student.reported_score),
        moment(student.reported_at),
    ]


# --- attempts: one row per attempt, a column per question ----------------------------------------

ATTEMPTS_HEADER = (
    "name", "identifier", "lms_user_id", "attempt", "started_at", "ended_at", "late", "completion_status", "score_raw", "score_max", "scaled",
)

_QUESTION_ID = re.compile(r"^q(\d+)$")


def question_order(question_id: str) -> tuple:
    """q2 before q10; ids that are not "q<N>" after those, alphabetically."""
    match = _QUESTION_ID.match(question_id)
    return (0, int(match[1]), "") if match else (1, 0, question_id)


def attempts_header(questions: Sequence[tuple[str, str]]) -> list[str]:
    """`questions`: (id, name) pairs in column order."""
    return [*ATTEMPTS_HEADER, *(text(f"{qid} {name}".strip()) for qid, name in questions)]


def attempts_row(attempt, values: Mapping[str, str], discounts: Mapping[str, str], question_ids: Sequence[str],
                 overrides: Mapping[str, float] | None = None, structure=None) -> list[str]:
    """`attempt` is a selectors.AttemptRow; `values` its scoring values (cmi.score.*, objectives,
    interactions); `structure` its exam version's. With discounts or re-marked parts, the totals
    and each question's score are as they count now; a question removed from the total has an
    empty cell. The maximum is the exam's whole total, whatever the attempt has answered."""
    score = scoring.attempt_score(values, discounts, overrides, structure=structure)
    by_id = {q.id: q for q in score.questions}
    cells = []
    for qid in question_ids:
        question = by_id.get(qid)
        if question is not None and discounts:
            question = scoring.discounted_question(question, discounts)  # None: removed from the total
        cells.append(number(question.raw) if question is not None else "")
    return [
        text(attempt.name),
        text(attempt.identifier),
        text(attempt.lms_user_id),
        str(attempt.number),
        moment(attempt.started_at),
        moment(attempt.ended_at),
        "late" if attempt.late else "",
        text(attempt.completion_status),
        number(score.raw),
        number(score.max),
        number(score.scaled),
        *cells,
    ]
