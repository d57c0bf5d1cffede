"""Chart geometry for the Resumo page: the numbers an inline SVG needs, computed here so the
templates only place shapes (no chart library, nothing fetched from a CDN)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 84, 12, 20, 36
MAX_LABELS = 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass
class BarChart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    labels: list[tuple[float, str]] = field(default_factory=list)  # x, text
    baseline: float = HEIGHT - BOTTOM
    left: float = LEFT
    right: float = WIDTH - RIGHT


def _nice_max(value: int) -> int:
    """A round axis maximum at or above value (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return int(step * magnitude) if step * magnitude >= 1 else 1
    return magnitude * 10


def bar_chart(points: list[tuple[str, int]], fmt: Callable[[int], str],
              min_top: int = 1) -> BarChart:
    """Bars for (label, value) points; `fmt` writes values and axis ticks. `min_top` keeps a
    count axis from showing the same integer on several ticks."""
    chart = BarChart()
    if not points:
        return chart
    top = max(min_top, _nice_max(max(v for _, v in points)))
    plot_w = chart.right - chart.left
    plot_h = chart.baseline - TOP
    for i in range(5):
        value = top * i // 4
        chart.ticks.append(Tick(round(chart.baseline - plot_h * i / 4, 1), fmt(value)))
    slot = plot_w / len(points)
    bar_w = max(2.0, min(48.0, slot * 0.7))
    every = max(1, -(-len(points) // MAX_LABELS))  # ceil: at most MAX_LABELS labels
    for i, (label, value) in enumerate(points):
        h = plot_h * value / top
        x = chart.left + slot * i + (slot - bar_w) / 2
        chart.bars.append(Bar(round(x, 1), round(chart.baseline - h, 1), round(bar_w, 1),
                              round(h, 1), label, fmt(value)))
        if i % every == 0 or i == len(points) - 1:
            chart.labels.append((round(x + bar_w / 2, 1), label))
    return chart


@dataclass(frozen=True)
class FunnelStep:
    key: str
    count: int
    y: float
    width: float
    rate: str  # share of the previous step, "" for the first


@dataclass
class Funnel:
    steps: list[FunnelStep]
    width: int = WIDTH
    height: int = 0
    row: int = 44
    label_w: int = 150


def funnel(counts: dict[str, int], order: tuple[str, ...]) -> Funnel:
    chart = Funnel(steps=[])
    first = max(1, counts.get(order[0], 0), *(counts.get(k, 0) for k in order))
    bar_space = chart.width - chart.label_w - 90
    previous: int | None = None
    for i, key in enumerate(order):
        count = counts.get(key, 0)
        rate = "" if previous is None else (f"{count * 100 // previous}%" if previous else "—")
        chart.steps.append(FunnelStep(key, count, i * chart.row + 6,
                                      round(max(2.0, bar_space * count / first), 1), rate))
        previous = count
    chart.height = len(order) * chart.row + 6
    return chart
