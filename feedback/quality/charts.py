"""Geometry of the quality dashboard's inline SVG charts: pure, no Django.

Each function takes stored figures and returns a dict the template draws as-is: the plot box
(``width``/``height`` in SVG units, the origin at the box's top-left corner), shapes in box
coordinates, tick labels, and ``rows`` for the chart's text alternative (a table under it).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WIDTH = 560
ROW_HEIGHT = 22


def _label_ms(ms: float) -> str:
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"


def alpha_over_time_chart(over_time: dict[str, Any], *, height: int = 180) -> dict[str, Any]:
    """Krippendorff's alpha (nominal) per bucket: a polyline through the defined buckets (evenly
    spaced in bucket order), a dot on each, the y axis from min(0, lowest alpha) to 1 with a line at 0.
    ``rows``: ``(start, votes, value or None, reason)`` per bucket."""
    points = over_time.get("points", [])
    values = [p["alpha"]["value"] for p in points if p["alpha"].get("defined")]
    y_min = min([0.0, *values])
    y_max = 1.0

    def y_of(value: float) -> float:
        return round(height - (value - y_min) / (y_max - y_min) * height, 2)

    step = WIDTH / max(len(points) - 1, 1)
    dots = []
    for index, point in enumerate(points):
        if point["alpha"].get("defined"):
            x = round(index * step if len(points) > 1 else WIDTH / 2, 2)
            dots.append({"x": x, "y": y_of(point["alpha"]["value"]), "label": point["start"]})
    return {
        "width": WIDTH, "height": height, "bucket": over_time.get("bucket", "day"),
        "y_min": y_min, "y_max": y_max, "zero_y": y_of(0.0),
        "polyline": " ".join(f"{d['x']},{d['y']}" for d in dots), "dots": dots,
        "first": points[0]["start"] if points else "", "last": points[-1]["start"] if points else "",
        "rows": [(p["start"], p["votes"], p["alpha"]["value"] if p["alpha"].get("defined") else None,
                  p["alpha"].get("reason") or "") for p in points],
        "is_empty": not dots,
    }


def left_rate_chart(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each annotator's left rate as a dot with its Wilson interval as a whisker, on a 0-1 x axis
    with a line at 0.5 (no pull to either side). Annotators whose rate is undefined get no mark.
    ``rows`` (text alternative): ``(username, value or None, low, high, flagged)``."""
    marks, table = [], []
    for index, row in enumerate(rows):
        rate = row["left_rate"]
        flagged = "left_bias" in row["flags"]
        y = index * ROW_HEIGHT + ROW_HEIGHT / 2
        if rate.get("defined"):
            marks.append({"y": y, "x": round(rate["value"] * WIDTH, 2), "x_low": round(rate["low"] * WIDTH, 2),
                          "x_high": round(rate["high"] * WIDTH, 2), "username": row["username"], "flagged": flagged})
        else:
            marks.append({"y": y, "x": None, "username": row["username"], "flagged": False})
        table.append((row["username"], rate.get("value"), rate.get("low"), rate.get("high"), flagged))
    return {"width": WIDTH, "height": max(len(rows), 1) * ROW_HEIGHT, "half_x": WIDTH / 2, "marks": marks,
            "rows": table, "is_empty": not any(mark["x"] is not None for mark in marks)}


def time_histogram_chart(histogram: Sequence[int], edges_ms: Sequence[float], *, height: int = 160) -> dict[str, Any]:
    """The time-on-item histogram of all timed votes: one bar per bin of the fixed log-spaced edges
    (``timing.EDGES_MS``: bin 0 under the first edge, the last one at the last edge and over), bar
    heights scaled to the fullest bin. ``rows``: ``(bin label, votes)``."""
    bins = len(histogram)
    labels = ([f"under {_label_ms(edges_ms[0])}"]
              + [f"{_label_ms(low)} to {_label_ms(high)}" for low, high in zip(edges_ms, edges_ms[1:])]
              + [f"{_label_ms(edges_ms[-1])} and over"]) if edges_ms else [str(i) for i in range(bins)]
    top = max(histogram, default=0) or 1
    width = WIDTH / max(bins, 1)
    bars = [{"x": round(i * width, 2), "width": round(width - 2, 2), "height": round(count / top * height, 2),
             "y": round(height - count / top * height, 2), "count": count, "label": labels[i] if i < len(labels) else ""}
            for i, count in enumerate(histogram)]
    ticks = [{"x": round(i * width, 2), "label": _label_ms(edge)} for i, edge in enumerate(edges_ms, start=1)][::2]
    return {"width": WIDTH, "height": height, "bars": bars, "ticks": ticks, "top": top,
            "rows": [(bar["label"], bar["count"]) for bar in bars], "is_empty": not any(histogram)}
