"""Votes -> a TRL preference dataset (pure code, no Django imports).

Each comparison's counted votes are aggregated by majority into at most one row of TRL's
conversational preference format with an explicit prompt::

    {"prompt": [{"role": "user", "content": "..."}, ...],
     "chosen": [{"role": "assistant", "content": "..."}],
     "rejected": [{"role": "assistant", "content": "..."}],
     "margin": 0.6666666666666666,      # only when rules.include_margin
     "strength": "clear",               # '' when no agreeing vote gave one
     "comparison_id": 17}

``strength`` and ``comparison_id`` are extra columns for accuracy-by-strength breakdowns and
lineage; a runner drops the columns its trainer does not take. Rows are ordered by
``comparison_id``, and the whole result depends only on the set of votes and the rules, never on
the order the votes arrive in.

The train/eval split is decided per prompt (by its messages' SHA-256, ``prompt_key``), so the same
prompt is never in both splits.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Collection, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .messages import responses_equivalent, text_is_empty
from .vote_origins import DEFAULT_AI_WEIGHT, DEFAULT_VOTES, vote_choice_dict, vote_choice_problems, vote_weight

CHOICES = ("a", "b", "tie", "both_bad")
SPLITS = ("train", "eval")
SPLIT_BY = ("prompt", "hash")

# Strength -> margin, after Llama 2 (Touvron et al. 2023, "Llama 2: Open Foundation and Fine-Tuned
# Chat Models", §3.2.2 and Table 28): the reward loss -log σ(r_chosen - r_rejected - m) with a
# discrete margin per preference rating. Their "small margin" variant (1, 2/3, 1/3, 0 for
# significantly better / better / slightly better / negligibly better) is mapped onto our three
# levels; a vote that gives no strength contributes 0.0. TRL's RewardTrainer reads the same
# ``margin`` column.
MARGIN_BY_STRENGTH: dict[str, float] = {"strong": 1.0, "clear": 2 / 3, "slight": 1 / 3, "": 0.0}
# Weakest first: a tie between strengths in a row's ``strength`` label goes to the weaker one.
STRENGTH_ORDER = ("slight", "clear", "strong")

COUNT_KEYS = (
    "votes_seen",
    "votes_excluded_annotator",
    "votes_excluded_gold",
    "votes_excluded_source",
    "comparisons",
    "pairs_train",
    "pairs_eval",
    "ties",
    "split_votes",
    "both_bad",
    "identical",
    "empty_response",
    "too_few_votes",
    "low_agreement",
    "flagged_import",
    "eval_set_excluded",
)
# Counted only when the rules ask for them (``AggregationRules.uses_quality``), so existing counts keep their keys.
QUALITY_COUNT_KEYS = (
    "left_out_low_gold",
    "left_out_low_kappa",
    "left_out_flagged_annotator",
    "left_out_fast_votes",
    "dawid_skene_differs",
)
AGGREGATIONS = ("majority", "dawid_skene")
MAX_SALT_CHARS = 200


@dataclass(frozen=True)
class VoteRecord:
    """One vote with what the builder needs of its comparison and prompt.

    ``prompt_messages`` is the prompt's ``[{"role", "content"}, ...]`` list, ``text_a``/``text_b``
    the two completions, ``choice`` one of ``CHOICES``, ``strength`` a key of ``MARGIN_BY_STRENGTH``,
    ``import_flags`` the comparison's import flags (``""`` unless an imported pair was flagged),
    ``is_gold`` whether the comparison has a gold choice, ``split`` the prompt's stored split
    (``"train"``/``"eval"``), ``prompt_key`` the prompt's ``messages_sha256`` and ``source`` where
    the vote came from (``"annotator"``, ``"hh-rlhf"``, ...).
    """

    vote_id: int
    comparison_id: int
    prompt_id: int
    prompt_messages: list[dict[str, str]]
    text_a: str
    text_b: str
    choice: str
    strength: str
    annotator_id: int
    is_gold: bool
    split: str
    prompt_key: str
    source: str = "annotator"
    import_flags: str = ""  # the comparison's ``import_flags`` (``feedback.import_flags``); "" when clean
    gold_choice: str = ""  # the comparison's gold answer ("" unless a gold item), for ``min_gold_accuracy``
    ms_on_item: int | None = None  # ms the item was on screen (None: unknown, e.g. imported), for ``min_ms_on_item``
    in_eval_set: bool = False  # the prompt is an eval-set prompt or a near-duplicate (``feedback.evalsets``)
    origin: str = "human"  # "human" or "ai" (an AI judge's vote), for ``votes`` (``feedback.vote_origins``)


class RulesError(ValueError):
    """Aggregation rules that do not validate; ``errors`` maps each bad field to its message."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


class RulesReader:
    """Reads a JSON-shaped rules object field by field for a rules dataclass's ``from_dict``,
    collecting every problem before raising (shared by ``AggregationRules`` and
    ``feedback.demonstrations.SFTRules``).

    Raises (from the constructor):
        RulesError: ``{"rules": ...}`` when ``data`` is not an object.
    """

    def __init__(self, data: Any, known: Iterable[str], *, noun: str = "rule"):
        if not isinstance(data, Mapping):
            raise RulesError({f"{noun}s": f"must be an object of {noun} names to values"})
        known = list(known)
        self.data = data
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        for key in data:
            if key not in known:
                self.errors[str(key)] = f"unknown {noun}; expected one of {', '.join(known)}"

    def check(self, name: str, ok, message: str, convert=lambda v: v) -> None:
        """Keep ``convert(data[name])`` when ``ok(data[name])``, else record ``message``; absent keys keep their default."""
        if name not in self.data:
            return
        if ok(self.data[name]):
            self.values[name] = convert(self.data[name])
        else:
            self.errors[name] = message

    def flag(self, name: str) -> None:
        self.check(name, lambda v: isinstance(v, bool), "must be true or false")

    def fraction(self, name: str) -> None:
        self.check(name, lambda v: _is_number(v) and 0 <= v <= 1, "must be a number from 0 to 1", float)

    def ids(self, name: str) -> None:
        """A list of user ids, kept as a sorted tuple without repeats."""
        self.check(
            name,
            lambda v: isinstance(v, (list, tuple)) and all(_is_int(i) for i in v),
            "must be a list of annotator ids (integers)",
            lambda v: tuple(sorted(set(v))),
        )

    def names(self, name: str) -> None:
        """A list of source names, stripped, kept as a sorted tuple without repeats."""
        self.check(
            name,
            lambda v: isinstance(v, (list, tuple)) and all(isinstance(s, str) and s.strip() for s in v),
            "must be a list of non-empty source names",
            lambda v: tuple(sorted({s.strip() for s in v})),
        )

    def split_fields(self) -> None:
        """``split_by``, ``eval_fraction`` and ``split_salt`` (see ``prompt_split``)."""
        self.check("split_by", lambda v: v in SPLIT_BY, f"must be one of {', '.join(SPLIT_BY)}")
        self.fraction("eval_fraction")
        self.check(
            "split_salt",
            lambda v: isinstance(v, str) and len(v) <= MAX_SALT_CHARS,
            f"must be a string of at most {MAX_SALT_CHARS} characters",
        )

    def vote_choice(self) -> None:
        """``votes`` and ``ai_weight`` (``feedback.vote_origins``)."""
        votes = self.data.get("votes", DEFAULT_VOTES)
        problems = vote_choice_problems(votes, self.data.get("ai_weight"), ai_weight_given="ai_weight" in self.data)
        self.errors.update(problems)
        if "votes" in self.data and "votes" not in problems:
            self.values["votes"] = votes
        if "ai_weight" in self.data and "ai_weight" not in problems:
            self.values["ai_weight"] = float(self.data["ai_weight"])

    def quality_fields(self) -> None:
        """``aggregation``, ``min_gold_accuracy``, ``min_gold_votes``, ``min_kappa``,
        ``exclude_flagged``, ``min_ms_on_item`` (see ``feedback.quality.rules``)."""
        self.check("aggregation", lambda v: v in AGGREGATIONS, f"must be one of {', '.join(AGGREGATIONS)}")
        for name in ("min_gold_accuracy", "min_kappa"):
            self.check(name, lambda v: v is None or (_is_number(v) and 0 <= v <= 1),
                       "must be a number from 0 to 1 (or null for off)", lambda v: None if v is None else float(v))
        self.check("min_gold_votes", lambda v: _is_int(v) and v >= 0, "must be a whole number of at least 0")
        self.check("min_ms_on_item", lambda v: _is_int(v) and v >= 0, "must be a whole number of milliseconds, at least 0")
        self.flag("exclude_flagged")

    def result(self) -> dict[str, Any]:
        """The checked values by field name.

        Raises:
            RulesError: every recorded problem, ``{field: message}``.
        """
        if self.errors:
            raise RulesError(self.errors)
        return self.values


@dataclass(frozen=True)
class AggregationRules:
    """How votes become rows. ``from_dict`` validates; constructing directly trusts the values.

    Fields:
        include_margin: every row carries a float ``margin`` (see ``MARGIN_BY_STRENGTH``); if false,
            no row has the key.
        exclude_annotators: user ids whose votes are not counted.
        include_gold: count votes on comparisons that have a gold choice (quality-control items).
        sources: count only votes whose ``source`` is listed; empty counts every source.
        min_votes: comparisons with fewer counted votes are left out (``too_few_votes``).
        min_agreement: a comparison whose share of counted votes agreeing with the winner is below
            this (0.0-1.0) is left out (``low_agreement``).
        split_by: ``"prompt"`` uses the prompt's stored split; ``"hash"`` puts a prompt in eval when
            ``int(sha256(split_salt + prompt_key)[:8], 16) / 2**32 < eval_fraction``.
        eval_fraction: the eval share for ``split_by="hash"`` (0.0-1.0); unused otherwise.
        split_salt: a string mixed into the hash, to draw another split of the same prompts.
        include_flagged: use comparisons imported with flags (``feedback.import_flags``: a missing
            margin, a truncated-looking response, a conversation that diverged early); by default
            they are left out and counted (``flagged_import``). A missing margin is never invented:
            an imported margin is not stored, so such a row's ``margin`` is the strength margin.
        aggregation: ``"majority"`` (a strict majority of counted votes decides) or ``"dawid_skene"``
            (the Dawid-Skene label of ``feedback.quality.aggregation`` decides; ties and both-bad are
            handled as majority's, and ``counts["dawid_skene_differs"]`` says how many comparisons'
            label differs from the majority's, a split counting as different).
        min_gold_accuracy, min_gold_votes, min_kappa, exclude_flagged, min_ms_on_item: quality rules
            (``feedback.quality.rules``): votes of low-gold, low-kappa or flagged annotators and
            votes faster than ``min_ms_on_item`` ms are left out and counted by reason.
        votes, ai_weight: whose votes count (``feedback.vote_origins``): ``"human"`` (default),
            ``"ai"``, or ``"both"`` with each AI vote weighing ``ai_weight`` (0-1) in the tally
            (majority, agreement share and margin are weighted; ``min_votes`` counts votes).
            Votes of the other origin are left out (``votes_excluded_origin``).
    """

    include_margin: bool = True
    exclude_annotators: tuple[int, ...] = ()
    include_gold: bool = True
    sources: tuple[str, ...] = ()
    min_votes: int = 1
    min_agreement: float = 0.0
    split_by: str = "prompt"
    eval_fraction: float = 0.1
    split_salt: str = ""
    include_flagged: bool = False
    aggregation: str = "majority"
    min_gold_accuracy: float | None = None
    min_gold_votes: int = 5
    min_kappa: float | None = None
    exclude_flagged: bool = False
    min_ms_on_item: int = 0
    votes: str = DEFAULT_VOTES
    ai_weight: float = DEFAULT_AI_WEIGHT

    @property
    def uses_quality(self) -> bool:
        """Whether any quality rule or Dawid-Skene is asked for (then ``QUALITY_COUNT_KEYS`` are counted)."""
        return self.as_quality_dict() != QUALITY_DEFAULTS

    def as_quality_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in QUALITY_DEFAULTS}

    @classmethod
    def from_dict(cls, data: Any) -> "AggregationRules":
        """Validate and normalise JSON-shaped rules; missing keys take their defaults.

        Lists become sorted tuples without repeats, so equal rules give equal ``as_dict()``.

        Raises:
            RulesError: every problem at once, ``{field: message}``; unknown keys are errors, and a
                non-object gives ``{"rules": ...}``.
        """
        reader = RulesReader(data, cls.__dataclass_fields__)
        reader.flag("include_margin")
        reader.flag("include_gold")
        reader.flag("include_flagged")
        reader.ids("exclude_annotators")
        reader.names("sources")
        reader.check("min_votes", lambda v: _is_int(v) and v >= 1, "must be a whole number of at least 1")
        reader.fraction("min_agreement")
        reader.split_fields()
        reader.quality_fields()
        reader.vote_choice()
        values = reader.result()
        if values.get("aggregation") == "dawid_skene" and values.get("ai_weight", 1.0) != 1.0:
            raise RulesError({"ai_weight": "must be 1 with aggregation dawid_skene (it weighs every voter itself)"})
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready rules (tuples as lists); ``from_dict(rules.as_dict()) == rules``."""
        return {
            "include_margin": self.include_margin,
            "exclude_annotators": list(self.exclude_annotators),
            "include_gold": self.include_gold,
            "sources": list(self.sources),
            "min_votes": self.min_votes,
            "min_agreement": self.min_agreement,
            "split_by": self.split_by,
            "eval_fraction": self.eval_fraction,
            "split_salt": self.split_salt,
            "include_flagged": self.include_flagged,
            # Quality rules only when set, so rules stored before them read the same.
            **{k: v for k, v in self.as_quality_dict().items() if v != QUALITY_DEFAULTS[k]},
            # The vote choice only when not the default (people's votes), likewise.
            **vote_choice_dict(self.votes, self.ai_weight),
        }


QUALITY_DEFAULTS: dict[str, Any] = {
    "aggregation": "majority", "min_gold_accuracy": None, "min_gold_votes": 5, "min_kappa": None,
    "exclude_flagged": False, "min_ms_on_item": 0,
}


@dataclass(frozen=True)
class PreferenceDataset:
    """What ``build_preference_dataset`` returns.

    ``train``/``eval``: rows (see the module docstring), ordered by comparison id.
    ``vote_ids``: sorted ids of the votes used, i.e. every counted vote (agreeing or not) of a
    comparison that produced a row; votes of left-out comparisons are not used.
    ``annotator_ids``: sorted ids of the annotators (people) of those votes; AI judges' votes are
    counted in ``counts["ai_votes_used"]`` when the rules take them.
    ``counts``: one int per key of ``COUNT_KEYS``.
    ``content_hash``: ``rows_hash(train, eval)``.
    """

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    vote_ids: list[int]
    annotator_ids: list[int]
    counts: dict[str, int] = field(default_factory=dict)
    content_hash: str = ""
    reliability: dict[int, float] = field(default_factory=dict)  # Dawid-Skene, per annotator id (0..1)


def row_line(row: Mapping[str, Any]) -> str:
    """One row as its canonical JSONL line (sorted keys, UTF-8 text, no spaces, ending in ``\\n``)."""
    return json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def rows_hash(train: Iterable[Mapping[str, Any]], eval: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 hex digest of ``"train\\n"`` + the train rows' lines + ``"eval\\n"`` + the eval rows' lines.

    The lines are ``row_line``'s, i.e. exactly the bytes of ``train.jsonl`` and ``eval.jsonl``, so
    the hash of a snapshot's files can be recomputed from them (``hash_files``). The two header
    lines (not JSON) keep a row moved from one split to the other from giving the same hash.
    """
    digest = hashlib.sha256(b"train\n")
    for row in train:
        digest.update(row_line(row).encode("utf-8"))
    digest.update(b"eval\n")
    for row in eval:
        digest.update(row_line(row).encode("utf-8"))
    return digest.hexdigest()


def hash_files(train_chunks: Iterable[bytes], eval_chunks: Iterable[bytes]) -> str:
    """``rows_hash`` recomputed from the raw bytes of ``train.jsonl`` and ``eval.jsonl`` (any chunking)."""
    digest = hashlib.sha256(b"train\n")
    for chunk in train_chunks:
        digest.update(chunk)
    digest.update(b"eval\n")
    for chunk in eval_chunks:
        digest.update(chunk)
    return digest.hexdigest()


def counts_summary(counts: Mapping[str, int], *, order: Sequence[str] = COUNT_KEYS, empty: str = "no votes") -> str:
    """``"votes_seen=12, pairs_train=3, ties=1"``: the non-zero counts in ``order``, then any others
    by name; ``empty`` when every count is zero."""
    keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    parts = [f"{key}={counts[key]}" for key in keys if isinstance(counts[key], int) and counts[key]]
    return ", ".join(parts) or empty


def hash_split(*, prompt_key: str, salt: str, eval_fraction: float) -> str:
    """``"eval"`` if ``int(sha256(salt + prompt_key)[:8], 16) / 2**32 < eval_fraction``, else ``"train"``."""
    draw = int(hashlib.sha256((salt + prompt_key).encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return "eval" if draw < eval_fraction else "train"


def prompt_split(
    *, prompt_key: str, eval_keys: Container[str], split_by: str, split_salt: str = "", eval_fraction: float = 0.1
) -> str:
    """``"train"`` or ``"eval"`` for a prompt, by its ``prompt_key`` (messages SHA-256) alone.

    ``split_by="prompt"``: eval when ``prompt_key`` is in ``eval_keys`` (the keys of every prompt
    row stored as eval, so copies of one prompt cannot straddle the splits); ``split_by="hash"``:
    ``hash_split(prompt_key, split_salt, eval_fraction)``.
    """
    if split_by == "hash":
        return hash_split(prompt_key=prompt_key, salt=split_salt, eval_fraction=eval_fraction)
    return "eval" if prompt_key in eval_keys else "train"


def vote_exclusion(
    vote: VoteRecord, *, include_gold: bool, sources: Container[str], exclude_annotators: Container[int]
) -> str | None:
    """The count key under which a vote is left out, or None when it is counted.

    In this order: a vote on a gold comparison when not ``include_gold`` (``votes_excluded_gold``),
    a source not in a non-empty ``sources`` (``votes_excluded_source``), an annotator in
    ``exclude_annotators`` (``votes_excluded_annotator``).
    """
    if vote.is_gold and not include_gold:
        return "votes_excluded_gold"
    if sources and vote.source not in sources:
        return "votes_excluded_source"
    if vote.annotator_id in exclude_annotators:
        return "votes_excluded_annotator"
    return None


def majority(choices: Iterable[str]) -> str | None:
    """The choice with strictly more votes than every other, or None (a split vote, e.g. 1-1 or 2-2-1).

    A split is never broken by vote order or id: it is treated as a tie.
    """
    tally = Counter(choices).most_common()
    if not tally or (len(tally) > 1 and tally[0][1] == tally[1][1]):
        return None
    return tally[0][0]


@dataclass(frozen=True)
class Verdict:
    """What one comparison's counted votes decide (``comparison_verdict``).

    ``outcome``: ``"pair"`` when the votes make a chosen/rejected row, else the count key saying
    why not: ``too_few_votes``, ``split_votes``, ``ties``, ``both_bad`` or ``low_agreement``.
    ``winner``: the strict-majority choice (``a``, ``b``, ``tie``, ``both_bad``) or None (a split).
    ``agreement``: share of the votes giving the most common choice (0.0-1.0; 0.0 for no votes).
    ``margin``: mean of ``MARGIN_BY_STRENGTH`` over the votes agreeing with the winner (0.0 unless a pair).
    ``strength``: their most common strength, ties to the weaker (``""`` unless a pair, or none given).
    """

    outcome: str
    winner: str | None
    agreement: float
    margin: float = 0.0
    strength: str = ""


def comparison_verdict(votes: Sequence[tuple[str, str]], *, min_votes: int = 1, min_agreement: float = 0.0) -> Verdict:
    """Decide one comparison from its counted votes, each ``(choice, strength)`` (any order).

    The decision depends only on how many votes gave each ``(choice, strength)``:
    ``tally_verdict`` of their tally, which states the rules.
    """
    tally: dict[tuple[str, str], int] = {}
    for vote in votes:
        tally[vote] = tally.get(vote, 0) + 1
    return tally_verdict(tally, min_votes=min_votes, min_agreement=min_agreement)


def tally_verdict(
    tally: Mapping[tuple[str, str], int], *, min_votes: int = 1, min_agreement: float = 0.0, label: str | None = None
) -> Verdict:
    """Decide one comparison from its vote tally: ``{(choice, strength): number of votes}``.

    In this order: fewer than ``min_votes`` votes -> ``too_few_votes``; no strict majority ->
    ``split_votes`` (a 1-1 or 2-2-1 vote is never broken by order); majority ``tie`` -> ``ties``;
    majority ``both_bad`` -> ``both_bad``; share agreeing with the winner below ``min_agreement``
    -> ``low_agreement``; otherwise ``pair``, with ``margin`` the mean ``MARGIN_BY_STRENGTH`` of
    the agreeing votes (``math.fsum``: exactly rounded, so independent of vote order) and
    ``strength`` their most common strength (ties to the weaker). The one decision used by
    snapshots (``build_preference_dataset``) and by exports (``feedback.exports``, which count the
    tally in SQL). Zero counts are ignored.

    ``label``: a winner decided elsewhere (Dawid-Skene, ``feedback.quality.aggregation``) instead
    of the strict majority: no split check; the agreement is the share of votes giving ``label``.
    """
    by_choice: dict[str, int] = {}
    total = 0
    for (choice, _), count in tally.items():
        if count:
            by_choice[choice] = by_choice.get(choice, 0) + count
            total += count
    if any(isinstance(count, float) for count in by_choice.values()):
        # Weighted tallies (AI votes weighing ``ai_weight``, ``feedback.vote_origins``): sums of
        # weights are compared at 9 decimals, so 0.3 + 0.3 + 0.3 ties 0.9.
        by_choice = {choice: round(count, 9) for choice, count in by_choice.items()}
        total = round(total, 9)
    top = max(by_choice.values()) if by_choice else 0
    share = top / total if total else 0.0
    if total < min_votes:
        return Verdict("too_few_votes", None, share)
    if label is not None:
        winner, top = label, by_choice.get(label, 0)
        share = top / total if total else 0.0
    elif not by_choice or list(by_choice.values()).count(top) > 1:
        return Verdict("split_votes", None, share)
    else:
        winner = next(choice for choice, count in by_choice.items() if count == top)
    if winner == "tie":
        return Verdict("ties", winner, share)
    if winner == "both_bad":
        return Verdict("both_bad", winner, share)
    if top / total < min_agreement:
        return Verdict("low_agreement", winner, share)
    margins: list[float] = []
    best, best_count = "", 0
    by_strength = {strength: count for (choice, strength), count in tally.items() if choice == winner and count}
    for strength, count in by_strength.items():
        if isinstance(count, int):
            margins.extend([MARGIN_BY_STRENGTH[strength]] * count)
        else:  # a weighted count: the strength's margin times its weight
            margins.append(MARGIN_BY_STRENGTH[strength] * count)
    for strength in STRENGTH_ORDER:  # weakest first; only a strictly larger count replaces it
        count = by_strength.get(strength, 0)
        if count > best_count:
            best, best_count = strength, count
    return Verdict("pair", winner, share, math.fsum(margins) / top if top else 0.0, best)


def pair_left_out(*, text_a: str, text_b: str) -> str | None:
    """Why two responses give no preference row, whoever won: ``"identical"`` when they are
    equivalent (``feedback.messages.responses_equivalent``: the same after NFC and whitespace
    collapsing; two empty responses included), ``"empty_response"`` when one of them is empty or
    whitespace only (a row would carry an empty assistant message), else None."""
    if responses_equivalent(text_a, text_b):
        return "identical"
    if text_is_empty(text_a) or text_is_empty(text_b):
        return "empty_response"
    return None


def chosen_rejected(*, winner: str, text_a: str, text_b: str) -> tuple[str, str] | None:
    """``(chosen, rejected)`` texts for a winner ``"a"`` or ``"b"``, or None when ``pair_left_out``
    gives a reason (equivalent responses, or an empty one)."""
    if pair_left_out(text_a=text_a, text_b=text_b) is not None:
        return None
    return (text_a, text_b) if winner == "a" else (text_b, text_a)


def preference_row(
    *, prompt_messages: list[dict[str, str]], chosen: str, rejected: str, margin: float | None
) -> dict[str, Any]:
    """One row of TRL's conversational preference format with an explicit prompt:
    ``{"prompt": messages, "chosen": [assistant msg], "rejected": [assistant msg]}`` plus
    ``"margin"`` (float) unless ``margin`` is None."""
    row: dict[str, Any] = {
        "prompt": prompt_messages,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }
    if margin is not None:
        row["margin"] = margin
    return row


def _validated(votes: Iterable[VoteRecord]) -> Iterator[VoteRecord]:
    seen: set[int] = set()
    for vote in votes:
        if vote.vote_id in seen:
            raise ValueError(f"vote {vote.vote_id} is given twice")
        seen.add(vote.vote_id)
        if vote.choice not in CHOICES:
            raise ValueError(f"vote {vote.vote_id} has choice {vote.choice!r}; expected one of {', '.join(CHOICES)}")
        if vote.strength not in MARGIN_BY_STRENGTH:
            raise ValueError(f"vote {vote.vote_id} has unknown strength {vote.strength!r}")
        if vote.split not in SPLITS:
            raise ValueError(f"vote {vote.vote_id} has prompt split {vote.split!r}; expected train or eval")
        yield vote


def build_preference_dataset(
    votes: Iterable[VoteRecord], rules: AggregationRules, *, flagged_annotators: Collection[int] = (),
    leave_out_eval_set: bool = True,
) -> PreferenceDataset:
    """Aggregate votes into prompt-disjoint train and eval rows of TRL's conversational preference format.

    Per vote, in this order (each left-out vote is counted once, under the first that applies):
    a vote on a gold comparison when ``not rules.include_gold`` (``votes_excluded_gold``), a source
    not in a non-empty ``rules.sources`` (``votes_excluded_source``), an annotator in
    ``rules.exclude_annotators`` (``votes_excluded_annotator``); then the quality rules
    (``feedback.quality.rules``, judged on the votes that passed the source and annotator rules,
    gold votes included for gold accuracy): ``left_out_low_gold``, ``left_out_low_kappa``,
    ``left_out_flagged_annotator`` (annotators in ``flagged_annotators`` when
    ``rules.exclude_flagged``), ``left_out_fast_votes``. The rest are counted votes.

    With ``rules.aggregation == "dawid_skene"`` each comparison's winner is its Dawid-Skene label
    over every counted vote (``tally_verdict(label=...)``) instead of the strict majority;
    ``dawid_skene_differs`` counts the comparisons whose label differs from the majority's, and
    ``reliability`` (in the returned dataset, not in ``counts``) is each annotator's estimate.

    Per comparison with at least one counted vote (``comparisons``), in this order:
    imported with flags and ``not rules.include_flagged`` -> ``flagged_import``; fewer than ``min_votes`` counted votes -> ``too_few_votes``; no strict majority -> ``split_votes``
    (a 1-1 or 2-2-1 vote is a tie and is never broken by id order); majority ``tie`` -> ``ties``;
    majority ``both_bad`` -> ``both_bad``; share of votes agreeing with the winner below
    ``min_agreement`` -> ``low_agreement``; chosen and rejected texts equivalent
    (``feedback.messages.responses_equivalent``) -> ``identical``; one of them empty or whitespace
    only -> ``empty_response`` (never a row with an empty assistant message); a pair whose prompt is
    an eval-set prompt or a near-duplicate of one (``VoteRecord.in_eval_set``) -> ``eval_set_excluded``
    (unless ``leave_out_eval_set`` is false); otherwise a row in ``pairs_train`` or ``pairs_eval``. Ties and both-bad never
    become pairwise rows: TRL's chosen/rejected format cannot express "neither is better".

    The row's ``margin`` is the mean of ``MARGIN_BY_STRENGTH`` over the votes agreeing with the
    winner (Llama 2's discrete margins); ``strength`` is their most common strength.

    Split: with ``split_by="prompt"`` a prompt is in eval if any prompt row with the same messages
    (``prompt_key``) is stored as eval, so copies of one prompt cannot straddle the splits; with
    ``split_by="hash"`` see ``hash_split``. Either way the split is a function of ``prompt_key``.

    Args:
        votes: any iterable, in any order; read once.
        rules: see ``AggregationRules``.
    Returns:
        ``PreferenceDataset`` (rows ordered by comparison id; same votes and rules, same hash).
    Raises:
        ValueError: a vote id given twice, or an unknown choice, strength or split.
    """
    counts = dict.fromkeys(COUNT_KEYS + (QUALITY_COUNT_KEYS if rules.uses_quality else ()), 0)
    excluded_annotators = set(rules.exclude_annotators)
    sources = set(rules.sources)
    by_comparison: dict[int, list[VoteRecord]] = defaultdict(list)
    eval_keys: set[str] = set()
    votes = list(_validated(votes))
    weights = {v.vote_id: vote_weight(v.origin, votes=rules.votes, ai_weight=rules.ai_weight) for v in votes}
    excluded_origin = sum(1 for w in weights.values() if w is None)
    if excluded_origin:  # counted apart, so rules and data without AI votes give the counts they always did
        counts.update(votes_seen=excluded_origin, votes_excluded_origin=excluded_origin)
    if rules.votes != DEFAULT_VOTES:
        counts["ai_votes_used"] = 0
    votes = [v for v in votes if weights[v.vote_id] is not None]
    weighted = any(w != 1.0 for w in weights.values() if w is not None)
    screen = _quality_screen(votes, rules, sources, excluded_annotators, flagged_annotators)
    for vote in votes:
        counts["votes_seen"] += 1
        if vote.split == "eval":
            eval_keys.add(vote.prompt_key)
        excluded = vote_exclusion(
            vote, include_gold=rules.include_gold, sources=sources, exclude_annotators=excluded_annotators
        ) or (screen.reason(vote.annotator_id, vote.ms_on_item) if screen else None)
        if excluded:
            counts[excluded] += 1
        else:
            by_comparison[vote.comparison_id].append(vote)
    labels, reliability = _dawid_skene_labels(by_comparison, rules)

    def split_of(prompt_key: str) -> str:
        return prompt_split(
            prompt_key=prompt_key, eval_keys=eval_keys, split_by=rules.split_by, split_salt=rules.split_salt,
            eval_fraction=rules.eval_fraction,
        )

    rows: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    used: list[VoteRecord] = []
    for comparison_id in sorted(by_comparison):
        counted = sorted(by_comparison[comparison_id], key=lambda v: v.vote_id)
        counts["comparisons"] += 1
        if counted[0].import_flags and not rules.include_flagged:
            counts["flagged_import"] += 1
            continue
        tally: Counter = Counter()
        for v in counted:  # people's votes weigh 1 (ints, as before); AI votes their weight
            tally[(v.choice, v.strength)] += weights[v.vote_id] if weighted else 1
        if weighted and (len(counted) < rules.min_votes or not any(tally.values())):
            # min_votes counts votes, not weights; AI votes of weight 0 alone decide nothing.
            verdict = Verdict("too_few_votes", None, 0.0)
        else:
            verdict = tally_verdict(tally, min_votes=0 if weighted else rules.min_votes,
                                    min_agreement=rules.min_agreement, label=labels.get(comparison_id))
        if labels and labels[comparison_id] != majority(v.choice for v in counted):
            counts["dawid_skene_differs"] += 1
        if verdict.outcome != "pair":
            counts[verdict.outcome] += 1
            continue
        first = counted[0]
        left_out = pair_left_out(text_a=first.text_a, text_b=first.text_b)
        if left_out is not None:
            counts[left_out] += 1
            continue
        if first.in_eval_set and leave_out_eval_set:
            counts["eval_set_excluded"] += 1
            continue
        texts = chosen_rejected(winner=verdict.winner, text_a=first.text_a, text_b=first.text_b)
        row = preference_row(
            prompt_messages=first.prompt_messages, chosen=texts[0], rejected=texts[1],
            margin=verdict.margin if rules.include_margin else None,
        )
        row["strength"] = verdict.strength
        row["comparison_id"] = comparison_id
        if rules.votes != DEFAULT_VOTES:  # rows of people's votes only stay as they were
            row["ai_votes"] = sum(1 for v in counted if v.origin == "ai")
            counts["ai_votes_used"] += row["ai_votes"]
        split = split_of(first.prompt_key)
        rows[split].append(row)
        counts[f"pairs_{split}"] += 1
        used.extend(counted)

    return PreferenceDataset(
        train=rows["train"],
        eval=rows["eval"],
        vote_ids=sorted(v.vote_id for v in used),
        annotator_ids=sorted({v.annotator_id for v in used if v.origin != "ai"}),  # people, never judges
        counts=counts,
        content_hash=rows_hash(rows["train"], rows["eval"]),
        reliability=reliability,
    )


def _quality_screen(votes, rules, sources, excluded_annotators, flagged_annotators):
    """``feedback.quality.rules.quality_screen`` over the votes that pass the source and annotator
    rules (gold votes included), or None when no quality rule is set."""
    if not (rules.min_gold_accuracy is not None or rules.min_kappa is not None or rules.exclude_flagged
            or rules.min_ms_on_item):
        return None
    from .quality.rules import quality_screen

    scope = [v for v in votes if vote_exclusion(v, include_gold=True, sources=sources,
                                                 exclude_annotators=excluded_annotators) is None]
    return quality_screen(
        items=[v.comparison_id for v in scope], annotators=[v.annotator_id for v in scope],
        choices=[v.choice for v in scope], gold_choices=[v.gold_choice for v in scope],
        min_gold_accuracy=rules.min_gold_accuracy, min_gold_votes=rules.min_gold_votes, min_kappa=rules.min_kappa,
        exclude_flagged=rules.exclude_flagged, flagged_annotators=flagged_annotators,
        min_ms_on_item=rules.min_ms_on_item,
    )


def _dawid_skene_labels(by_comparison, rules) -> tuple[dict[int, str], dict[int, float]]:
    """``({comparison id: Dawid-Skene label}, {annotator id: reliability})`` over the counted votes
    of comparisons not left out as flagged imports; empty dicts for majority aggregation."""
    if rules.aggregation != "dawid_skene":
        return {}, {}
    from .quality.aggregation import dawid_skene

    counted = [v for group in by_comparison.values() if rules.include_flagged or not group[0].import_flags
               for v in group]
    result = dawid_skene([v.comparison_id for v in counted], [v.annotator_id for v in counted],
                         [v.choice for v in counted])
    return result.labels, {a: round(r, 4) for a, r in result.reliability.items()}
