#!/usr/bin/env python
"""Peak memory of imports fed the worst files that fit under the upload limit (20 MB).

    .venv/bin/python bench/import_memory.py                 # every case
    .venv/bin/python bench/import_memory.py --cases gzip-bomb parquet-rows --rows 20000

The files are built in a temporary folder, under ``feedback.imports.UPLOAD_MAX_BYTES``:

- ``gzip-bomb``: gzip of one TRL line with a 1.9-million-character response, repeated ``BOMB_LINES``
  times (380 MB from a file of about 400 KB); refused at ``ARBITER_IMPORT_MAX_DECOMPRESSED_BYTES``;
- ``gzip-long-lines``: gzip of distinct lines of 500,000 characters, as many as fit under the
  decompressed limit: imported;
- ``gzip-short-lines``: gzip of ``--rows`` distinct short TRL pairs (default ``ARBITER_IMPORT_MAX_ROWS``): imported;
- ``gzip-too-many-rows``: gzip of twice the row limit in short lines: refused;
- ``parquet-dictionary``: Parquet whose responses are one dictionary value of 1.9 million
  characters repeated on ``--rows`` rows (a few hundred KB on disk); refused before the value is expanded;
- ``parquet-short-rows``: Parquet of ``--rows`` distinct conversational pairs: imported;
- ``parquet-rows``: Parquet claiming 50 million rows of run-length-encoded values; refused from the metadata;
- ``json-nested``: a line of 5 MB of ``[`` (deeper than the interpreter can parse), and
  ``json-containers``: a line of 3 million empty arrays; refused at ``ARBITER_IMPORT_MAX_DEPTH``;
- ``hh-long-lines`` / ``demonstrations-bomb``: the HH-RLHF and demonstration importers fed a gzip bomb.

Each import runs in a fresh child process on a scratch SQLite database (migrated once), through
``preferences_import_upload`` as the page and API call it (the upload given in 64 KB chunks). The
child records its peak RSS (``VmHWM``) after Django, pyarrow and the importers are loaded
(idle) and after the import; the figure is the difference. The floor: under 300 MiB above idle
for every case. The last line is one JSON object with every figure and ``meets_floor``.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOOR_MIB = 300
BOMB_LINES = 200  # 380 MB decompressed: past any sensible limit; more lines only make the file slower to build
CASES = (
    "gzip-bomb", "gzip-long-lines", "gzip-short-lines", "gzip-too-many-rows", "parquet-dictionary",
    "parquet-rows", "parquet-short-rows", "json-nested", "json-containers", "hh-long-lines", "demonstrations-bomb",
)


def _django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _pair_line(n: int, chosen: str) -> str:
    row = {"prompt": [{"role": "user", "content": f"Question {n}?"}],
           "chosen": [{"role": "assistant", "content": chosen}],
           "rejected": [{"role": "assistant", "content": f"No {n}."}]}
    return json.dumps(row) + "\n"


def _gzip_lines(path: Path, lines, cap: int) -> Path:
    """Write ``lines`` gzipped until the file would pass ``cap`` bytes."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as handle:
        for line in lines:
            handle.write(line.encode())
            if raw.tell() > cap - 1024 * 1024:
                break
    return path


def build(case: str, folder: Path, *, rows: int, cap: int, limits) -> tuple[Path, str]:
    """The file for ``case`` and the importer to run (``trl``, ``hh-rlhf`` or ``demonstrations``)."""
    path = folder / f"{case}.bin"
    big = "x" * 1_900_000
    if case == "gzip-bomb":
        return _gzip_lines(path, (_pair_line(n, big) for n in range(BOMB_LINES)), cap), "trl"
    if case == "gzip-long-lines":
        count = limits.max_decompressed_bytes // 500_100 - 1
        return _gzip_lines(path, (_pair_line(n, f"{n} " + "y" * 500_000) for n in range(count)), cap), "trl"
    if case == "gzip-short-lines":
        return _gzip_lines(path, (_pair_line(n, f"Answer {n}.") for n in range(rows)), cap), "trl"
    if case == "gzip-too-many-rows":
        return _gzip_lines(path, (_pair_line(n, "a") for n in range(2 * rows)), cap), "trl"
    if case == "hh-long-lines":
        line = json.dumps({"chosen": "\n\nHuman: Q\n\nAssistant: " + big, "rejected": "\n\nHuman: Q\n\nAssistant: no"}) + "\n"
        return _gzip_lines(path, (line for _ in range(BOMB_LINES)), cap), "hh-rlhf"
    if case == "demonstrations-bomb":
        line = json.dumps({"prompt": "Q", "completion": big}) + "\n"
        return _gzip_lines(path, (line for _ in range(BOMB_LINES)), cap), "demonstrations"
    if case == "json-nested":
        path.write_bytes(b'{"prompt": ' + b"[" * 5_000_000 + b"}\n")
        return path, "trl"
    if case == "json-containers":
        path.write_bytes(b'{"prompt": [' + b"[]," * 3_000_000 + b"[]]}\n")
        return path, "trl"
    import pyarrow as pa
    import pyarrow.parquet as pq

    if case == "parquet-dictionary":
        count = rows  # as many rows as the limit lets through, so the dictionary check is what refuses it
        chosen = pa.DictionaryArray.from_arrays(pa.array([0] * count, pa.int32()), pa.array([big]))
        table = pa.table({"prompt": pa.array([f"Q {n}" for n in range(count)]), "chosen": chosen, "rejected": chosen})
        pq.write_table(table, path, compression="zstd", compression_level=19)
        return path, "trl"
    if case == "parquet-short-rows":
        table = pa.Table.from_pylist([json.loads(_pair_line(n, f"Parquet answer {n}.")) for n in range(rows)])
        pq.write_table(table, path)
        return path, "trl"
    if case == "parquet-rows":
        count = 50_000_000
        import numpy

        text = pa.DictionaryArray.from_arrays(pa.array(numpy.zeros(count, numpy.int8)), pa.array(["same"]))
        pq.write_table(pa.table({"prompt": text, "chosen": text, "rejected": text}), path, compression="zstd",
                       row_group_size=count)
        return path, "trl"
    raise ValueError(case)


def _peak_mib() -> float:
    """This process's peak RSS in MiB: ``VmHWM`` (Linux), which, unlike ``ru_maxrss``, starts afresh
    at ``exec`` rather than carrying over the parent's peak at ``fork``."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(case: str, path: str, importer: str) -> None:
    """Run one import; print ``{"case", "idle_mib", "peak_mib", "above_idle_mib", "outcome"}``."""
    import pyarrow.parquet  # noqa: F401  loaded before idle is taken, as in a web worker that has imported once

    from feedback import imports
    from feedback.jsonl import JSONLFormatError

    idle = _peak_mib()

    def chunks():
        with open(path, "rb") as handle:
            while chunk := handle.read(64 * 1024):
                yield chunk

    try:
        if importer == "demonstrations":
            summary = imports.demonstrations_import(path=path)
        else:
            summary = imports.preferences_import_upload(chunks=chunks(), format=importer)
        outcome = f"imported {summary.imported} of {summary.lines}"
    except JSONLFormatError as error:
        outcome = "refused: " + " ".join(str(error).splitlines()[1:2])[:160]
    peak = _peak_mib()
    print(json.dumps({"case": case, "idle_mib": round(idle), "peak_mib": round(peak),
                      "above_idle_mib": round(peak - idle), "outcome": outcome}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--rows", type=int, default=None, help="rows of gzip-short-lines (default ARBITER_IMPORT_MAX_ROWS)")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "PATH", "IMPORTER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _django(os.environ["DATABASE_URL"])
        child(*args.child)
        return

    with tempfile.TemporaryDirectory(prefix="arbiter-import-bench-") as folder:
        folder = Path(folder)
        database_url = f"sqlite:///{folder / 'bench.sqlite3'}"
        _django(database_url)
        from django.core.management import call_command

        from feedback.imports import UPLOAD_MAX_BYTES, import_limits

        call_command("migrate", verbosity=0)
        limits = import_limits()
        rows = args.rows or limits.max_rows
        print(f"limits: {limits}; upload limit {UPLOAD_MAX_BYTES:,} bytes; floor {FLOOR_MIB} MiB above idle")
        figures = []
        for case in args.cases:
            path, importer = build(case, folder, rows=rows, cap=UPLOAD_MAX_BYTES, limits=limits)
            size = path.stat().st_size
            result = subprocess.run(
                [sys.executable, __file__, "--child", case, str(path), importer], cwd=ROOT,
                capture_output=True, text=True, env=os.environ | {"DATABASE_URL": database_url},
            )
            if result.returncode:
                print(f"{case}: the child failed\n{result.stderr[-3000:]}")
                figures.append({"case": case, "file_bytes": size, "above_idle_mib": None, "outcome": "crashed"})
                continue
            figure = json.loads(result.stdout.strip().splitlines()[-1]) | {"file_bytes": size}
            figures.append(figure)
            print(f"{case:22} {size / 1e6:7.2f} MB file  {figure['above_idle_mib']:5d} MiB above idle "
                  f"(idle {figure['idle_mib']} MiB)  {figure['outcome']}")
            path.unlink()
        worst = max((f["above_idle_mib"] for f in figures if f["above_idle_mib"] is not None), default=None)
        meets = all(f["above_idle_mib"] is not None and f["above_idle_mib"] < FLOOR_MIB for f in figures)
        print(json.dumps({"floor_mib": FLOOR_MIB, "worst_above_idle_mib": worst, "meets_floor": meets, "cases": figures}))


if __name__ == "__main__":
    main()
