"""feedback.quality.report and charts (pure): kappa against peers, sorting with undefined last,
alpha over time buckets, and the charts' geometry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from feedback.quality.charts import alpha_over_time_chart, left_rate_chart, time_histogram_chart
from feedback.quality.report import kappa_against_peers, over_time, sort_rows


def test_kappa_against_peers_weights_each_pair_by_shared_items_and_skips_undefined_pairs():
    pairs = [
        {"annotators": [1, 2], "shared_items": 30, "value": 0.8, "defined": True},
        {"annotators": [1, 3], "shared_items": 10, "value": 0.0, "defined": True},
        {"annotators": [1, 4], "shared_items": 50, "value": None, "defined": False},
        {"annotators": [2, 3], "shared_items": 99, "value": -1.0, "defined": True},
    ]
    figure = kappa_against_peers(pairs, 1)
    assert figure["value"] == 0.6 and figure["peers"] == 2 and figure["shared_items"] == 40
    alone = kappa_against_peers(pairs, 9)
    assert alone["value"] is None and alone["defined"] is False and "no item" in alone["reason"]


def _row(name, kappa):
    figure = {"value": kappa, "defined": kappa is not None}
    return {"username": name, "votes": 1, "kappa_peers": figure, "flags": [], "left_rate": figure}


def test_sorting_puts_undefined_figures_last_either_way():
    rows = [_row("b", 0.2), _row("a", None), _row("c", 0.9)]
    assert [r["username"] for r in sort_rows(rows, "kappa_peers")] == ["b", "c", "a"]
    assert [r["username"] for r in sort_rows(rows, "-kappa_peers")] == ["c", "b", "a"]
    assert [r["username"] for r in sort_rows(rows, "-username")] == ["c", "b", "a"]


def test_alpha_over_time_is_computed_per_day_and_per_week_for_long_spans():
    start = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)  # a Monday
    items, raters, choices, moments = [], [], [], []
    for day in range(3):
        for item in range(4):
            for rater in range(3):
                items.append(day * 10 + item)
                raters.append(rater)
                choices.append("a" if item % 2 else "b")  # full agreement, labels vary
                moments.append(start + timedelta(days=day, minutes=item))
    daily = over_time(items, raters, choices, moments)
    assert daily["bucket"] == "day" and [p["start"] for p in daily["points"]] == ["2026-01-05", "2026-01-06", "2026-01-07"]
    assert all(p["alpha"]["value"] == 1.0 and p["votes"] == 12 for p in daily["points"])
    weekly = over_time(items + [99, 99], raters + [0, 1], choices + ["a", "a"],
                       moments + [start + timedelta(days=90)] * 2)
    assert weekly["bucket"] == "week" and weekly["points"][0]["start"] == "2026-01-05"
    assert weekly["points"][-1]["alpha"]["defined"] is False  # one item, one label: no variation


def test_charts_scale_into_the_box():
    chart = alpha_over_time_chart({"bucket": "day", "points": [
        {"start": "d1", "votes": 3, "alpha": {"value": 1.0, "defined": True}},
        {"start": "d2", "votes": 3, "alpha": {"value": None, "defined": False, "reason": "no label variation"}},
        {"start": "d3", "votes": 3, "alpha": {"value": 0.0, "defined": True}},
    ]}, height=100)
    assert [(d["x"], d["y"]) for d in chart["dots"]] == [(0.0, 0.0), (560.0, 100.0)]
    assert chart["rows"][1] == ("d2", 3, None, "no label variation")
    left = left_rate_chart([{"username": "u", "flags": ["left_bias"],
                             "left_rate": {"value": 0.75, "low": 0.5, "high": 1.0, "defined": True}}])
    assert left["marks"][0]["x"] == 420.0 and left["marks"][0]["x_low"] == 280.0 and left["half_x"] == 280.0
    bars = time_histogram_chart([0, 2, 4], [250, 500], height=100)
    assert [b["height"] for b in bars["bars"]] == [0.0, 50.0, 100.0]
    assert [b["label"] for b in bars["bars"]] == ["under 250 ms", "250 ms to 500 ms", "500 ms and over"]
