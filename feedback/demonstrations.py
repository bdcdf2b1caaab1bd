"""Demonstrations (and strongly chosen responses) -> a TRL prompt-completion dataset for
supervised fine-tuning (pure code, no Django imports).

Each row is TRL's conversational prompt-completion format plus two lineage columns::

    {"prompt": [{"role": "user", "content": "..."}, ...],
     "completion": [{"role": "assistant", "content": "..."}],
     "source": "annotator",          # the demonstration's source, or "strongly-chosen"
     "demonstration_id": 12,         # None for a strongly chosen response
     "comparison_id": 40}            # where it was written / whose chosen response it is; None for most imports

TRL's ``SFTTrainer`` takes ``prompt``/``completion`` (loss on the completion only); a runner drops
the other columns. Rows come from:

(a) demonstrations: ideal responses written by annotators in the "write a better response" box of
    a comparison, or imported (``feedback.imports.demonstrations_import``);
(b) with ``include_strongly_chosen``, the chosen response of each comparison that is *strongly
    chosen*: its votes, aggregated exactly as for the preference dataset
    (``feedback.preferences.build_preference_dataset`` with ``min_votes=1`` and
    ``min_agreement=0``), give a row whose winner is A or B (a strict majority, not a tie,
    both-bad or split vote, and the two texts differ), and that row's ``margin`` (the mean of
    ``MARGIN_BY_STRENGTH`` over the votes agreeing with the winner: strong 1, clear 2/3, slight
    1/3, none 0) is at least ``strong_margin``. With the default ``strong_margin=1.0`` every
    agreeing vote must be "strong"; 2/3 admits a mix such as strong+slight; 0 takes every
    majority winner. Votes without a strength (e.g. imported HH-RLHF votes) never reach a
    positive ``strong_margin``.

Rows with the same prompt (messages SHA-256) and the same completion text (after ``strip()``) are
kept once: demonstrations by id first, then strongly chosen responses by comparison id, so a
demonstration wins over an identical chosen response. Within each split rows are in that order,
and the whole result depends only on the records and the rules, never on the order they arrive in.
The split is decided per prompt (``feedback.preferences.prompt_split``), so a prompt is never in both.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .preferences import (
    SPLITS,
    AggregationRules,
    RulesReader,
    VoteRecord,
    build_preference_dataset,
    counts_summary,
    prompt_split,
    rows_hash,
    vote_exclusion,
)

STRONGLY_CHOSEN = "strongly-chosen"  # the ``source`` of rows taken from strongly chosen responses
MARGIN_TOLERANCE = 1e-9  # a mean of equal margins may miss ``strong_margin`` by a rounding error

SFT_COUNT_KEYS = (
    "demonstrations_seen",
    "demonstrations_excluded_gold",
    "demonstrations_excluded_source",
    "demonstrations_excluded_annotator",
    "demonstrations_empty",
    "votes_seen",
    "comparisons_chosen",
    "chosen_not_strong",
    "chosen_empty",
    "duplicates",
    "eval_set_excluded",
    "rows_train",
    "rows_eval",
)


@dataclass(frozen=True)
class DemonstrationRecord:
    """One demonstration with what the builder needs of its prompt.

    ``prompt_messages`` is the prompt's ``[{"role", "content"}, ...]`` list, ``text`` the ideal
    response, ``source`` where it came from (``"annotator"``, ``"import"``, ...), ``annotator_id``
    its writer (None for an import), ``comparison_id`` the comparison it was written on (or None),
    ``is_gold`` whether that comparison has a gold choice, ``split`` the prompt's stored split and
    ``prompt_key`` the prompt's ``messages_sha256``.
    """

    demonstration_id: int
    prompt_id: int
    prompt_messages: list[dict[str, str]]
    text: str
    source: str
    annotator_id: int | None
    comparison_id: int | None
    is_gold: bool
    split: str
    prompt_key: str
    in_eval_set: bool = False  # the prompt is an eval-set prompt or a near-duplicate (``feedback.evalsets``)


@dataclass(frozen=True)
class SFTRules:
    """Which demonstrations and chosen responses become rows. ``from_dict`` validates; constructing
    directly trusts the values.

    Fields:
        exclude_annotators: user ids whose demonstrations and votes are left out.
        include_gold: keep demonstrations written on, and votes cast on, comparisons with a gold
            choice (quality-control items).
        sources: keep only demonstrations whose ``source`` is listed; empty keeps every source.
        include_strongly_chosen: add the chosen response of every strongly chosen comparison.
        strong_margin: 0.0-1.0, the least mean margin of the agreeing votes for a comparison to be
            strongly chosen (see the module docstring); 1.0: all agreeing votes "strong".
        vote_sources: count only votes whose ``source`` is listed; empty counts every source.
        split_by, eval_fraction, split_salt: as in ``AggregationRules`` (``prompt_split``).
    """

    exclude_annotators: tuple[int, ...] = ()
    include_gold: bool = True
    sources: tuple[str, ...] = ()
    include_strongly_chosen: bool = True
    strong_margin: float = 1.0
    vote_sources: tuple[str, ...] = ()
    split_by: str = "prompt"
    eval_fraction: float = 0.1
    split_salt: str = ""

    @classmethod
    def from_dict(cls, data: Any) -> "SFTRules":
        """Validate and normalise JSON-shaped rules; missing keys take their defaults.

        Raises:
            feedback.preferences.RulesError: every problem at once, ``{field: message}``; unknown
                keys are errors, and a non-object gives ``{"rules": ...}``.
        """
        reader = RulesReader(data, cls.__dataclass_fields__)
        reader.ids("exclude_annotators")
        reader.flag("include_gold")
        reader.names("sources")
        reader.flag("include_strongly_chosen")
        reader.fraction("strong_margin")
        reader.names("vote_sources")
        reader.split_fields()
        return cls(**reader.result())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready rules (tuples as lists); ``from_dict(rules.as_dict()) == rules``."""
        return {
            "exclude_annotators": list(self.exclude_annotators),
            "include_gold": self.include_gold,
            "sources": list(self.sources),
            "include_strongly_chosen": self.include_strongly_chosen,
            "strong_margin": self.strong_margin,
            "vote_sources": list(self.vote_sources),
            "split_by": self.split_by,
            "eval_fraction": self.eval_fraction,
            "split_salt": self.split_salt,
        }


@dataclass(frozen=True)
class SFTDataset:
    """What ``build_sft_dataset`` returns.

    ``train``/``eval``: rows (see the module docstring).
    ``demonstration_ids``: sorted ids of the demonstrations that became rows.
    ``vote_ids``: sorted ids of the counted votes of the comparisons whose chosen response became a row.
    ``annotator_ids``: sorted ids of the writers of those demonstrations and the voters of those votes.
    ``counts``: one int per key of ``SFT_COUNT_KEYS``.
    ``content_hash``: ``feedback.preferences.rows_hash(train, eval)``.
    """

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    demonstration_ids: list[int]
    vote_ids: list[int]
    annotator_ids: list[int]
    counts: dict[str, int] = field(default_factory=dict)
    content_hash: str = ""


def sft_counts_summary(counts: Mapping[str, int]) -> str:
    """``"demonstrations_seen=3, rows_train=2"``: the non-zero counts in ``SFT_COUNT_KEYS`` order."""
    return counts_summary(counts, order=SFT_COUNT_KEYS, empty="no demonstrations and no votes")


def completion_messages(text: str) -> list[dict[str, str]]:
    """A response as TRL's conversational completion: ``[{"role": "assistant", "content": text}]``."""
    return [{"role": "assistant", "content": text}]


def _validated(demonstrations: Iterable[DemonstrationRecord]) -> list[DemonstrationRecord]:
    """The records sorted by id. Raises ValueError for an id given twice or an unknown split."""
    records = sorted(demonstrations, key=lambda record: record.demonstration_id)
    for previous, record in zip(records, records[1:]):
        if previous.demonstration_id == record.demonstration_id:
            raise ValueError(f"demonstration {record.demonstration_id} is given twice")
    for record in records:
        if record.split not in SPLITS:
            raise ValueError(
                f"demonstration {record.demonstration_id} has prompt split {record.split!r}; expected train or eval"
            )
    return records


def _demonstration_exclusion(record: DemonstrationRecord, rules: SFTRules) -> str | None:
    if record.is_gold and not rules.include_gold:
        return "demonstrations_excluded_gold"
    if rules.sources and record.source not in rules.sources:
        return "demonstrations_excluded_source"
    if record.annotator_id is not None and record.annotator_id in rules.exclude_annotators:
        return "demonstrations_excluded_annotator"
    return None


@dataclass(frozen=True)
class _Candidate:
    prompt_key: str
    row: dict[str, Any]
    demonstration_id: int | None = None
    vote_ids: tuple[int, ...] = ()
    annotator_ids: tuple[int, ...] = ()
    in_eval_set: bool = False


def _strongly_chosen(
    votes: Sequence[VoteRecord], rules: SFTRules, counts: dict[str, int]
) -> list[_Candidate]:
    """Candidates from the comparisons whose chosen response is strongly chosen, by comparison id."""
    preference_rules = AggregationRules(
        include_margin=True,
        exclude_annotators=rules.exclude_annotators,
        include_gold=rules.include_gold,
        sources=rules.vote_sources,
    )
    preferences = build_preference_dataset(votes, preference_rules, leave_out_eval_set=False)
    counted: dict[int, list[VoteRecord]] = {}
    for vote in votes:
        excluded = vote_exclusion(
            vote,
            include_gold=rules.include_gold,
            sources=rules.vote_sources,
            exclude_annotators=rules.exclude_annotators,
        )
        if not excluded:
            counted.setdefault(vote.comparison_id, []).append(vote)
    candidates = []
    for row in sorted(preferences.train + preferences.eval, key=lambda row: row["comparison_id"]):
        counts["comparisons_chosen"] += 1
        if row["margin"] < rules.strong_margin - MARGIN_TOLERANCE:
            counts["chosen_not_strong"] += 1
            continue
        chosen = row["chosen"][0]["content"]
        if not chosen.strip():
            counts["chosen_empty"] += 1
            continue
        comparison_votes = counted[row["comparison_id"]]
        candidates.append(
            _Candidate(
                prompt_key=comparison_votes[0].prompt_key,
                row={
                    "prompt": row["prompt"],
                    "completion": completion_messages(chosen),
                    "source": STRONGLY_CHOSEN,
                    "demonstration_id": None,
                    "comparison_id": row["comparison_id"],
                },
                vote_ids=tuple(v.vote_id for v in comparison_votes),
                annotator_ids=tuple(v.annotator_id for v in comparison_votes),
                in_eval_set=comparison_votes[0].in_eval_set,
            )
        )
    return candidates


def build_sft_dataset(
    demonstrations: Iterable[DemonstrationRecord], votes: Iterable[VoteRecord], rules: SFTRules
) -> SFTDataset:
    """Build prompt-disjoint train and eval rows of TRL's conversational prompt-completion format.

    Per demonstration, by id (each left-out one is counted once, under the first that applies):
    written on a gold comparison when ``not rules.include_gold`` (``demonstrations_excluded_gold``),
    a source not in a non-empty ``rules.sources`` (``demonstrations_excluded_source``), a writer in
    ``rules.exclude_annotators`` (``demonstrations_excluded_annotator``), a blank text
    (``demonstrations_empty``); the rest are candidates. Then, with
    ``rules.include_strongly_chosen``, per comparison with an A/B preference row
    (``comparisons_chosen``): a margin below ``rules.strong_margin`` -> ``chosen_not_strong``; a
    blank chosen text -> ``chosen_empty``; else a candidate. A candidate whose prompt is an eval-set
    prompt or a near-duplicate of one (``in_eval_set`` of its record or votes) is counted as
    ``eval_set_excluded``; one whose (prompt, stripped completion) was already taken is a
    ``duplicates``; every other is a row in ``rows_train`` or ``rows_eval``.

    Split: ``prompt_split`` with ``eval_keys`` the prompt keys of every demonstration and vote seen
    (left out or not) whose prompt is stored as eval.

    Args:
        demonstrations: any iterable, in any order; read once.
        votes: every vote (any iterable, any order; read once); ignored unless
            ``rules.include_strongly_chosen``.
        rules: see ``SFTRules``.
    Returns:
        ``SFTDataset`` (same records and rules, same rows and hash).
    Raises:
        ValueError: a demonstration or vote id given twice, an unknown split, choice or strength.
    """
    counts = dict.fromkeys(SFT_COUNT_KEYS, 0)
    records = _validated(demonstrations)
    eval_keys = {record.prompt_key for record in records if record.split == "eval"}
    candidates: list[_Candidate] = []
    for record in records:
        counts["demonstrations_seen"] += 1
        excluded = _demonstration_exclusion(record, rules)
        if excluded is None and not record.text.strip():
            excluded = "demonstrations_empty"
        if excluded:
            counts[excluded] += 1
            continue
        candidates.append(
            _Candidate(
                prompt_key=record.prompt_key,
                row={
                    "prompt": record.prompt_messages,
                    "completion": completion_messages(record.text),
                    "source": record.source,
                    "demonstration_id": record.demonstration_id,
                    "comparison_id": record.comparison_id,
                },
                demonstration_id=record.demonstration_id,
                annotator_ids=() if record.annotator_id is None else (record.annotator_id,),
                in_eval_set=record.in_eval_set,
            )
        )
    if rules.include_strongly_chosen:
        vote_list = list(votes)
        counts["votes_seen"] = len(vote_list)
        eval_keys.update(vote.prompt_key for vote in vote_list if vote.split == "eval")
        candidates.extend(_strongly_chosen(vote_list, rules, counts))

    rows: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    taken: set[tuple[str, str]] = set()
    demonstration_ids: list[int] = []
    vote_ids: list[int] = []
    annotator_ids: set[int] = set()
    for candidate in candidates:
        if candidate.in_eval_set:
            counts["eval_set_excluded"] += 1
            continue
        key = (candidate.prompt_key, candidate.row["completion"][0]["content"].strip())
        if key in taken:
            counts["duplicates"] += 1
            continue
        taken.add(key)
        split = prompt_split(
            prompt_key=candidate.prompt_key,
            eval_keys=eval_keys,
            split_by=rules.split_by,
            split_salt=rules.split_salt,
            eval_fraction=rules.eval_fraction,
        )
        rows[split].append(candidate.row)
        counts[f"rows_{split}"] += 1
        if candidate.demonstration_id is not None:
            demonstration_ids.append(candidate.demonstration_id)
        vote_ids.extend(candidate.vote_ids)
        annotator_ids.update(candidate.annotator_ids)

    return SFTDataset(
        train=rows["train"],
        eval=rows["eval"],
        demonstration_ids=sorted(demonstration_ids),
        vote_ids=sorted(vote_ids),
        annotator_ids=sorted(annotator_ids),
        counts=counts,
        content_hash=rows_hash(rows["train"], rows["eval"]),
    )
