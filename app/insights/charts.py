"""Chart geometry for server-rendered SVG: pure functions from numbers to coordinates.

No database and no markup here; templates draw the shapes these functions place. Coordinates
are in SVG user units with the origin at the top left, y growing downwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    value: float
    position: float  # y (vertical charts) or x (horizontal charts) of the grid line
    label: str
    label_x: float
    label_y: float


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: float | None  # None: nothing to draw (e.g. a question with no marks available)
    label: str  # the category: shown on the axis
    label_x: float  # where the category label is drawn
    label_y: float
    show_label: bool
    value_x: float = 0.0  # where a value printed beside the bar starts (row charts)


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    left: float  # the plot area
    top: float
    right: float
    bottom: float
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    value_max: float  # the axis' top value


def nice_ticks(value_max: float, *, count: int = 5, whole: bool = True) -> list[float]:
    """Round axis values from 0 to at least `value_max`: a step of 1, 2 or 5 × 10^k, about
    `count` steps. Whole numbers only when `whole` (counts cannot be fractional)."""
    if not math.isfinite(value_max) or value_max <= 0:
        return [0.0, 1.0]
    raw_step = value_max / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    if whole:
        step = max(1.0, float(round(step)))
    steps = math.ceil(value_max / step - 1e-9)
    return [round(i * step, 10) for i in range(steps + 1)]


def _format(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def column_chart(
    values: Sequence[float],
    labels: Sequence[str],
    *,
    width: float = 640,
    height: float = 260,
    left: float = 48,
    right: float = 12,
    top: float = 12,
    bottom: float = 40,
    gap: float = 0.15,
    max_bar_width: float = 56,
    max_labels: int = 12,
    value_max: float | None = None,
    whole: bool = True,
    tick_suffix: str = "",
) -> Chart:
    """Vertical bars, one per value, centred in equal slots across the plot (at most
    `max_bar_width` wide, so that one bar is not a wall); the value axis starts at 0.
    At most `max_labels` category labels are shown (every k-th), so they never overlap."""
    if len(values) != len(labels):
        raise ValueError("one label per value")
    plot_left, plot_right, plot_top, plot_bottom = left, width - right, top, height - bottom
    ticks = nice_ticks(max([value_max or 0, *values], default=0), whole=whole)
    top_value = ticks[-1]
    scale = (plot_bottom - plot_top) / top_value
    slot = (plot_right - plot_left) / max(len(values), 1)
    every = max(1, math.ceil(len(values) / max_labels))
    bars = []
    for i, (value, label) in enumerate(zip(values, labels)):
        bar_height = max(0.0, value) * scale
        bar_width = min(slot * (1 - gap), max_bar_width)
        x = plot_left + (i + 0.5) * slot - bar_width / 2
        bars.append(Bar(
            x=round(x, 2), y=round(plot_bottom - bar_height, 2), width=round(bar_width, 2),
            height=round(bar_height, 2), value=value, label=label,
            label_x=round(plot_left + (i + 0.5) * slot, 2), label_y=round(plot_bottom + 16, 2),
            show_label=i % every == 0,
        ))
    return Chart(
        width=width, height=height, left=plot_left, top=plot_top, right=plot_right, bottom=plot_bottom,
        bars=tuple(bars),
        ticks=tuple(Tick(t, y, _format(t) + tick_suffix, plot_left - 6, y)
                    for t in ticks for y in [round(plot_bottom - t * scale, 2)]),
        value_max=top_value,
    )


def row_chart(
    values: Sequence[float | None],
    labels: Sequence[str],
    *,
    width: float = 640,
    row_height: float = 28,
    left: float = 180,
    right: float = 56,
    top: float = 8,
    bottom: float = 28,
    gap: float = 0.25,
    value_max: float = 100,
    tick_suffix: str = "%",
    label_chars: int = 24,
) -> Chart:
    """Horizontal bars on a fixed scale (0..`value_max`, e.g. percentages), one row per value,
    labelled on the left (shortened to `label_chars`; the full text belongs in the data table).
    A value of None draws no bar."""
    if len(values) != len(labels):
        raise ValueError("one label per value")
    height = top + bottom + row_height * len(values)
    plot_left, plot_right, plot_top, plot_bottom = left, width - right, top, height - bottom
    scale = (plot_right - plot_left) / value_max
    bars = []
    for i, (value, label) in enumerate(zip(values, labels)):
        length = min(max(value or 0.0, 0.0), value_max) * scale
        y = plot_top + i * row_height + row_height * gap / 2
        short = label if len(label) <= label_chars else label[: label_chars - 1].rstrip() + "…"
        bars.append(Bar(
            x=plot_left, y=round(y, 2), width=round(length, 2), height=round(row_height * (1 - gap), 2),
            value=value, label=short,
            label_x=plot_left - 8, label_y=round(plot_top + (i + 0.5) * row_height + 4, 2), show_label=True,
            value_x=round(plot_left + length + 6, 2),
        ))
    ticks = nice_ticks(value_max, whole=True)
    return Chart(
        width=width, height=height, left=plot_left, top=plot_top, right=plot_right, bottom=plot_bottom,
        bars=tuple(bars),
        ticks=tuple(Tick(t, x, _format(t) + tick_suffix, x, plot_bottom + 16)
                    for t in ticks if t <= value_max for x in [round(plot_left + t * scale, 2)]),
        value_max=value_max,
    )
