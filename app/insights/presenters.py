"""What the statistics page shows: the selectors' figures turned into chart geometry, axis
labels and one-sentence summaries (the charts' accessible names). No database access here
beyond calling the selectors."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext

from insights import charts, selectors


@dataclass(frozen=True)
class Row:
    label: str
    value: str


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def bin_labels(bins: int = selectors.BINS) -> list[str]:
    step = 100 // bins
    return [f"{i * step}–{(i + 1) * step}%" for i in range(bins)]


def histogram_summary(counts: list[int], labels: list[str], *, all_attempts: bool) -> str:
    total = sum(counts)
    if not total:
        return gettext("Score histogram: no scored attempts yet.")
    peak = max(range(len(counts)), key=lambda i: counts[i])
    values = {"total": total, "peak_count": counts[peak], "peak": labels[peak]}
    if all_attempts:
        return ngettext(
            "Score histogram of %(total)d scored attempt in bins of 10 percent: it scored %(peak)s.",
            "Score histogram of %(total)d scored attempts in bins of 10 percent; the most, %(peak_count)d, "
            "scored %(peak)s.",
            total,
        ) % values
    return ngettext(
        "Score histogram of %(total)d completed attempt in bins of 10 percent: it scored %(peak)s.",
        "Score histogram of %(total)d completed attempts in bins of 10 percent; the most, %(peak_count)d, "
        "scored %(peak)s.",
        total,
    ) % values


def period_label(period: selectors.Period) -> str:
    if period.days == 1:
        return date_format(period.start, "j M")
    if period.days == 7:
        return gettext("w/c %(date)s") % {"date": date_format(period.start, "j M")}
    return date_format(period.start, "M Y")


def period_long_label(period: selectors.Period) -> str:
    if period.days == 1:
        return date_format(period.start, "D j M Y")
    if period.days == 7:
        return gettext("Week beginning %(date)s") % {"date": date_format(period.start, "D j M Y")}
    return date_format(period.start, "F Y")


def completions_summary(periods: list[selectors.Period]) -> str:
    if not periods:
        return gettext("Attempts finished over time: none finished yet.")
    total = sum(p.count for p in periods)
    busiest = max(periods, key=lambda p: p.count)
    unit = {1: gettext("day"), 7: gettext("week")}.get(periods[0].days, gettext("month"))
    return gettext(
        "Attempts finished per %(unit)s from %(first)s to %(last)s: %(total)d in all, "
        "most (%(peak)d) in %(busiest)s."
    ) % {"unit": unit, "first": period_long_label(periods[0]), "last": period_long_label(periods[-1]),
         "total": total, "peak": busiest.count, "busiest": period_long_label(busiest)}


def questions_summary(questions: list[selectors.QuestionAverage]) -> str:
    scored = [q for q in questions if q.percent is not None]
    if not scored:
        return gettext("Average score per question: no question scores yet.")
    lowest = min(scored, key=lambda q: q.percent)
    highest = max(scored, key=lambda q: q.percent)
    return ngettext(
        "Average percentage of the marks scored on %(count)d question; %(high)s highest at %(high_p).0f%%, "
        "%(low)s lowest at %(low_p).0f%%.",
        "Average percentage of the marks scored on each of %(count)d questions; %(high)s highest at "
        "%(high_p).0f%%, %(low)s lowest at %(low_p).0f%%.",
        len(questions),
    ) % {"count": len(questions), "high": highest.label, "high_p": highest.percent, "low": lowest.label,
         "low_p": lowest.percent}


def statistics_page(*, resource_id: int, all_attempts: bool) -> dict:
    headline, counts = selectors.statistics_scores(resource_id=resource_id, all_attempts=all_attempts)
    labels = bin_labels()
    periods = selectors.completions_over_time(resource_id=resource_id)
    # Per question, always over finished attempts: in an unfinished one, the questions not
    # reached yet would count as zero and drag every average down.
    questions = selectors.question_averages(resource_id=resource_id, all_attempts=False)
    return {
        "all_attempts": all_attempts,
        "headline": headline,
        "headline_rows": [
            Row(gettext("Students who launched the activity"), str(headline.students)),
            Row(gettext("Attempts started"), str(headline.attempts)),
            Row(gettext("Attempts completed"), str(headline.completed)),
            Row(gettext("Mean score"), _percent(headline.mean)),
            Row(gettext("Median score"), _percent(headline.median)),
        ],
        "histogram": charts.column_chart(counts, labels),
        "histogram_rows": list(zip(labels, counts)),
        "histogram_summary": histogram_summary(counts, labels, all_attempts=all_attempts),
        "completions": charts.column_chart([p.count for p in periods], [period_label(p) for p in periods])
        if periods else None,
        "completions_rows": [(period_long_label(p), p.count) for p in periods],
        "completions_unit": periods[0].days if periods else 1,
        "completions_summary": completions_summary(periods),
        "questions": charts.row_chart([q.percent for q in questions], [q.label for q in questions])
        if questions else None,
        "questions_rows": questions,
        "questions_summary": questions_summary(questions),
    }
