"""Line charts of a run's metrics as SVG coordinates, drawn server-side (no chart library, no script).

Pure code: ``line_chart`` maps series of (step, value) points into a ``width`` x ``height`` box.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")


@dataclass(frozen=True)
class Line:
    name: str
    points: str  # "x,y x,y ..." for <polyline points=...>
    last: float
    colour: str


@dataclass(frozen=True)
class Chart:
    """Scaled lines plus the axis ranges they were scaled from (``x`` steps, ``y`` metric units)."""

    title: str
    width: int
    height: int
    lines: list[Line]
    x_min: float
    x_max: float
    y_min: float
    y_max: float

    @property
    def is_empty(self) -> bool:
        return not self.lines


def metric_series(rows: Iterable[tuple[int, Mapping[str, float | None]]], names: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
    """Pick ``names`` out of metric rows ``(step, {name: value})`` as (step, value) lists, skipping missing or None values."""
    series: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for step, values in rows:
        for name in names:
            value = values.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                series[name].append((float(step), float(value)))
    return {name: points for name, points in series.items() if points}


def line_chart(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    width: int = 480,
    height: int = 160,
    y_range: tuple[float, float] | None = None,
) -> Chart:
    """Scale each series into the box (SVG y grows downwards, so larger values are drawn higher).

    ``y_range`` fixes the vertical axis (e.g. (0, 1) for accuracy); otherwise it spans the data.
    A single point, or a flat series, is drawn across the middle rather than dividing by zero.
    """
    points = [p for values in series.values() for p in values]
    if not points:
        return Chart(title, width, height, [], 0, 0, 0, 0)
    x_min, x_max = min(p[0] for p in points), max(p[0] for p in points)
    y_min, y_max = y_range or (min(p[1] for p in points), max(p[1] for p in points))
    x_span = (x_max - x_min) or 1.0
    y_span = (y_max - y_min) or 1.0

    def scale(x: float, y: float) -> str:
        sx = (x - x_min) / x_span * width if x_max > x_min else width / 2
        sy = height - (y - y_min) / y_span * height if y_max > y_min else height / 2
        return f"{sx:.1f},{min(max(sy, 0.0), float(height)):.1f}"

    lines = [
        Line(name, " ".join(scale(x, y) for x, y in values), values[-1][1], PALETTE[index % len(PALETTE)])
        for index, (name, values) in enumerate(series.items())
    ]
    return Chart(title, width, height, lines, x_min, x_max, y_min, y_max)
