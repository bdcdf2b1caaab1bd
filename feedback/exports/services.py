"""Export jobs: check a request, record it, write the file (inline or in the worker), record the outcome.

Inline or background (``export_create(mode="auto")``): an export runs inline, in the request that
asks for it, when at most ``settings.ARBITER_EXPORT_INLINE_MAX_VOTES`` votes (default 20,000:
well under a second) match its filters and it is not a ``hf-dataset`` (which loads the
``datasets`` library, too heavy for a web process); otherwise it is queued as a background task
(``feedback.tasks.export_execute``) and the page and API show its progress. ``manage.py
export_preferences`` always runs inline, in the command's own process.
"""
from __future__ import annotations

import gc
import logging
import secrets
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from feedback.evalsets.exclusion import eval_set_prompt_ids
from feedback.governance.enforcement import export_audit, export_policy_check
from feedback.models import Export, ExportStatus

from . import files
from .filters import ExportRequest, ExportRequestError, export_request_parse
from .formats import FORMATS, HF_DATASET, JSONL, FormatContext, Pseudonyms, export_rows, needs_eval_set_prompts
from .stream import comparison_groups, vote_last_id, votes_matching
from .writers import WriteResult, rows_write_unpublished

logger = logging.getLogger(__name__)

EXPORTS_DIR = "exports"
INLINE_MAX_VOTES = 20_000
PARALLEL_MIN_VOTES = 200_000
PROGRESS_EVERY_S = 1.0
STALE_AFTER = timedelta(minutes=15)
SUFFIXES = {"jsonl": ".jsonl", "parquet": ".parquet", "csv": ".csv", HF_DATASET: "-hf"}
MODES = ("auto", "inline", "background")

Progress = Callable[[int, int], None]  # (votes read so far, rows written so far)


def exports_root() -> Path:
    """``ARBITER_DATA_DIR/exports``: where export files live."""
    return Path(settings.ARBITER_DATA_DIR) / EXPORTS_DIR


def inline_max_votes() -> int:
    return int(getattr(settings, "ARBITER_EXPORT_INLINE_MAX_VOTES", INLINE_MAX_VOTES))


def export_workers(votes: int) -> int:
    """Processes to write an export of ``votes`` matching votes with: ``ARBITER_EXPORT_WORKERS``
    from ``ARBITER_EXPORT_PARALLEL_MIN_VOTES`` votes on (default 200,000), else 1."""
    if votes < int(getattr(settings, "ARBITER_EXPORT_PARALLEL_MIN_VOTES", PARALLEL_MIN_VOTES)):
        return 1
    return max(1, int(getattr(settings, "ARBITER_EXPORT_WORKERS", 1)))


def _annotator_ids(values: Any, field: str) -> Any:
    """Usernames (and ids) in a filter list -> ids. Anything not a list is left for the filter check.

    Raises:
        ExportRequestError: ``{field: "no such annotator: ..."}``.
    """
    if not isinstance(values, (list, tuple)):
        return values
    names = [v for v in values if isinstance(v, str)]
    ids = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if len(names) + len(ids) != len(values):
        return values  # the filter check names the problem
    User = get_user_model()
    found = dict(User.objects.filter(username__in=names).values_list("username", "id")) if names else {}
    known_ids = set(User.objects.filter(id__in=ids).values_list("id", flat=True)) if ids else set()
    missing = [n for n in names if n not in found] + [str(i) for i in ids if i not in known_ids]
    if missing:
        raise ExportRequestError({field: f"no such annotator: {', '.join(missing)}"})
    return sorted({*ids, *found.values()})


def export_request_check(
    *, format: Any, file_type: Any, filters: Mapping[str, Any] | None = None, options: Mapping[str, Any] | None = None
) -> ExportRequest:
    """Check an export request completely (``feedback.exports.filters.export_request_parse``),
    turning annotator usernames in ``annotators`` / ``exclude_annotators`` into user ids.

    Raises:
        ValidationError: ``{field: [message]}`` for every problem: ``format`` (an unknown name),
            ``file_type``, ``filters`` or a filter's name (``date_from``, ``annotators``, ...), ``options``.
    """
    errors: dict[str, str] = {}
    if isinstance(filters, Mapping):
        filters = dict(filters)
        for field in ("annotators", "exclude_annotators"):
            if field in filters:
                try:
                    filters[field] = _annotator_ids(filters[field], field)
                except ExportRequestError as error:
                    errors.update(error.errors)
    try:
        request = export_request_parse(format=format, file_type=file_type, filters=filters, options=options)
    except ExportRequestError as error:
        errors = {**error.errors, **errors}
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})
    return request


@contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """Run a long export with fewer cyclic-GC passes: objects that exist already are frozen (never
    rescanned) and a collection starts after 100,000 new container objects instead of 700. Export
    rows are short-lived and acyclic (freed by reference counting), so the passes found nothing and
    cost about a quarter of the time. Both settings are restored afterwards."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def export_write(
    *,
    request: ExportRequest,
    path: Path,
    max_vote_id: int | None = None,
    progress: Progress | None = None,
    salt: bytes | None = None,
    workers: int = 1,
    id_range: tuple[int, int] | None = None,
    votes_total: int | None = None,
) -> tuple[WriteResult, dict[str, int]]:
    """Stream the votes ``request`` selects into ``path`` in its format and file type, atomically.

    Args:
        request: a checked request (``export_request_check``).
        path: the destination file (a directory for ``hf-dataset``); written under a temporary name
            beside it, then renamed.
        max_vote_id: votes with a larger id are left out (None: none are).
        progress: called after each chunk of comparisons with (votes read, rows written) so far.
        salt: the pseudonym salt (None: 32 fresh random bytes; see ``formats.Pseudonyms``).
        workers: processes to write with (``feedback.exports.parallel``); more than 1 only takes
            effect for JSONL, CSV and Parquet outside a transaction, otherwise one is used. The
            file is the same whatever the number.
        id_range: only comparisons with ``first <= id <= last`` (None: all).
        votes_total: how many votes match, when the caller has counted them (splits the work).
    Returns:
        ``(WriteResult, counts)``: counts has ``votes_read``, ``comparisons`` (with a matching vote)
        and, by reason, the comparisons that gave no row (``ties``, ``low_agreement``,
        ``eval_set_excluded``, ...) and the votes the quality rules left out (``left_out_low_gold``,
        ...; ``export_quality_apply``).
    Raises:
        OSError: the file cannot be written (nothing is left at ``path``).
        RuntimeError: a worker process failed (its error in the message; nothing left at ``path``).
    """
    from . import parallel
    from .quality import export_quality_apply

    salt = salt if salt is not None else secrets.token_bytes(32)
    request, left_out = export_quality_apply(request=request, max_vote_id=max_vote_id)
    # Read once, here (the parallel path's forked workers inherit it): one match per export.
    eval_set_prompts = _eval_set_prompts(request)
    if workers > 1 and parallel.can_split(request.file_type):
        result, counts = parallel.export_write_parallel(
            request=request, path=path, max_vote_id=max_vote_id, progress=progress, salt=salt, workers=workers,
            votes_total=votes_total, eval_set_prompts=eval_set_prompts,
        )
        return result, {**counts, **left_out}
    with files.published(Path(path)) as temporary:
        rows, counts = export_write_unpublished(
            request=request, path=temporary, max_vote_id=max_vote_id, progress=progress, salt=salt, id_range=id_range,
            eval_set_prompts=eval_set_prompts,
        )
        digest, size = files.checksum(temporary), files.size_bytes(temporary)
    return WriteResult(rows=rows, checksum=digest, size_bytes=size), {**counts, **left_out}


def _eval_set_prompts(request: ExportRequest) -> frozenset[int]:
    """Ids of every eval-set prompt and near-duplicate (``feedback.evalsets.exclusion.eval_set_prompt_ids``,
    as snapshots) when ``request`` leaves them out or marks them (``formats.needs_eval_set_prompts``);
    else empty, with no query."""
    return eval_set_prompt_ids() if needs_eval_set_prompts(request.format, request.options) else frozenset()


def export_write_unpublished(
    *,
    request: ExportRequest,
    path: Path,
    max_vote_id: int | None,
    progress: Progress | None,
    salt: bytes,
    id_range: tuple[int, int] | None = None,
    eval_keys: set[str] | None = None,
    eval_set_prompts: frozenset[int] | None = None,
) -> tuple[int, dict[str, int]]:
    """``export_write``'s work in this process, straight into ``path`` (no temporary name, no
    checksum): returns (rows written, counts). The parallel writer's parts are written this way.
    ``eval_keys`` (``stream.eval_prompt_keys``) and ``eval_set_prompts`` (the prompt ids to leave
    out or mark, ``_eval_set_prompts``): when the caller has them already (None: read here)."""
    if eval_set_prompts is None:
        eval_set_prompts = _eval_set_prompts(request)
    export_format = FORMATS[request.format]
    context = FormatContext(
        options=request.options, pseudonyms=Pseudonyms(salt=salt, real_names=request.options.real_usernames),
        labels=request.labels, eval_set_prompt_ids=eval_set_prompts,
    )
    leave_out = eval_set_prompts if request.leaves_out_eval_set_prompts else frozenset()
    votes_read = [0]

    def chunk_done(votes: int) -> None:
        votes_read[0] += votes
        if progress is not None:
            progress(votes_read[0], context.rows_made)

    groups = comparison_groups(
        filters=request.filters, vote_details=export_format.needs_vote_details,
        max_vote_id=max_vote_id, on_chunk=chunk_done, id_range=id_range, eval_keys=eval_keys,
    )
    rows = export_rows(groups, export_format=export_format, context=context, min_agreement=request.filters.min_agreement,
                       lines=request.file_type == JSONL, include_flagged=request.filters.include_flagged,
                       eval_set_prompt_ids=leave_out)
    with _fewer_gc_passes():
        count = rows_write_unpublished(
            rows=rows, columns=export_format.columns(request.options),
            file_type=request.file_type, path=Path(path), splits=request.filters.splits,
        )
    tally = {"votes_read": votes_read[0], "comparisons": context.groups_read}
    return count, {**tally, **dict(sorted(context.counts.items()))}


def _enqueue(export: Export) -> None:
    from feedback.tasks import export_execute

    result = export_execute.enqueue(export.pk)
    Export.objects.filter(pk=export.pk).update(task_id=str(result.id))


def export_create(
    *,
    format: Any,
    file_type: Any,
    filters: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    created_by=None,
    mode: str = "auto",
    progress: Progress | None = None,
    policy_override: str | None = None,
    remote_addr: str | None = None,
) -> Export:
    """Check an export request, record it, and run it inline or queue it (rule in the module docstring).

    Args:
        format: a name of ``feedback.exports.formats.FORMATS``.
        file_type: ``jsonl``, ``parquet``, ``hf-dataset`` or ``csv`` (raw votes only).
        filters, options: JSON-shaped (see ``feedback.exports.filters``); annotators by username or id.
        created_by: the admin asking, or None.
        mode: ``auto``, ``inline`` (run now, in this process) or ``background`` (queue a task).
        progress: for an inline run, called with (votes read, rows written) after each chunk.
        policy_override: an admin's written justification for exporting data its data-use policy
            refuses (``feedback.governance``); recorded in the audit trail with the export.
        remote_addr: the asking client's address, for the audit trail.
    Returns:
        The export: finished (succeeded or failed) when it ran inline, else queued.
    Raises:
        ValidationError: any bad input (see ``export_request_check``) or an unknown mode;
            ``{"policy": [...]}`` naming the sources and row counts the data-use policies refuse
            (rows on train prompts for training, on eval prompts for evaluation); nothing is
            recorded or written.
    """
    if mode not in MODES:
        raise ValidationError({"mode": [f"unknown mode {mode!r}; expected one of {', '.join(MODES)}"]})
    request = export_request_check(format=format, file_type=file_type, filters=filters, options=options)
    vote_id_max = vote_last_id()
    matching = votes_matching(filters=request.filters, max_vote_id=vote_id_max)
    policy = export_policy_check(votes=matching, splits=request.filters.splits, override=policy_override, user=created_by)
    votes_total = matching.count()
    inline = mode == "inline" or (
        mode == "auto" and votes_total <= inline_max_votes() and request.file_type != HF_DATASET
    )
    with transaction.atomic():
        export = Export.objects.create(
            format=request.format, file_type=request.file_type, filters=request.filters.as_dict(),
            options=request.options_dict(), inline=inline, vote_id_max=vote_id_max,
            votes_total=votes_total, created_by=created_by,
        )
        export_audit(export=export, check=policy, user=created_by, remote_addr=remote_addr)
        if not inline:
            transaction.on_commit(lambda: _enqueue(export))
    if inline:
        return export_run(export_id=export.pk, progress=progress)
    return export


def _final_path(export: Export) -> Path:
    name = f"{export.pk}-{secrets.token_hex(4)}-{export.format}{SUFFIXES[export.file_type]}"
    return exports_root() / name


def export_run(*, export_id: int, progress: Progress | None = None) -> Export:
    """Run a queued export to its end and return it (succeeded or failed). Does nothing to an
    export that is no longer queued (another worker took it, or it finished).

    The file is written as ``exports/<id>-<random>-<format>.<ext>`` under ``ARBITER_DATA_DIR``
    (temporary name, then rename); ``votes_read``, ``progress_rows`` and ``heartbeat_at`` are
    updated about once a second. A failure is recorded as ``error`` (one line) with the file
    removed; the traceback goes to the log.

    Raises:
        Export.DoesNotExist: no export with that id.
    """
    with transaction.atomic():
        export = Export.objects.select_for_update().get(pk=export_id)
        if export.status != ExportStatus.QUEUED:
            return export
        now = timezone.now()
        export.status, export.started_at, export.heartbeat_at = ExportStatus.RUNNING, now, now
        export.save(update_fields=["status", "started_at", "heartbeat_at"])
    request = export_request_parse(
        format=export.format, file_type=export.file_type, filters=export.filters, options=export.options
    )
    last_report = [0.0]

    def report(votes: int, rows: int) -> None:
        if progress is not None:
            progress(votes, rows)
        if time.monotonic() - last_report[0] >= PROGRESS_EVERY_S:
            last_report[0] = time.monotonic()
            Export.objects.filter(pk=export_id).update(votes_read=votes, progress_rows=rows, heartbeat_at=timezone.now())

    final = _final_path(export)
    try:
        result, counts = export_write(request=request, path=final, max_vote_id=export.vote_id_max, progress=report,
                                      workers=export_workers(export.votes_total), votes_total=export.votes_total)
    except Exception as error:  # recorded on the row; the worker and the request go on
        logger.error("export %s failed:\n%s", export_id, traceback.format_exc())
        Export.objects.filter(pk=export_id).update(
            status=ExportStatus.FAILED, error=f"{type(error).__name__}: {error}"[:10_000], finished_at=timezone.now()
        )
        return Export.objects.get(pk=export_id)
    updated = Export.objects.filter(pk=export_id, status=ExportStatus.RUNNING).update(
        status=ExportStatus.SUCCEEDED, file_path=final.relative_to(Path(settings.ARBITER_DATA_DIR)).as_posix(),
        checksum=result.checksum, size_bytes=result.size_bytes, row_count=result.rows, progress_rows=result.rows,
        votes_read=counts["votes_read"], counts=counts, finished_at=timezone.now(), heartbeat_at=timezone.now(),
    )
    if not updated:  # reaped as stale meanwhile: the row says failed, so the file goes
        from .files import remove

        remove(final)
    return Export.objects.get(pk=export_id)


def exports_reap() -> int:
    """Mark running exports with no progress for ``STALE_AFTER`` as failed (their worker died);
    returns how many. Their temporary files are left for ``exports_root`` housekeeping."""
    return Export.objects.filter(status=ExportStatus.RUNNING, heartbeat_at__lt=timezone.now() - STALE_AFTER).update(
        status=ExportStatus.FAILED, error="The export stopped reporting progress (its worker died).",
        finished_at=timezone.now(),
    )
