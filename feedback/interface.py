"""What the training app may read from and write to the feedback app. Nothing else crosses over.

Plain dataclasses in and out, so runner processes never handle feedback's model instances.
"""
from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery

from . import snapshots
from .campaigns.models import Campaign, CampaignStatus, default_campaign_id
from .models import (
    Comparison,
    ComparisonStatus,
    Completion,
    CompletionScore,
    DatasetSnapshot,
    Demonstration,
    Prompt,
    Split,
    Vote,
)
from .evalsets import evaluation as _evaluation
from .evalsets.evaluation import EvalPromptRef
from .evalsets.exclusion import prompts_outside_eval_sets
from .messages import responses_equivalent, text_is_empty
from .identity.services import comparisons_identity_flag
from .quality.ceiling import agreement_ceiling as ceiling_of
from .selectors import prompts_with_tag


@dataclass(frozen=True)
class PromptRef:
    """A prompt as a runner needs it: id and chat messages (``[{"role", "content"}, ...]``)."""

    id: int
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class GeneratedText:
    """One sampled completion: who wrote it, the text, how it was sampled, whether it hit the length
    limit (``is_truncated``), and whether it was cut before a role marker the model wrote when it
    went on to write another turn (``truncated_at_role_marker``; ``text`` is then the reply alone)."""

    model_name: str
    text: str
    generation_params: dict[str, Any] = field(default_factory=dict)
    is_truncated: bool = False
    truncated_at_role_marker: bool = False


@dataclass(frozen=True)
class CandidatePair:
    """Two completions of one prompt, to become a comparison unless either is empty or both are identical."""

    prompt_id: int
    a: GeneratedText
    b: GeneratedText


@dataclass
class PairingSummary:
    """Counts from ``pairs_record``: comparisons made, and pairs left out (with why)."""

    paired: int = 0
    completions: int = 0
    skipped_empty: int = 0
    skipped_identical: int = 0

    def add(self, other: "PairingSummary") -> None:
        for name in ("paired", "completions", "skipped_empty", "skipped_identical"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {
            "paired": self.paired,
            "completions": self.completions,
            "skipped_empty": self.skipped_empty,
            "skipped_identical": self.skipped_identical,
        }


def prompts_select(
    *,
    ids: Sequence[int] | None = None,
    tag: str | None = None,
    split: str | None = None,
    max_open_comparisons: int | None = None,
    limit: int | None = None,
    include_eval_sets: bool = False,
) -> list[PromptRef]:
    """Prompts matching every given criterion, oldest first.

    Eval-set prompts and their near-duplicates (``feedback.evalsets``) are never selected unless
    ``include_eval_sets``: what this selects becomes training data (generation jobs, the loop).

    Args:
        ids: only these prompt ids.
        tag: prompts whose tags include this one.
        split: ``"train"`` or ``"eval"``.
        max_open_comparisons: prompts with *fewer than* this many open comparisons ("those with
            too few open comparisons").
        limit: at most this many prompts.
        include_eval_sets: also select eval-set prompts (for evaluations only).
    Raises:
        ValueError: an unknown split or a negative limit.
    """
    # The tag filter is the base queryset, not a ``pk__in`` subquery: on SQLite its raw SQL names
    # the table, which inside a subquery would point at the outer row (a quadratic scan).
    qs = (prompts_with_tag(tag) if tag else Prompt.objects.all()).order_by("id")
    if ids is not None:
        qs = qs.filter(id__in=list(ids))
    if split:
        if split not in Split.values:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(Split.values)}")
        qs = qs.filter(split=split)
    if not include_eval_sets:
        qs = prompts_outside_eval_sets(qs)
    if max_open_comparisons is not None:
        qs = qs.annotate(
            open_comparisons=Count("comparisons", filter=Q(comparisons__status=ComparisonStatus.OPEN))
        ).filter(open_comparisons__lt=max_open_comparisons)
    if limit is not None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        qs = qs[:limit]
    return [PromptRef(p.id, p.messages) for p in qs.only("id", "messages")]


def pairs_record(
    *,
    pairs: Sequence[CandidatePair],
    votes_required: int = 1,
    priority: int = 0,
    rng: random.Random | None = None,
    campaign_id: int | None = None,
) -> PairingSummary:
    """Store generated completions and pair them into open comparisons, in one transaction.

    The comparisons go to campaign ``campaign_id`` (None: the Default campaign); it must exist
    and not be closed (``campaign_check``).

    Which text of a pair becomes completion A is drawn per pair (probability 1/2, from ``rng``,
    default the system's random source), and completion A is stored first: a runner passes the
    new policy's text first, and neither the A/B letter nor the completion ids may tell an
    annotator which side that was.

    Every completion is stored (empty ones flagged ``is_empty``), so the record of what a model
    wrote is whole; only pairs where both texts are non-empty and not equivalent
    (``feedback.messages.responses_equivalent``: not the same after NFC and whitespace
    collapsing) become comparisons; the others are counted as ``skipped_empty`` and
    ``skipped_identical``.
    Either all rows of this call are written or none (a killed runner leaves whole batches only).
    Comparisons whose responses match an active identity pattern are flagged (``identity_leak``).

    Raises:
        ValueError: a prompt id that does not exist, or votes_required < 1.
    """
    if votes_required < 1:
        raise ValueError("votes_required must be at least 1")
    campaign = campaign_check(campaign_id=campaign_id) if campaign_id is not None else default_campaign_id()
    summary = PairingSummary()
    if not pairs:
        return summary
    prompt_ids = {pair.prompt_id for pair in pairs}
    existing = set(Prompt.objects.filter(id__in=prompt_ids).values_list("id", flat=True))
    missing = prompt_ids - existing
    if missing:
        raise ValueError(f"no such prompt(s): {sorted(missing)}")
    with transaction.atomic():
        draw = rng or random.SystemRandom()
        completions = []
        for pair in pairs:
            for generated in (pair.a, pair.b) if draw.random() < 0.5 else (pair.b, pair.a):
                completions.append(
                    Completion(
                        prompt_id=pair.prompt_id,
                        model_name=generated.model_name,
                        text=generated.text,
                        generation_params=generated.generation_params,
                        is_truncated=generated.is_truncated,
                        truncated_at_role_marker=generated.truncated_at_role_marker,
                        is_empty=text_is_empty(generated.text),
                    )
                )
        Completion.objects.bulk_create(completions)
        summary.completions = len(completions)
        comparisons = []
        for index, pair in enumerate(pairs):
            a, b = completions[2 * index], completions[2 * index + 1]
            if a.is_empty or b.is_empty:
                summary.skipped_empty += 1
            elif responses_equivalent(a.text, b.text):
                summary.skipped_identical += 1
            else:
                comparisons.append(
                    Comparison(
                        prompt_id=pair.prompt_id,
                        completion_a=a,
                        completion_b=b,
                        votes_required=votes_required,
                        priority=priority,
                        campaign_id=campaign,
                    )
                )
        Comparison.objects.bulk_create(comparisons)
        comparisons_identity_flag(comparisons=comparisons)
        summary.paired = len(comparisons)
    return summary


def completions_record(*, completions: Sequence[tuple[int, GeneratedText]]) -> list[int]:
    """Store ``(prompt_id, generated)`` completions without pairing them into comparisons (an
    evaluation's generations), in one transaction; returns the completion ids in order.

    Raises:
        ValueError: a prompt id that does not exist (nothing is written).
    """
    return _evaluation.completions_store(completions=[
        (prompt_id, g.model_name, g.text, g.generation_params, g.is_truncated, g.truncated_at_role_marker)
        for prompt_id, g in completions
    ])


# --- eval sets (issue 17) ------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSetRef:
    """One version of an eval set: ``categories`` is ``{category: item count}`` (``""``: none)."""

    id: int
    name: str
    version: int
    item_count: int
    content_hash: str
    categories: dict[str, int]


def eval_set_get(*, eval_set_id: int) -> EvalSetRef:
    """The eval set with this id. Raises LookupError ``"no eval set with id <id>"``."""
    s = _evaluation.eval_set_load(eval_set_id=eval_set_id)
    return EvalSetRef(s.pk, s.name, s.version, s.item_count, s.content_hash, dict(s.categories))


def eval_set_choices() -> list[tuple[int, str]]:
    """``(id, "name vN (K prompts)")`` of every non-empty eval set version, by name then newest
    version first: what a gate or an evaluation may be run on."""
    from .evalsets.models import EvalSet

    return [(pk, f"{name} v{version} ({count} prompts)") for pk, name, version, count in
            EvalSet.objects.filter(item_count__gt=0).order_by("name", "-version")
            .values_list("pk", "name", "version", "item_count")]


def eval_set_prompts(*, eval_set_id: int) -> list[EvalPromptRef]:
    """Every item of the eval set with the id of a prompt row holding its messages, in item order
    (rows are created once, split ``eval``; see ``feedback.evalsets.evaluation``). Such prompts are
    selected by ``prompts_select`` only with ``include_eval_sets``.

    Raises:
        LookupError: no such eval set.
    """
    return _evaluation.eval_set_prompts_ensure(eval_set_id=eval_set_id)


from .evalsets import results as _results  # noqa: E402
from .evalsets.results import EvalCompletion  # noqa: E402,F401


def evaluation_completions(
    *, job_id: int, reward_model: str | None = None, prompt_ids: Sequence[int] | None = None,
) -> list[EvalCompletion]:
    """Every completion an evaluation's generation job wrote, oldest first, each with
    ``reward_model``'s score (None: not scored, e.g. an empty text). See ``EvalCompletion``.
    ``prompt_ids``: the job's prompts, when known (an indexed search instead of a scan)."""
    return _results.job_completions(job_id=job_id, reward_model=reward_model, prompt_ids=prompt_ids)


def eval_set_completions(
    *, eval_set_id: int, model_names: Sequence[str], prompt_ids: Sequence[int], reward_model: str | None = None,
) -> list[EvalCompletion]:
    """The newest evaluation completion of each (prompt, model) of ``model_names`` on
    ``prompt_ids`` written by any evaluation on eval set ``eval_set_id``, with scores when named:
    how a parent or imported base answered the same prompts in an earlier evaluation."""
    return _results.eval_set_completions(eval_set_id=eval_set_id, model_names=model_names,
                                         prompt_ids=prompt_ids, reward_model=reward_model)


def human_campaign_create(
    *, name: str, pairs: Sequence[tuple[int, int, int]], description: str = "", votes_required: int = 1,
    created_by=None, rng: random.Random | None = None,
) -> tuple[int, int]:
    """A new active campaign (pool: the annotators group) of blind comparisons of existing
    completions ``(prompt_id, completion_x, completion_y)``, sides drawn at random; pairs with an
    empty side or equivalent texts are left out. Returns ``(campaign id, comparisons made)``.

    Raises:
        ValidationError: a taken name, or no pair left to ask; nothing is written then.
    """
    return _results.human_campaign_create(name=name, pairs=pairs, description=description,
                                          votes_required=votes_required, created_by=created_by, rng=rng)


def campaign_name(*, campaign_id: int) -> str | None:
    """The campaign's name, or None when there is no such campaign."""
    return _results.campaign_exists(campaign_id=campaign_id)


def campaign_votes(*, campaign_id: int) -> list[tuple[int, int, str, str, str]]:
    """``(completion_a_id, completion_b_id, choice, origin, judge)`` of every vote on the
    campaign's comparisons (``origin`` ``human`` or ``ai``; ``judge`` names an AI judge)."""
    return _results.campaign_votes(campaign_id=campaign_id)


def campaign_check(*, campaign_id: int) -> int:
    """``campaign_id`` when it names a campaign that takes comparisons (exists, not closed).

    Raises:
        ValueError: no such campaign, or it is closed (the message says which).
    """
    found = Campaign.objects.filter(pk=campaign_id).values_list("name", "status").first()
    if found is None:
        raise ValueError(f"no campaign with id {campaign_id}")
    if found[1] == CampaignStatus.CLOSED:
        raise ValueError(f"campaign {found[0]!r} is closed: it takes no more comparisons")
    return campaign_id


def campaign_choices() -> list[tuple[int, str]]:
    """``(id, name)`` of every campaign that takes comparisons (not closed), highest priority first:
    where generated pairs may go."""
    return list(
        Campaign.objects.exclude(status=CampaignStatus.CLOSED).order_by("-priority", "name").values_list("pk", "name")
    )


def prompt_count(*, ids: Sequence[int] | None = None) -> int:
    """How many prompts exist (optionally: how many of ``ids`` exist)."""
    qs = Prompt.objects.all()
    if ids is not None:
        qs = qs.filter(id__in=list(ids))
    return qs.count()


def completion_count(*, model_name: str) -> int:
    """How many completions (empty ones included) carry ``model_name``: what a checkpoint has written."""
    return Completion.objects.filter(model_name=model_name).count()


# --- reward scoring ---------------------------------------------------------------------------
SCORING_SCOPES = ("open", "all")
MAX_PRIORITY = 1_000_000  # the bound the comparison services enforce on ``priority``
UNCERTAIN_PRIORITY_RANGE = 100  # ``comparisons_prioritize_uncertain`` adds 0..100 to the base


@dataclass(frozen=True)
class ScoringItem:
    """One completion for a reward model to score: the prompt's chat messages and the completion's text."""

    completion_id: int
    prompt_messages: list[dict[str, str]]
    text: str


def _reward_model_check(reward_model: Any) -> str:
    if not isinstance(reward_model, str) or not reward_model.strip() or len(reward_model) > 200:
        raise ValueError("reward_model must be a non-empty string of at most 200 characters")
    return reward_model


def completions_to_score(
    *, reward_model: str, scope: str = "open", only_unscored: bool = True, limit: int | None = None,
    completion_ids: Sequence[int] | None = None,
) -> list[ScoringItem]:
    """Completions for ``reward_model`` to score, oldest (lowest id) first.

    Args:
        reward_model: the reward checkpoint's name, as stored on ``CompletionScore.reward_model``.
        scope: ``"open"``: completions in at least one open comparison (the queue that
            ``comparisons_prioritize_uncertain`` reorders); ``"all"``: completions in any comparison.
            Completions in no comparison are never listed.
        only_unscored: leave out completions that already have a score from ``reward_model``.
        limit: at most this many items.
        completion_ids: exactly these completions (an evaluation's, in no comparison); ``scope``
            is then ignored. Ids that do not exist are left out.
    Returns: ``ScoringItem``s; empty (blank or whitespace-only) texts are left out.
    Raises:
        ValueError: an unknown scope, an empty reward model name, or a negative limit.
    """
    _reward_model_check(reward_model)
    if scope not in SCORING_SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCORING_SCOPES)}")
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    comparisons = Comparison.objects.all()
    if scope == "open":
        comparisons = comparisons.filter(status=ComparisonStatus.OPEN)
    qs = Completion.objects.filter(is_empty=False)
    if completion_ids is not None:
        qs = qs.filter(id__in=list(completion_ids))
    else:
        qs = qs.filter(
            Exists(comparisons.filter(completion_a=OuterRef("pk"))) | Exists(comparisons.filter(completion_b=OuterRef("pk")))
        )
    if only_unscored:
        qs = qs.exclude(Exists(CompletionScore.objects.filter(completion=OuterRef("pk"), reward_model=reward_model)))
    qs = qs.select_related("prompt").only("id", "text", "prompt__messages").order_by("id")
    if limit is not None:
        qs = qs[:limit]
    return [ScoringItem(c.id, c.prompt.messages, c.text) for c in qs]


def scores_record(*, reward_model: str, scores: Sequence[tuple[int, float]]) -> int:
    """Store ``reward_model``'s scores, replacing earlier scores by the same reward model, in one transaction.

    Args:
        reward_model: the reward checkpoint's name.
        scores: ``(completion_id, score)`` pairs; a score is a finite float, higher is better
            (the reward model's scalar output, in its own units).
    Returns: how many scores were written (inserted or updated).
    Raises:
        ValueError: an empty reward model name, a non-finite or non-numeric score, the same
            completion twice, or a completion id that does not exist; nothing is written.
    """
    _reward_model_check(reward_model)
    rows: dict[int, float] = {}
    for completion_id, score in scores:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ValueError(f"score for completion {completion_id} must be a finite number, not {score!r}")
        if completion_id in rows:
            raise ValueError(f"completion {completion_id} is scored twice")
        rows[int(completion_id)] = float(score)
    if not rows:
        return 0
    missing = set(rows) - set(Completion.objects.filter(id__in=rows).values_list("id", flat=True))
    if missing:
        raise ValueError(f"no such completion(s): {sorted(missing)}")
    with transaction.atomic():
        CompletionScore.objects.bulk_create(
            [CompletionScore(completion_id=cid, reward_model=reward_model, score=score) for cid, score in rows.items()],
            update_conflicts=True,
            unique_fields=["completion", "reward_model"],
            update_fields=["score", "created_at"],
        )
    return len(rows)


def uncertainty_priority(margin: float) -> int:
    """0-100: how unsure a reward model is about a pair whose scores differ by ``margin`` (score_a - score_b).

    Under the Bradley-Terry model that reward models are trained with (Christiano et al. 2017;
    Ouyang et al. 2022, eq. 1), P(A preferred) = sigmoid(margin). Its distance from a coin flip is
    |2 * sigmoid(margin) - 1| = tanh(|margin| / 2) (computed so, which cannot overflow), and the
    priority is ``round(100 * (1 - that))``: 100 at margin 0 (a coin flip), 0 when the model is
    certain. Python's ``round`` (half to even). Asking people about the pairs a model is least
    sure of is uncertainty sampling (Lewis and Gale 1994).
    """
    return round(UNCERTAIN_PRIORITY_RANGE * (1.0 - math.tanh(abs(margin) / 2.0)))


def comparisons_prioritize_uncertain(*, reward_model: str, base_priority: int = 0) -> int:
    """Reorder the queue so that people are asked about the pairs ``reward_model`` is least sure of.

    Every open comparison whose two completions both have a score from ``reward_model`` gets
    ``priority = base_priority + uncertainty_priority(score_a - score_b)``, i.e.
    ``base_priority + round(100 * (1 - |2 * sigmoid(score_a - score_b) - 1|))``: base + 100 for
    a margin of 0, base + 0 for a pair the model is sure of. The queue serves higher priority first.
    Comparisons missing either score, and comparisons not open, keep their priority.

    Returns: how many comparisons were given a priority from the scores (rows whose priority
        already had that value are counted but not rewritten).
    Raises:
        ValueError: an empty reward model name, or a base priority whose result could leave
            -1,000,000..1,000,000.
    """
    _reward_model_check(reward_model)
    if isinstance(base_priority, bool) or not isinstance(base_priority, int):
        raise ValueError("base_priority must be an integer")
    if not -MAX_PRIORITY <= base_priority <= MAX_PRIORITY - UNCERTAIN_PRIORITY_RANGE:
        raise ValueError(f"base_priority must be from {-MAX_PRIORITY} to {MAX_PRIORITY - UNCERTAIN_PRIORITY_RANGE}")

    def score_of(side: str) -> Subquery:
        return Subquery(
            CompletionScore.objects.filter(completion=OuterRef(side), reward_model=reward_model).values("score")[:1]
        )

    with transaction.atomic():
        comparisons = list(
            Comparison.objects.filter(status=ComparisonStatus.OPEN)
            .annotate(score_a=score_of("completion_a"), score_b=score_of("completion_b"))
            .filter(score_a__isnull=False, score_b__isnull=False)
            .only("id", "priority")
            .select_for_update(of=("self",))
        )
        changed = []
        for comparison in comparisons:
            priority = base_priority + uncertainty_priority(comparison.score_a - comparison.score_b)
            if comparison.priority != priority:
                comparison.priority = priority
                changed.append(comparison)
        Comparison.objects.bulk_update(changed, ["priority"], batch_size=500)
    return len(comparisons)


# --- dataset snapshots ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotRef:
    """A frozen preference dataset as a runner needs it.

    ``train_path``/``eval_path`` are absolute paths of JSONL files, one TRL conversational
    preference row a line: ``{"prompt": [...], "chosen": [{"role": "assistant", ...}],
    "rejected": [...], "margin": float (only if rules["include_margin"]), "strength": str,
    "comparison_id": int}`` (see ``feedback.preferences``). ``counts`` holds
    ``feedback.preferences.COUNT_KEYS`` (plus ``QUALITY_COUNT_KEYS`` when the rules set a quality
    rule or Dawid-Skene, and then ``"annotator_reliability"``: ``{annotator id as str: 0..1}``);
    ``rules`` the normalised ``AggregationRules.as_dict()``; ``quality_notes`` says in words what
    the quality rules left out or relabelled.
    """

    id: int
    train_path: Path
    eval_path: Path
    train_rows: int
    eval_rows: int
    vote_count: int
    annotator_count: int
    content_hash: str
    rules: dict[str, Any]
    counts: dict[str, int]
    created_at: datetime
    kind: str = "preference"  # or "sft": prompt/completion rows of demonstrations
    # The data-use policies in force when it was built (``feedback.governance.policies.PolicyCheck.summary``)
    # and an admin's justification when it was built against them ("" when not).
    policy_summary: dict[str, Any] = field(default_factory=dict)
    policy_override: str = ""
    # Data it used was deleted since (``feedback.governance.deletion``): one line a deletion; its
    # files are gone and it needs a rebuild (``deleted_data_rebuilt_as``: the rebuilt snapshot's id).
    deleted_data: tuple[str, ...] = ()
    deleted_data_rebuilt_as: int | None = None

    @property
    def contains_deleted_data(self) -> bool:
        """True when data it was built from has been deleted (its files are gone)."""
        return bool(self.deleted_data)

    @property
    def quality_notes(self) -> list[str]:
        """What the quality rules left out or relabelled, in words (``feedback.quality.rules.quality_notes``)."""
        from .quality.rules import quality_notes

        return quality_notes(self.counts)

    @property
    def eval_set_note(self) -> str:
        """``"3 comparisons left out: their prompts are in an eval set"`` (``"rows"`` for an SFT
        snapshot), from ``counts["eval_set_excluded"]``; ``""`` when none was left out."""
        from .evalsets.exclusion import eval_set_note

        return eval_set_note(self.counts.get("eval_set_excluded") or 0, noun="row" if self.kind == "sft" else "comparison")

    @property
    def vote_choice(self) -> str:
        """Whose votes the rows come from, in words (``feedback.vote_origins.vote_choice_words``):
        "human votes only", "AI votes only" or "human and AI votes (AI weight 0.5)"."""
        from .vote_origins import vote_choice_words

        return vote_choice_words(self.rules)


def _snapshot_ref(snapshot: DatasetSnapshot) -> SnapshotRef:
    train_path, eval_path = snapshots.snapshot_paths(snapshot)
    return SnapshotRef(
        id=snapshot.pk,
        train_path=train_path,
        eval_path=eval_path,
        train_rows=snapshot.train_rows,
        eval_rows=snapshot.eval_rows,
        vote_count=snapshots.snapshot_vote_count(snapshot_id=snapshot.pk),
        annotator_count=snapshot.annotator_count,
        content_hash=snapshot.content_hash,
        rules=dict(snapshot.rules),
        counts=dict(snapshot.counts),
        created_at=snapshot.created_at,
        kind=snapshot.kind,
        **_snapshot_policy(snapshot),
        **_snapshot_deleted_data(snapshot),
    )


def _snapshot_deleted_data(snapshot: DatasetSnapshot) -> dict[str, Any]:
    from .governance.models import SnapshotDeletedData

    mark = SnapshotDeletedData.objects.filter(snapshot_id=snapshot.pk).first()
    if mark is None:
        return {}
    return {"deleted_data": tuple(mark.reasons) or ("data deleted",), "deleted_data_rebuilt_as": mark.rebuilt_as_id}


def snapshots_with_deleted_data(*, snapshot_ids: Sequence[int]) -> set[int]:
    """Which of these snapshots hold data deleted since they were built (checkpoints trained on
    them are flagged in lineage)."""
    from .governance.models import SnapshotDeletedData

    return set(SnapshotDeletedData.objects.filter(snapshot_id__in=list(snapshot_ids)).values_list("snapshot_id", flat=True))


def _snapshot_policy(snapshot: DatasetSnapshot) -> dict[str, Any]:
    from .governance.models import SnapshotPolicy

    record = SnapshotPolicy.objects.filter(snapshot_id=snapshot.pk).first()
    if record is None:
        return {}
    return {"policy_summary": dict(record.summary), "policy_override": record.override_justification}


def snapshot_create(*, rules: Mapping[str, Any] | None, created_by=None, policy_override: str | None = None) -> SnapshotRef:
    """Freeze the preference dataset of every vote under ``rules`` (see ``feedback.snapshots.snapshot_create``).

    ``policy_override``: an admin's written justification for using data its data-use policy
    refuses (recorded on the snapshot); None or "": none.
    Raises:
        ValidationError: ``{"rules": [...]}`` for bad rules, ``{"snapshot": ...}`` when the votes
            give no training pairs, ``{"policy": [...]}`` naming the sources and row counts the
            data-use policies refuse, ``{"policy_override": ...}`` for a bad justification.
    """
    return _snapshot_ref(snapshots.snapshot_create(rules=rules, created_by=created_by, policy_override=policy_override))


def sft_snapshot_create(*, rules: Mapping[str, Any] | None, created_by=None, policy_override: str | None = None) -> SnapshotRef:
    """Freeze the SFT dataset of every demonstration (and, by default, every strongly chosen
    response) under ``rules`` as a snapshot of kind ``"sft"`` (see
    ``feedback.snapshots.sft_snapshot_create``; rules are ``feedback.demonstrations.SFTRules``).

    The ref's files hold one row a line: ``{"prompt": [msgs], "completion": [{"role": "assistant",
    "content": str}], "source": str, "demonstration_id": int | None, "comparison_id": int | None}``;
    ``vote_count`` counts the votes behind strongly chosen rows; ``counts`` holds
    ``feedback.demonstrations.SFT_COUNT_KEYS``.
    Raises:
        ValidationError: ``{"rules": [...]}`` for bad rules, ``{"snapshot": "no demonstrations ..."}``
            when nothing gives a training row; ``{"policy": [...]}`` as ``snapshot_create``.
    """
    return _snapshot_ref(snapshots.sft_snapshot_create(rules=rules, created_by=created_by, policy_override=policy_override))


def demonstration_count() -> int:
    """How many demonstrations exist (written on comparison pages or imported), for pages."""
    return Demonstration.objects.count()


def snapshot_get(*, snapshot_id: int) -> SnapshotRef:
    """The snapshot with this id.

    Raises:
        LookupError: ``"no dataset snapshot with id <id>"``.
    """
    return _snapshot_ref(snapshots.snapshot_load(snapshot_id=snapshot_id))


def snapshot_votes_summary(*, snapshot_id: int) -> dict[str, Any]:
    """``{"vote_count": int, "annotator_count": int, "sources": {source: vote count}}`` for lineage
    pages, plus ``human_vote_count``, ``ai_vote_count`` and ``judges`` when the snapshot used AI votes.

    Raises:
        LookupError: no such snapshot.
    """
    return snapshots.snapshot_votes_summary(snapshot_id=snapshot_id)


EVAL_FILE_MISSING = "the snapshot's eval file is missing"


def agreement_ceiling(*, snapshot_id: int, comparison_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """The human agreement ceiling on a snapshot's eval comparisons: how often an annotator agrees
    with the other annotators' strict majority, a-vs-b only (``feedback.quality.ceiling``, whose
    docstring states the rules), with its 95 % Wilson interval and ``n`` (votes scored).

    The comparisons are those of the snapshot's eval rows (``eval.jsonl``), the pairs a reward
    run's held-out accuracy is measured on; ``comparison_ids`` narrows them to the pairs a run kept
    (ids not among the eval rows are ignored). The votes are the snapshot's frozen ones
    (``SnapshotVote.frozen``), so the figure does not move when votes are cast, revised or undone
    later. Undefined (``{"value": None, "defined": False, "reason": ...}``, never NaN) when no eval
    comparison has two or more votes, or the eval file is missing.

    Raises:
        LookupError: ``"no dataset snapshot with id <id>"``.
    """
    try:
        eval_ids = set(snapshots.snapshot_eval_comparison_ids(snapshot_id=snapshot_id))
    except FileNotFoundError:
        return {**ceiling_of([], [], [], what="eval comparison"), "reason": EVAL_FILE_MISSING}
    if comparison_ids is not None:
        eval_ids &= set(comparison_ids)
    votes = snapshots.snapshot_frozen_votes(snapshot_id=snapshot_id, comparison_ids=eval_ids)
    comparisons, annotators, choices = zip(*votes) if votes else ((), (), ())
    return ceiling_of(comparisons, annotators, choices, what="eval comparison")


def snapshot_verify(*, snapshot_id: int) -> bool:
    """True when the snapshot's files still hash to its ``content_hash`` (False if a file is missing).

    Raises:
        LookupError: no such snapshot.
    """
    return snapshots.snapshot_verify(snapshot_id=snapshot_id)


def snapshots_recent(*, limit: int = 50) -> list[SnapshotRef]:
    """The newest ``limit`` dataset snapshots, newest first (for launch forms)."""
    return [_snapshot_ref(snapshot) for snapshot in DatasetSnapshot.objects.order_by("-created_at", "-id")[:limit]]


def annotator_choices() -> list[tuple[int, str]]:
    """``(user id, username)`` of every person who has voted, by username: whose votes a snapshot may
    leave out. AI judges' system users are not annotators (their votes are chosen by ``votes``)."""
    from django.contrib.auth import get_user_model

    voters = Vote.objects.filter(origin="human").values("annotator_id").distinct()
    return list(get_user_model().objects.filter(pk__in=voters).order_by("username").values_list("pk", "username"))


# --- head-to-head votes (the leaderboard) --------------------------------------------------------


@dataclass(frozen=True)
class HeadToHead:
    """One vote between two different models: ``choice`` is ``"a"``, ``"b"``, ``"tie"`` or ``"both_bad"``
    and refers to ``model_a`` (the comparison's completion A) and ``model_b`` (completion B)."""

    model_a: str
    model_b: str
    choice: str
    vote_id: int
    blind: bool = True  # False: the voter could see model names (an admin); the leaderboard leaves such votes out
    identity_leak: bool = False  # the comparison is flagged: a response says which model wrote it (feedback.identity)
    origin: str = "human"  # "ai": an AI judge's vote (``judge`` names it)
    weight: float = 1.0  # the vote's weight in a fit: 1, or ``ai_weight`` for an AI vote under votes "both"
    judge: str = ""
    length_a: int | None = None  # characters of completion A's text (with ``with_lengths``)
    length_b: int | None = None


def head_to_head_votes(
    *, model_names: Sequence[str] | None = None, sources: Sequence[str] | None = None,
    votes: str = "human", ai_weight: float = 1.0,
    prompt_ids: Sequence[int] | None = None, with_lengths: bool = False,
) -> list[HeadToHead]:
    """Every vote on a comparison whose two completions come from different models, by vote id, in one query.

    Votes on comparisons of any status count (open, complete, retired), gold items included.
    ``identity_leak`` is the comparison's flag (a vote on a flagged comparison is "marked"; the
    leaderboard leaves such votes out by default).

    Args:
        model_names: only comparisons where both completions' ``model_name`` are in this list
            (an empty list gives no votes); ``None``: any models.
        sources: only votes whose ``source`` is one of these (``"annotator"``, ``"hh-rlhf"``, ...);
            ``None``: every source.
        votes: whose votes (``feedback.vote_origins``): ``"human"`` (default, people's only), ``"ai"``
            (AI judges' only, each of weight 1) or ``"both"``, AI votes then weighing ``ai_weight``.
        ai_weight: 0-1, only with ``votes="both"``.
        prompt_ids: only comparisons of these prompts (e.g. an eval set's); ``None``: any prompt.
        with_lengths: also fill ``length_a``/``length_b`` (characters of each completion's text).

    Raises:
        ValueError: a bad ``votes`` or ``ai_weight`` (the message names the field).
    """
    from .vote_origins import vote_choice_problems, vote_weight

    problems = vote_choice_problems(votes, ai_weight, ai_weight_given=ai_weight != 1.0)
    if problems:
        raise ValueError("; ".join(f"{name}: {message}" for name, message in problems.items()))
    qs = Vote.objects.exclude(comparison__completion_a__model_name=F("comparison__completion_b__model_name"))
    if votes != "both":
        qs = qs.filter(origin=votes)
    if model_names is not None:
        names = list(model_names)
        qs = qs.filter(comparison__completion_a__model_name__in=names, comparison__completion_b__model_name__in=names)
    if sources is not None:
        qs = qs.filter(source__in=list(sources))
    if prompt_ids is not None:
        qs = qs.filter(comparison__prompt_id__in=list(prompt_ids))
    fields = ["comparison__completion_a__model_name", "comparison__completion_b__model_name", "choice", "id", "blind",
              "comparison__identity_leak", "origin", "judge"]
    if with_lengths:
        from django.db.models.functions import Length

        qs = qs.annotate(_length_a=Length("comparison__completion_a__text"), _length_b=Length("comparison__completion_b__text"))
        fields += ["_length_a", "_length_b"]
    return [
        HeadToHead(model_a=row[0], model_b=row[1], choice=row[2], vote_id=row[3], blind=row[4], identity_leak=row[5],
                   origin=row[6], weight=vote_weight(row[6], votes=votes, ai_weight=ai_weight), judge=row[7],
                   length_a=row[8] if with_lengths else None, length_b=row[9] if with_lengths else None)
        for row in qs.order_by("id").values_list(*fields)
    ]


def vote_last_id() -> int:
    """The id of the newest vote (0 when there is none): a watermark for counting new votes."""
    return Vote.objects.order_by("-id").values_list("id", flat=True).first() or 0


def vote_count_after(*, vote_id: int, at_most: int | None = None, votes: str = "human") -> int:
    """How many votes have an id above ``vote_id`` (votes recorded after that watermark).

    ``at_most``: stop counting there (the answer is then ``min(count, at_most)``), so a caller
    that only asks "are there N yet?" reads at most N index entries however many votes arrived.
    ``votes``: whose votes count (``"human"``, the default: an AI judge's votes are not people's
    new work; ``"ai"``; ``"both"``).

    Raises:
        ValueError: an unknown ``votes``.
    """
    if votes not in ("human", "ai", "both"):
        raise ValueError(f"votes: must be one of human, ai, both, not {votes!r}")
    found = Vote.objects.filter(id__gt=vote_id)
    if votes != "both":
        found = found.filter(origin=votes)
    if at_most is not None:
        found = found.order_by()[:at_most]
    return found.count()


def snapshot_files_discard(*, snapshot: SnapshotRef) -> None:
    """Remove the folder of a snapshot whose row a caller's transaction rolled back (a run that
    was refused after its snapshot was built), so nothing is half-written."""
    snapshots.snapshot_files_discard(files_dir=str(snapshot.train_path.parent.relative_to(settings.ARBITER_DATA_DIR)))


def preference_rules_check(*, rules: Mapping[str, Any], kind: str = "preference") -> None:
    """Validate snapshot rules without building anything (``kind`` ``preference`` or ``sft``).

    Raises:
        ValidationError: ``{"rules": ["field: message", ...]}``.
    """
    if kind == "sft":
        snapshots.sft_rules_parse(rules)
    else:
        snapshots.rules_parse(rules)


# Constitutional AI, supervised stage (training.runners.cai): responses to revise, and their revisions.
from .constitutional import (  # noqa: E402
    ResponseRef,
    Revision,
    RevisionSummary,
    responses_to_revise,
    revisions_record,
)


# --- AI judges measured against people (issue 16, item 5) ----------------------------------------


def judge_agreement(
    *, judge: str, campaign_id: int | None = None, comparison_ids: Sequence[int] | None = None,
    order_verdicts: Sequence[tuple[str, str]] | None = None,
    by_principle: Mapping[str, Mapping[int, str]] | None = None,
    resamples: int = 1000, seed: int = 0,
) -> dict[str, Any]:
    """How far one AI judge (``"name@version"``) agrees with people, for its page.

    Its AI votes (in campaign ``campaign_id``, or everywhere; only on ``comparison_ids`` when
    given) against people's strict majority on
    the same comparisons (``feedback.quality.judges.judge_agreement``, whose docstring states the
    figures): ``{"judge", "votes", "overlap", "agreement", "kappa", "tie_rate"}``, plus
    ``"position_consistency"`` when ``order_verdicts`` (each pair's verdicts in both orders, from
    the judging job's records) and ``"principles"`` when ``by_principle`` (``{principle:
    {comparison id: choice}}``, likewise) are given. Each figure is ``{"value", "defined", "low",
    "high", "n"}`` or ``{"value": None, "defined": False, "reason", "n"}``: never NaN.

    Raises:
        ValueError: a verdict or choice outside a/b/tie/both_bad.
    """
    from .quality.judge_selectors import judge_agreement_for

    return judge_agreement_for(judge=judge, campaign=campaign_id, comparison_ids=comparison_ids, order_verdicts=order_verdicts,
                               by_principle=by_principle, resamples=resamples, seed=seed)


def judge_agreement_of(
    judge_votes: Mapping[int, str], human_majority: Mapping[int, str], **options: Any
) -> dict[str, Any]:
    """The pure figures (``feedback.quality.judges.judge_agreement``) for votes the caller holds,
    e.g. a judging job's per-principle verdicts before they become votes. Same keyword options."""
    from .quality.judges import judge_agreement as figures

    return figures(judge_votes, human_majority, **options)


def comparisons_complete_counted(*, comparison_ids: Sequence[int]) -> int:
    """After AI votes are written: complete the open comparisons among ``comparison_ids`` whose
    campaign counts AI votes (``ai_votes_count``) and whose people's plus AI votes reach
    ``votes_required`` (``feedback.ai_votes.comparisons_complete_counted``). Returns how many."""
    from .ai_votes import comparisons_complete_counted as complete

    return complete(comparison_ids=comparison_ids)


def audit_record(*, action: str, user=None, object_type: str = "", object_id: Any = "", details: Mapping[str, Any] | None = None) -> None:
    """Append an event to the audit trail (``feedback.governance.audit.audit_record``), e.g.
    ``action="run.launch"``, ``object_type="job"``; ``details`` JSON-shaped."""
    from .governance.audit import audit_record as record

    record(action=action, user=user, object_type=object_type, object_id=object_id, details=dict(details or {}))


def snapshot_policy_recheck(*, snapshot_id: int, policy_override: str | None = None, created_by=None) -> None:
    """Check an existing snapshot against the data-use policies in force now, before a training
    run reuses it (``feedback.governance.enforcement.snapshot_policy_recheck``).

    Raises:
        ValidationError: ``{"policy": [...]}`` naming the sources and row counts refused, or
            ``{"policy_override": ...}``.
    """
    from .governance.enforcement import snapshot_policy_recheck as recheck

    recheck(snapshot_id=snapshot_id, override=policy_override, user=created_by)


# --- AI judges (issue 16): what a judge reads and how its votes are written (feedback/ai_judging.py) ---
from .ai_judging import AiVerdict, JudgingItem, ai_votes_record, comparisons_for_judging, judge_username  # noqa: E402,F401


def comparisons_of_job(*, job_id: int) -> list[int]:
    """Ids of the comparisons pairing completions that generation job ``job_id`` wrote (its
    ``generation_params["job"]``), lowest first: e.g. a loop round's new-vs-parent comparisons."""
    return list(
        Comparison.objects.filter(completion_a__generation_params__job=job_id).order_by("pk").values_list("pk", flat=True)
    )
