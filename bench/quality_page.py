#!/usr/bin/env python
"""The campaign quality dashboard served from a stored report: GET ``/manage/campaigns/<id>/quality/``
(HTML) and ``?format=csv``, timed with Django's test client as an admin.

    .venv/bin/python bench/quality_page.py                        # 1,000,000 votes, 200 annotators
    .venv/bin/python bench/quality_page.py --votes 100000 --resamples 100

The issue's floor: the page served in under 1 s from stored results (200 annotators).

The stored figures come from the real pure functions on ``bench/quality.py``'s synthetic votes
(``synthetic_votes``, ``synthetic_screen``: 3 annotators per item, planted left-biased and fast
annotators): ``agreement.agreement_summary`` (``--resamples`` bootstrap resamples), ``bias.bias_summary``
(with usernames, as ``bias_for`` adds them), ``report.over_time`` (votes spread over 30 days),
``services.reliability_figures`` (Dawid-Skene) and ``report.report_figures``, stored as one
``QualityReport`` of one campaign in a scratch SQLite database (migrated). The database holds no
votes, so the page finds the report fresh and queues nothing: what is timed is reading the stored
report and rendering the table, charts and CSV. Each request's time is the median of ``--repeats``
after one warm-up request. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import by_annotator, synthetic_screen, synthetic_votes  # noqa: E402

FLOOR_S = 1.0


def stored_figures(*, votes: int, annotators: int, resamples: int, seed: int) -> tuple[dict, dict[str, float]]:
    """The figures a ``QualityReport`` stores for the synthetic votes, and each step's seconds."""
    from feedback.quality.agreement import agreement_summary
    from feedback.quality.bias import bias_summary
    from feedback.quality.report import over_time, report_figures
    from feedback.quality.services import reliability_figures

    steps: dict[str, float] = {}
    items, raters, choices, strengths = synthetic_votes(votes=votes, annotators=annotators, per_item=3, seed=seed)
    shown, ms = synthetic_screen(raters, choices, seed=seed)
    start = time.perf_counter()
    agreement = agreement_summary(items, raters, choices, strengths, resamples=resamples, seed=seed)
    steps["agreement_s"] = time.perf_counter() - start
    start = time.perf_counter()
    bias = bias_summary(*by_annotator(raters, items, choices, shown, ms))
    for row in bias["per_annotator"]:
        row["username"] = f"annotator-{row['annotator']:03d}"
    steps["bias_s"] = time.perf_counter() - start
    start = time.perf_counter()
    first = datetime(2026, 11, 1, tzinfo=timezone.utc)
    moments = [first + timedelta(seconds=int(s)) for s in np.linspace(0, 30 * 86_400 - 1, len(items))]
    trend = over_time(items, raters, choices, moments)
    steps["over_time_s"] = time.perf_counter() - start
    start = time.perf_counter()
    reliability = reliability_figures(items, raters, choices)
    steps["reliability_s"] = time.perf_counter() - start
    totals = np.bincount(np.asarray(raters), weights=np.array([t or 0 for t in ms], dtype=float))
    ms_totals = {int(r): float(total) for r, total in enumerate(totals) if total}
    figures = report_figures(agreement=agreement, bias=bias, ms_totals=ms_totals, over_time=trend)
    figures["reliability"] = reliability
    return figures, steps


def timed(client, url: str, *, repeats: int) -> tuple[float, list[float], int]:
    """Median seconds of ``repeats`` GETs after one warm-up, every run, and the response's size in bytes."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(url)
        runs.append(time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(runs), runs, len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="arbiter-bench-quality-page-") as folder:
        os.environ.update(DATABASE_URL=f"sqlite:///{folder}/bench.sqlite3", DJANGO_SETTINGS_MODULE="config.settings",
                          ALLOWED_HOSTS="testserver,localhost")
        os.environ.setdefault("SECRET_KEY", "bench")
        os.environ.setdefault("DEBUG", "0")
        os.environ.setdefault("HTTPS", "0")
        import django

        warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic in a scratch run
        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client
        from django.utils import timezone as django_timezone

        from feedback.models import Campaign, QualityReport

        figures, steps = stored_figures(votes=args.votes, annotators=args.annotators, resamples=args.resamples,
                                        seed=args.seed)
        call_command("migrate", verbosity=0)
        User = get_user_model()
        ids = sorted(row["annotator"] for row in figures["annotators"])
        User.objects.bulk_create([User(id=i, username=f"annotator-{i:03d}", password="!") for i in ids])
        admin = User.objects.create_superuser(username="bench-admin", password="!", id=max(ids) + 1)
        campaign = Campaign.objects.create(name="Bench", slug="bench", status="active")
        QualityReport.objects.create(campaign=campaign, figures=figures, vote_count=args.votes, last_vote_id=args.votes,
                                     status="succeeded", computed_at=django_timezone.now())
        stored_bytes = len(json.dumps(figures))
        client = Client()
        client.force_login(admin)
        url = f"/manage/campaigns/{campaign.pk}/quality/"
        page_s, page_runs, page_bytes = timed(client, url, repeats=args.repeats)
        csv_s, csv_runs, csv_bytes = timed(client, url + "?format=csv", repeats=args.repeats)

    annotators = len(figures["annotators"])
    print(f"{args.votes:,} synthetic votes, {annotators} annotators, {args.resamples} resamples; "
          f"stored figures {stored_bytes / 1e6:.2f} MB of JSON")
    print("  computing the stored figures (once, not timed by the floor): "
          + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
    print(f"  page (HTML, {page_bytes / 1e3:.0f} kB): median {page_s:.3f} s of {args.repeats}; "
          f"runs {', '.join(f'{t:.3f}' for t in page_runs)}")
    print(f"  CSV ({csv_bytes / 1e3:.0f} kB): median {csv_s:.3f} s of {args.repeats}; "
          f"runs {', '.join(f'{t:.3f}' for t in csv_runs)}")
    print(f"  floor {FLOOR_S:.0f} s: {'met' if page_s < FLOOR_S else 'NOT met'}")
    print(json.dumps({"page_s": round(page_s, 4), "csv_s": round(csv_s, 4), "annotators": annotators,
                      "floor_met": page_s < FLOOR_S}))


if __name__ == "__main__":
    main()
