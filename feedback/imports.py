"""Imports of preference data and demonstrations made elsewhere: whole files read and checked
first, then written in one transaction.

An imported pair becomes a prompt (reused when one with the same messages exists), two completions,
a complete comparison keyed by ``external_id`` (so importing it again adds nothing) and one vote by a
system user named after the source, carrying the source's preference. An imported demonstration
becomes a ``Demonstration`` (keyed by ``external_id`` likewise) of a reused or new prompt.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from django.db import models

from django.contrib.auth import get_user_model
from django.db import transaction

from .hh_rlhf import HHPair, read_hh_rlhf
from .messages import messages_sha256, text_is_empty
from .models import Choice, Comparison, ComparisonStatus, Completion, Demonstration, Prompt, Side, Split, Vote
from .prompt_completion import ImportedDemonstration, read_demonstrations

HH_RLHF = "hh-rlhf"  # the prompts' source, the completions' model name, the votes' source and annotator
LOOKUP_BATCH = 500  # ids per ``__in`` query (SQLite caps the number of SQL variables)


@dataclass
class ImportSummary:
    """What an import read and wrote.

    ``lines`` pairs were read in the asked range; each is counted once more in exactly one of
    ``imported``, ``already_present`` (its ``external_id`` was imported before), ``identical_responses``
    (both responses the same text, so no preference to learn: not imported) or ``duplicate_lines``
    (the same pair earlier in the range). ``diverged_before_last_turn`` counts the distinct pairs
    of the range whose transcripts differ before their last turn (imported or not). ``prompts_created``
    and ``prompts_reused`` count distinct prompts of the imported pairs: new rows, or existing
    prompts with the same messages (which keep their split).
    """

    lines: int = 0
    imported: int = 0
    already_present: int = 0
    duplicate_lines: int = 0
    identical_responses: int = 0
    diverged_before_last_turn: int = 0
    prompts_created: int = 0
    prompts_reused: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def split_by_hash(*, messages_hash: str, eval_fraction: float) -> str:
    """``"eval"`` when ``int(messages_hash[:8], 16) / 2**32 < eval_fraction``, else ``"train"``.

    Deterministic per prompt (the same messages land in the same split on every import and machine),
    and about ``eval_fraction`` of distinct prompts are eval.
    """
    return Split.EVAL if int(messages_hash[:8], 16) / 2**32 < eval_fraction else Split.TRAIN


def chosen_is_a(*, external_id: str) -> bool:
    """Whether the chosen response is stored as completion A: decided by a hash of the pair's
    ``external_id`` (about half of pairs each way, the same on every import), so A is not always the chosen one."""
    return hashlib.sha256(external_id.encode("utf-8")).digest()[0] % 2 == 0


def system_user_get(*, username: str):
    """The inactive account that imported votes are written as, created on first use (unusable
    password, no groups, so it can never log in or be served comparisons).

    Raises:
        ValueError: an account with that name exists and can log in (someone's real account).
    """
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    elif user.is_active or user.has_usable_password():
        raise ValueError(
            f"a user named {username!r} exists and can log in; imported votes need that name for an inactive system account"
        )
    return user


def _in_batches(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), LOOKUP_BATCH):
        yield list(values[start : start + LOOKUP_BATCH])


def _existing_external_ids(external_ids: Sequence[str], model: type[models.Model] = Comparison) -> set[str]:
    found: set[str] = set()
    for batch in _in_batches(external_ids):
        found.update(model.objects.filter(external_id__in=batch).values_list("external_id", flat=True))
    return found


def _existing_prompts(hashes: Sequence[str]) -> dict[str, int]:
    """messages hash -> id of the oldest prompt with those messages."""
    found: dict[str, int] = {}
    for batch in _in_batches(hashes):
        rows = Prompt.objects.filter(messages_sha256__in=batch).order_by("-id").values_list("messages_sha256", "id")
        found.update(rows)  # the oldest id is written last
    return found


def _arguments_check(split: str | None, eval_fraction: float, offset: int, limit: int | None) -> None:
    if split is not None and split not in Split.values:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(Split.values)}")
    if isinstance(eval_fraction, bool) or not isinstance(eval_fraction, (int, float)) or not 0 <= eval_fraction <= 1:
        raise ValueError("eval_fraction must be a number from 0 to 1")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError("offset must be a non-negative integer")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError("limit must be a non-negative integer")


def hh_rlhf_import(
    *,
    path: str | Path,
    split: str | None = None,
    eval_fraction: float = 0.1,
    offset: int = 0,
    limit: int | None = None,
) -> ImportSummary:
    """Import Anthropic HH-RLHF pairs (``feedback.hh_rlhf``) as complete, already-voted comparisons.

    The whole file is read and parsed first; a file with any bad line raises and writes nothing.
    Then, in one transaction, for each pair of lines ``offset`` .. ``offset + limit`` not imported
    before (by ``external_id``) and with two different responses:

    - the prompt: an existing one with the same messages (``messages_sha256``), else a new one with
      source ``"hh-rlhf"`` and split ``split``, or when ``split`` is None ``split_by_hash(eval_fraction)``;
    - two completions with model name ``"hh-rlhf"`` (both, so the name does not tell which was chosen);
    - a comparison with the pair's ``external_id``, status complete, 1 of 1 votes, the chosen
      response as A or B by ``chosen_is_a``;
    - one vote by the inactive system user ``hh-rlhf`` with source ``"hh-rlhf"``, choice the chosen
      side, no strength, shown_left ``"a"``.

    Args:
        path: a ``.jsonl`` or gzip-compressed ``.jsonl.gz`` HH-RLHF file.
        split: ``"train"`` or ``"eval"`` for every new prompt; None to split by prompt hash.
        eval_fraction: 0..1, the share of new prompts put in eval when ``split`` is None.
        offset: pairs (non-blank lines) to pass over first.
        limit: at most this many pairs after ``offset``; None for all.
    Returns: an ``ImportSummary``.
    Raises:
        HHRLHFFormatError: bad lines (every one, with line numbers); nothing is written.
        OSError: the file cannot be read.
        ValueError: a bad argument, or a user named ``hh-rlhf`` that can log in.
        IntegrityError: another import of the same pairs committed meanwhile; nothing is written (run again).
    """
    _arguments_check(split, eval_fraction, offset, limit)
    pairs = read_hh_rlhf(path)
    pairs = pairs[offset:] if limit is None else pairs[offset : offset + limit]
    summary = ImportSummary(lines=len(pairs))
    distinct: dict[str, HHPair] = {}
    for pair in pairs:
        distinct.setdefault(pair.external_id, pair)
    summary.duplicate_lines = len(pairs) - len(distinct)
    summary.diverged_before_last_turn = sum(pair.diverged_before_last_turn for pair in distinct.values())

    with transaction.atomic():
        present = _existing_external_ids(list(distinct))
        summary.already_present = len(present)
        candidates = [pair for key, pair in distinct.items() if key not in present]
        summary.identical_responses = sum(pair.responses_identical for pair in candidates)
        todo = [pair for pair in candidates if not pair.responses_identical]
        summary.imported = len(todo)
        if not todo:
            return summary

        hashes = [messages_sha256(pair.prompt_messages) for pair in todo]
        prompt_ids = _existing_prompts(list(dict.fromkeys(hashes)))
        summary.prompts_reused = len(prompt_ids)
        new_prompts: dict[str, Prompt] = {}
        for pair, digest in zip(todo, hashes):
            if digest not in prompt_ids and digest not in new_prompts:
                new_prompts[digest] = Prompt(
                    messages=pair.prompt_messages,
                    messages_sha256=digest,
                    source=HH_RLHF,
                    split=split or split_by_hash(messages_hash=digest, eval_fraction=eval_fraction),
                )
        Prompt.objects.bulk_create(new_prompts.values())
        summary.prompts_created = len(new_prompts)
        prompt_ids.update((digest, prompt.pk) for digest, prompt in new_prompts.items())

        completions = []
        for pair, digest in zip(todo, hashes):
            for text in (pair.chosen, pair.rejected):
                completions.append(
                    Completion(prompt_id=prompt_ids[digest], model_name=HH_RLHF, text=text, is_empty=text_is_empty(text))
                )
        Completion.objects.bulk_create(completions)

        comparisons, choices = [], []
        for index, (pair, digest) in enumerate(zip(todo, hashes)):
            chosen, rejected = completions[2 * index], completions[2 * index + 1]
            a_is_chosen = chosen_is_a(external_id=pair.external_id)
            a, b = (chosen, rejected) if a_is_chosen else (rejected, chosen)
            comparisons.append(
                Comparison(
                    prompt_id=prompt_ids[digest],
                    completion_a=a,
                    completion_b=b,
                    votes_required=1,
                    vote_count=1,
                    status=ComparisonStatus.COMPLETE,
                    external_id=pair.external_id,
                )
            )
            choices.append(Choice.A if a_is_chosen else Choice.B)
        Comparison.objects.bulk_create(comparisons)

        annotator = system_user_get(username=HH_RLHF)
        Vote.objects.bulk_create(
            Vote(comparison=comparison, annotator=annotator, choice=choice, shown_left=Side.A, source=HH_RLHF)
            for comparison, choice in zip(comparisons, choices)
        )
    return summary


# --- demonstrations ---------------------------------------------------------------------------
DEMONSTRATION_IMPORT_SOURCE = "import"


@dataclass
class DemonstrationImportSummary:
    """What a demonstration import read and wrote.

    ``lines`` demonstrations were read; each is counted once more in exactly one of ``imported``,
    ``already_present`` (its ``external_id`` was imported before) or ``duplicate_lines`` (the same
    prompt and completion earlier in the file). ``prompts_created`` and ``prompts_reused`` count
    distinct prompts of the imported ones: new rows, or existing prompts with the same messages
    (which keep their split).
    """

    lines: int = 0
    imported: int = 0
    already_present: int = 0
    duplicate_lines: int = 0
    prompts_created: int = 0
    prompts_reused: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def demonstrations_import(
    *,
    path: str | Path,
    source: str = DEMONSTRATION_IMPORT_SOURCE,
    split: str | None = None,
    eval_fraction: float = 0.1,
) -> DemonstrationImportSummary:
    """Import (prompt, ideal response) pairs from a file of TRL prompt-completion rows
    (``feedback.prompt_completion``) as demonstrations for supervised fine-tuning.

    The whole file is read and parsed first; a file with any bad line raises and writes nothing.
    Then, in one transaction, for each distinct demonstration not imported before (by
    ``external_id`` = ``"demo:" + sha256(canonical prompt + completion)``):

    - the prompt: an existing one with the same messages (``messages_sha256``), else a new one with
      source ``source`` and split ``split``, or when ``split`` is None ``split_by_hash(eval_fraction)``;
    - a ``Demonstration`` with the completion text (verbatim), source ``source``, no annotator and
      no comparison.

    Args:
        path: a ``.jsonl`` or gzip-compressed ``.jsonl.gz`` file.
        source: the demonstrations' (and new prompts') source name, 1-100 characters.
        split: ``"train"`` or ``"eval"`` for every new prompt; None to split by prompt hash.
        eval_fraction: 0..1, the share of new prompts put in eval when ``split`` is None.
    Returns: a ``DemonstrationImportSummary``.
    Raises:
        DemonstrationFileError: bad lines (every one, with line numbers); nothing is written.
        OSError: the file cannot be read.
        ValueError: a bad argument.
        IntegrityError: another import of the same demonstrations committed meanwhile; nothing is
            written (run again).
    """
    _arguments_check(split, eval_fraction, 0, None)
    if not isinstance(source, str) or not source.strip() or len(source.strip()) > 100:
        raise ValueError("source must be a non-empty name of at most 100 characters")
    source = source.strip()
    read = read_demonstrations(path)
    summary = DemonstrationImportSummary(lines=len(read))
    distinct: dict[str, ImportedDemonstration] = {}
    for demonstration in read:
        distinct.setdefault(demonstration.external_id, demonstration)
    summary.duplicate_lines = len(read) - len(distinct)

    with transaction.atomic():
        present = _existing_external_ids(list(distinct), Demonstration)
        summary.already_present = len(present)
        todo = [demonstration for key, demonstration in distinct.items() if key not in present]
        summary.imported = len(todo)
        if not todo:
            return summary

        hashes = [messages_sha256(demonstration.prompt_messages) for demonstration in todo]
        prompt_ids = _existing_prompts(list(dict.fromkeys(hashes)))
        summary.prompts_reused = len(prompt_ids)
        new_prompts: dict[str, Prompt] = {}
        for demonstration, digest in zip(todo, hashes):
            if digest not in prompt_ids and digest not in new_prompts:
                new_prompts[digest] = Prompt(
                    messages=demonstration.prompt_messages,
                    messages_sha256=digest,
                    source=source,
                    split=split or split_by_hash(messages_hash=digest, eval_fraction=eval_fraction),
                )
        Prompt.objects.bulk_create(new_prompts.values())
        summary.prompts_created = len(new_prompts)
        prompt_ids.update((digest, prompt.pk) for digest, prompt in new_prompts.items())

        Demonstration.objects.bulk_create(
            (
                Demonstration(
                    prompt_id=prompt_ids[digest],
                    text=demonstration.completion,
                    source=source,
                    external_id=demonstration.external_id,
                )
                for demonstration, digest in zip(todo, hashes)
            ),
            batch_size=LOOKUP_BATCH,
        )
    return summary
