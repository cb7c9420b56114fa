"""labs/templatetags/usage_charts.py: the charts' geometry, and the SVG it draws."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from labs.templatetags import usage_charts as charts
from labs.usage import DayHours


@pytest.mark.parametrize(
    ("value", "step"), [(0, 1), (4, 1), (4.1, 2), (10, 5), (10.1, 5), (37, 10), (0.3, 0.1), (1500, 500)]
)
def test_nice_step(value, step):
    assert charts.nice_step(value) == pytest.approx(step)


@pytest.mark.parametrize(
    ("value", "top", "ticks"),
    [
        (0, 1, [0, 1]),
        (7.5, 8, [0, 2, 4, 6, 8]),
        (10, 10, [0, 5, 10]),
        (10.1, 15, [0, 5, 10, 15]),
        (0.25, 0.3, [0, 0.1, 0.2, 0.3]),
    ],
)
def test_axis_ends_on_a_round_step_at_or_above_the_largest_value(value, top, ticks):
    assert charts.axis(value) == (pytest.approx(top), pytest.approx(ticks))


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (2.0, "2"), (2.5, "2.5"), (1 / 3, "0.33"), (12.345, "12.35")])
def test_number(value, text):
    assert charts.number(value) == text


def test_bars_share_one_scale_and_name_themselves():
    bars, ticks, height = charts.bar_rows([("ada", 8.0), ("a-very-long-user-name-indeed", 2.0), ("bob", 0.0)], "h")
    plot = charts.WIDTH - charts.LABEL_WIDTH - charts.VALUE_WIDTH
    assert [bar.width for bar in bars] == [plot, plot / 4, 0]
    assert [bar.title for bar in bars] == ["ada: 8 h", "a-very-long-user-name-indeed: 2 h", "bob: 0 h"]
    assert bars[1].label == "a-very-long-user-name…"
    assert [bar.y for bar in bars] == [4.5, 28.5, 52.5]
    assert [tick.label for tick in ticks] == ["0", "2", "4", "6", "8"]
    assert ticks[-1].x == charts.LABEL_WIDTH + plot
    assert height == 3 * charts.ROW_HEIGHT


def test_a_bar_chart_draws_at_most_60_bars():
    context = charts.bar_chart([(f"s{n}", n) for n in range(75)], "c", "Hours", "h")
    assert len(context["bars"]) == 60 and context["left_out"] == 15


def test_meters_scale_to_the_limit_or_to_what_is_over_it():
    ok, over, free, none = charts.meter_rows(
        [("vCPU", 8, 16, "vCPU"), ("Memory", 80, 64, "GB"), ("Datastore", 120, None, "GB"), ("Running", 0, 0, "")],
        400,
    )
    assert (ok.width, ok.limit_x, ok.level, ok.text) == (200, charts.LABEL_WIDTH + 400, "ok", "8 of 16 vCPU · 50 %")
    assert (over.width, over.limit_x, over.level) == (400, charts.LABEL_WIDTH + 320, "full")
    assert over.text == "80 of 64 GB · 125 %"
    assert (free.width, free.limit_x, free.level, free.text) == (400, None, "none", "120 GB · no limit")
    assert (none.width, none.level, none.text) == (0, "full", "0 of 0 · 100 %")


@pytest.mark.parametrize(("days", "every"), [(7, 1), (10, 1), (11, 2), (20, 2), (31, 7), (70, 7), (140, 14), (365, 42)])
def test_day_labels_thin_out(days, every):
    assert charts.day_label_every(days) == every


def test_day_columns():
    start = date(2026, 10, 1)
    columns, gridlines, labels = charts.day_columns([(start + timedelta(days=n), float(n)) for n in range(5)])
    assert [column.height for column in columns] == [0, 45, 90, 135, 180]
    assert columns[4].y == charts.COLUMN_TOP
    assert columns[1].title == "Fri 2 Oct 2026: 1 h"
    assert [line.label for line in gridlines] == ["0", "1", "2", "3", "4"]
    assert [label.label for label in labels] == ["1 Oct", "2 Oct", "3 Oct", "4 Oct", "5 Oct"]


def test_the_day_chart_is_accessible_svg_without_style_or_script():
    from django.template import Context, Template

    days = [DayHours(date(2026, 10, 1) + timedelta(days=n), n * 1.5) for n in range(3)]
    html = Template('{% load usage_charts %}{% day_chart days "d" "Hours a day" %}').render(Context({"days": days}))
    assert 'role="img" aria-labelledby="d-title d-desc"' in html
    assert '<title id="d-title">Hours a day</title>' in html
    assert "3 days, 4.5 h in all; the busiest day 3 Oct 2026 with 3 h." in html
    assert "<title>Sat 3 Oct 2026: 3 h</title>" in html
    assert "style=" not in html and "<script" not in html


def test_today_is_marked_only_inside_the_period():
    days = [(date(2026, 10, 1) + timedelta(days=n), 0.0) for n in range(4)]
    slot = (charts.WIDTH - charts.COLUMN_LEFT - 8) / 4
    assert charts.today_x(days, date(2026, 10, 2)) == round(charts.COLUMN_LEFT + 2 * slot, 2)
    assert charts.today_x(days, date(2026, 10, 4)) is None  # the last day: nothing after it
    assert charts.today_x(days, date(2026, 9, 30)) is None
    assert charts.today_x([], date(2026, 10, 2)) is None


@pytest.mark.parametrize(("value", "shown"), [(44.98, "45"), (44.46, "44.5"), (17.0, "17"), (0, "0"), (None, "")])
def test_figures_show_one_decimal_at_most(value, shown):
    assert charts.figure(value) == shown
