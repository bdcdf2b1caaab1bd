"""Dataset snapshots: the preference dataset built from every vote (kind ``preference``), or the
SFT dataset built from every demonstration (kind ``sft``), frozen on disk with its lineage.

A snapshot is a ``DatasetSnapshot`` row (rules, counts, row counts, content hash), one
``SnapshotVote`` row per vote it used, one ``SnapshotDemonstration`` row per demonstration it
used (SFT), and two files under ``ARBITER_DATA_DIR``::

    snapshots/<id>/train.jsonl
    snapshots/<id>/eval.jsonl

one canonical JSON row a line (``feedback.preferences.row_line``), so ``content_hash`` is the hash of
the two files' bytes (``feedback.preferences.rows_hash``). Rows and the hash are described in
``feedback.preferences`` (preference) and ``feedback.demonstrations`` (SFT).
"""
from __future__ import annotations

import json
import os
from collections import Counter
import shutil
import tempfile
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from .demonstrations import DemonstrationRecord, SFTRules, build_sft_dataset, sft_counts_summary
from .evalsets.exclusion import eval_set_prompt_ids
from .exports.files import directory_fsync as _directory_fsync
from .governance.enforcement import snapshot_policy_check, snapshot_policy_record
from .models import (
    DatasetSnapshot,
    Demonstration,
    SnapshotDemonstration,
    SnapshotKind,
    SnapshotVote,
    Vote,
    vote_frozen_fields,
)
from .preferences import (
    AggregationRules,
    RulesError,
    VoteRecord,
    build_preference_dataset,
    hash_files,
    row_line,
)

SNAPSHOTS_DIR = "snapshots"
TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
BATCH_SIZE = 2000
READ_CHUNK = 1 << 20

_VOTE_COLUMNS = (
    "id",
    "comparison_id",
    "comparison__prompt_id",
    "comparison__prompt__messages",
    "comparison__prompt__split",
    "comparison__prompt__messages_sha256",
    "comparison__completion_a__text",
    "comparison__completion_b__text",
    "comparison__gold_choice",
    "choice",
    "strength",
    "annotator_id",
    "source",
    "comparison__import_flags",
    "ms_on_item",
    "origin",
)


def vote_records(*, eval_prompt_ids: Container[int] = frozenset()) -> Iterator[VoteRecord]:
    """Every vote as a ``VoteRecord``, read in one query (streamed in chunks of ``BATCH_SIZE``);
    ``in_eval_set`` is true for votes on prompts in ``eval_prompt_ids``
    (``feedback.evalsets.exclusion.eval_set_prompt_ids``).

    Votes on one prompt share one messages list object, so memory grows with prompts, not votes.
    """
    messages_by_prompt: dict[int, list[dict[str, str]]] = {}
    rows = Vote.objects.values_list(*_VOTE_COLUMNS).iterator(chunk_size=BATCH_SIZE)
    for (
        vote_id, comparison_id, prompt_id, messages, split, prompt_key,
        text_a, text_b, gold_choice, choice, strength, annotator_id, source, import_flags, ms_on_item, origin,
    ) in rows:
        yield VoteRecord(
            vote_id=vote_id,
            comparison_id=comparison_id,
            prompt_id=prompt_id,
            prompt_messages=messages_by_prompt.setdefault(prompt_id, messages),
            text_a=text_a,
            text_b=text_b,
            choice=choice,
            strength=strength,
            annotator_id=annotator_id,
            is_gold=bool(gold_choice),
            split=split,
            prompt_key=prompt_key,
            source=source,
            import_flags=import_flags,
            gold_choice=gold_choice or "",
            ms_on_item=ms_on_item,
            in_eval_set=prompt_id in eval_prompt_ids,
            origin=origin,
        )


RELIABILITY_KEY = "annotator_reliability"  # in a Dawid-Skene snapshot's counts: {annotator id (str): 0..1}


def flagged_annotators(rules: AggregationRules) -> set[int]:
    """Annotators flagged by ``feedback.quality.selectors.bias_for`` over every vote (any of left
    bias, fast, long runs, consensus outlier), when ``rules.exclude_flagged``; else empty (no query)."""
    if not rules.exclude_flagged:
        return set()
    from .quality.selectors import bias_for

    return {row["annotator"] for row in bias_for()["per_annotator"] if row["flags"]}


def rules_parse(rules: Any) -> AggregationRules:
    """``AggregationRules.from_dict`` with Django's error type.

    Raises:
        ValidationError: ``{"rules": ["min_votes: must be ...", ...]}``, one message per bad field.
    """
    try:
        return AggregationRules.from_dict({} if rules is None else rules)
    except RulesError as error:
        raise ValidationError({"rules": [f"{name}: {message}" for name, message in error.errors.items()]}) from None


def snapshot_root() -> Path:
    """``ARBITER_DATA_DIR/snapshots``: the folder holding one folder per snapshot."""
    return Path(settings.ARBITER_DATA_DIR) / SNAPSHOTS_DIR


def snapshot_paths(snapshot: DatasetSnapshot) -> tuple[Path, Path]:
    """Absolute paths of a snapshot's ``train.jsonl`` and ``eval.jsonl``."""
    directory = (Path(settings.ARBITER_DATA_DIR) / snapshot.files_dir).resolve()
    return directory / TRAIN_FILE, directory / EVAL_FILE


def _rows_write(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(row_line(row))
        handle.flush()
        os.fsync(handle.fileno())


_BUILT_FIELDS = ("choice", "strength", "annotator_id", "source")


class _RecordsSeen:
    """Passes ``VoteRecord``s through and remembers what the builder read of each vote
    (``_BUILT_FIELDS``), so the snapshot freezes exactly the values its rows were built from."""

    def __init__(self, records: Iterable[VoteRecord]):
        self.records, self.seen = records, {}

    def __iter__(self) -> Iterator[VoteRecord]:
        for record in self.records:
            self.seen[record.vote_id] = tuple(getattr(record, name) for name in _BUILT_FIELDS)
            yield record


def _snapshot_votes(
    snapshot: DatasetSnapshot, vote_ids: Sequence[int], built: Mapping[int, tuple] | None = None
) -> Iterator[SnapshotVote]:
    """One ``SnapshotVote`` per id, each with the vote's fields (``frozen``): what the builder read
    (``built``, by vote id) for choice, strength, annotator and source, the row for the rest. A later
    revision or undo of the vote leaves what the snapshot used on record.

    Raises:
        ValidationError: ``{"snapshot": ...}`` when a used vote was withdrawn while the snapshot was
            being built (nothing is kept; build it again).
    """
    built = built or {}
    for start in range(0, len(vote_ids), BATCH_SIZE):
        chunk = vote_ids[start:start + BATCH_SIZE]
        votes = Vote.objects.in_bulk(chunk)
        for vote_id in chunk:
            vote = votes.get(vote_id)
            if vote is None:
                raise ValidationError({"snapshot": f"vote {vote_id} was withdrawn while the snapshot was built; try again"})
            frozen = vote_frozen_fields(vote)
            if vote_id in built:
                choice, strength, annotator_id, source = built[vote_id]
                frozen.update(choice=choice, strength=strength, annotator=annotator_id, source=source)
            yield SnapshotVote(snapshot=snapshot, vote_id=vote_id, vote_ref=vote_id, frozen=frozen)


def _snapshot_write(
    *,
    kind: str,
    rules: dict[str, Any],
    train: list[dict[str, Any]],
    eval: list[dict[str, Any]],
    counts: dict[str, int],
    annotator_count: int,
    content_hash: str,
    vote_ids: Sequence[int],
    demonstration_ids: Sequence[int] = (),
    created_by=None,
    built: Mapping[int, tuple] | None = None,
    policy=None,
) -> DatasetSnapshot:
    """Freeze built rows as a snapshot of ``kind``, with its lineage rows.

    ``built``: what the builder read of each vote (``_RecordsSeen.seen``), frozen on its
    ``SnapshotVote`` (``_snapshot_votes``). ``policy``: the ``feedback.governance`` policy check,
    recorded on the snapshot in the same transaction.

    The rows are written to a temporary folder beside the final one and fsynced; then, in one
    transaction, the ``DatasetSnapshot`` row, its ``SnapshotVote`` rows (one per id of
    ``vote_ids``) and ``SnapshotDemonstration`` rows (one per id of ``demonstration_ids``) are
    created and the folder is renamed to ``snapshots/<id>-<random>``. If anything fails, the
    folder is removed and no row is left. A caller whose own transaction rolls back after this
    returns removes the folder with ``snapshot_files_discard``.

    Raises:
        OSError: the data folder cannot be written (nothing is kept).
    """
    root = snapshot_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    written = staging
    try:
        _rows_write(staging / TRAIN_FILE, train)
        _rows_write(staging / EVAL_FILE, eval)
        with transaction.atomic():
            snapshot = DatasetSnapshot.objects.create(
                kind=kind,
                created_by=created_by,
                rules=rules,
                counts=counts,
                train_rows=len(train),
                eval_rows=len(eval),
                annotator_count=annotator_count,
                content_hash=content_hash,
                files_dir="",
            )
            snapshot.files_dir = f"{SNAPSHOTS_DIR}/{snapshot.pk}"
            snapshot.save(update_fields=["files_dir"])
            SnapshotVote.objects.bulk_create(_snapshot_votes(snapshot, vote_ids, built), batch_size=BATCH_SIZE)
            SnapshotDemonstration.objects.bulk_create(
                (SnapshotDemonstration(snapshot=snapshot, demonstration_id=pk) for pk in demonstration_ids),
                batch_size=BATCH_SIZE,
            )
            if policy is not None:
                snapshot_policy_record(snapshot=snapshot, check=policy, user=created_by)
            # The id plus the staging folder's random part: SQLite may hand out a rolled-back
            # snapshot's id again, and a folder left behind by then must not be in the way.
            final = root / f"{snapshot.pk}-{staging.name.rsplit('-', 1)[-1]}"
            snapshot.files_dir = f"{SNAPSHOTS_DIR}/{final.name}"
            snapshot.save(update_fields=["files_dir"])
            os.rename(staging, final)  # refuses to replace a non-empty folder
            written = final
            _directory_fsync(root)
    except BaseException:
        shutil.rmtree(written, ignore_errors=True)
        raise
    return snapshot


def snapshot_create(*, rules: Mapping[str, Any] | None, created_by=None, policy_override: str | None = None) -> DatasetSnapshot:
    """Build the preference dataset from every vote under ``rules`` and freeze it as a snapshot.

    The rows are written to a temporary folder beside the final one and fsynced; then, in one
    transaction, the ``DatasetSnapshot`` row and its ``SnapshotVote`` rows (one per used vote, see
    ``PreferenceDataset.vote_ids``) are created and the folder is renamed to ``snapshots/<id>``.
    If anything fails, the folder is removed and no row is left.

    Comparisons on eval-set prompts and their near-duplicates (``feedback.evalsets``) never
    become rows; they are counted as ``counts["eval_set_excluded"]``.

    Args:
        rules: JSON-shaped ``AggregationRules`` (``None`` or ``{}``: the defaults); stored normalised.
        created_by: the user asking, or None.
        policy_override: an admin's written justification for using data its policy refuses
            (``feedback.governance.enforcement``); recorded on the snapshot.
    Returns:
        The saved snapshot (``files_dir`` is ``"snapshots/<id>"``, relative to ``ARBITER_DATA_DIR``).
    Raises:
        ValidationError: ``{"rules": [...]}`` for bad rules; ``{"snapshot": "the votes give no
            training pairs: <why, in words>"}`` (``no_pairs_reason``) when no train row results;
            ``{"policy": [...]}`` naming the sources and row counts its data-use policies refuse.
        OSError: the data folder cannot be written (nothing is kept).
    """
    parsed = rules_parse(rules)
    records = _RecordsSeen(vote_records(eval_prompt_ids=eval_set_prompt_ids()))
    dataset = build_preference_dataset(records, parsed, flagged_annotators=flagged_annotators(parsed))
    if not dataset.train:
        raise ValidationError({"snapshot": f"the votes give no training pairs: {no_pairs_reason(dataset.counts, parsed)}"})
    policy = snapshot_policy_check(vote_ids=dataset.vote_ids, override=policy_override, user=created_by)
    counts: dict[str, Any] = dict(dataset.counts)
    if dataset.reliability:
        counts[RELIABILITY_KEY] = {str(a): r for a, r in sorted(dataset.reliability.items())}
    return _snapshot_write(
        kind=SnapshotKind.PREFERENCE,
        rules=parsed.as_dict(),
        train=dataset.train,
        eval=dataset.eval,
        counts=counts,
        annotator_count=len(dataset.annotator_ids),
        content_hash=dataset.content_hash,
        vote_ids=dataset.vote_ids,
        created_by=created_by,
        built=records.seen,
        policy=policy,
    )


def _count_words(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def _listed(parts: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def no_pairs_reason(counts: Mapping[str, int], rules: AggregationRules) -> str:
    """Why votes gave no training pair, in words, from ``build_preference_dataset``'s ``counts``:
    e.g. ``"of 3 comparisons, 2 have split votes and 1 is a tie"``, ``"no votes"``, or
    ``"all 4 votes are left out: 3 on gold items and 1 by excluded annotators"``. Votes left out
    beside counted ones are added after a ``;``."""
    if not counts.get("votes_seen"):
        return "no votes"
    left_out = [
        f"{counts[key]} {words}"
        for key, words in (
            ("votes_excluded_origin", f"of the wrong origin (votes: {rules.votes})"),
            ("votes_excluded_gold", "on gold items (include_gold is off)"),
            ("votes_excluded_source", f"from sources other than {', '.join(rules.sources)}"),
            ("votes_excluded_annotator", "by excluded annotators"),
            ("left_out_low_gold", "by annotators below the gold accuracy threshold"),
            ("left_out_low_kappa", "by annotators below the kappa threshold"),
            ("left_out_flagged_annotator", "by flagged annotators"),
            ("left_out_fast_votes", f"faster than {rules.min_ms_on_item} ms on the item"),
        )
        if counts.get(key)
    ]
    excluded = sum(counts.get(key, 0) for key in (
        "votes_excluded_origin", "votes_excluded_gold", "votes_excluded_source", "votes_excluded_annotator", "left_out_low_gold",
        "left_out_low_kappa", "left_out_flagged_annotator", "left_out_fast_votes"))
    comparisons = counts.get("comparisons", 0)
    if not comparisons:
        return f"all {_count_words(excluded, 'vote is', 'votes are')} left out: {_listed(left_out)}"
    outcomes = [
        (key, singular, plural) for key, singular, plural in (
            ("split_votes", "has split votes", "have split votes"),
            ("ties", "is a tie", "are ties"),
            ("both_bad", "is judged both bad", "are judged both bad"),
            ("too_few_votes", f"has fewer than {rules.min_votes} votes", f"have fewer than {rules.min_votes} votes"),
            ("low_agreement", f"has agreement below {rules.min_agreement:g}", f"have agreement below {rules.min_agreement:g}"),
            ("identical", "has two identical responses", "have two identical responses"),
            ("empty_response", "has an empty response", "have an empty response"),
            ("flagged_import", "was imported with flags (include_flagged is off)", "were imported with flags (include_flagged is off)"),
            ("eval_set_excluded", "has its prompt in an eval set", "have their prompts in an eval set"),
            ("pairs_eval", "is an eval pair (its prompt is in the eval split)", "are eval pairs (their prompts are in the eval split)"),
        )
        if counts.get(key)
    ]
    parts = [f"{counts[key]} {singular if counts[key] == 1 else plural}" for key, singular, plural in outcomes]
    reason = f"of {_count_words(comparisons, 'comparison', 'comparisons')}, {_listed(parts)}"
    if left_out:
        reason += f"; {_count_words(excluded, 'more vote was', 'more votes were')} left out: {_listed(left_out)}"
    return reason


# --- SFT snapshots (demonstrations) ----------------------------------------------------------------
_DEMONSTRATION_COLUMNS = (
    "id",
    "prompt_id",
    "prompt__messages",
    "prompt__split",
    "prompt__messages_sha256",
    "text",
    "source",
    "annotator_id",
    "comparison_id",
    "comparison__gold_choice",
)


def demonstration_records(*, eval_prompt_ids: Container[int] = frozenset()) -> Iterator[DemonstrationRecord]:
    """Every demonstration as a ``DemonstrationRecord``, read in one query (streamed in chunks of
    ``BATCH_SIZE``); demonstrations of one prompt share one messages list object. ``in_eval_set``
    is true for demonstrations of prompts in ``eval_prompt_ids``."""
    messages_by_prompt: dict[int, list[dict[str, str]]] = {}
    rows = Demonstration.objects.values_list(*_DEMONSTRATION_COLUMNS).iterator(chunk_size=BATCH_SIZE)
    for pk, prompt_id, messages, split, prompt_key, text, source, annotator_id, comparison_id, gold_choice in rows:
        yield DemonstrationRecord(
            demonstration_id=pk,
            prompt_id=prompt_id,
            prompt_messages=messages_by_prompt.setdefault(prompt_id, messages),
            text=text,
            source=source,
            annotator_id=annotator_id,
            comparison_id=comparison_id,
            is_gold=bool(gold_choice),
            split=split,
            prompt_key=prompt_key,
            in_eval_set=prompt_id in eval_prompt_ids,
        )


def sft_rules_parse(rules: Any) -> SFTRules:
    """``SFTRules.from_dict`` with Django's error type.

    Raises:
        ValidationError: ``{"rules": ["strong_margin: must be ...", ...]}``, one message per bad field.
    """
    try:
        return SFTRules.from_dict({} if rules is None else rules)
    except RulesError as error:
        raise ValidationError({"rules": [f"{name}: {message}" for name, message in error.errors.items()]}) from None


def sft_snapshot_create(*, rules: Mapping[str, Any] | None, created_by=None, policy_override: str | None = None) -> DatasetSnapshot:
    """Build the SFT dataset (``feedback.demonstrations``) from every demonstration, and with
    ``include_strongly_chosen`` every vote, under ``rules``, and freeze it as a snapshot of kind ``sft``.

    Files and atomicity as ``snapshot_create``; lineage: one ``SnapshotDemonstration`` row per
    demonstration that became a row and one ``SnapshotVote`` row per counted vote of each
    comparison whose strongly chosen response became a row. Demonstrations and strongly chosen
    responses of eval-set prompts (and near-duplicates) are left out and counted as
    ``counts["eval_set_excluded"]``.

    Args:
        rules: JSON-shaped ``SFTRules`` (``None`` or ``{}``: the defaults); stored normalised.
        created_by: the user asking, or None.
    Returns:
        The saved snapshot.
    Raises:
        ValidationError: ``{"rules": [...]}`` for bad rules; ``{"snapshot": "no demonstrations or
            strongly chosen responses give training rows: <counts>"}`` when no train row results;
            ``{"policy": [...]}`` as ``snapshot_create`` (``policy_override`` too).
        OSError: the data folder cannot be written (nothing is kept).
    """
    parsed = sft_rules_parse(rules)
    eval_prompts = eval_set_prompt_ids()
    votes = _RecordsSeen(vote_records(eval_prompt_ids=eval_prompts) if parsed.include_strongly_chosen else ())
    dataset = build_sft_dataset(demonstration_records(eval_prompt_ids=eval_prompts), votes, parsed)
    if not dataset.train:
        raise ValidationError({
            "snapshot": "no demonstrations or strongly chosen responses give training rows: "
            + sft_counts_summary(dataset.counts)
        })
    policy = snapshot_policy_check(vote_ids=dataset.vote_ids, demonstration_ids=dataset.demonstration_ids,
                                   override=policy_override, user=created_by)
    return _snapshot_write(
        kind=SnapshotKind.SFT,
        rules=parsed.as_dict(),
        train=dataset.train,
        eval=dataset.eval,
        counts=dataset.counts,
        annotator_count=len(dataset.annotator_ids),
        content_hash=dataset.content_hash,
        vote_ids=dataset.vote_ids,
        demonstration_ids=dataset.demonstration_ids,
        created_by=created_by,
        built=votes.seen,
        policy=policy,
    )


def snapshot_demonstration_count(*, snapshot_id: int) -> int:
    """How many demonstrations the snapshot used (0 for a preference snapshot)."""
    return SnapshotDemonstration.objects.filter(snapshot_id=snapshot_id).count()


def snapshot_load(*, snapshot_id: int) -> DatasetSnapshot:
    """The snapshot with this id.

    Raises:
        LookupError: ``"no dataset snapshot with id <id>"``.
    """
    try:
        return DatasetSnapshot.objects.get(pk=snapshot_id)
    except (DatasetSnapshot.DoesNotExist, ValueError, TypeError):
        raise LookupError(f"no dataset snapshot with id {snapshot_id}") from None


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            yield chunk


def snapshot_verify(*, snapshot_id: int) -> bool:
    """True when the snapshot's two files still hash to its ``content_hash`` (False if either is missing).

    Raises:
        LookupError: no such snapshot.
    """
    snapshot = snapshot_load(snapshot_id=snapshot_id)
    train_path, eval_path = snapshot_paths(snapshot)
    try:
        return hash_files(_chunks(train_path), _chunks(eval_path)) == snapshot.content_hash
    except FileNotFoundError:
        return False


def snapshot_vote_count(*, snapshot_id: int) -> int:
    """How many votes the snapshot used."""
    return SnapshotVote.objects.filter(snapshot_id=snapshot_id).count()


def snapshot_votes_summary(*, snapshot_id: int) -> dict[str, Any]:
    """The votes a snapshot used: ``{"vote_count": int, "annotator_count": int, "sources": {source: count}}``,
    plus ``"human_vote_count"``, ``"ai_vote_count"`` and ``"judges": {judge: count}`` when it used AI
    votes (annotators are people: AI judges are never counted among them).

    ``sources`` is ordered by source name.

    Raises:
        LookupError: no such snapshot.
    """
    snapshot = snapshot_load(snapshot_id=snapshot_id)
    # As frozen: a vote revised or undone since keeps the source and annotator the snapshot used.
    rows = SnapshotVote.objects.filter(snapshot=snapshot).values_list("frozen", flat=True)
    tally: Counter[str] = Counter()
    annotators = set()
    judges: Counter[str] = Counter()
    for frozen in rows.iterator(chunk_size=BATCH_SIZE):
        tally[frozen.get("source", "")] += 1
        if frozen.get("origin") == "ai":  # an AI judge's vote: counted by judge, never as an annotator
            judges[frozen.get("judge", "")] += 1
        else:
            annotators.add(frozen.get("annotator"))
    summary = {
        "vote_count": sum(tally.values()),
        "annotator_count": len(annotators - {None}),
        "sources": dict(sorted(tally.items())),
    }
    if judges:  # AI votes in the snapshot (rules "ai" or "both"): counted apart, by judge
        summary.update(human_vote_count=summary["vote_count"] - sum(judges.values()), ai_vote_count=sum(judges.values()),
                       judges=dict(sorted(judges.items())))
    return summary


def snapshot_eval_comparison_ids(*, snapshot_id: int) -> list[int]:
    """The comparison ids of a snapshot's eval rows (``eval.jsonl``'s ``comparison_id``), in file
    order: the comparisons a reward run's held-out accuracy is measured on.

    Raises:
        LookupError: no such snapshot. FileNotFoundError: its eval file is missing.
    """
    _, eval_path = snapshot_paths(snapshot_load(snapshot_id=snapshot_id))
    with open(eval_path, encoding="utf-8") as handle:
        rows = (json.loads(line) for line in handle if line.strip())
        return [row["comparison_id"] for row in rows if row.get("comparison_id") is not None]


def snapshot_frozen_votes(*, snapshot_id: int, comparison_ids: Iterable[int]) -> list[tuple[int, int, str]]:
    """``(comparison id, annotator id, choice)`` of each person's vote (AI votes are left out: this
    feeds the human agreement ceiling) the snapshot used on those comparisons, as frozen (``SnapshotVote.frozen``): a vote revised or undone later keeps the
    choice the snapshot was built from. Ordered by vote id."""
    wanted = set(comparison_ids)
    rows = SnapshotVote.objects.filter(snapshot_id=snapshot_id).order_by("vote_ref").values_list("frozen", flat=True)
    return [
        (frozen["comparison"], frozen["annotator"], frozen["choice"])
        for frozen in rows.iterator(chunk_size=BATCH_SIZE)
        if frozen.get("comparison") in wanted and frozen.get("origin", "human") == "human"  # people's only
    ]


def snapshot_files_discard(*, files_dir: str) -> None:
    """Remove a snapshot's folder (``files_dir`` relative to ``ARBITER_DATA_DIR``, under the
    snapshots folder) whose row was rolled back. Anything outside the snapshots folder is refused.

    Raises:
        ValueError: ``files_dir`` is not a folder directly under the snapshots folder.
    """
    root = snapshot_root().resolve()
    target = (Path(settings.ARBITER_DATA_DIR) / files_dir).resolve()
    if target.parent != root:
        raise ValueError(f"{files_dir!r} is not a snapshot folder")
    shutil.rmtree(target, ignore_errors=True)
