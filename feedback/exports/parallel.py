"""One export written by several processes at once.

The comparisons an export reads are cut into ``workers`` contiguous ranges of comparison ids holding
about equally many matching votes (``vote_ranges``). Each range is streamed by its own forked
process into a part file (``services.export_write_unpublished``: the same stream, aggregation and
writer as a one-process export), and the parts are joined in range order
(``writers.parts_join``), so the file has the same rows in the same order as a one-process export,
whatever the number of workers. Everything happens in a temporary folder beside the destination,
and the joined file is published by rename with its checksum (``files.published``), so a failing
worker leaves nothing behind.

Forking needs the parent's database connections closed first (a child must open its own), which
is only safe outside a transaction: inside one, and for ``hf-dataset`` (one ``datasets`` folder),
``can_split`` says no and the export runs in one process.

What every worker needs from the whole database (the eval keys that decide splits, the ids of the
eval-set prompts to leave out) is read once, in the parent, and inherited by the forked workers.

Progress: each worker sends (votes read, rows written) after every chunk; the parent adds up the
latest figures of every worker and calls ``progress`` with the totals.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import queue as queue_module
import signal
import threading
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from django.db import connection, connections

from . import files
from .filters import ExportFilters, ExportRequest
from .formats import FORMATS, PARQUET
from .stream import eval_prompt_keys, votes_matching
from .writers import JOINABLE, WriteResult, parts_join

POLL_S = 0.2


def can_split(file_type: str) -> bool:
    """Whether an export of ``file_type`` can be written by several processes here and now."""
    return file_type in JOINABLE and not connection.in_atomic_block


def vote_ranges(
    *, filters: ExportFilters, max_vote_id: int | None, parts: int, total: int | None = None
) -> list[tuple[int, int]]:
    """Up to ``parts`` contiguous, disjoint ``(first, last)`` comparison-id ranges that together
    cover every comparison with a matching vote, each holding about ``1/parts`` of those votes
    (cut at the comparison ids of the votes at each ``k/parts`` quantile, in comparison-id order).
    Empty when no vote matches. ``total``: the number of matching votes, when known already."""
    votes = votes_matching(filters=filters, max_vote_id=max_vote_id).order_by("comparison_id")
    total = votes.count() if total is None else total
    if not total:
        return []
    ids = votes.values_list("comparison_id", flat=True)
    first, last = ids.first(), votes.order_by("-comparison_id").values_list("comparison_id", flat=True).first()
    cuts = sorted({ids[total * k // parts] for k in range(1, parts)} - {first})
    starts = [first, *cuts]
    return [(start, end - 1) for start, end in zip(starts, starts[1:])] + [(starts[-1], last)]


def _import_pyarrow() -> None:
    import pyarrow.parquet  # noqa: F401


def _part(channel, index: int, request: ExportRequest, path: Path, max_vote_id, salt: bytes, id_range, eval_keys,
          eval_set_prompts) -> None:
    """A worker process: write one range to ``path``; report progress, then the outcome, on ``channel``."""
    from .services import export_write_unpublished

    # A forked worker inherits the parent's handlers (db_worker's turn SIGTERM into "finish the
    # current task"); the parent stops a worker with SIGTERM and means it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        rows, counts = export_write_unpublished(
            request=request, path=path, max_vote_id=max_vote_id, salt=salt, id_range=id_range, eval_keys=eval_keys,
            eval_set_prompts=eval_set_prompts, progress=lambda votes, written: channel.put(("progress", index, votes, written)),
        )
        channel.put(("done", index, rows, counts))
    except BaseException as error:  # reported to the parent, which fails the export with it
        channel.put(("error", index, f"{type(error).__name__}: {error}"))
    finally:
        connections.close_all()


def export_write_parallel(
    *,
    request: ExportRequest,
    path: Path,
    max_vote_id: int | None,
    progress: Callable[[int, int], None] | None,
    salt: bytes,
    workers: int,
    votes_total: int | None = None,
    eval_set_prompts: frozenset[int] = frozenset(),
) -> tuple[WriteResult, dict[str, int]]:
    """``services.export_write`` with ``workers`` processes (see the module docstring).
    ``eval_set_prompts``: the prompt ids to leave out, read once by the caller; the forked
    workers inherit it (no worker matches eval sets again).

    Returns:
        As ``export_write``; ``counts`` are the sums over the workers.
    Raises:
        RuntimeError: a worker failed or died: "export worker K failed: <its error>"; the other
            workers are stopped and nothing is left at ``path``.
    """
    # pyarrow (~0.4 s to import) is imported once, here, for the workers to inherit: in a thread,
    # while this one waits on the database for the ranges and the eval keys, and finished before
    # the fork (forking beside a running thread is unsafe).
    importer = threading.Thread(target=_import_pyarrow) if request.file_type == PARQUET else None
    if importer is not None:
        importer.start()
    try:
        ranges = vote_ranges(filters=request.filters, max_vote_id=max_vote_id, parts=workers, total=votes_total)
        eval_keys = eval_prompt_keys()  # once, here; the forked workers inherit it
    finally:
        if importer is not None:
            importer.join()
    ranges = ranges or [(0, 0)]
    columns = FORMATS[request.format].columns(request.options)
    path = Path(path)
    connections.close_all()  # each child opens its own; this process reopens when it next asks
    context = multiprocessing.get_context("fork")
    channel = context.Queue()
    with files.published(path) as temporary, tempfile.TemporaryDirectory(prefix=".parts-", dir=path.parent) as work:
        parts = [Path(work) / f"part-{k:03d}" for k in range(len(ranges))]
        processes = [
            context.Process(target=_part, args=(channel, k, request, parts[k], max_vote_id, salt, id_range, eval_keys,
                                                     eval_set_prompts), daemon=True)
            for k, id_range in enumerate(ranges)
        ]
        for process in processes:
            process.start()
        try:
            rows, counts = _collect(channel, processes, progress)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
                process.join()
        digest = hashlib.sha256() if request.file_type != PARQUET else None  # Parquet: re-read (small)
        parts_join(file_type=request.file_type, parts=parts, path=temporary, columns=columns, digest=digest)
        checksum = digest.hexdigest() if digest is not None else files.checksum(temporary)
        size = files.size_bytes(temporary)
    return WriteResult(rows=rows, checksum=checksum, size_bytes=size), counts


def _collect(channel, processes, progress) -> tuple[int, dict[str, int]]:
    """Wait for every worker's outcome, passing summed progress on; the summed rows and counts."""
    latest = {k: (0, 0) for k in range(len(processes))}
    pending = set(latest)
    rows, counts = 0, Counter()
    gone: set[int] = set()  # exited without a word at the last poll: dead if still silent at the next
    while pending:
        try:
            message = channel.get(timeout=POLL_S)
        except queue_module.Empty:
            for k in sorted(pending):
                if processes[k].exitcode is not None:
                    if k in gone:
                        raise RuntimeError(f"export worker {k} died (exit code {processes[k].exitcode})")
                    gone.add(k)
            continue
        kind, index = message[0], message[1]
        if kind == "error":
            raise RuntimeError(f"export worker {index} failed: {message[2]}")
        if kind == "progress":
            latest[index] = (message[2], message[3])
            if progress is not None:
                progress(sum(v for v, _ in latest.values()), sum(r for _, r in latest.values()))
        else:
            pending.discard(index)
            rows += message[2]
            counts.update(message[3])
    ordered = {"votes_read": counts.pop("votes_read", 0), "comparisons": counts.pop("comparisons", 0)}
    return rows, {**ordered, **dict(sorted(counts.items()))}
