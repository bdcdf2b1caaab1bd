"""training.charts: metric rows become SVG polylines scaled into the chart box."""
from training.charts import line_chart, metric_series


def coords(line):
    return [tuple(float(v) for v in point.split(",")) for point in line.points.split()]


def test_series_pick_named_metrics_in_step_order_and_skip_missing_values():
    rows = [(1, {"loss": 0.9}), (2, {"loss": 0.7, "eval_accuracy": 0.5}), (3, {"loss": None}), (4, {"eval_accuracy": 0.75})]
    assert metric_series(rows, ["loss", "eval_accuracy", "absent"]) == {
        "loss": [(1.0, 0.9), (2.0, 0.7)],
        "eval_accuracy": [(2.0, 0.5), (4.0, 0.75)],
    }


def test_larger_values_are_drawn_higher_and_the_line_spans_the_box():
    chart = line_chart("Loss", {"loss": [(0, 1.0), (5, 0.5), (10, 0.0)]}, width=100, height=50)
    points = coords(chart.lines[0])
    assert points == [(0.0, 0.0), (50.0, 25.0), (100.0, 50.0)]
    assert (chart.x_min, chart.x_max, chart.y_min, chart.y_max) == (0, 10, 0.0, 1.0)
    assert chart.lines[0].last == 0.0


def test_fixed_range_keeps_accuracy_on_a_0_to_1_axis():
    chart = line_chart("Accuracy", {"eval_accuracy": [(10, 0.5), (20, 0.75)]}, width=100, height=100, y_range=(0.0, 1.0))
    assert coords(chart.lines[0]) == [(0.0, 50.0), (100.0, 25.0)]


def test_a_single_point_or_flat_series_is_drawn_without_dividing_by_zero():
    chart = line_chart("Loss", {"loss": [(3, 0.4)]}, width=100, height=40)
    assert coords(chart.lines[0]) == [(50.0, 20.0)]
    flat = line_chart("Loss", {"loss": [(1, 0.4), (2, 0.4)]}, width=100, height=40)
    assert coords(flat.lines[0]) == [(0.0, 20.0), (100.0, 20.0)]


def test_no_points_gives_an_empty_chart_and_each_line_its_own_colour():
    assert line_chart("Loss", {}).is_empty
    chart = line_chart("Accuracy", {"a": [(1, 0.1)], "b": [(1, 0.2)]})
    assert len({line.colour for line in chart.lines}) == 2
