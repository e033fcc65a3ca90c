"""Usage charts as inline SVG, drawn here: a bar per time bucket, one series or several
stacked (by tenant, model, ...) with a legend. Pure functions: rows of the admin API's
usage report in, markup out. Every text that reaches the markup is escaped, so a
tenant or model may be named anything. A chart says what it shows in its `aria-label`
and `<title>`; the page shows the same numbers in a table (`Chart.table`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from markupsafe import escape

__all__ = [
    "METRICS",
    "Chart",
    "Series",
    "bar_chart",
    "bucket_label",
    "chart_from_rows",
    "format_value",
    "nice_ceiling",
    "time_buckets",
]

# the usage report's numbers a chart can show, and what they are called
METRICS = {
    "requests": "Requests",
    "total_tokens": "Tokens",
    "cost_usd": "Cost (USD)",
    "errors": "Errors",
}
STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
COLORS = ("#1f5fbf", "#e08a00", "#1e7b3a", "#b3261e", "#7a4fb5", "#0f8a8a", "#8a8f98")
TOP = len(COLORS) - 1  # series drawn on their own; the rest are summed into "Other"

# the drawing, in SVG units (it scales to the page's width)
WIDTH = 640
LEFT = 64  # room for the y axis' labels
RIGHT = 8
TOP_MARGIN = 12
PLOT_HEIGHT = 160
X_LABELS = 22  # room for the x axis' labels
LEGEND_ROW = 18
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float, ...]  # one per bucket

    @property
    def total(self) -> float:
        return sum(self.values)


@dataclass(frozen=True)
class Chart:
    title: str
    metric: str  # a key of METRICS
    labels: tuple[str, ...]  # one per bucket, short (the x axis)
    long_labels: tuple[str, ...]  # the same buckets in full (tables, tooltips)
    series: tuple[Series, ...]

    def bucket_totals(self) -> list[float]:
        return [sum(s.values[i] for s in self.series) for i in range(len(self.labels))]

    @property
    def total(self) -> float:
        return sum(self.bucket_totals())

    def table(self) -> list[tuple[str, list[str], str]]:
        """The numbers drawn, formatted: (bucket, a value per series, the bucket's total)."""
        totals = self.bucket_totals()
        return [
            (
                self.long_labels[i],
                [format_value(s.values[i], self.metric) for s in self.series],
                format_value(totals[i], self.metric),
            )
            for i in range(len(self.labels))
        ]


def time_buckets(first: datetime, until: datetime, bucket: str) -> list[datetime]:
    """The buckets from `first` (a bucket's start) up to, not including, `until`."""
    found, moment = [], first
    while moment < until:
        found.append(moment)
        moment += STEP[bucket]
    return found


def bucket_label(moment: datetime, bucket: str, *, full: bool = False) -> str:
    """A bucket's name: `13:00` or `12-01` on an axis, the date and hour in full."""
    if bucket == "day":
        return moment.strftime("%Y-%m-%d" if full else "%m-%d")
    return moment.strftime("%Y-%m-%d %H:00" if full else "%H:00")


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def chart_from_rows(
    rows: Iterable[Mapping[str, Any]],
    buckets: list[datetime],
    bucket: str,
    metric: str,
    title: str,
    dimension: str | None = None,
    names: Mapping[str, str] | None = None,
) -> Chart:
    """A chart of `metric` over `buckets` from the usage report's rows, one series per
    value of the rows' `dimension` (e.g. "tenant_id"; None: one series), named by
    `names` where it has the value. The largest series are drawn on their own, the
    rest summed into one "Other" series."""
    index = {moment: i for i, moment in enumerate(buckets)}
    sums: dict[str, list[float]] = {}
    for row in rows:
        i = index.get(_when(row["bucket"]))
        if i is None:
            continue
        raw = row.get(dimension) if dimension else None
        key = "(none)" if raw is None else str(raw)
        name = (names or {}).get(key, key) if dimension else METRICS[metric]
        sums.setdefault(name, [0.0] * len(buckets))[i] += float(row.get(metric) or 0)
    ranked = sorted(sums.items(), key=lambda item: (-sum(item[1]), item[0]))
    series = [Series(name, tuple(values)) for name, values in ranked[:TOP]]
    rest = ranked[TOP:]
    if len(rest) == 1:
        series.append(Series(rest[0][0], tuple(rest[0][1])))
    elif rest:
        other = [sum(values[i] for _, values in rest) for i in range(len(buckets))]
        series.append(Series(f"Other ({len(rest)})", tuple(other)))
    return Chart(
        title=title,
        metric=metric,
        labels=tuple(bucket_label(m, bucket) for m in buckets),
        long_labels=tuple(bucket_label(m, bucket, full=True) for m in buckets),
        series=tuple(series),
    )


def format_value(value: float, metric: str) -> str:
    """A number as the page shows it: whole counts with separators, money in dollars."""
    if metric == "cost_usd":
        text = f"{value:,.6f}".rstrip("0")
        whole, _, cents = text.partition(".")
        return f"${whole}.{cents.ljust(2, '0')}"
    if value != round(value):  # an axis tick between two counts (2.5)
        return f"{value:,.1f}"
    return f"{round(value):,}"


def nice_ceiling(value: float) -> float:
    """The top of the y axis: `value` rounded up to 1, 2, 2.5 or 5 times a power of
    ten (1 for an empty chart)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10


def _grouped(chart: Chart) -> bool:
    """Whether the series are groups (tenants, models, ...), named in a legend."""
    return len(chart.series) > 1 or any(s.name != METRICS[chart.metric] for s in chart.series)


def summary(chart: Chart) -> str:
    """What the chart shows, in one sentence (its accessible name)."""
    totals = chart.bucket_totals()
    text = f"{chart.title}: {format_value(chart.total, chart.metric)} in total"
    if totals:
        text += f" over {len(totals)} buckets, {chart.long_labels[0]} to {chart.long_labels[-1]}"
        peak = max(range(len(totals)), key=lambda i: totals[i])
        if totals[peak] > 0:
            text += (
                f"; most in {chart.long_labels[peak]}: {format_value(totals[peak], chart.metric)}"
            )
    if _grouped(chart):
        text += "; by " + ", ".join(
            f"{s.name} {format_value(s.total, chart.metric)}" for s in chart.series
        )
    return text + "."


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(chart: Chart) -> str:
    """The chart as an inline `<svg>`: bars stacked per bucket, a y axis from 0 to a
    round number, some bucket names under the bars, and a legend for several series."""
    n = len(chart.labels)
    legend = len(chart.series) if _grouped(chart) else 0
    height = TOP_MARGIN + PLOT_HEIGHT + X_LABELS + legend * LEGEND_ROW + 4
    plot_width = WIDTH - LEFT - RIGHT
    base = TOP_MARGIN + PLOT_HEIGHT  # the x axis' y
    top = nice_ceiling(max(chart.bucket_totals(), default=0.0))
    said = escape(summary(chart))
    parts = [
        f'<svg class="chart" role="img" aria-label="{said}" viewBox="0 0 {WIDTH} {height}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{said}</title>'
    ]
    for fraction in (0.0, 0.5, 1.0):  # the y axis: gridlines and their values
        grid = _n(base - fraction * PLOT_HEIGHT)
        parts.append(
            f'<line x1="{LEFT}" y1="{grid}" x2="{WIDTH - RIGHT}" y2="{grid}" stroke="#d9dde3"/>'
            f'<text x="{LEFT - 6}" y="{grid}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(format_value(top * fraction, chart.metric))}</text>"
        )
    slot = plot_width / max(n, 1)
    bar = max(slot * 0.8, 1.0)
    every = max(math.ceil(n / MAX_X_LABELS), 1)
    for i in range(n):
        x = LEFT + i * slot + (slot - bar) / 2
        y = float(base)
        for s, color in zip(chart.series, COLORS, strict=False):
            value = s.values[i]
            if value <= 0:
                continue
            h = value / top * PLOT_HEIGHT
            y -= h
            tip = f"{chart.long_labels[i]} · {s.name}: {format_value(value, chart.metric)}"
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(bar)}" height="{_n(h)}"'
                f' fill="{color}"><title>{escape(tip)}</title></rect>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{_n(LEFT + (i + 0.5) * slot)}" y="{base + 15}"'
                f' text-anchor="middle">{escape(chart.labels[i])}</text>'
            )
    parts.append(
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#5a6473"/>'
    )
    for row, (s, color) in enumerate(zip(chart.series, COLORS, strict=False) if legend else []):
        line = base + X_LABELS + row * LEGEND_ROW
        name = s.name if len(s.name) <= 60 else s.name[:59] + "…"
        parts.append(
            f'<rect x="{LEFT}" y="{line}" width="12" height="12" fill="{color}"/>'
            f'<text x="{LEFT + 18}" y="{line + 10}">{escape(name)} '
            f"({escape(format_value(s.total, chart.metric))})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
