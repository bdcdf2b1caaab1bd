"""The stored quality report's figures, assembled from the agreement and bias summaries: pure, no Django.

``report_figures`` joins ``agreement.agreement_summary`` and ``bias.bias_summary`` (with usernames)
into the JSON a ``QualityReport`` stores, with one row per annotator for the dashboard's table.
``over_time`` computes Krippendorff's alpha (nominal) per time bucket of votes. ``sort_rows`` orders
the table by one column. Every number is JSON-safe; an undefined figure is ``{"value": None,
"defined": False, "reason": ...}`` as in ``agreement`` and ``bias``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from .agreement import agreement_summary

# The per-annotator table's columns: (key, header). ``gold`` and ``reliability`` are shown only when
# figures hold "gold" / "reliability" (``OPTIONAL_COLUMNS``, ``columns_shown``).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("username", "Annotator"),
    ("votes", "Votes"),
    ("votes_per_hour", "Votes per hour"),
    ("median_ms", "Median time on item"),
    ("kappa_peers", "Kappa vs peers"),
    ("consensus_agreement", "Agreement with consensus"),
    ("left_rate", "Left rate"),
    ("left_p", "Left p (Holm)"),
    ("flags", "Flags"),
    ("gold", "Gold accuracy"),
    ("reliability", "Reliability (Dawid-Skene)"),
)
OPTIONAL_COLUMNS = ("gold", "reliability")
SORT_KEYS = tuple(key for key, _ in COLUMNS)
FLAG_TEXT = {
    "left_bias": "left bias", "fast": "too fast", "long_run": "long runs", "consensus_outlier": "consensus outlier",
}
NO_PEERS = "shares no item with another annotator"
NO_TIMED_VOTES = "no vote with a time on item"
MAX_BUCKETS = 60
MS_PER_HOUR = 3_600_000


def _undefined(reason: str) -> dict[str, Any]:
    return {"value": None, "defined": False, "reason": reason}


def kappa_against_peers(pairs: Sequence[dict[str, Any]], annotator: int) -> dict[str, Any]:
    """The mean of ``annotator``'s pairwise Cohen's kappas (``agreement_summary``'s
    ``cohen_kappa.pairs``), each weighted by the pair's shared items; pairs whose kappa is undefined
    are left out. ``{"value", "defined", "peers", "shared_items"}`` or undefined (``NO_PEERS``)."""
    weighted, weights, peers = 0.0, 0, 0
    for pair in pairs:
        if annotator in pair["annotators"] and pair.get("defined"):
            weighted += pair["value"] * pair["shared_items"]
            weights += pair["shared_items"]
            peers += 1
    if not weights:
        return _undefined(NO_PEERS) | {"peers": 0, "shared_items": 0}
    return {"value": weighted / weights, "defined": True, "peers": peers, "shared_items": weights}


def _annotator_row(bias_row: dict[str, Any], pairs: Sequence[dict[str, Any]], ms_total: float) -> dict[str, Any]:
    time = bias_row["time"]
    timed = time["timed_votes"]
    per_hour = ({"value": timed * MS_PER_HOUR / ms_total, "defined": True} if timed and ms_total > 0
                else _undefined(NO_TIMED_VOTES))
    consensus = bias_row["consensus"]
    agreement = ({"value": 1.0 - consensus["value"], "defined": True, "low": 1.0 - consensus["high"],
                  "high": 1.0 - consensus["low"], "compared": consensus["compared"]}
                 if consensus.get("defined") else _undefined(consensus.get("reason", "")) | {"compared": 0})
    return {
        "annotator": bias_row["annotator"],
        "username": bias_row.get("username", ""),
        "votes": bias_row["votes"],
        "votes_per_hour": per_hour,
        "median_ms": time["median_ms"],
        "fast_share": time["fast_share"],
        "kappa_peers": kappa_against_peers(pairs, bias_row["annotator"]),
        "consensus_agreement": agreement,
        "consensus": consensus,
        "left_rate": bias_row["left_rate"],
        "run": bias_row["run"],
        "histogram": time["histogram"],
        "flags": list(bias_row["flags"]),
    }


def report_figures(*, agreement: dict[str, Any], bias: dict[str, Any], ms_totals: dict[int, float],
                   over_time: dict[str, Any]) -> dict[str, Any]:
    """The figures a ``QualityReport`` stores: ``agreement`` (as given), ``bias`` (as given, less its
    ``per_annotator`` rows), ``annotators`` (one row per annotator in id order: ``username``,
    ``votes``, ``votes_per_hour`` (timed votes per hour of time on item, i.e. 3,600,000 ms over the
    mean ms), ``median_ms``, ``kappa_peers`` (``kappa_against_peers``), ``consensus_agreement`` (1 -
    the leave-one-out consensus disagreement rate, with its Wilson interval flipped), ``left_rate``
    (with ``p_value``/``p_adjusted``), ``run``, ``histogram``, ``flags``) and ``over_time``.
    ``ms_totals``: summed ms on item of each annotator's timed votes."""
    pairs = agreement.get("cohen_kappa", {}).get("pairs", [])
    rows = [_annotator_row(row, pairs, ms_totals.get(row["annotator"], 0.0)) for row in bias["per_annotator"]]
    return {
        "agreement": agreement,
        "bias": {key: value for key, value in bias.items() if key != "per_annotator"},
        "annotators": rows,
        "over_time": over_time,
    }


def _floor(moment: datetime, days: int) -> datetime:
    day = moment.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if days == 7 else day


def over_time(items: Sequence[int], annotators: Sequence[int], choices: Sequence[str],
              created_at: Sequence[datetime]) -> dict[str, Any]:
    """Krippendorff's alpha (nominal, no interval) of the votes cast in each time bucket: a UTC day,
    or a week (from Monday) when the votes span more than 60 days; the last ``MAX_BUCKETS`` buckets.
    An item counts in a bucket through the votes cast on it in that bucket (two or more).

    Returns ``{"bucket": "day"|"week", "points": [{"start": ISO date, "votes": n, "alpha": {value,
    defined, ...}}]}``.
    """
    if not choices:
        return {"bucket": "day", "points": []}
    span = max(created_at) - min(created_at)
    days = 7 if span > timedelta(days=60) else 1
    buckets: dict[datetime, list[int]] = {}
    for index, moment in enumerate(created_at):
        buckets.setdefault(_floor(moment, days), []).append(index)
    points = []
    for start in sorted(buckets)[-MAX_BUCKETS:]:
        chosen = buckets[start]
        summary = agreement_summary([items[i] for i in chosen], [annotators[i] for i in chosen],
                                    [choices[i] for i in chosen], None, resamples=0)
        alpha = summary["krippendorff_alpha_nominal"]
        points.append({"start": start.date().isoformat(), "votes": len(chosen),
                       "alpha": {key: alpha.get(key) for key in ("value", "defined", "reason", "n_items")}})
    return {"bucket": "week" if days == 7 else "day", "points": points}


def _sort_value(row: dict[str, Any], key: str) -> Any:
    if key == "username":
        return row["username"].lower()
    if key == "votes":
        return row["votes"]
    if key == "flags":
        return len(row["flags"])
    if key == "left_p":
        figure = row["left_rate"]
        return figure.get("p_adjusted") if figure.get("defined") else None
    figure = row.get(key)
    if isinstance(figure, dict):
        value = figure.get("value")
        return value if isinstance(value, (int, float)) and math.isfinite(value) else None
    return None


def sort_rows(rows: Sequence[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """``rows`` ordered by column ``sort`` (a ``SORT_KEYS`` entry; ``-key`` for descending);
    undefined values always last, ties by username. An unknown key keeps the stored order."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORT_KEYS:
        return list(rows)
    rows = sorted(rows, key=lambda row: row["username"].lower())
    defined = [row for row in rows if _sort_value(row, key) is not None]
    undefined = [row for row in rows if _sort_value(row, key) is None]
    return sorted(defined, key=lambda row: _sort_value(row, key), reverse=descending) + undefined


def columns_shown(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """``COLUMNS`` less each ``OPTIONAL_COLUMNS`` entry whose figures are not stored."""
    return [(key, header) for key, header in COLUMNS if key not in OPTIONAL_COLUMNS or key in figures]


def table_rows(figures: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The stored per-annotator rows, each with ``gold`` (the hook for gold items: ``figures["gold"]``
    maps an annotator id, as a string, to ``{"value": accuracy 0-1, "defined": bool, "n": items}``)
    and ``reliability`` (``figures["reliability"]``, same keys: the Dawid-Skene reliability 0-1)
    where stored, and whether the gold column is shown (``figures`` holds ``"gold"``)."""
    rows = [dict(row) for row in figures.get("annotators", [])]
    for key, reason in (("gold", "no gold item answered"), ("reliability", "no vote in the estimate")):
        by_id = figures.get(key)
        if by_id is not None:
            for row in rows:
                row[key] = by_id.get(str(row["annotator"])) or _undefined(reason)
    return rows, "gold" in figures
