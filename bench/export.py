#!/usr/bin/env python
"""Export throughput and memory: 1,000,000 votes on 250,000 comparisons, exported as TRL JSONL and Parquet.

    .venv/bin/python bench/export.py                                   # SQLite and PostgreSQL
    .venv/bin/python bench/export.py --databases sqlite --votes 100000 --comparisons 25000
    .venv/bin/python bench/export.py --pg-url postgres://postgres@127.0.0.1:5432/postgres

For each database a fresh scratch database is made (SQLite: a file in a temporary folder;
PostgreSQL: ``CREATE DATABASE arbiter_bench_<pid>`` on the server of ``--pg-url``, dropped at the
end) and migrated. It is filled with raw SQL in one transaction, not the ORM: ``executemany``
INSERTs on SQLite, ``COPY ... FROM STDIN`` on PostgreSQL (the ORM's ``bulk_create`` would take
minutes to build a million model instances and is not what is being measured). Per comparison:
its own prompt (10% eval), two completions of about 300 characters by two of eight models, and
``votes / comparisons`` votes by distinct annotators of 200; about 80% of comparisons have a strict
A-or-B majority, the rest are ties, both-bad or split.

Each export runs in a fresh child process through ``feedback.exports.services.export_write`` with
the number of worker processes a background export job would use (``ARBITER_EXPORT_WORKERS``,
default min(2, CPUs), from 200,000 votes on; ``--workers`` overrides): keyset-paginated stream,
tallies counted by the database, aggregation, writer, part files joined, temp file, rename,
SHA-256. Figures per database and file type: wall seconds, votes read per second, TRL rows written
per second (the floor: 50,000), and peak RSS (``ru_maxrss``) of the exporting process and of its
largest worker; ``total_peak_rss_mib`` = the exporter's + workers x the largest worker's, an upper
bound on the memory used at once (the floor: under 1 GiB). The last line is one JSON object with
every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ANNOTATORS = 200
MODELS = [f"model-{k}" for k in range(8)]
FILLER = (
    "Here is a careful answer that walks through the reasoning step by step, names the assumptions, "
    "gives a worked example and ends with a short summary so the reader can check each part. "
)
FLOOR_ROWS_PER_S = 50_000  # TRL rows written per second (votes read per second is ~5x that)
FLOOR_RSS_MIB = 1024


def _django(database_url: str, data_dir: str | None = None) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ.setdefault("DEBUG", "0")
    if data_dir:
        os.environ["ARBITER_DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _votes_of(comparison: int, per: int, rng: random.Random) -> list[tuple[str, str]]:
    """(choice, strength) for each vote of one comparison."""
    draw = rng.random()
    if draw < 0.80:  # a clear majority for a or b
        winner, loser = ("a", "b") if rng.random() < 0.5 else ("b", "a")
        choices = [winner] * (per - 1 if per > 2 else per) + [loser] * (1 if per > 2 else 0)
    elif draw < 0.88:
        choices = ["tie"] * per
    elif draw < 0.94:
        choices = ["both_bad"] * per
    else:
        choices = [("a", "b")[k % 2] for k in range(per)]
    return [(c, rng.choice(("slight", "clear", "strong")) if c in ("a", "b") else "") for c in choices]


def populate(*, votes: int, comparisons: int, seed: int) -> dict:
    """Fill the migrated scratch database; returns timings."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from feedback.messages import messages_sha256

    started = time.perf_counter()
    rng = random.Random(seed)
    User = get_user_model()
    User.objects.bulk_create([User(username=f"bench-annotator-{k}", password="!") for k in range(ANNOTATORS)])
    user_ids = list(User.objects.order_by("id").values_list("id", flat=True))
    per = max(1, votes // comparisons)
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    postgres = connection.vendor == "postgresql"

    def prompts():
        for i in range(1, comparisons + 1):
            messages = [{"role": "user", "content": f"Question {i}: explain topic {i % 997} in a few sentences."}]
            yield (i, json.dumps(messages), messages_sha256(messages), "bench", "[]",
                   "eval" if i % 10 == 0 else "train", now)

    def completions():
        for i in range(1, comparisons + 1):
            for side in (0, 1):
                yield (2 * i - 1 + side, i, MODELS[(i + 3 * side) % len(MODELS)],
                       f"Answer {side} to question {i}. " + FILLER, "{}", False, False, now)

    def comparison_rows():
        for i in range(1, comparisons + 1):
            yield (i, i, 2 * i - 1, 2 * i, per, per, 0, "complete", "", "", now)

    def vote_rows():
        vote_id = 0
        for i in range(1, comparisons + 1):
            for k, (choice, strength) in enumerate(_votes_of(i, per, rng)):
                vote_id += 1
                annotator = user_ids[(i * 7 + k * 13) % ANNOTATORS]
                yield (vote_id, i, annotator, choice, strength, "", "", "", "", "a" if k % 2 else "b",
                       1000 + vote_id % 5000, "annotator", now + timedelta(seconds=vote_id))

    tables = [
        ("feedback_prompt", "id, messages, messages_sha256, source, tags, split, created_at", prompts),
        ("feedback_completion",
         "id, prompt_id, model_name, text, generation_params, is_truncated, is_empty, created_at", completions),
        ("feedback_comparison",
         "id, prompt_id, completion_a_id, completion_b_id, votes_required, vote_count, priority, status, gold_choice,"
         " external_id, created_at", comparison_rows),
        ("feedback_vote",
         "id, comparison_id, annotator_id, choice, strength, rationale, helpfulness, harmlessness, honesty, shown_left,"
         " ms_on_item, source, created_at", vote_rows),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for table, columns, rows in tables:
            if postgres:
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows():
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(columns.split(",")))
                batch = []
                for row in rows():
                    batch.append(row)
                    if len(batch) >= 50_000:
                        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", batch)
                        batch = []
                if batch:
                    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    from feedback.models import Vote

    return {"populate_s": round(time.perf_counter() - started, 1), "votes": Vote.objects.count()}


def export(*, file_type: str, out_dir: str, workers: int | None) -> dict:
    """One TRL preference export in this (fresh) process, as a background export job writes it
    (``export_workers`` processes unless ``workers`` is given); returns its figures."""
    import resource

    from feedback.exports.services import export_request_check, export_workers, export_write
    from feedback.exports.stream import vote_last_id, votes_matching

    baseline_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    request = export_request_check(format="trl-preference", file_type=file_type)
    started = time.perf_counter()
    max_vote_id = vote_last_id()
    votes = votes_matching(filters=request.filters, max_vote_id=max_vote_id).count()
    workers = export_workers(votes) if workers is None else workers
    result, counts = export_write(
        request=request, path=Path(out_dir) / f"bench-trl.{file_type}", max_vote_id=max_vote_id, workers=workers,
        votes_total=votes,
    )
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if workers > 1 else 0.0
    return {
        "file_type": file_type, "workers": workers, "seconds": round(seconds, 2), "votes_read": counts["votes_read"],
        "rows": result.rows, "votes_per_s": round(counts["votes_read"] / seconds),
        "rows_per_s": round(result.rows / seconds), "peak_rss_mib": round(peak_mib),
        "worker_peak_rss_mib": round(worker_peak_mib),
        # All processes at their peaks at once: an upper bound on the export's memory.
        "total_peak_rss_mib": round(peak_mib + (workers * worker_peak_mib if workers > 1 else 0)),
        "baseline_rss_mib": round(baseline_mib), "file_mib": round(result.size_bytes / 2**20, 1),
    }


def _child(*args: str) -> dict:
    command = [sys.executable, __file__, *args]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if completed.returncode:
        sys.stderr.write(completed.stdout + completed.stderr)
        raise SystemExit(f"child failed: {' '.join(args)}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _pg_admin(pg_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(sql)


def bench_database(name: str, url: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-export-") as out_dir:
        print(f"[{name}] migrating and filling {args.votes:,} votes on {args.comparisons:,} comparisons ...", flush=True)
        filled = _child("--child", "populate", "--database-url", url, "--votes", str(args.votes),
                        "--comparisons", str(args.comparisons), "--out-dir", out_dir)
        print(f"[{name}] filled in {filled['populate_s']} s ({filled['votes']:,} votes)", flush=True)
        figures = {"populate_s": filled["populate_s"], "votes": filled["votes"]}
        for file_type in ("jsonl", "parquet"):
            extra = ["--workers", str(args.workers)] if args.workers else []
            run = _child("--child", "export", "--database-url", url, "--file-type", file_type, "--out-dir", out_dir, *extra)
            print(
                f"[{name}] TRL {file_type}: {run['votes_read']:,} votes -> {run['rows']:,} rows in {run['seconds']} s: "
                f"{run['votes_per_s']:,} votes/s, {run['rows_per_s']:,} rows/s, {run['workers']} worker(s), "
                f"peak RSS {run['peak_rss_mib']} MiB (+ {run['worker_peak_rss_mib']} MiB per worker), "
                f"file {run['file_mib']} MiB",
                flush=True,
            )
            figures[file_type] = run
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--comparisons", type=int, default=250_000)
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server to create the scratch database on (its maintenance database)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, help="export processes (default: what a background export job uses, "
                        "ARBITER_EXPORT_WORKERS from ARBITER_EXPORT_PARALLEL_MIN_VOTES votes on)")
    parser.add_argument("--child", choices=["populate", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--file-type", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        _django(args.database_url, args.out_dir)
        if args.child == "populate":
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            print(json.dumps(populate(votes=args.votes, comparisons=args.comparisons, seed=args.seed)))
        else:
            print(json.dumps(export(file_type=args.file_type, out_dir=args.out_dir, workers=args.workers)))
        return

    results: dict = {"votes": args.votes, "comparisons": args.comparisons, "format": "trl-preference",
                     "floor_rows_per_s": FLOOR_ROWS_PER_S, "floor_peak_rss_mib": FLOOR_RSS_MIB,
                     "fill": "raw SQL: executemany INSERT (SQLite), COPY FROM STDIN (PostgreSQL)"}
    for name in [d.strip() for d in args.databases.split(",") if d.strip()]:
        if name == "sqlite":
            with tempfile.TemporaryDirectory(prefix="arbiter-bench-sqlite-") as folder:
                results[name] = bench_database(name, f"sqlite:///{folder}/bench.sqlite3", args)
        elif name == "postgres":
            scratch = f"arbiter_bench_{os.getpid()}"
            base, _, _ = args.pg_url.rpartition("/")
            _pg_admin(args.pg_url, f"CREATE DATABASE {scratch}")
            try:
                results[name] = bench_database(name, f"{base}/{scratch}", args)
            finally:
                _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
        else:
            raise SystemExit(f"unknown database {name!r}; expected sqlite or postgres")
    runs = [results[d][t] for d in ("sqlite", "postgres") if d in results for t in ("jsonl", "parquet")]
    results["meets_floor"] = all(
        r["rows_per_s"] >= FLOOR_ROWS_PER_S and r["total_peak_rss_mib"] < FLOOR_RSS_MIB for r in runs
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
