#!/usr/bin/env python
"""Quality figures for one campaign's votes: every agreement figure with its bootstrap interval, and
the bias, speed and attention figures, timed.

    .venv/bin/python bench/quality.py                                  # 1,000,000 votes, 200 annotators, 3 per item
    .venv/bin/python bench/quality.py --votes 100000 --annotators 50 --resamples 200

The issue's floor: every figure (percent agreement with and without ties, Cohen's kappa for every
annotator pair, Fleiss' kappa, Krippendorff's alpha nominal and ordinal), each with a 1,000-resample
bootstrap interval, for 1,000,000 votes from 200 annotators in under 10 s on the 2-core machine.

Synthetic votes (seeded): each item has a latent preference z ~ N(0, 1.2) for A over B; an annotator
reads z + bias + noise (bias ~ N(0, 0.2), noise sd uniform on [0.4, 1.2] per annotator) and answers
tie below 0.3 in size, then slight / clear / strong at 1 and 2; 8% of items are bad pairs where each
vote is both_bad with probability 0.6 (2% elsewhere), and 20% of a/b votes leave the strength out
(missing on the ordinal scale). Annotators' workloads are uneven (lognormal weights); each item gets
three distinct annotators. No database: ``feedback.quality.agreement.agreement_summary`` on plain
Python lists, as ``feedback.quality.selectors.agreement_for`` passes them (string encoding included
in the time). Reports the median of ``--repeats`` runs, each step's time of one run, and the figures.

With ``--database-votes N`` (default 100,000; 0 skips it) the first N of those votes are also written
to a scratch SQLite database (migrated, filled with ``bulk_create``) in one campaign next to another
campaign's votes, and ``agreement_for(campaign=...)`` is timed: the one query plus the statistics.
Bias figures (``feedback.quality.bias.bias_summary``) on the same votes: each vote gets a shown side
(a coin flip) and a time on item (lognormal, median 15 s, sd 0.8 in log; 1% without a time), and
votes are passed grouped by annotator in creation order, as ``bias_for`` reads them. Planted: the
annotators 1-2 see their pick on the left 80% of the time (left bias) and 3-4 vote in 0.3-1.5 s
(fast); the figures report who was flagged. With ``--database-votes`` ``bias_for(campaign=...)`` is
timed too. Dawid-Skene (``feedback.quality.aggregation.dawid_skene``, which the stored report also
runs for each annotator's reliability) is timed once on the same votes: ``dawid_skene_s``.
``seconds_all`` (agreement, bias and Dawid-Skene: every figure the stored report holds) is what the
floor is about.
The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feedback.quality import agreement, bias  # noqa: E402
from feedback.quality.aggregation import dawid_skene  # noqa: E402

FLOOR_S = 10.0


def synthetic_votes(*, votes: int, annotators: int, per_item: int, seed: int):
    """(items, annotators, choices, strengths) as Python lists, ``votes`` long."""
    rng = np.random.default_rng(seed)
    n_items = -(-votes // per_item)
    weights = rng.lognormal(0.0, 0.5, annotators)
    weights /= weights.sum()
    raters = rng.choice(annotators, size=(n_items, per_item), p=weights)
    while True:  # redraw rows where an annotator appears twice
        ordered = np.sort(raters, axis=1)
        clash = (np.diff(ordered, axis=1) == 0).any(axis=1)
        if not clash.any():
            break
        raters[clash] = rng.choice(annotators, size=(int(clash.sum()), per_item), p=weights)
    z = rng.normal(0.0, 1.2, n_items)
    bad = rng.random(n_items) < 0.08
    bias = rng.normal(0.0, 0.2, annotators)
    noise = rng.uniform(0.4, 1.2, annotators)
    item = np.repeat(np.arange(n_items), per_item)[:votes]
    rater = raters.ravel()[:votes]
    reading = z[item] + bias[rater] + rng.normal(0.0, 1.0, votes) * noise[rater]
    size = np.abs(reading)
    choice = np.where(size < 0.3, "tie", np.where(reading > 0, "a", "b")).astype(object)
    strength = np.where(size < 0.3, "", np.where(size < 1.0, "slight", np.where(size < 2.0, "clear", "strong"))).astype(object)
    strength[(choice != "tie") & (rng.random(votes) < 0.2)] = ""
    both_bad = rng.random(votes) < np.where(bad[item], 0.6, 0.02)
    choice[both_bad], strength[both_bad] = "both_bad", ""
    return (item + 1000).tolist(), (rater + 1).tolist(), choice.tolist(), strength.tolist()


def synthetic_screen(raters, choices, *, seed: int):
    """(shown_left, ms_on_item) lists for the votes, with the planted left-biased (1-2) and fast (3-4)
    annotators (module docstring)."""
    rng = np.random.default_rng(seed + 1)
    n = len(choices)
    rater, choice = np.asarray(raters), np.asarray(choices, dtype=object)
    shown = np.where(rng.random(n) < 0.5, "a", "b").astype(object)
    leaning = np.isin(rater, (1, 2)) & np.isin(choice, ("a", "b")) & (rng.random(n) < 0.8)
    shown[leaning] = choice[leaning]  # their pick was on the left
    ms = rng.lognormal(np.log(15000), 0.8, n).astype(np.int64)
    fast = np.isin(rater, (3, 4))
    ms[fast] = rng.integers(300, 1500, int(fast.sum()))
    ms = ms.astype(object)
    ms[rng.random(n) < 0.01] = None
    return shown.tolist(), ms.tolist()


def by_annotator(*columns):
    """The columns reordered by annotator (the first column), creation order kept: what ``bias_for`` reads."""
    order = np.argsort(np.asarray(columns[0]), kind="stable")
    return [np.asarray(column, dtype=object)[order].tolist() for column in columns]


def database_read(items, raters, choices, strengths, shown, ms, *, votes: int, resamples: int, seed: int) -> dict:
    """Write the first ``votes`` votes to a scratch SQLite database and time ``agreement_for`` and
    ``bias_for`` on them."""
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-quality-") as folder:
        os.environ.update(DATABASE_URL=f"sqlite:///{folder}/bench.sqlite3", DJANGO_SETTINGS_MODULE="config.settings")
        os.environ.setdefault("SECRET_KEY", "bench")
        os.environ.setdefault("DEBUG", "0")
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connection, transaction

        from feedback.messages import messages_sha256
        from feedback.models import Campaign, Comparison, Completion, Prompt, Vote
        from feedback.quality.selectors import agreement_for, bias_for

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        items, raters = items[:votes], raters[:votes]
        item_ids = sorted(set(items))
        with transaction.atomic():
            ours = Campaign.objects.create(name="Bench", slug="bench", status="active")
            other = Campaign.objects.create(name="Other", slug="other", status="active")
            User = get_user_model()
            users = User.objects.bulk_create([User(username=f"bench-{r}", password="!") for r in sorted(set(raters))])
            user_of = dict(zip(sorted(set(raters)), (u.pk for u in users)))
            prompts = Prompt.objects.bulk_create([
                Prompt(messages=m, messages_sha256=messages_sha256(m))
                for m in ([{"role": "user", "content": f"Question {i}?"}] for i in item_ids)], batch_size=5000)
            completions = Completion.objects.bulk_create([
                Completion(prompt=p, model_name=name, text=f"{name} on {p.pk}") for p in prompts for name in ("x", "y")],
                batch_size=5000)
            comparisons = Comparison.objects.bulk_create([
                Comparison(prompt=p, completion_a=completions[2 * k], completion_b=completions[2 * k + 1],
                           campaign=ours if k % 10 else other) for k, p in enumerate(prompts)], batch_size=5000)
            comparison_of = dict(zip(item_ids, (c.pk for c in comparisons)))
            Vote.objects.bulk_create([
                Vote(comparison_id=comparison_of[i], annotator_id=user_of[r], choice=c, strength=s, shown_left=side,
                     ms_on_item=t)
                for i, r, c, s, side, t in zip(items, raters, choices, strengths, shown, ms)], batch_size=5000)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        fill_s = time.perf_counter() - started
        in_campaign = Vote.objects.filter(comparison__campaign=ours).count()
        start = time.perf_counter()
        list(Vote.objects.filter(comparison__campaign=ours).values_list("comparison_id", "annotator_id", "choice", "strength"))
        query_s = time.perf_counter() - start
        start = time.perf_counter()
        summary = agreement_for(campaign=ours, resamples=resamples, seed=seed)
        total_s = time.perf_counter() - start
        start = time.perf_counter()
        biased = bias_for(campaign=ours)
        bias_s = time.perf_counter() - start
    return {"db_votes": votes, "db_campaign_votes": in_campaign, "db_fill_s": round(fill_s, 2),
            "db_query_s": round(query_s, 3), "db_agreement_for_s": round(total_s, 3),
            "db_bias_for_s": round(bias_s, 3), "db_bias_flagged": {k: len(v) for k, v in biased["flagged"].items()},
            "db_alpha_nominal": round(summary["krippendorff_alpha_nominal"]["value"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=200)
    parser.add_argument("--per-item", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-votes", type=int, default=100_000, help="0: no SQLite read timing")
    args = parser.parse_args()

    items, raters, choices, strengths = synthetic_votes(votes=args.votes, annotators=args.annotators,
                                                        per_item=args.per_item, seed=args.seed)
    timings = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        summary = agreement.agreement_summary(items, raters, choices, strengths, resamples=args.resamples, seed=args.seed)
        timings.append(time.perf_counter() - start)
    seconds = statistics.median(timings)

    # One run again, step by step (the same work agreement_summary does).
    steps = {}
    start = time.perf_counter()
    nominal = agreement.nominal_codes(choices)
    ordinal = agreement.ordinal_codes(choices, strengths)
    steps["encode_s"] = time.perf_counter() - start
    start = time.perf_counter()
    agreement.agreement_from_codes(items, raters, nominal, ordinal, resamples=0)
    steps["point_figures_s"] = time.perf_counter() - start
    start = time.perf_counter()
    agreement.agreement_from_codes(items, raters, nominal, ordinal, resamples=args.resamples, seed=args.seed)
    steps["with_intervals_s"] = time.perf_counter() - start

    shown, ms = synthetic_screen(raters, choices, seed=args.seed)
    columns = by_annotator(raters, items, choices, shown, ms)
    bias_timings = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        biased = bias.bias_summary(*columns)
        bias_timings.append(time.perf_counter() - start)
    bias_seconds = statistics.median(bias_timings)
    del columns

    start = time.perf_counter()
    fitted = dawid_skene(items, raters, choices)
    ds_seconds = time.perf_counter() - start

    pairs = summary["cohen_kappa"]["pairs"]
    kappas = np.array([p["value"] for p in pairs if p["defined"]])
    widths = np.array([p["high"] - p["low"] for p in pairs if p["defined"] and p["low"] is not None])
    shares = {label: round(choices.count(label) / len(choices), 3) for label in agreement.LABELS}
    no_strength = sum(1 for c, s in zip(choices, strengths) if c in ("a", "b") and not s) / len(choices)
    print(f"{summary['votes']:,} votes, {summary['items']:,} items, {summary['annotators']} annotators, "
          f"{args.resamples} resamples; labels {shares}, a/b without strength {no_strength:.3f}")
    for name in agreement.FIGURES:
        f = summary[name]
        print(f"  {name:32s} {f['value']:.4f}  [{f['low']:.4f}, {f['high']:.4f}]  items {f['n_items']:,}")
    print(f"  cohen_kappa: {len(pairs):,} pairs, median {np.median(kappas):.3f}, "
          f"median shared items {int(np.median([p['shared_items'] for p in pairs]))}, "
          f"median interval width {np.median(widths):.3f}")
    print(f"  seconds (median of {args.repeats}): {seconds:.2f}  runs: {', '.join(f'{t:.2f}' for t in timings)}")
    print("  one run by step: " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
    flagged = {name: biased["flagged"][name] for name in bias.FLAGS}
    left, fast = biased["left_rate"], biased["time"]
    print(f"  bias: left rate {left['value']:.4f} [{left['low']:.4f}, {left['high']:.4f}], time on item median "
          f"{fast['median_ms']['value']:.0f} ms (p10 {fast['p10_ms']['value']:.0f}, p90 {fast['p90_ms']['value']:.0f}), "
          f"consensus disagreement {biased['consensus']['value']:.4f}")
    print(f"  bias flagged (planted: left_bias 1-2, fast 3-4): {flagged}")
    print(f"  bias seconds (median of {args.repeats}): {bias_seconds:.2f}  runs: {', '.join(f'{t:.2f}' for t in bias_timings)}")
    print(f"  Dawid-Skene: {ds_seconds:.2f} s, {fitted.iterations} rounds")
    print(f"  every quality figure (agreement, bias, Dawid-Skene): {seconds + bias_seconds + ds_seconds:.2f} s "
          f"(floor {FLOOR_S:.0f} s)")
    database = {}
    if args.database_votes:
        database = database_read(items, raters, choices, strengths, shown, ms, votes=args.database_votes,
                                 resamples=args.resamples, seed=args.seed)
        print(f"  SQLite, {database['db_campaign_votes']:,} of {args.database_votes:,} votes in the campaign: "
              f"query {database['db_query_s']:.2f} s, agreement_for {database['db_agreement_for_s']:.2f} s, "
              f"bias_for {database['db_bias_for_s']:.2f} s (fill {database['db_fill_s']:.1f} s)")
    figures = {
        "votes": summary["votes"], "annotators": summary["annotators"], "items": summary["items"],
        "resamples": args.resamples, "seconds": round(seconds, 3), "runs_s": [round(t, 3) for t in timings],
        **{k: round(v, 3) for k, v in steps.items()},
        "label_shares": shares, "cohen_pairs": len(pairs),
        **{name: round(summary[name]["value"], 4) for name in agreement.FIGURES},
        "bias_seconds": round(bias_seconds, 3), "bias_runs_s": [round(t, 3) for t in bias_timings],
        "bias_left_rate": round(left["value"], 4), "bias_median_ms": fast["median_ms"]["value"],
        "bias_flagged": flagged, "seconds_all": round(seconds + bias_seconds + ds_seconds, 3),
        "floor_s": FLOOR_S, "floor_met": seconds + bias_seconds + ds_seconds < FLOOR_S,
        "dawid_skene_s": round(ds_seconds, 3), "dawid_skene_rounds": fitted.iterations, **database,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
