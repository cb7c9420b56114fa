"""Charts as inline SVG drawn on the server: no script, no style attribute, colours from
static/css/nestlab.css (classes), a <title> and <desc> for screen readers, and a <title> on
every bar (its tooltip). The geometry is plain arithmetic here; the templates in
templates/labs/charts/ only place what it computed. Pages show the same numbers in a table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django import template
from django.utils import timezone
from django.utils.formats import date_format

register = template.Library()

WIDTH = 960
LABEL_WIDTH = 170
VALUE_WIDTH = 70
ROW_HEIGHT = 24
BAR_HEIGHT = 15
AXIS_HEIGHT = 22
MAX_ROWS = 60  # beyond this a bar chart stops being readable; the table has every row


def nice_step(value: float, count: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) with at most ``count`` steps up to ``value``."""
    if value <= 0:
        return 1.0
    rough = value / count
    power = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 5, 10):
        if factor * power >= rough:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


def axis(value: float, count: int = 4) -> tuple[float, list[float]]:
    """The axis's top (a whole number of round steps at or above ``value``) and its ticks from 0."""
    step = nice_step(value, count)
    top = max(step, math.ceil(value / step - 1e-9) * step)
    ticks = [round(step * n, 10) for n in range(round(top / step) + 1)]
    return top, ticks


def number(value: float, places: int = 2) -> str:
    """1, 1.5, 12.25: no trailing zeros, at most ``places`` decimals."""
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return text if text != "-0" else "0"


def shorten(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Bar:
    label: str
    value: str
    title: str
    y: float
    width: float

    @property
    def text_y(self) -> float:
        return self.y + BAR_HEIGHT - 4

    @property
    def value_x(self) -> float:
        return round(LABEL_WIDTH + self.width + 5, 2)


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


def bar_rows(
    items: Sequence[tuple[str, float]], unit: str = "", plot_width: float = WIDTH - LABEL_WIDTH - VALUE_WIDTH
) -> tuple[list[Bar], list[Tick], float]:
    """Horizontal bars for (label, value) items, all on one scale: the bars, the axis ticks and
    the height of the rows (the axis goes below them)."""
    top, ticks = axis(max((value for _, value in items), default=0))
    bars = [
        Bar(
            label=shorten(label),
            value=number(value, 1),  # as the tables show it; the tooltip has two decimals
            title=f"{label}: {number(value)}{' ' + unit if unit else ''}",
            y=index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
            width=round(plot_width * value / top, 2),
        )
        for index, (label, value) in enumerate(items[:MAX_ROWS])
    ]
    return (
        bars,
        [Tick(round(LABEL_WIDTH + plot_width * tick / top, 2), number(tick)) for tick in ticks],
        len(bars) * ROW_HEIGHT,
    )


@register.inclusion_tag("labs/charts/bars.html")
def bar_chart(items, chart_id: str, title: str, unit: str = "", description: str = "") -> dict:
    """``items``: (label, value) pairs, drawn in the order given."""
    items = [(str(label), float(value)) for label, value in items]
    bars, ticks, rows_height = bar_rows(items, unit)
    total = sum(value for _, value in items)
    summary = description or (
        f"{len(items)} bar{'s' if len(items) != 1 else ''}; total {number(total)}{' ' + unit if unit else ''}; "
        f"largest {number(max((v for _, v in items), default=0))}."
    )
    return {
        "chart_id": chart_id,
        "title": title,
        "description": summary,
        "bars": bars,
        "ticks": ticks,
        "width": WIDTH,
        "label_x": LABEL_WIDTH - 8,
        "bar_x": LABEL_WIDTH,
        "bar_height": BAR_HEIGHT,
        "rows_height": rows_height,
        "axis_y": rows_height + 14,
        "height": rows_height + AXIS_HEIGHT,
        "left_out": max(0, len(items) - MAX_ROWS),
        "empty": not items,
    }


@dataclass(frozen=True)
class Meter:
    label: str
    y: float
    width: float  # the used part
    track: float  # the whole track (the limit, or the used amount without a limit)
    limit_x: float | None
    text: str
    title: str
    level: str

    @property
    def text_y(self) -> float:
        return self.y + BAR_HEIGHT - 4

    @property
    def limit_top(self) -> float:
        return self.y - 3

    @property
    def limit_bottom(self) -> float:
        return self.y + BAR_HEIGHT + 3


def meter_rows(items: Sequence[tuple[str, float, float | None, str]], plot_width: float) -> list[Meter]:
    """In use against a limit, one row per (label, used, limit, unit), each on its own scale: the
    limit (or what is used, when it is over the limit or there is none) fills the track."""
    meters = []
    for index, (label, used, limit, unit) in enumerate(items):
        scale = max(used, limit or 0) or 1
        width = round(plot_width * used / scale, 2)
        suffix = f" {unit}" if unit else ""
        if limit is None:
            text, level, limit_x = f"{number(used)}{suffix} · no limit", "none", None
        else:
            percent = 100 if limit == 0 else round(100 * used / limit)
            text = f"{number(used)} of {number(limit)}{suffix} · {percent} %"
            level = "full" if used >= limit else ("warn" if percent >= 80 else "ok")
            limit_x = round(LABEL_WIDTH + plot_width * limit / scale, 2)
        meters.append(
            Meter(
                label=label,
                y=index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                width=width,
                track=plot_width,
                limit_x=limit_x,
                text=text,
                title=f"{label}: {text}",
                level=level,
            )
        )
    return meters


@register.inclusion_tag("labs/charts/meters.html")
def quota_chart(items, chart_id: str, title: str) -> dict:
    """``items``: (label, used, limit or None, unit) tuples."""
    plot_width = WIDTH - LABEL_WIDTH - 190
    meters = meter_rows(
        [(str(a), float(b), None if c is None else float(c), str(d)) for a, b, c, d in items], plot_width
    )
    return {
        "chart_id": chart_id,
        "title": title,
        "description": "; ".join(meter.title for meter in meters) + ".",
        "meters": meters,
        "width": WIDTH,
        "label_x": LABEL_WIDTH - 8,
        "bar_x": LABEL_WIDTH,
        "text_x": LABEL_WIDTH + plot_width + 10,
        "bar_height": BAR_HEIGHT,
        "height": len(meters) * ROW_HEIGHT + 4,
    }


COLUMN_HEIGHT = 180
COLUMN_LEFT = 48
COLUMN_BOTTOM = 26
COLUMN_TOP = 10


@dataclass(frozen=True)
class Column:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Gridline:
    y: float
    label: str

    @property
    def text_y(self) -> float:
        return self.y + 4


def day_label_every(count: int, most: int = 10) -> int:
    """Label every n-th day so that at most ``most`` labels fit: 1, 2, 7, 14, then whole weeks."""
    for every in (1, 2, 7, 14):
        if math.ceil(count / every) <= most:
            return every
    return 7 * math.ceil(count / (7 * most))


def day_columns(
    days: Sequence[tuple[date, float]], unit: str = "h", width: float = WIDTH
) -> tuple[list[Column], list[Gridline], list[Tick]]:
    """One column a day on a shared scale, with gridlines and day labels (at most about ten)."""
    plot_width = width - COLUMN_LEFT - 8
    top, ticks = axis(max((hours for _, hours in days), default=0))
    slot = plot_width / max(1, len(days))
    gap = min(2.0, slot * 0.2)
    columns = []
    for index, (day, hours) in enumerate(days):
        height = round(COLUMN_HEIGHT * hours / top, 2)
        columns.append(
            Column(
                x=round(COLUMN_LEFT + index * slot + gap / 2, 2),
                y=round(COLUMN_TOP + COLUMN_HEIGHT - height, 2),
                width=round(max(0.5, slot - gap), 2),
                height=height,
                title=f"{date_format(day, 'D j M Y')}: {number(hours)} {unit}",
            )
        )
    gridlines = [
        Gridline(round(COLUMN_TOP + COLUMN_HEIGHT - COLUMN_HEIGHT * tick / top, 2), number(tick)) for tick in ticks
    ]
    every = day_label_every(len(days))
    labels = [
        Tick(round(COLUMN_LEFT + index * slot + slot / 2, 2), date_format(day, "j M"))
        for index, (day, _) in enumerate(days)
        if index % every == 0
    ]
    return columns, gridlines, labels


def today_x(days: Sequence[tuple[date, float]], today: date, width: float = WIDTH) -> float | None:
    """Where today ends on the day chart (the days after it have not happened yet), or None when
    the period ends today or before, or starts after it."""
    dates = [day for day, _ in days]
    if not dates or today < dates[0] or today >= dates[-1]:
        return None
    slot = (width - COLUMN_LEFT - 8) / len(dates)
    return round(COLUMN_LEFT + (dates.index(today) + 1) * slot, 2)


@register.inclusion_tag("labs/charts/days.html")
def day_chart(days, chart_id: str, title: str, unit: str = "h") -> dict:
    """``days``: objects with ``day`` and ``hours`` (labs.usage.DayHours), oldest first."""
    series = [(item.day, float(item.hours)) for item in days]
    columns, gridlines, labels = day_columns(series, unit)
    total = sum(hours for _, hours in series)
    busiest = max(series, key=lambda pair: pair[1], default=None)
    description = f"{len(series)} days, {number(total)} {unit} in all"
    if busiest is not None and busiest[1] > 0:
        description += f"; the busiest day {date_format(busiest[0], 'j M Y')} with {number(busiest[1])} {unit}"
    today = today_x(series, timezone.localdate())
    return {
        "chart_id": chart_id,
        "title": title,
        "description": description + ".",
        "columns": columns,
        "gridlines": gridlines,
        "labels": labels,
        "width": WIDTH,
        "plot_left": COLUMN_LEFT,
        "plot_right": WIDTH - 8,
        "tick_x": COLUMN_LEFT - 6,
        "label_y": COLUMN_TOP + COLUMN_HEIGHT + 17,
        "height": COLUMN_TOP + COLUMN_HEIGHT + COLUMN_BOTTOM,
        "empty": total == 0,
        "today_x": today,
        "today_label_x": None if today is None else today - 4,
        "plot_top": COLUMN_TOP,
        "plot_bottom": COLUMN_TOP + COLUMN_HEIGHT,
        "today_label_y": COLUMN_TOP + 10,
    }


@register.filter
def figure(value: float | None) -> str:
    """Hours and gigabytes in tables: one decimal at most (45, 44.5; never 45.0)."""
    return "" if value is None else number(float(value), 1)
