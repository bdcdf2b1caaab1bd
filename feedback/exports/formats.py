"""Export formats: what one comparison and its votes become in each format (no Django imports).

Every format reads ``ComparisonGroup`` records (a comparison, its prompt and completions, and its
votes that passed the filters, in vote id order) and yields plain rows (dicts of JSON values) whose
keys are the format's ``columns``. The formats:

``trl-preference``
    TRL's preference format with an explicit prompt, one row per comparison whose votes make a
    pair: ``prompt``, ``chosen``, ``rejected`` and, unless ``include_margin`` is off, ``margin``.
    Votes are aggregated exactly as dataset snapshots aggregate them
    (``feedback.preferences.tally_verdict``: strict majority; ties, both-bad, split votes and
    identical texts give no row; ``margin`` is the mean ``MARGIN_BY_STRENGTH`` of the agreeing
    votes, after Llama 2). Conversational by default (message lists); with ``conversational`` off,
    plain text: the prompt is rendered as an HH-RLHF transcript ending in the assistant cue
    (``"\\n\\nHuman: q\\n\\nAssistant:"``, system turns as ``"\\n\\nSystem: ..."``) and each
    response is ``" " + text``, so ``prompt + chosen`` is exactly the HH-RLHF transcript. The TRL
    importer reads such a prompt back as its messages and drops that one space
    (``feedback.trl_preferences``), so export -> import gives the same prompts and responses; the
    one exception (one-way) is a prompt whose message text itself holds a ``"\\n\\nHuman:"``,
    ``"\\n\\nAssistant:"`` or ``"\\n\\nSystem:"`` marker, which reads back as more turns.
``trl-unpaired``
    TRL's unpaired preference format for KTO: ``prompt``, ``completion``, ``label`` (bool).
    Aggregated like ``trl-preference``: a pair gives the chosen completion ``True`` and the
    rejected one ``False``; a both-bad majority gives both completions ``False`` (A, then B).
    A tie majority gives no rows: "equally good or equally bad" says nothing about either
    completion alone, and KTO needs an absolute label per completion. Split votes give no rows.
``raw-votes``
    One row per vote, nothing aggregated: ids of the vote, comparison, prompt and both completions,
    both model names, ``choice``, ``strength``, the three aspects, ``rationale``, ``shown_left``,
    ``ms_on_item``, ``annotator`` (a pseudonym, see ``Pseudonyms``), ``source``, ``created_at``
    (ISO 8601, UTC), the prompt's ``split``, the comparison's ``gold_choice`` and ``in_eval_set``
    (true when the prompt is an eval-set prompt or a near-duplicate of one: the comparisons the
    formats with texts leave out). ``shown_left`` is ``""`` for a vote whose pair was never shown
    (an imported vote).
``hh-rlhf``
    Anthropic HH-RLHF transcripts, one ``{"chosen": ..., "rejected": ...}`` row per comparison whose
    votes make a pair (aggregated as ``trl-preference``), built by ``feedback.hh_rlhf.transcript_build``,
    the exact inverse of the importer's parser. A prompt with a system turn has no HH-RLHF form:
    that comparison is skipped and counted as ``system_prompt``.
``arena``
    Chatbot Arena battles (as in lmsys/chatbot_arena_conversations), one row per vote:
    ``question_id`` (the comparison id, as text), ``model_a``, ``model_b``, ``winner`` in
    ``model_a``/``model_b``/``tie``/``tie (bothbad)``, ``judge`` (a pseudonym), ``conversation_a``
    and ``conversation_b`` (the prompt's messages plus the assistant's answer), ``turn`` (the
    number of user turns) and ``tstamp`` (the vote's Unix time, seconds).

Rows the aggregation leaves out are counted by reason in ``FormatContext.counts`` (the
``feedback.preferences`` count keys, plus ``system_prompt`` and ``low_agreement``); the export's
summary lists them. Every format leaves out comparisons imported with flags
(``feedback.import_flags``), counted as ``flagged_import``, unless the export's ``include_flagged``
filter is on.

Empty responses: no format writes an empty (blank or whitespace-only) response as an assistant
message or completion. A comparison with one empty response gives no row in ``trl-preference``,
``trl-unpaired``, ``hh-rlhf`` and ``arena`` and is counted as ``empty_response``; two equivalent
responses (``feedback.messages.responses_equivalent``, two empty ones included) give no row in
the aggregating formats and are counted as ``identical``. ``raw-votes`` holds no texts and keeps
every vote.

Eval-set prompts (issue 17): the formats that carry prompts and responses (``trl-preference``,
``trl-unpaired``, ``hh-rlhf`` and ``arena``: what a trainer reads, and Chatbot Arena battles are
trained on as often as they are rated) never write a comparison whose prompt is an eval-set prompt
or a near-duplicate of one (``feedback.evalsets.exclusion.eval_set_prompt_ids``, the rule the
snapshots use), unless the ``include_eval_set_prompts`` option is on (analysis exports). Such a
comparison is counted as ``eval_set_excluded`` (once per comparison) where it would otherwise have
given rows, as snapshots count it; one that gives no row anyway keeps its own reason (``ties``,
``empty_response``, ...). ``raw-votes`` holds ids and choices, no texts, and is not training data:
it keeps every vote, does not take the option, and marks each vote's ``in_eval_set`` instead.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone
from json.encoder import encode_basestring as _string  # the C version, as json.dumps(ensure_ascii=False) uses
from typing import Any, NamedTuple

from feedback.hh_rlhf import ASSISTANT, HUMAN, transcript_build
from feedback.messages import text_is_empty
from feedback.preferences import Verdict, chosen_rejected, pair_left_out, preference_row, tally_verdict
from feedback.vote_origins import JUDGE_USERNAME_PREFIX

TRL_PREFERENCE = "trl-preference"
TRL_UNPAIRED = "trl-unpaired"
RAW_VOTES = "raw-votes"
HH_RLHF = "hh-rlhf"
ARENA = "arena"

JSONL = "jsonl"
PARQUET = "parquet"
HF_DATASET = "hf-dataset"
CSV = "csv"
FILE_TYPES = (JSONL, PARQUET, HF_DATASET, CSV)

SYSTEM = "\n\nSystem:"
TEXT_MARKERS = {"user": HUMAN, "assistant": ASSISTANT, "system": SYSTEM}
ARENA_WINNERS = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
PSEUDONYM_PREFIX = "annotator-"
PSEUDONYM_HEX = 16  # 64 bits of the HMAC: collisions need about 2**32 annotators


class VoteRow(NamedTuple):
    """One vote as the stream reads it. The fields after ``annotator_id`` are only read for the
    formats that show them (``ExportFormat.needs_vote_details``); otherwise they keep their defaults."""

    vote_id: int
    choice: str
    strength: str
    annotator_id: int
    annotator_name: str = ""
    rationale: str = ""
    helpfulness: str = ""
    harmlessness: str = ""
    honesty: str = ""
    shown_left: str = ""
    ms_on_item: int | None = None
    source: str = ""
    created_at: datetime | None = None
    origin: str = "human"  # "ai": an AI judge's vote (issue 16)


# Every field's default, in field order (the first four have none): pads a row read without the details.
VOTE_ROW_DEFAULTS = (None,) * 4 + tuple(VoteRow._field_defaults.values())

# Every (choice, strength) a vote can have (the database's check constraints allow no other), in
# tally order: a tally is ``((key, count), ...)`` over these keys, zero counts left out.
TALLY_KEYS: tuple[tuple[str, str], ...] = (
    *(("a", s) for s in ("slight", "clear", "strong", "")),
    *(("b", s) for s in ("slight", "clear", "strong", "")),
    ("tie", ""), ("both_bad", ""),
)
_TALLY_ORDER = {key: k for k, key in enumerate(TALLY_KEYS)}
Tally = tuple[tuple[tuple[str, str], int], ...]


def tally_of(votes: Iterable[tuple[str, str]], weights: Iterable[float] | None = None) -> Tally:
    """The tally of ``(choice, strength)`` pairs: ``((key, count), ...)`` in ``TALLY_KEYS`` order
    (any other key after them, sorted), zero counts left out. Hashable, so verdicts can be cached.
    ``weights`` (one per vote): a weighted tally, counts as floats (AI votes, ``feedback.vote_origins``)."""
    counts: dict[tuple[str, str], Any] = {}
    if weights is None:
        for key in votes:
            counts[key] = counts.get(key, 0) + 1
    else:
        for key, weight in zip(votes, weights, strict=True):
            if weight:  # a zero weight counts for nothing
                counts[key] = counts.get(key, 0.0) + weight
    return tuple(sorted(counts.items(), key=lambda item: (_TALLY_ORDER.get(item[0], len(TALLY_KEYS)), item[0])))


@lru_cache(maxsize=65_536)
def tally_decision(tally: Tally) -> Verdict:
    """``feedback.preferences.tally_verdict`` of a tally, cached: comparisons with a handful of votes
    have few distinct tallies, so an export decides each only once."""
    return tally_verdict(dict(tally))


@lru_cache(maxsize=65_536)
def _labelled_decision(tally: Tally, label: str) -> Verdict:
    return tally_verdict(dict(tally), label=label)


def group_decision(group: "ComparisonGroup", context: "FormatContext") -> Verdict:
    """The group's verdict: by majority (``tally_decision``), or, when the export aggregates by
    Dawid-Skene (``context.labels``), with the group's label as the winner
    (``tally_verdict(label=...)``: ties and both-bad handled as majority's)."""
    if context.labels is not None and group.comparison_id in context.labels:
        return _labelled_decision(group.tally, context.labels[group.comparison_id])
    return tally_decision(group.tally)


class ComparisonGroup:
    """A comparison with what the formats need of it and its filtered votes (vote id order).

    ``tally`` counts the votes by ``(choice, strength)`` (see ``tally_of``); it is all the
    aggregating formats read. ``votes`` is empty when the stream read only the tally (formats that
    do not show single votes); otherwise ``tally`` is computed from it when not given.

    ``prompt_messages`` is ``[{"role", "content"}, ...]`` ending with a user turn; given as None,
    it is parsed from ``prompt_json`` (the messages as stored, JSON text) when first read, so a
    format that writes the stored text as it is (``trl_preference_lines``) never parses it.
    ``split`` is ``"train"`` or ``"eval"`` decided as snapshots decide it
    (``feedback.preferences.prompt_split``); ``gold_choice`` is ``""`` unless the comparison is a
    gold item.
    """

    __slots__ = ("comparison_id", "prompt_id", "_prompt_messages", "split", "completion_a_id", "completion_b_id",
                 "model_a", "model_b", "text_a", "text_b", "gold_choice", "votes", "tally", "prompt_json", "import_flags")

    def __init__(self, comparison_id: int, prompt_id: int, prompt_messages: list[dict[str, str]] | None, split: str,
                 completion_a_id: int, completion_b_id: int, model_a: str, model_b: str, text_a: str, text_b: str,
                 gold_choice: str, votes: list[VoteRow], tally: Tally = (), prompt_json: str = "",
                 import_flags: str = ""):
        self.comparison_id, self.prompt_id, self._prompt_messages, self.split = (
            comparison_id, prompt_id, prompt_messages, split)
        self.completion_a_id, self.completion_b_id, self.model_a, self.model_b = (
            completion_a_id, completion_b_id, model_a, model_b)
        self.text_a, self.text_b, self.gold_choice, self.votes = text_a, text_b, gold_choice, votes
        self.tally = tally if tally or not votes else tally_of((v.choice, v.strength) for v in votes)
        self.prompt_json = prompt_json
        self.import_flags = import_flags  # the comparison's ``import_flags``: "" unless imported flagged

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        if self._prompt_messages is None:
            self._prompt_messages = _loads(self.prompt_json)
        return self._prompt_messages


_scan_json = json.JSONDecoder().scan_once  # the C scanner without loads()' Python-level wrapper


def _loads(text: str) -> Any:
    """``json.loads(text)``, about 3x cheaper for the usual text with nothing around the value
    (anything else goes through ``json.loads`` itself)."""
    try:
        value, end = _scan_json(text, 0)
    except (StopIteration, ValueError):
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


@dataclass(frozen=True)
class Column:
    """A column of a format: ``kind`` is ``int``, ``int?`` (nullable), ``float``, ``bool``, ``str``
    or ``messages`` (a list of ``{"role": str, "content": str}``)."""

    name: str
    kind: str


class Pseudonyms:
    """Annotator names as they appear in an export.

    A pseudonym is ``"annotator-"`` + the first 16 hex digits of HMAC-SHA256(key=salt, message=the
    annotator's user id in decimal ASCII). The salt is 32 random bytes drawn per export and never
    stored, so one annotator has one pseudonym throughout an export, different pseudonyms in
    different exports, and pseudonyms cannot be linked back to accounts (nor across exports) without
    the salt. With ``real_names`` (an explicit admin option) the username is written instead.
    """

    def __init__(self, *, salt: bytes | None = None, real_names: bool = False):
        self.salt = salt if salt is not None else secrets.token_bytes(32)
        self.real_names = real_names
        self._cache: dict[int, str] = {}

    def __call__(self, annotator_id: int, username: str = "") -> str:
        if self.real_names or username.startswith(JUDGE_USERNAME_PREFIX):
            return username  # an AI judge is no person: its name says it is a judge and which
        name = self._cache.get(annotator_id)
        if name is None:
            digest = hmac.new(self.salt, str(annotator_id).encode("ascii"), hashlib.sha256).hexdigest()
            name = self._cache[annotator_id] = PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX]
        return name


@dataclass(frozen=True)
class ExportOptions:
    """How a format writes its rows: ``conversational`` (message lists, else plain text; TRL
    formats), ``include_margin`` (``trl-preference``), ``real_usernames`` (``raw-votes``, ``arena``),
    ``include_eval_set_prompts`` (every format with texts: keep comparisons on eval-set prompts,
    for analysis exports; see the module docstring)."""

    conversational: bool = True
    include_margin: bool = True
    real_usernames: bool = False
    include_eval_set_prompts: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {"conversational": self.conversational, "include_margin": self.include_margin,
                "real_usernames": self.real_usernames, "include_eval_set_prompts": self.include_eval_set_prompts}


@dataclass
class FormatContext:
    """What a format's row function gets besides the group: the options, the export's pseudonyms
    and a counter of comparisons left out, by reason."""

    options: ExportOptions = field(default_factory=ExportOptions)
    pseudonyms: Pseudonyms = field(default_factory=Pseudonyms)
    counts: Counter = field(default_factory=Counter)
    labels: dict[int, str] | None = None  # Dawid-Skene labels by comparison id (None: majority)
    eval_set_prompt_ids: frozenset[int] = frozenset()  # marked by ``raw-votes`` (``in_eval_set``)
    groups_read: int = 0  # groups ``export_rows`` has taken so far
    rows_made: int = 0  # rows it has given so far


@dataclass(frozen=True)
class ExportFormat:
    name: str
    label: str
    file_types: tuple[str, ...]
    options: tuple[str, ...]  # the ``ExportOptions`` fields this format reads
    needs_vote_details: bool
    columns: Callable[[ExportOptions], tuple[Column, ...]]
    rows: Callable[[ComparisonGroup, FormatContext], Iterable[dict[str, Any]]]
    # The rows as JSONL lines, built directly (same bytes as ``jsonl_line(row)``), where it pays.
    lines: Callable[[ComparisonGroup, FormatContext], Iterable[str]] | None = None


# --- shared pieces ---------------------------------------------------------------------------------


def prompt_text(messages: list[dict[str, str]]) -> str:
    """A prompt as plain text: each turn as ``"\\n\\nHuman: "``/``"\\n\\nAssistant: "``/``"\\n\\nSystem: "``
    + content, then the assistant cue ``"\\n\\nAssistant:"`` (HH-RLHF's transcript form)."""
    return "".join(f"{TEXT_MARKERS[m['role']]} {m['content']}" for m in messages) + ASSISTANT


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _pair(group: ComparisonGroup, context: FormatContext):
    """``(verdict, (chosen, rejected))`` when the group's votes make a pair, else None (counted)."""
    verdict = group_decision(group, context)
    if verdict.outcome != "pair":
        context.counts[verdict.outcome] += 1
        return None
    left_out = pair_left_out(text_a=group.text_a, text_b=group.text_b)
    if left_out is not None:
        context.counts[left_out] += 1
        return None
    return verdict, chosen_rejected(winner=verdict.winner, text_a=group.text_a, text_b=group.text_b)


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).isoformat() if moment is not None else ""


# --- the formats -----------------------------------------------------------------------------------


def trl_preference_columns(options: ExportOptions) -> tuple[Column, ...]:
    kind = "messages" if options.conversational else "str"
    columns = (Column("prompt", kind), Column("chosen", kind), Column("rejected", kind))
    return columns + ((Column("margin", "float"),) if options.include_margin else ())


def trl_preference_rows(group: ComparisonGroup, context: FormatContext) -> Iterable[dict[str, Any]]:
    decided = _pair(group, context)
    if decided is None:
        return ()
    verdict, (chosen, rejected) = decided
    margin = verdict.margin if context.options.include_margin else None
    if context.options.conversational:
        return (preference_row(prompt_messages=group.prompt_messages, chosen=chosen, rejected=rejected, margin=margin),)
    row: dict[str, Any] = {"prompt": prompt_text(group.prompt_messages), "chosen": " " + chosen, "rejected": " " + rejected}
    if margin is not None:
        row["margin"] = margin
    return (row,)


def jsonl_line(row: dict[str, Any]) -> str:
    """One JSONL line: ``json.dumps(row, ensure_ascii=False)`` (``", "`` and ``": "`` separators,
    keys in row order: the HH-RLHF files' layout) + ``"\\n"``."""
    return _encode(row) + "\n"


_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def _prompt_json(group: ComparisonGroup) -> str:
    """The prompt's messages as JSON, as ``_encode`` writes them. The stored text is used as it is
    when it has no ``\\u`` escape: Django stores ``json.dumps`` output and PostgreSQL's ``jsonb``
    prints the same separators, so without escapes (non-ASCII text, control characters) the two
    are the same bytes; otherwise the messages are encoded again."""
    text = group.prompt_json
    if text and "\\u" not in text:
        return text
    return _encode(group.prompt_messages)


def trl_preference_lines(group: ComparisonGroup, context: FormatContext) -> Iterable[str]:
    """``trl_preference_rows`` as JSONL lines, concatenated from pre-encoded pieces instead of
    encoding a dict per row (about 2.5x cheaper: the export's largest cost after the database).
    The same bytes as ``jsonl_line`` of each row; ``tests/test_exports_jsonl.py`` checks it."""
    decided = _pair(group, context)
    if decided is None:
        return ()
    verdict, (chosen, rejected) = decided
    margin = f', "margin": {verdict.margin!r}' if context.options.include_margin else ""
    if context.options.conversational:
        return (
            f'{{"prompt": {_prompt_json(group)}, "chosen": [{{"role": "assistant", "content": {_string(chosen)}}}], '
            f'"rejected": [{{"role": "assistant", "content": {_string(rejected)}}}]{margin}}}\n',
        )
    return (
        f'{{"prompt": {_string(prompt_text(group.prompt_messages))}, "chosen": {_string(" " + chosen)}, '
        f'"rejected": {_string(" " + rejected)}{margin}}}\n',
    )


def trl_unpaired_columns(options: ExportOptions) -> tuple[Column, ...]:
    kind = "messages" if options.conversational else "str"
    return (Column("prompt", kind), Column("completion", kind), Column("label", "bool"))


def trl_unpaired_rows(group: ComparisonGroup, context: FormatContext) -> Iterable[dict[str, Any]]:
    verdict = group_decision(group, context)
    if verdict.outcome in ("pair", "both_bad"):
        left_out = pair_left_out(text_a=group.text_a, text_b=group.text_b)
        if left_out is not None:
            context.counts[left_out] += 1
            return ()
    if verdict.outcome == "pair":
        texts = chosen_rejected(winner=verdict.winner, text_a=group.text_a, text_b=group.text_b)
        labelled = ((texts[0], True), (texts[1], False))
    elif verdict.outcome == "both_bad":
        labelled = ((group.text_a, False), (group.text_b, False))
    else:
        context.counts[verdict.outcome] += 1
        return ()
    if context.options.conversational:
        prompt = group.prompt_messages
        return [{"prompt": prompt, "completion": _assistant(text), "label": label} for text, label in labelled]
    prompt = prompt_text(group.prompt_messages)
    return [{"prompt": prompt, "completion": " " + text, "label": label} for text, label in labelled]


RAW_VOTE_COLUMNS = (
    Column("vote_id", "int"), Column("comparison_id", "int"), Column("prompt_id", "int"),
    Column("completion_a_id", "int"), Column("completion_b_id", "int"),
    Column("model_a", "str"), Column("model_b", "str"),
    Column("choice", "str"), Column("strength", "str"),
    Column("helpfulness", "str"), Column("harmlessness", "str"), Column("honesty", "str"),
    Column("rationale", "str"), Column("shown_left", "str"), Column("ms_on_item", "int?"),
    Column("annotator", "str"), Column("source", "str"), Column("created_at", "str"),
    Column("split", "str"), Column("gold_choice", "str"), Column("in_eval_set", "bool"),
)


def raw_vote_rows(group: ComparisonGroup, context: FormatContext) -> Iterable[dict[str, Any]]:
    name = context.pseudonyms
    in_eval_set = group.prompt_id in context.eval_set_prompt_ids
    return [
        {
            "vote_id": v.vote_id, "comparison_id": group.comparison_id, "prompt_id": group.prompt_id,
            "completion_a_id": group.completion_a_id, "completion_b_id": group.completion_b_id,
            "model_a": group.model_a, "model_b": group.model_b,
            "choice": v.choice, "strength": v.strength,
            "helpfulness": v.helpfulness, "harmlessness": v.harmlessness, "honesty": v.honesty,
            "rationale": v.rationale, "shown_left": v.shown_left, "ms_on_item": v.ms_on_item,
            "annotator": name(v.annotator_id, v.annotator_name), "source": v.source,
            "created_at": _iso(v.created_at), "split": group.split, "gold_choice": group.gold_choice,
            "in_eval_set": in_eval_set,
        }
        for v in group.votes
    ]


HH_RLHF_COLUMNS = (Column("chosen", "str"), Column("rejected", "str"))


def hh_rlhf_rows(group: ComparisonGroup, context: FormatContext) -> Iterable[dict[str, Any]]:
    if any(m["role"] == "system" for m in group.prompt_messages):
        context.counts["system_prompt"] += 1
        return ()
    decided = _pair(group, context)
    if decided is None:
        return ()
    _, (chosen, rejected) = decided
    return ({
        "chosen": transcript_build(prompt_messages=group.prompt_messages, response=chosen),
        "rejected": transcript_build(prompt_messages=group.prompt_messages, response=rejected),
    },)


ARENA_COLUMNS = (
    Column("question_id", "str"), Column("model_a", "str"), Column("model_b", "str"), Column("winner", "str"),
    Column("judge", "str"), Column("conversation_a", "messages"), Column("conversation_b", "messages"),
    Column("turn", "int"), Column("tstamp", "float"),
)


def arena_rows(group: ComparisonGroup, context: FormatContext) -> Iterable[dict[str, Any]]:
    if text_is_empty(group.text_a) or text_is_empty(group.text_b):
        context.counts["empty_response"] += 1
        return ()
    conversation_a = group.prompt_messages + _assistant(group.text_a)
    conversation_b = group.prompt_messages + _assistant(group.text_b)
    turn = sum(1 for m in group.prompt_messages if m["role"] == "user")
    name = context.pseudonyms
    in_eval_set = group.prompt_id in context.eval_set_prompt_ids
    return [
        {
            "question_id": str(group.comparison_id), "model_a": group.model_a, "model_b": group.model_b,
            "winner": ARENA_WINNERS[v.choice], "judge": name(v.annotator_id, v.annotator_name),
            "conversation_a": conversation_a, "conversation_b": conversation_b, "turn": turn,
            "tstamp": v.created_at.timestamp() if v.created_at is not None else 0.0,
        }
        for v in group.votes
    ]


ROW_FILE_TYPES = (JSONL, PARQUET, HF_DATASET)
EVAL_SET_OPTION = "include_eval_set_prompts"
FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(TRL_PREFERENCE, "TRL preference (prompt/chosen/rejected + margin)", ROW_FILE_TYPES,
                     ("conversational", "include_margin", EVAL_SET_OPTION), False, trl_preference_columns,
                     trl_preference_rows, trl_preference_lines),
        ExportFormat(TRL_UNPAIRED, "TRL unpaired / KTO (prompt/completion/label)", ROW_FILE_TYPES,
                     ("conversational", EVAL_SET_OPTION), False, trl_unpaired_columns, trl_unpaired_rows),
        ExportFormat(RAW_VOTES, "Raw votes (one row per vote)", FILE_TYPES,
                     ("real_usernames",), True, lambda options: RAW_VOTE_COLUMNS, raw_vote_rows),
        ExportFormat(HH_RLHF, "HH-RLHF transcripts (chosen/rejected)", ROW_FILE_TYPES,
                     (EVAL_SET_OPTION,), False, lambda options: HH_RLHF_COLUMNS, hh_rlhf_rows),
        ExportFormat(ARENA, "Chatbot Arena battles (one row per vote)", ROW_FILE_TYPES,
                     ("real_usernames", EVAL_SET_OPTION), True, lambda options: ARENA_COLUMNS, arena_rows),
    )
}


def leaves_out_eval_set_prompts(format_name: str, options: ExportOptions) -> bool:
    """Whether an export in ``format_name`` with ``options`` leaves out comparisons on eval-set
    prompts: the formats with texts do unless ``include_eval_set_prompts`` is on (module docstring)."""
    return EVAL_SET_OPTION in FORMATS[format_name].options and not options.include_eval_set_prompts


def needs_eval_set_prompts(format_name: str, options: ExportOptions) -> bool:
    """Whether an export in ``format_name`` reads the eval-set prompt ids: to leave them out
    (``leaves_out_eval_set_prompts``) or to mark them (``raw-votes``' ``in_eval_set``)."""
    return format_name == RAW_VOTES or leaves_out_eval_set_prompts(format_name, options)


def export_rows(
    groups: Iterable[ComparisonGroup], *, export_format: ExportFormat, context: FormatContext, min_agreement: float = 0.0,
    lines: bool = False, include_flagged: bool = False, eval_set_prompt_ids: frozenset[int] = frozenset(),
) -> Iterator[tuple[str, dict[str, Any] | str]]:
    """``(split, row)`` for every row the format makes of ``groups``, in group order. With
    ``lines``, a format that has a ``lines`` builder gives each row as its JSONL line (a str).

    A group with no votes gives nothing; one whose share of votes agreeing with the most common
    choice (``Verdict.agreement``) is below ``min_agreement`` gives nothing and is counted as
    ``low_agreement`` (this is the "minimum agreement" filter, applied to every format). A group
    imported with flags gives nothing and is counted as ``flagged_import`` unless ``include_flagged``.
    A group whose ``prompt_id`` is in ``eval_set_prompt_ids`` (the eval-set prompts to leave out;
    empty: none) gives nothing and, if it would have given rows, is counted once as
    ``eval_set_excluded`` (as snapshots count it: a tie on an eval-set prompt stays a tie).
    ``context.groups_read`` and ``context.rows_made`` count the groups taken and rows given.
    """
    make = export_format.lines if lines and export_format.lines is not None else export_format.rows
    for group in groups:
        context.groups_read += 1
        if not group.tally:
            continue
        if group.import_flags and not include_flagged:
            context.counts["flagged_import"] += 1
            continue
        if context.labels is not None and context.labels.get(group.comparison_id) != tally_decision(group.tally).winner:
            context.counts["dawid_skene_differs"] += 1
        if min_agreement and group_decision(group, context).agreement < min_agreement:
            context.counts["low_agreement"] += 1
            continue
        rows = make(group, context)
        if eval_set_prompt_ids and group.prompt_id in eval_set_prompt_ids:
            if any(True for _ in rows):
                context.counts["eval_set_excluded"] += 1
            continue
        for row in rows:
            context.rows_made += 1
            yield group.split, row
