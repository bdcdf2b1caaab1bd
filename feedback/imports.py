"""Imports of preference data and demonstrations made elsewhere: whole files read and checked
first, then written in one transaction.

An imported pair becomes a prompt (reused when one with the same messages exists), two completions,
a complete comparison keyed by ``external_id`` (so importing it again adds nothing) and one vote by a
system user named after the source, carrying the source's preference (``pairs_import``). The
formats: HH-RLHF transcripts (``feedback.hh_rlhf``), TRL preference rows
(``feedback.trl_preferences``) and Chatbot-Arena battles (``feedback.arena``); ``preferences_import``
picks one by name. An imported demonstration becomes a ``Demonstration`` (keyed by
``external_id`` likewise) of a reused or new prompt.

Nothing is kept that the file did not say: a pair whose responses differ only in whitespace is
skipped (``identical_responses``), an imported vote has no shown side (``shown_left`` ``""``), and
a row the importer cannot keep faithfully is flagged (``feedback.import_flags``): the whole file
is refused, naming the lines, unless ``allow_flagged`` (imported, the comparison marked, left out of
snapshots and exports unless they include flagged comparisons) or ``skip_refused`` (left out).
"""
from __future__ import annotations

import functools
import hashlib
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models, transaction

from .arena import ArenaBattle, read_arena_battles
from .hh_rlhf import read_hh_rlhf_rows
from .import_flags import DIVERGED_BEFORE_LAST_TURN, STRICT_PREFIX, flag_label, flags_join, missing_flag, optional_columns_missing, strict_prefix
from .import_limits import ImportLimits, limits_applied
from .identity.services import active_pattern_set, comparisons_identity_flag
from .import_rows import PreferenceFileError, RowRefused, RowsRead, model_name_check
from .messages import messages_sha256, responses_equivalent, text_is_empty
from .models import Choice, Comparison, ComparisonStatus, Completion, Demonstration, Prompt, Split, Vote
from .prompt_completion import ImportedDemonstration, read_demonstrations
from .roles import username_check
from .arena import IDENTITY as ARENA_OPTIONAL_COLUMNS
from .trl_preferences import OPTIONAL_COLUMNS as TRL_OPTIONAL_COLUMNS
from .trl_preferences import TRLPair, read_trl_preferences

HH_RLHF = "hh-rlhf"  # the prompts' source, the completions' model name, the votes' source and annotator
TRL_IMPORT_SOURCE = "trl-import"
ARENA_IMPORT_SOURCE = "arena"
DEFAULT_SOURCE = {"trl": TRL_IMPORT_SOURCE, "hh-rlhf": HH_RLHF, "arena": ARENA_IMPORT_SOURCE}
PREFERENCE_FORMATS = tuple(DEFAULT_SOURCE)  # the names ``preferences_import`` takes
LOOKUP_BATCH = 500  # ids per ``__in`` query (SQLite caps the number of SQL variables)
WRITE_BATCH = 2000  # pairs whose rows are built and written at a time (one transaction for the whole import)
MAX_SOURCE_CHARS = 100  # Prompt.source, Vote.source
MAX_LISTED_REFUSALS = 20
MAX_LISTED_FLAG_ROWS = 10
FLAG_ONLY = "refused: flagged "  # how RowsRefusedError.problems words a row refused only for its flags
UPLOAD_MAX_BYTES = 20 * 1024 * 1024  # the import page's and API's cap; larger files: manage.py import_preferences

T = TypeVar("T")


def import_limits() -> ImportLimits:
    """The ``ARBITER_IMPORT_*`` limits (``feedback.import_limits``) from the settings now."""
    return ImportLimits.from_settings(settings)


def _limited(function):
    """Run an importer with ``import_limits()`` applied to every read it makes."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with limits_applied(import_limits()):
            return function(*args, **kwargs)

    return wrapper


class RowsRefusedError(PreferenceFileError):
    """A preference file with rows that are valid but cannot be stored (``RowRefused``) or that are
    flagged (``feedback.import_flags``), imported without ``skip_refused`` (and, for flagged rows,
    without ``allow_flagged``): nothing is imported.

    ``problems`` lists every such row as ``(number, "refused: <reason>")``; ``flagged`` maps each
    flag code to the numbers of the rows that carry it. ``str()`` names the problem of each flag
    with its first ``MAX_LISTED_FLAG_ROWS`` numbers and count, and the first ``MAX_LISTED_REFUSALS``
    other refused rows one per line.
    """

    def __init__(
        self, path: str | Path, refusals: list[tuple[int, str]], *, unit: str = "line",
        flagged: dict[str, list[int]] | None = None,
    ):
        self.flagged = dict(flagged or {})
        super().__init__(path, [(number, f"refused: {reason}") for number, reason in refusals], unit=unit)
        units = unit if len(refusals) == 1 else f"{unit}s"
        # Rows refused for a reason of their own are listed one a line; rows refused only for a
        # flag are named by the flag's line, with their numbers.
        own = [(number, message) for number, message in self.problems if not message.startswith(FLAG_ONLY)]
        listed = [f"{unit} {number}: {message}" for number, message in own[:MAX_LISTED_REFUSALS]]
        if len(own) > MAX_LISTED_REFUSALS:
            listed.append(f"... and {len(own) - MAX_LISTED_REFUSALS} more refused")
        for code, numbers in self.flagged.items():
            shown = ", ".join(str(number) for number in numbers[:MAX_LISTED_FLAG_ROWS])
            more = f", ... ({len(numbers)} in all)" if len(numbers) > MAX_LISTED_FLAG_ROWS else ""
            noun = unit if len(numbers) == 1 else f"{unit}s"
            listed.append(f"flagged {code} ({flag_label(code)}): {noun} {shown}{more}")
        if self.flagged:
            head = (
                f"{len(refusals)} {units} cannot be imported faithfully; nothing was imported "
                "(allow_flagged=True, --allow-flagged or 'Import flagged rows' imports flagged rows marked; "
                "skip_refused=True, --skip-refused or 'Skip refused rows' imports the rest)"
            )
        else:
            head = (
                f"{len(refusals)} {units} cannot be stored; nothing was imported "
                "(skip_refused=True, --skip-refused or 'Skip refused rows' imports the rest)"
            )
        self.args = (f"{self.path}: {head}\n" + "\n".join(listed),)


@dataclass
class ImportSummary:
    """What an import read and wrote.

    ``lines`` rows (pairs, lines or Parquet rows) were read in the asked range; each is counted once
    more in exactly one of ``imported``, ``already_present`` (its ``external_id`` was imported
    before), ``identical_responses`` (both responses the same text up to whitespace,
    ``feedback.messages.responses_equivalent``, so no preference to learn: not imported),
    ``duplicate_lines`` (the same pair earlier in the range) or ``refused`` (a valid row that cannot
    be stored, such as a multi-turn continuation, or a flagged row imported with ``skip_refused`` but
    not ``allow_flagged``; ``refusals`` holds each one's ``(number, reason)``, numbered in ``unit``s:
    ``"line"`` or ``"row"``). ``flagged`` counts the imported pairs that carry flags
    (``feedback.import_flags``; only with ``allow_flagged``). ``diverged_before_last_turn`` counts
    the distinct HH-RLHF pairs of the range whose transcripts differ before their last turn (imported
    or not). ``prompts_created`` and ``prompts_reused`` count distinct prompts of the imported
    pairs: new rows, or existing prompts with the same messages (which keep their split).
    """

    lines: int = 0
    imported: int = 0
    already_present: int = 0
    duplicate_lines: int = 0
    identical_responses: int = 0
    refused: int = 0
    flagged: int = 0
    diverged_before_last_turn: int = 0
    prompts_created: int = 0
    prompts_reused: int = 0
    refusals: list[tuple[int, str]] = field(default_factory=list)
    unit: str = "line"

    COUNTS = (
        "lines", "imported", "already_present", "duplicate_lines", "identical_responses", "refused",
        "flagged", "diverged_before_last_turn", "prompts_created", "prompts_reused",
    )

    def as_dict(self) -> dict[str, int]:
        """The counts (``COUNTS``), without ``refusals`` and ``unit``."""
        return {name: getattr(self, name) for name in self.COUNTS}

    def report(self, *, max_refusals: int = MAX_LISTED_REFUSALS) -> list[str]:
        """The summary as lines for a person: the counts, then the first ``max_refusals`` refused
        rows with their numbers and reasons."""
        units = self.unit if self.lines == 1 else f"{self.unit}s"
        lines = [
            f"{self.lines} {units} read: {self.imported} imported, {self.already_present} already present, "
            f"{self.refused} refused, {self.identical_responses} with identical responses (skipped), "
            f"{self.duplicate_lines} duplicate lines",
            f"prompts: {self.prompts_created} created, {self.prompts_reused} reused",
        ]
        if self.flagged:
            lines.append(
                f"{self.flagged} imported with flags (left out of snapshots and exports unless include_flagged)"
            )
        if self.diverged_before_last_turn:
            lines.append(f"{self.diverged_before_last_turn} differ before the last turn")
        lines.extend(f"refused {self.unit} {number}: {reason}" for number, reason in self.refusals[:max_refusals])
        if len(self.refusals) > max_refusals:
            lines.append(f"... and {len(self.refusals) - max_refusals} more refused")
        return lines


@dataclass(frozen=True)
class ImportedPair:
    """One pair to store, whatever file it came from.

    Attributes:
        prompt_messages: ``[{"role", "content"}, ...]`` ending with a user turn (already validated).
        text_a, text_b: the responses stored as completion A and completion B.
        model_a, model_b: their ``Completion.model_name`` (1-200 characters).
        choice: the imported vote's choice, a ``Choice`` value (``"a"``, ``"b"``, ``"tie"``, ``"both_bad"``).
        external_id: the comparison's stable key (at most 128 characters).
        diverged_before_last_turn: an HH-RLHF pair whose responses hold later turns.
        flags: ``feedback.import_flags`` codes stored on the comparison (``Comparison.import_flags``).
    """

    prompt_messages: list[dict[str, str]]
    text_a: str
    text_b: str
    model_a: str
    model_b: str
    choice: str
    external_id: str
    diverged_before_last_turn: bool = False
    flags: tuple[str, ...] = ()

    @property
    def responses_identical(self) -> bool:
        """True when the texts differ at most in whitespace (``feedback.messages.responses_equivalent``)."""
        return responses_equivalent(self.text_a, self.text_b)


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
        ValueError: an account with that name exists and can log in (someone's real account), or
            the name is not a valid username (``roles.username_check``).
    """
    try:
        username_check(username)
    except ValidationError as error:
        raise ValueError(f"the source names the account imported votes are written as; {'; '.join(error.messages)}") from None
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


def _prompts_resolve(
    messages_of: Sequence[list[dict[str, str]]], *, source: str, split: str | None, eval_fraction: float,
    seen: set[str] | None = None,
) -> tuple[list[int], int, int]:
    """The prompt id of each messages list (an existing prompt with the same ``messages_sha256``, else
    a new one with ``source`` and ``split`` or ``split_by_hash``), and how many distinct prompts were
    reused and created. ``seen``: hashes an earlier batch of the same import resolved (not counted
    again; this batch's are added). Call inside a transaction."""
    seen = set() if seen is None else seen
    hashes = [messages_sha256(messages) for messages in messages_of]
    prompt_ids = _existing_prompts(list(dict.fromkeys(hashes)))
    reused = sum(digest not in seen for digest in prompt_ids)
    new_prompts: dict[str, Prompt] = {}
    for messages, digest in zip(messages_of, hashes):
        if digest not in prompt_ids and digest not in new_prompts:
            new_prompts[digest] = Prompt(
                messages=messages,
                messages_sha256=digest,
                source=source,
                split=split or split_by_hash(messages_hash=digest, eval_fraction=eval_fraction),
            )
    Prompt.objects.bulk_create(new_prompts.values(), batch_size=LOOKUP_BATCH)
    seen.update(hashes)
    prompt_ids.update((digest, prompt.pk) for digest, prompt in new_prompts.items())
    return [prompt_ids[digest] for digest in hashes], reused, len(new_prompts)


def _arguments_check(split: str | None, eval_fraction: float, offset: int, limit: int | None) -> None:
    if split is not None and split not in Split.values:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(Split.values)}")
    if isinstance(eval_fraction, bool) or not isinstance(eval_fraction, (int, float)) or not 0 <= eval_fraction <= 1:
        raise ValueError("eval_fraction must be a number from 0 to 1")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError("offset must be a non-negative integer")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError("limit must be a non-negative integer")


def _source_check(source: object) -> str:
    if not isinstance(source, str) or not source.strip() or len(source.strip()) > MAX_SOURCE_CHARS:
        raise ValueError(f"source must be a non-empty name of at most {MAX_SOURCE_CHARS} characters")
    return source.strip()


def _model_name_check(model_name: object) -> str:
    try:
        return model_name_check(model_name, "model_name").strip()
    except ValueError as error:
        raise ValueError(f"{error} (a model name is 1-200 characters)") from None


def _in_range(items: Sequence[T], offset: int, limit: int | None) -> Sequence[T]:
    return items[offset:] if limit is None else items[offset : offset + limit]


def pairs_import(
    *,
    pairs: Sequence[ImportedPair],
    source: str,
    split: str | None = None,
    eval_fraction: float = 0.1,
) -> ImportSummary:
    """Store parsed preference pairs as complete, already-voted comparisons, in one transaction.

    For each distinct pair (by ``external_id``; later repeats count as ``duplicate_lines``) not
    imported before and with two different responses (else ``identical_responses``, not stored):

    - the prompt: an existing one with the same messages (``messages_sha256``), else a new one with
      source ``source`` and split ``split``, or when ``split`` is None ``split_by_hash(eval_fraction)``;
    - completions A and B with the pair's texts and model names (``is_empty`` when blank);
    - a comparison with the pair's ``external_id`` and ``import_flags`` (its ``flags``), status
      complete, 1 of 1 votes, flagged ``identity_leak`` when a response matches an active identity
      pattern (``feedback.identity``);
    - one vote by the inactive system user named ``source`` (``system_user_get``) with source
      ``source``, the pair's choice, no strength and no shown side (``shown_left`` ``""``: nothing
      was shown, so position-bias statistics must not count it).

    Args:
        pairs: the pairs, in file order.
        source: the new prompts', the votes' and the system user's name, 1-100 characters.
        split: ``"train"`` or ``"eval"`` for every new prompt; None to split by prompt hash.
        eval_fraction: 0..1, the share of new prompts put in eval when ``split`` is None.
    Returns: an ``ImportSummary`` with ``lines = len(pairs)`` (``refused`` 0; ``flagged`` the
        imported pairs with flags).
    Raises:
        ValueError: a bad argument, a pair with an unknown choice, a blank or over-long model name
            or external id, or a user named ``source`` that can log in; nothing is written.
        IntegrityError: another import of the same pairs committed meanwhile; nothing is written (run again).
    """
    _arguments_check(split, eval_fraction, 0, None)
    source = _source_check(source)
    for pair in pairs:
        if pair.choice not in Choice.values:
            raise ValueError(f"pair {pair.external_id}: unknown choice {pair.choice!r}")
        if not pair.external_id or len(pair.external_id) > 128:
            raise ValueError(f"pair {pair.external_id[:40]!r}: an external id is 1-128 characters")
        model_name_check(pair.model_a, "model_a")
        model_name_check(pair.model_b, "model_b")
    summary = ImportSummary(lines=len(pairs))
    distinct: dict[str, ImportedPair] = {}
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
        summary.flagged = sum(bool(pair.flags) for pair in todo)
        if not todo:
            return summary
        annotator = system_user_get(username=source)
        seen: set[str] = set()
        patterns = active_pattern_set()
        for start in range(0, len(todo), WRITE_BATCH):
            reused, made = _pairs_write(
                todo[start : start + WRITE_BATCH], annotator=annotator, source=source, split=split,
                eval_fraction=eval_fraction, seen=seen, patterns=patterns,
            )
            summary.prompts_reused += reused
            summary.prompts_created += made
    return summary


def _pairs_write(
    todo: Sequence[ImportedPair], *, annotator, source: str, split: str | None, eval_fraction: float,
    seen: set[str], patterns=None,
) -> tuple[int, int]:
    """Write one batch of new pairs (prompts, completions, comparisons, votes); the model instances
    live only for the batch. Comparisons matching an identity pattern (``patterns``, the compiled
    active set; None: read it) are flagged in bulk. Returns (prompts reused, prompts created).
    Call inside a transaction."""
    prompt_ids, reused, made = _prompts_resolve(
        [pair.prompt_messages for pair in todo], source=source, split=split, eval_fraction=eval_fraction,
        seen=seen,
    )
    completions = []
    for pair, prompt_id in zip(todo, prompt_ids):
        for model_name, text in ((pair.model_a, pair.text_a), (pair.model_b, pair.text_b)):
            completions.append(
                Completion(prompt_id=prompt_id, model_name=model_name, text=text, is_empty=text_is_empty(text))
            )
    Completion.objects.bulk_create(completions, batch_size=LOOKUP_BATCH)
    comparisons = [
        Comparison(
            prompt_id=prompt_id,
            completion_a=completions[2 * index],
            completion_b=completions[2 * index + 1],
            votes_required=1,
            vote_count=1,
            status=ComparisonStatus.COMPLETE,
            external_id=pair.external_id,
            import_flags=flags_join(pair.flags),
        )
        for index, (pair, prompt_id) in enumerate(zip(todo, prompt_ids))
    ]
    Comparison.objects.bulk_create(comparisons, batch_size=LOOKUP_BATCH)
    comparisons_identity_flag(comparisons=comparisons, patterns=patterns)
    Vote.objects.bulk_create(
        (
            Vote(comparison=comparison, annotator=annotator, choice=pair.choice, shown_left="", source=source)
            for comparison, pair in zip(comparisons, todo)
        ),
        batch_size=LOOKUP_BATCH,
    )
    return reused, made


def _chosen_rejected_pair(
    *, prompt_messages: list[dict[str, str]], chosen: str, rejected: str, model_name: str, external_id: str,
    diverged_before_last_turn: bool = False,
) -> ImportedPair:
    """A chosen/rejected pair with both completions by ``model_name``, the chosen one as A or B by ``chosen_is_a``."""
    a_is_chosen = chosen_is_a(external_id=external_id)
    return ImportedPair(
        prompt_messages=prompt_messages,
        text_a=chosen if a_is_chosen else rejected,
        text_b=rejected if a_is_chosen else chosen,
        model_a=model_name,
        model_b=model_name,
        choice=Choice.A if a_is_chosen else Choice.B,
        external_id=external_id,
        diverged_before_last_turn=diverged_before_last_turn,
    )


def pair_flags(pair: ImportedPair, *, missing: Iterable[str] = ()) -> tuple[str, ...]:
    """The ``feedback.import_flags`` codes of one pair: ``strict_prefix``, ``diverged_before_last_turn``
    and ``<column>_missing`` for each optional column in ``missing``; sorted, ``()`` when clean."""
    codes = {missing_flag(column) for column in missing}
    if strict_prefix(pair.text_a, pair.text_b):
        codes.add(STRICT_PREFIX)
    if pair.diverged_before_last_turn:
        codes.add(DIVERGED_BEFORE_LAST_TURN)
    return tuple(sorted(codes))


def _storable(record):
    """A parsed record, or a refusal's ``flagged`` record (None when the refusal has none)."""
    return record.flagged if isinstance(record, RowRefused) else record


def _rows_import(
    read: RowsRead[T], *, path: str | Path, to_pair, source: str, split: str | None, eval_fraction: float,
    offset: int, limit: int | None, skip_refused: bool, allow_flagged: bool,
    optional_columns: Sequence[str] = (), present_of=lambda record: frozenset(),
) -> ImportSummary:
    """``pairs_import`` of the records among rows ``offset`` .. ``offset + limit``, each flagged by
    ``pair_flags`` (an optional column is *missing* on a record when ``present_of(record)`` lacks it
    while another record of the whole file has it). A refusal with a ``flagged`` record (a pair that
    diverged before the last turn, stored the HH-RLHF way) counts as that flagged record.

    A refused row (``RowRefused``), or a flagged one without ``allow_flagged``, raises
    ``RowsRefusedError`` (nothing written) unless ``skip_refused``: then they are counted in ``lines``
    and ``refused``, listed in ``refusals`` and the other rows are imported. With ``allow_flagged``
    flagged rows are imported and their comparisons keep the codes."""
    records = [_storable(record) for _, record in read.rows]
    uneven = optional_columns_missing(
        (present_of(record) for record in records if record is not None), optional_columns
    )
    refusals: list[tuple[int, str]] = []
    flagged: dict[str, list[int]] = {}
    pairs: list[ImportedPair] = []
    for number, record in _in_range(read.rows, offset, limit):
        own_reason = str(record) if isinstance(record, RowRefused) else None
        record = _storable(record)
        if record is None:
            refusals.append((number, own_reason))
            continue
        pair = to_pair(record)
        present = present_of(record)
        pair = replace(pair, flags=pair_flags(pair, missing=[column for column in uneven if column not in present]))
        if pair.flags and not allow_flagged:
            refusals.append((
                number, own_reason or "flagged " + "; ".join(f"{code}: {flag_label(code)}" for code in pair.flags)
            ))
            for code in pair.flags:
                flagged.setdefault(code, []).append(number)
            continue
        pairs.append(pair)
    if refusals and not skip_refused:
        raise RowsRefusedError(path, sorted(refusals), unit=read.unit, flagged=dict(sorted(flagged.items())))
    summary = pairs_import(pairs=pairs, source=source, split=split, eval_fraction=eval_fraction)
    summary.lines += len(refusals)
    summary.refused = len(refusals)
    summary.refusals = sorted(refusals)
    summary.unit = read.unit
    return summary


@_limited
def hh_rlhf_import(
    *,
    path: str | Path,
    source: str = HH_RLHF,
    model_name: str | None = None,
    split: str | None = None,
    eval_fraction: float = 0.1,
    offset: int = 0,
    limit: int | None = None,
    skip_refused: bool = False,
    allow_flagged: bool = False,
) -> ImportSummary:
    """Import Anthropic HH-RLHF pairs (``feedback.hh_rlhf``) as complete, already-voted comparisons.

    The whole file is read and parsed first; a file with any bad line raises and writes nothing.
    Then the pairs of lines ``offset`` .. ``offset + limit`` go to ``pairs_import``: both completions
    by ``model_name`` (so the name does not tell which was chosen), the chosen response as A or B by
    ``chosen_is_a``, the vote for it by the system user ``source``; pairs whose two responses are
    the same up to whitespace are skipped (``identical_responses``).

    Flagged pairs (``feedback.import_flags``): transcripts that differ before their last turn
    (``diverged_before_last_turn``) and a response that is a strict prefix of the other
    (``strict_prefix``). Any in the range fails the whole file (``RowsRefusedError``, naming the
    lines), unless ``allow_flagged`` (imported and marked) or ``skip_refused`` (left out and listed).

    Args:
        path: a ``.jsonl`` or gzip-compressed ``.jsonl.gz`` HH-RLHF file.
        source: the new prompts', votes' and system user's name (default ``"hh-rlhf"``).
        model_name: both completions' model name; None: ``source``.
        split: ``"train"`` or ``"eval"`` for every new prompt; None to split by prompt hash.
        eval_fraction: 0..1, the share of new prompts put in eval when ``split`` is None.
        offset: pairs (non-blank lines) to pass over first.
        limit: at most this many pairs after ``offset``; None for all.
        skip_refused: leave flagged pairs out (counted as ``refused``) and import the rest.
        allow_flagged: import flagged pairs, their comparisons marked with the codes.
    Returns: an ``ImportSummary``.
    Raises:
        HHRLHFFormatError: bad lines (every one, with line numbers); nothing is written.
        RowsRefusedError: flagged pairs without ``allow_flagged`` or ``skip_refused``; nothing is written.
        OSError: the file cannot be read.
        ValueError: a bad argument, or a user named ``source`` that can log in.
        IntegrityError: another import of the same pairs committed meanwhile; nothing is written (run again).
    """
    _arguments_check(split, eval_fraction, offset, limit)
    source = _source_check(source)
    model_name = _model_name_check(source if model_name is None else model_name)

    def to_pair(pair) -> ImportedPair:
        return _chosen_rejected_pair(
            prompt_messages=pair.prompt_messages, chosen=pair.chosen, rejected=pair.rejected,
            model_name=model_name, external_id=pair.external_id,
            diverged_before_last_turn=pair.diverged_before_last_turn,
        )

    read = RowsRead(unit="line", rows=read_hh_rlhf_rows(path))
    in_range = [pair for _, pair in _in_range(read.rows, offset, limit)]
    summary = _rows_import(
        read, path=path, to_pair=to_pair, source=source, split=split, eval_fraction=eval_fraction,
        offset=offset, limit=limit, skip_refused=skip_refused, allow_flagged=allow_flagged,
    )
    summary.diverged_before_last_turn = len({pair.external_id for pair in in_range if pair.diverged_before_last_turn})
    return summary


@_limited
def trl_preferences_import(
    *,
    path: str | Path,
    source: str = TRL_IMPORT_SOURCE,
    model_name: str | None = None,
    split: str | None = None,
    eval_fraction: float = 0.1,
    offset: int = 0,
    limit: int | None = None,
    skip_refused: bool = False,
    allow_flagged: bool = False,
) -> ImportSummary:
    """Import a TRL preference file (``feedback.trl_preferences``: JSON lines, gzip or plain, or
    Parquet; conversational or text; explicit or implicit prompt) as complete, voted comparisons.

    The whole file is read and parsed first; any problem raises and writes nothing. A row that is
    valid but cannot be stored (a multi-message response), or that is flagged
    (``feedback.import_flags``: no ``margin`` while other rows have one, a response that is a strict
    prefix of the other), also fails the whole file (``RowsRefusedError``, naming the lines), unless
    ``skip_refused`` (such rows are skipped and reported, the rest imported) or, for flagged rows,
    ``allow_flagged`` (imported, their comparisons marked).
    Each pair of rows ``offset`` .. ``offset + limit`` goes to ``pairs_import``: both completions by
    ``model_name``, the chosen one as A or B by ``chosen_is_a(external_id)``, external id
    ``"trl:" + sha256(canonical prompt + chosen + rejected)``. ``margin`` is not stored.

    Args:
        path: the file; JSON lines or Parquet is told by its first bytes.
        source: the new prompts', votes' and system user's name (default ``"trl-import"``).
        model_name: both completions' model name; None: ``source``.
        split, eval_fraction: as for ``pairs_import``.
        offset: rows (non-blank lines, or Parquet rows) to pass over first, refused ones included.
        limit: at most this many rows after ``offset``; None for all.
        skip_refused: import the other rows when some in the range cannot be stored or are flagged.
        allow_flagged: import flagged rows, marked.
    Returns: an ``ImportSummary`` (``unit`` ``"line"`` or ``"row"``).
    Raises:
        PreferenceFileError: every problem with its line or row number; nothing is written.
        RowsRefusedError: (a ``PreferenceFileError``) rows that cannot be stored or are flagged,
            without ``skip_refused`` (or ``allow_flagged``); nothing is written.
        OSError: the file cannot be read.
        ValueError: a bad argument, or a user named ``source`` that can log in.
        IntegrityError: another import of the same pairs committed meanwhile; nothing is written (run again).
    """
    _arguments_check(split, eval_fraction, offset, limit)
    source = _source_check(source)
    model_name = _model_name_check(source if model_name is None else model_name)

    def to_pair(pair: TRLPair) -> ImportedPair:
        return _chosen_rejected_pair(
            prompt_messages=pair.prompt_messages, chosen=pair.chosen, rejected=pair.rejected,
            model_name=model_name, external_id=pair.external_id,
            diverged_before_last_turn=pair.diverged_before_last_turn,
        )

    return _rows_import(
        read_trl_preferences(path), path=path, to_pair=to_pair, source=source, split=split,
        eval_fraction=eval_fraction, offset=offset, limit=limit, skip_refused=skip_refused,
        allow_flagged=allow_flagged, optional_columns=TRL_OPTIONAL_COLUMNS,
        present_of=lambda pair: pair.optional_present,
    )


@_limited
def arena_import(
    *,
    path: str | Path,
    source: str = ARENA_IMPORT_SOURCE,
    split: str | None = None,
    eval_fraction: float = 0.1,
    offset: int = 0,
    limit: int | None = None,
    skip_refused: bool = False,
    allow_flagged: bool = False,
) -> ImportSummary:
    """Import Chatbot-Arena battles (``feedback.arena``: JSON lines, gzip or plain, or Parquet) as
    complete, voted comparisons between the named models, which the leaderboard then rates.

    The whole file is read and parsed first; any problem raises and writes nothing. A battle whose
    conversations differ before the last turn cannot be stored, and a flagged one
    (``feedback.import_flags``: ``question_id``, ``judge`` or ``tstamp`` missing while other battles
    have it; an answer that is a strict prefix of the other) is doubtful: either fails the whole file
    (``RowsRefusedError``, naming the lines), unless ``skip_refused``, when such battles are skipped
    and reported (``refused``) and the rest is imported, or, for flagged battles, ``allow_flagged``
    (imported, marked). Battles whose two answers are the same text up to whitespace are skipped and
    counted (``identical_responses``). Each other
    battle of rows ``offset`` .. ``offset + limit`` goes to ``pairs_import``: completion A is
    ``model_a``'s answer with ``model_a`` as its model name, B likewise, and the vote's choice is
    the winner (``model_a`` -> ``a``, ``model_b`` -> ``b``, ``tie`` -> ``tie``, ``tie (bothbad)`` ->
    ``both_bad``), by the system user ``source`` (the row's ``judge`` is not an account).

    Args:
        path: the file; JSON lines or Parquet is told by its first bytes.
        source: the new prompts', votes' and system user's name (default ``"arena"``).
        split, eval_fraction: as for ``pairs_import``.
        offset: rows to pass over first, refused ones included.
        limit: at most this many rows after ``offset``; None for all.
        skip_refused: import the other battles when some in the range cannot be stored or are flagged.
        allow_flagged: import flagged battles, marked.
    Returns: an ``ImportSummary``.
    Raises:
        PreferenceFileError: every problem with its line or row number; nothing is written.
        RowsRefusedError: (a ``PreferenceFileError``) battles that cannot be stored or are flagged,
            without ``skip_refused`` (or ``allow_flagged``); nothing is written.
        OSError: the file cannot be read.
        ValueError: a bad argument, or a user named ``source`` that can log in.
        IntegrityError: another import of the same battles committed meanwhile; nothing is written (run again).
    """
    _arguments_check(split, eval_fraction, offset, limit)
    source = _source_check(source)

    def to_pair(battle: ArenaBattle) -> ImportedPair:
        return ImportedPair(
            prompt_messages=battle.prompt_messages,
            text_a=battle.response_a,
            text_b=battle.response_b,
            model_a=battle.model_a,
            model_b=battle.model_b,
            choice=battle.choice,
            external_id=battle.external_id,
            diverged_before_last_turn=battle.diverged_before_last_turn,
        )

    return _rows_import(
        read_arena_battles(path), path=path, to_pair=to_pair, source=source, split=split,
        eval_fraction=eval_fraction, offset=offset, limit=limit, skip_refused=skip_refused,
        allow_flagged=allow_flagged, optional_columns=ARENA_OPTIONAL_COLUMNS,
        present_of=lambda battle: battle.optional_present,
    )


def preferences_import(
    *,
    path: str | Path,
    format: str,
    source: str | None = None,
    model_name: str | None = None,
    split: str | None = None,
    eval_fraction: float = 0.1,
    offset: int = 0,
    limit: int | None = None,
    skip_refused: bool = False,
    allow_flagged: bool = False,
) -> ImportSummary:
    """Import a preference file in the named format: ``"trl"`` (``trl_preferences_import``),
    ``"hh-rlhf"`` (``hh_rlhf_import``) or ``"arena"`` (``arena_import``).

    Args:
        format: one of ``PREFERENCE_FORMATS``.
        source: None for the format's default (``DEFAULT_SOURCE``).
        model_name: the completions' model name for ``trl`` and ``hh-rlhf`` (None: ``source``);
            must be None for ``arena``, whose rows name their models.
        split, eval_fraction, offset, limit: as for the format's importer.
        skip_refused: import the other rows when some cannot be stored or are flagged.
        allow_flagged: import flagged rows (``feedback.import_flags``), their comparisons marked.
    Returns: an ``ImportSummary``.
    Raises:
        ValueError: an unknown format (checked before the file is opened), ``model_name`` with
            ``arena``, or whatever the format's importer raises (``JSONLFormatError`` subclasses for
            bad files; nothing is written).
        OSError: the file cannot be read.
    """
    if format not in PREFERENCE_FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(PREFERENCE_FORMATS)}")
    source = DEFAULT_SOURCE[format] if source is None else source
    options = {
        "path": path, "source": source, "split": split, "eval_fraction": eval_fraction, "offset": offset,
        "limit": limit, "skip_refused": skip_refused, "allow_flagged": allow_flagged,
    }
    if format == "arena":
        if model_name is not None:
            raise ValueError("model_name does not apply to arena battles: each row names its two models")
        return arena_import(**options)
    if format == "trl":
        return trl_preferences_import(**options, model_name=model_name)
    return hh_rlhf_import(**options, model_name=model_name)


def preferences_import_upload(*, chunks: Iterable[bytes], **options) -> ImportSummary:
    """``preferences_import`` of an uploaded file given as byte chunks: written to a temporary file
    (removed afterwards), then imported whole or not at all. ``options`` are ``preferences_import``'s
    keyword arguments other than ``path``.

    Raises: as ``preferences_import``.
    """
    with tempfile.NamedTemporaryFile(prefix="arbiter-import-") as handle:
        for chunk in chunks:
            handle.write(chunk)
        handle.flush()
        return preferences_import(path=handle.name, **options)


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


@_limited
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
    source = _source_check(source)
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

        prompt_ids, summary.prompts_reused, summary.prompts_created = _prompts_resolve(
            [demonstration.prompt_messages for demonstration in todo],
            source=source, split=split, eval_fraction=eval_fraction,
        )

        Demonstration.objects.bulk_create(
            (
                Demonstration(
                    prompt_id=prompt_id,
                    text=demonstration.completion,
                    source=source,
                    external_id=demonstration.external_id,
                )
                for demonstration, prompt_id in zip(todo, prompt_ids)
            ),
            batch_size=LOOKUP_BATCH,
        )
    return summary
