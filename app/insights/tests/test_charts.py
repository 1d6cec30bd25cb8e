"""Chart geometry: bars in proportion, inside the plot, labels that do not crowd."""

import pytest

from insights import charts


@pytest.mark.parametrize("value_max, expected", [
    (7, [0, 2, 4, 6, 8]),
    (10, [0, 2, 4, 6, 8, 10]),
    (1, [0, 1]),
    (0, [0, 1]),
    (3400, [0, 1000, 2000, 3000, 4000]),
    (100, [0, 20, 40, 60, 80, 100]),
])
def test_nice_ticks(value_max, expected):
    assert charts.nice_ticks(value_max) == expected


def test_fractional_ticks_when_allowed():
    assert charts.nice_ticks(0.5, whole=False) == [0, 0.1, 0.2, 0.3, 0.4, 0.5]


def test_column_chart_bars_are_proportional_and_stand_on_the_axis():
    chart = charts.column_chart([0, 4, 8], ["a", "b", "c"], width=340, height=220, left=40, right=0, top=20, bottom=40,
                                max_bar_width=100)
    assert (chart.left, chart.right, chart.top, chart.bottom) == (40, 340, 20, 180)
    assert chart.value_max == 8
    heights = [b.height for b in chart.bars]
    assert heights == [0, 80, 160]
    assert all(b.y + b.height == chart.bottom for b in chart.bars)
    # equal slots of 100, bars 85 wide centred in them
    assert [b.x for b in chart.bars] == [47.5, 147.5, 247.5]
    assert {b.width for b in chart.bars} == {85}
    assert [b.label_x for b in chart.bars] == [90, 190, 290]
    assert [(t.label, t.position) for t in chart.ticks] == [("0", 180), ("2", 140), ("4", 100), ("6", 60), ("8", 20)]


def test_a_lone_bar_is_not_as_wide_as_the_plot():
    chart = charts.column_chart([3], ["25 Nov"], width=640, left=48, right=12, max_bar_width=56)
    (bar,) = chart.bars
    assert bar.width == 56 and bar.x + bar.width / 2 == pytest.approx((chart.left + chart.right) / 2)


def test_column_chart_of_zeros_has_a_usable_axis():
    chart = charts.column_chart([0, 0], ["a", "b"])
    assert chart.value_max == 1 and all(b.height == 0 for b in chart.bars)


def test_column_chart_shows_at_most_twelve_category_labels():
    chart = charts.column_chart(list(range(90)), [str(i) for i in range(90)])
    shown = [b.label for b in chart.bars if b.show_label]
    assert len(shown) <= 12 and shown[0] == "0"
    assert all(b.x + b.width <= chart.right + 1e-6 and b.x >= chart.left for b in chart.bars)


def test_column_chart_needs_a_label_per_value():
    with pytest.raises(ValueError):
        charts.column_chart([1, 2], ["a"])


def test_row_chart_bars_on_a_percentage_scale():
    chart = charts.row_chart([50, None, 130, -5], ["Half", "Nothing", "Too much", "Negative"],
                             width=500, left=100, right=0, row_height=20, top=0, bottom=20)
    assert chart.height == 100 and chart.right - chart.left == 400
    assert [b.width for b in chart.bars] == [200, 0, 400, 0]
    assert chart.bars[1].value is None
    assert [b.y for b in chart.bars] == [2.5, 22.5, 42.5, 62.5]
    assert chart.bars[0].value_x == 100 + 200 + 6
    assert [t.label for t in chart.ticks] == ["0%", "20%", "40%", "60%", "80%", "100%"]
    assert chart.ticks[-1].position == 500


def test_row_chart_shortens_long_labels():
    chart = charts.row_chart([10], ["A question with a remarkably long name indeed"], label_chars=12)
    assert chart.bars[0].label == "A question…" and len(chart.bars[0].label) <= 12
