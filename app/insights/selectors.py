"""Reads for the instructor's statistics page: every figure is aggregated by the database
(GROUP BY / aggregate), so the page costs a fixed number of queries and never loads the
attempts themselves, however many students there are."""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import Case, Count, F, FloatField, Max, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, Floor, Greatest, Least, StrIndex, Substr, TruncDate
from django.utils.translation import gettext

from attempts.models import Attempt, CompletionStatus, Element, PartOverride
from exams.models import ExamPackage
from grading import scoring
from grading import selectors as grading_selectors
from grading.models import AttemptQuestionScore
from lms.models import ResourceMembership, Role

BINS = 10
# scaled * 10 lands a hair below a whole number for some decimal scores (e.g. 0.7 → 6.999…
# after division); this nudge puts them in the bin a person would expect.
_BIN_EPSILON = 1e-9
MAX_BARS = 90

_OBJECTIVES = "cmi.objectives."
_OBJECTIVE = re.compile(r"^cmi\.objectives\.(\d+)\.(id|score\.raw|score\.max)$")


@dataclass(frozen=True)
class Headline:
    students: int  # students who have launched the activity
    attempts: int  # attempts started
    completed: int
    scored: int  # attempts counted in the histogram (completed, or all, with a score)
    unscored: int  # attempts in the chosen set without a score
    mean: float | None  # scaled 0..1
    median: float | None


@dataclass(frozen=True)
class QuestionAverage:
    id: str  # "q0"
    label: str  # the question's name from the exam, or "Question 1"
    attempts: int  # attempts that reported this question
    raw: float  # marks scored, summed over those attempts
    max: float  # marks available, summed
    percent: float | None  # raw / max * 100


@dataclass(frozen=True)
class Period:
    start: datetime.date
    days: int  # 1 (a day), 7 (a week starting on Monday) or a calendar month's length
    count: int


def _reported_score(known_totals: dict):
    """An attempt's score as grading reads it from what the exam reported (cmi.score.scaled,
    else raw / max; out of its exam version's whole total when it reported a smaller maximum),
    unclamped; NULL without one."""
    reported = Coalesce(
        F("score_scaled"),
        Case(When(score_max__gt=0, then=F("score_raw") / F("score_max")), output_field=FloatField()),
    )
    short = [When(Q(exam_id=exam_id) & (Q(score_max__isnull=True) | Q(score_max__lt=total)),
                  then=F("score_raw") / Value(float(total)))
             for exam_id, total in known_totals.items()]
    return Case(*short, default=reported, output_field=FloatField()) if short else reported


def _question_rows_scores(*, attempts: QuerySet, discounts: dict[str, str]) -> list[float | None]:
    """Ended attempts' scores from their recorded question scores (grading.AttemptQuestionScore:
    out of the exam's marks, re-marks applied), with question discounts applied as grading
    applies them: each question's marks kept within 0..its maximum, a removed question out of
    the total, a full-marks one at its maximum; None when their questions are worth nothing.
    One GROUP BY over the recorded rows: a number per attempt comes back."""
    removed = [t for t, b in discounts.items() if b == scoring.REMOVE]
    full = [t for t, b in discounts.items() if b == scoring.FULL_MARKS]
    within = Least(Greatest(F("raw"), Value(0.0)), F("max"))
    raw_cases = ([When(question_id__in=removed, then=Value(0.0))] if removed else []) + \
        ([When(question_id__in=full, then=F("max"))] if full else [])
    max_cases = [When(question_id__in=removed, then=Value(0.0))] if removed else []
    raw = Case(*raw_cases, default=within, output_field=FloatField()) if raw_cases else within
    max_ = Case(*max_cases, default=F("max"), output_field=FloatField()) if max_cases else F("max")
    rows = (AttemptQuestionScore.objects.filter(attempt_id__in=attempts.values("pk")).order_by()
            .values("attempt_id").annotate(raw=Sum(raw), max=Sum(max_)).values_list("raw", "max"))
    return [min(max(r / m, 0.0), 1.0) if m and m > 0 else None for r, m in rows]


def _clamped():
    return Case(
        When(unclamped__lt=0, then=Value(0.0)),
        When(unclamped__gt=1, then=Value(1.0)),
        default=F("unclamped"),
        output_field=FloatField(),
    )


@dataclass(frozen=True)
class _ChosenScores:
    """The chosen attempts' scores, the same as every other page shows them
    (grading.selectors.attempt_scores). The database computes nearly all of them (`in_sql`,
    annotated with `score`): from the attempts' summary columns, out of the exam's whole total;
    for ended attempts with an instructor's marks or a discounted question, from their recorded
    question scores (what grading computed when the attempt ended or was re-marked). Grading
    computes the rest (`recomputed`: their scaled scores, None for none): attempts not ended
    yet with an instructor's marks or under discounts, every attempt under a discount of a
    part, those of an exam version whose total varies per attempt (a random subset) or is
    unknown, and those with no raw score to put over the exam's total."""

    in_sql: QuerySet
    recomputed: tuple


def _chosen_scores(*, resource_id: int, all_attempts: bool) -> _ChosenScores:
    attempts = Attempt.objects.filter(resource_id=resource_id)
    if not all_attempts:
        attempts = attempts.filter(completion_status=CompletionStatus.COMPLETED)
    structures = dict(ExamPackage.objects.filter(resource_id=resource_id).values_list("pk", "structure"))
    totals = {pk: scoring.structure_total(structure) for pk, structure in structures.items() if structure}
    known = {pk: total for pk, total in totals.items() if total}
    discounts = grading_selectors.discounts_for(resource_id=resource_id)
    remarked = Q(pk__in=PartOverride.objects.filter(attempt__resource_id=resource_id).values("attempt_id"))
    from_rows = None
    if any("p" in target for target in discounts):  # a part's discount: only grading can tell
        recompute = Q(pk__isnull=False)
    else:
        recompute = Q(ended_at__isnull=True) & remarked
        if discounts:
            recompute |= Q(ended_at__isnull=True)
        if unknown := [pk for pk, total in totals.items() if total is None]:
            recompute |= Q(exam_id__in=unknown)
        if known:
            recompute |= Q(exam_id__in=list(known), score_raw__isnull=True)
        # Ended, and re-marked or with a discounted question: from their recorded question scores.
        from_rows = remarked
        if discounts:
            from_rows |= Q(pk__in=AttemptQuestionScore.objects.filter(
                resource_id=resource_id, question_id__in=list(discounts)).values("attempt_id"))
        from_rows = Q(ended_at__isnull=False) & from_rows & ~recompute
    recompute_ids = list(attempts.filter(recompute).values_list("pk", flat=True))
    in_sql = attempts.exclude(recompute)
    extra: list[float | None] = []
    if from_rows is not None:
        extra = _question_rows_scores(attempts=attempts.filter(from_rows), discounts=discounts)
        in_sql = in_sql.exclude(from_rows)
    scores = grading_selectors.attempt_scores(attempt_ids=recompute_ids, discounts=discounts) if recompute_ids else {}
    return _ChosenScores(in_sql.annotate(unclamped=_reported_score(known), score=_clamped()),
                         tuple(scores[pk].scaled for pk in recompute_ids if pk in scores) + tuple(extra))


def statistics_headline(*, resource_id: int, all_attempts: bool = False, chosen: _ChosenScores | None = None) -> Headline:
    students = ResourceMembership.objects.filter(resource_id=resource_id, role=Role.STUDENT).count()
    totals = Attempt.objects.filter(resource_id=resource_id).aggregate(
        attempts=Count("id"), completed=Count("id", filter=Q(completion_status=CompletionStatus.COMPLETED))
    )
    chosen = chosen or _chosen_scores(resource_id=resource_id, all_attempts=all_attempts)
    scores = chosen.in_sql.aggregate(
        scored=Count("score"), unscored=Count("id", filter=Q(score__isnull=True)), total=Sum("score")
    )
    extra = [score for score in chosen.recomputed if score is not None]
    scored = scores["scored"] + len(extra)
    total = (scores["total"] or 0.0) + sum(extra)
    return Headline(
        students=students,
        attempts=totals["attempts"],
        completed=totals["completed"],
        scored=scored,
        unscored=scores["unscored"] + len(chosen.recomputed) - len(extra),
        mean=total / scored if scored else None,
        median=_median(chosen.in_sql, scores["scored"], extra),
    )


def _median(in_sql: QuerySet, count: int, extra: list[float]) -> float | None:
    """The middle score (or the mean of the middle two): one sorted read of at most two values
    when the database has every score; otherwise its scores (one number per attempt) are
    merged with the others."""
    if extra:
        values = sorted([*in_sql.filter(score__isnull=False).values_list("score", flat=True), *extra])
        n = len(values)
        middle = values[(n - 1) // 2: n // 2 + 1]
        return sum(middle) / len(middle)
    if not count:
        return None
    middle = list(
        in_sql.filter(score__isnull=False).order_by("score").values_list("score", flat=True)[(count - 1) // 2: count // 2 + 1]
    )
    return sum(middle) / len(middle) if middle else None


def _bin(score: float) -> int:
    return min(max(math.floor(score * BINS + _BIN_EPSILON), 0), BINS - 1)


def score_histogram(*, resource_id: int, all_attempts: bool = False, chosen: _ChosenScores | None = None) -> list[int]:
    """How many attempts scored in each tenth: [0 %, 10 %), [10 %, 20 %), …, [90 %, 100 %]."""
    chosen = chosen or _chosen_scores(resource_id=resource_id, all_attempts=all_attempts)
    rows = (
        chosen.in_sql
        .filter(score__isnull=False)
        .annotate(bin=Floor(F("score") * BINS + _BIN_EPSILON))
        .values("bin")
        .annotate(n=Count("id"))
        .values_list("bin", "n")
    )
    counts = [0] * BINS
    for bin_, n in rows:
        counts[min(max(int(bin_), 0), BINS - 1)] += n  # a score of exactly 100 % goes in the top bin
    for score in chosen.recomputed:
        if score is not None:
            counts[_bin(score)] += 1
    return counts


def statistics_scores(*, resource_id: int, all_attempts: bool = False) -> tuple[Headline, list[int]]:
    """The headline and the histogram together (the attempts grading must score computed once)."""
    chosen = _chosen_scores(resource_id=resource_id, all_attempts=all_attempts)
    return (statistics_headline(resource_id=resource_id, chosen=chosen),
            score_histogram(resource_id=resource_id, chosen=chosen))


def completions_per_day(*, resource_id: int) -> dict[datetime.date, int]:
    """Attempts ended on each day (in the site's time zone), for days with any."""
    rows = (
        Attempt.objects.filter(resource_id=resource_id, ended_at__isnull=False)
        .annotate(day=TruncDate("ended_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    return {day: n for day, n in rows}


def completions_over_time(*, resource_id: int, max_bars: int = MAX_BARS) -> list[Period]:
    return periods(completions_per_day(resource_id=resource_id), max_bars=max_bars)


def periods(per_day: dict[datetime.date, int], *, max_bars: int = MAX_BARS) -> list[Period]:
    """Counts per day over the data's whole range (days without any included, as zero);
    per week (from Monday) when that would be more than `max_bars` bars, per month beyond that."""
    if not per_day:
        return []
    first, last = min(per_day), max(per_day)
    if (last - first).days + 1 <= max_bars:
        return [Period(first + datetime.timedelta(days=i), 1, per_day.get(first + datetime.timedelta(days=i), 0))
                for i in range((last - first).days + 1)]
    monday = first - datetime.timedelta(days=first.weekday())
    weeks = (last - monday).days // 7 + 1
    if weeks <= max_bars:
        counts = [0] * weeks
        for day, n in per_day.items():
            counts[(day - monday).days // 7] += n
        return [Period(monday + datetime.timedelta(weeks=i), 7, n) for i, n in enumerate(counts)]
    months: dict[tuple[int, int], int] = {}
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months[(year, month)] = 0
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    for day, n in per_day.items():
        months[(day.year, day.month)] += n
    result = []
    for (year, month), n in months.items():
        start = datetime.date(year, month, 1)
        following = datetime.date(year + 1, 1, 1) if month == 12 else datetime.date(year, month + 1, 1)
        result.append(Period(start, (following - start).days, n))
    return result


def _question_names(*, resource_id: int) -> dict[str, str]:
    """"q0" → the question's name in the newest exam version that names it."""
    names: dict[str, str] = {}
    for structure in ExamPackage.objects.filter(resource_id=resource_id).order_by("version").values_list(
        "structure", flat=True
    ):
        for index, question in enumerate(structure or []):
            name = str((question or {}).get("name") or "").strip() if isinstance(question, dict) else ""
            if name:
                names[f"q{index}"] = name
    return names


def _question_sort_key(qid: str):
    digits = qid[1:]
    return (0, int(digits), qid) if qid.startswith("q") and digits.isdigit() else (1, 0, qid)


def _number(text: str | None) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _objective_rows(attempts: QuerySet) -> QuerySet:
    """The chosen attempts' current cmi.objectives.N.id / score.raw / score.max values (only
    for attempts without recorded question scores: those still in progress, mostly)."""
    return Element.objects.filter(
        Q(key__endswith=".id") | Q(key__endswith=".score.raw") | Q(key__endswith=".score.max"),
        key__startswith=_OBJECTIVES,
        attempt_id__in=attempts.values("id"),
    )


def _totals_by_index(attempts: QuerySet) -> dict[str, tuple[int, float, float]] | None:
    """Per question id: (attempts, raw, max), when every attempt has the same question at each
    objective index N (as Numbas writes them: cmi.objectives.N.id = "qN"); None otherwise.

    One GROUP BY (key, value): a few dozen rows however many attempts, because marks take few
    distinct values; the values are turned into numbers here, so an odd stored value cannot
    make the query fail."""
    ids: dict[int, dict[str, int]] = {}
    sums: dict[int, dict[str, float]] = {}
    rows = _objective_rows(attempts).values("key", "value").annotate(n=Count("id")).values_list("key", "value", "n")
    for key, value, n in rows:
        match = _OBJECTIVE.match(key)
        if not match:
            continue
        index, field = int(match[1]), match[2]
        if field == "id":
            ids.setdefault(index, {})[value] = ids.get(index, {}).get(value, 0) + n
        else:
            number = _number(value)
            totals = sums.setdefault(index, {"score.raw": 0.0, "score.max": 0.0})
            totals[field] += (number or 0.0) * n
    if any(len(values) != 1 for values in ids.values()) or set(sums) - set(ids):
        return None
    result: dict[str, tuple[int, float, float]] = {}
    for index, values in ids.items():
        (qid, n), = values.items()
        if not qid:
            continue
        totals = sums.get(index, {"score.raw": 0.0, "score.max": 0.0})
        before = result.get(qid, (0, 0.0, 0.0))
        result[qid] = (before[0] + n, before[1] + totals["score.raw"], before[2] + totals["score.max"])
    return result


def _totals_by_pairing(attempts: QuerySet) -> dict[str, tuple[int, float, float]]:
    """Per question id: (attempts, raw, max), pairing each attempt's objective ids with their
    scores in the database (GROUP BY attempt, N; then by id and score): for attempts that
    disagree about which question is at which index."""
    index_start = len(_OBJECTIVES) + 1
    per_objective = (
        _objective_rows(attempts)
        .annotate(objective=Substr("key", index_start, StrIndex(Substr("key", index_start), Value(".")) - 1))
        .values("attempt_id", "objective")
        .annotate(
            qid=Max(Case(When(key__endswith=".id", then=F("value")))),
            raw=Max(Case(When(key__endswith=".score.raw", then=F("value")))),
            max=Max(Case(When(key__endswith=".score.max", then=F("value")))),
        )
        .values("qid", "raw", "max")
    )
    inner_sql, params = per_objective.query.sql_with_params()
    qid, raw, max_ = (connection.ops.quote_name(name) for name in ("qid", "raw", "max"))
    sql = (f"SELECT t.{qid}, t.{raw}, t.{max_}, COUNT(*) FROM ({inner_sql}) t "
           f"WHERE t.{qid} IS NOT NULL AND t.{qid} <> '' GROUP BY t.{qid}, t.{raw}, t.{max_}")
    result: dict[str, tuple[int, float, float]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for qid_value, raw_value, max_value, n in cursor.fetchall():
            before = result.get(qid_value, (0, 0.0, 0.0))
            result[qid_value] = (before[0] + n, before[1] + (_number(raw_value) or 0.0) * n,
                                 before[2] + (_number(max_value) or 0.0) * n)
    return result


def _unrecorded_totals(*, resource_id: int, unrecorded: QuerySet) -> dict[str, tuple[int, float, float]]:
    """Per question id: (attempts, raw, max) over attempts without recorded question scores.
    Those of an exam version with a known structure, or with an instructor's marks, are
    scored by grading (questions not reported yet count out of their marks, re-marks apply);
    the others are summed by the database from what the exam reported."""
    structured = [pk for pk, structure in ExamPackage.objects.filter(resource_id=resource_id).values_list(
        "pk", "structure") if structure]
    graded = Q(pk__in=PartOverride.objects.filter(attempt__resource_id=resource_id).values("attempt_id"))
    if structured:
        graded |= Q(exam_id__in=structured)
    plain = unrecorded.exclude(graded)
    totals = _totals_by_index(plain)
    if totals is None:
        totals = _totals_by_pairing(plain)
    ids = list(unrecorded.filter(graded).values_list("pk", flat=True))
    for score in grading_selectors.attempt_scores(attempt_ids=ids).values() if ids else ():
        for question in score.questions:
            before = totals.get(question.id, (0, 0.0, 0.0))
            totals[question.id] = (before[0] + 1, before[1] + question.raw, before[2] + question.max)
    return totals


def question_averages(*, resource_id: int, all_attempts: bool = False) -> list[QuestionAverage]:
    """Per question (cmi.objectives.N.id), the percentage of its marks scored over the finished
    attempts (and with all_attempts, those in progress too). Stored values that are not
    numbers count as 0."""
    # Finished attempts: every ended one has its per-question scores recorded
    # (grading.AttemptQuestionScore, one scan of the resource's rows); those the exam marked
    # completed without ending yet are read from their run-time data. With all_attempts, the
    # ones still in progress are read that way too. Either way a question counts as the
    # attempt's page shows it: out of its marks in the exam, re-marks included, discounts not.
    recorded = AttemptQuestionScore.objects.filter(resource_id=resource_id)
    totals = {qid: (n, raw or 0.0, max_ or 0.0) for qid, n, raw, max_ in recorded.values("question_id").annotate(
        n=Count("id"), raw=Sum("raw"), max=Sum("max")).values_list("question_id", "n", "raw", "max")}
    unrecorded = Attempt.objects.filter(resource_id=resource_id, ended_at__isnull=True)
    if not all_attempts:
        unrecorded = unrecorded.filter(completion_status=CompletionStatus.COMPLETED)
    live = _unrecorded_totals(resource_id=resource_id, unrecorded=unrecorded)
    for qid, (n, raw, max_) in live.items():
        before = totals.get(qid, (0, 0.0, 0.0))
        totals[qid] = (before[0] + n, before[1] + raw, before[2] + max_)
    names = _question_names(resource_id=resource_id)
    result = []
    for qid in sorted(totals, key=_question_sort_key):
        attempts_n, raw, max_ = totals[qid]
        kind, index, _ = _question_sort_key(qid)
        label = names.get(qid) or (gettext("Question %(number)d") % {"number": index + 1} if kind == 0 else qid)
        result.append(QuestionAverage(qid, label, attempts_n, raw, max_, raw / max_ * 100 if max_ > 0 else None))
    return result
