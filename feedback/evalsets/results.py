"""What an evaluation report reads from feedback, and the blind human campaign made from one
(issue 17 items 2-3): an evaluation's completions with a reward model's scores, earlier eval-set
completions of other models (a parent, an imported base) on the same prompts, a campaign of
candidate-vs-baseline comparisons made from completions that exist already, and its votes.

Exposed through ``feedback.interface``; the training app never imports this module directly.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from ..campaigns.models import Campaign
from ..campaigns.services import campaign_activate, campaign_create
from ..messages import responses_equivalent
from ..models import Comparison, Completion, CompletionScore, Vote


@dataclass(frozen=True)
class EvalCompletion:
    """One stored completion of an eval-set prompt: ``score`` is the named reward model's (None:
    not scored, e.g. empty), ``job_id`` the generation job that wrote it (``generation_params``)."""

    completion_id: int
    prompt_id: int
    model_name: str
    text: str
    is_empty: bool
    score: float | None
    job_id: int | None


def _rows(qs, reward_model: str | None) -> list[EvalCompletion]:
    rows = list(qs.only("id", "prompt_id", "model_name", "text", "is_empty", "generation_params").order_by("id"))
    scores: dict[int, float] = {}
    if reward_model:
        scores = dict(CompletionScore.objects.filter(completion_id__in=[r.pk for r in rows], reward_model=reward_model)
                      .values_list("completion_id", "score"))
    return [EvalCompletion(r.pk, r.prompt_id, r.model_name, r.text, r.is_empty, scores.get(r.pk),
                           (r.generation_params or {}).get("job")) for r in rows]


def job_completions(
    *, job_id: int, reward_model: str | None = None, prompt_ids: Sequence[int] | None = None,
) -> list[EvalCompletion]:
    """Every completion generation job ``job_id`` wrote (strategy ``each``), oldest first, with
    ``reward_model``'s scores when named. ``prompt_ids`` (the job's prompts) narrows the search
    to those prompts' rows through their index instead of reading every completion's JSON."""
    qs = Completion.objects.filter(generation_params__job=job_id, generation_params__strategy="each")
    if prompt_ids is not None:
        qs = qs.filter(prompt_id__in=list(prompt_ids))
    return _rows(qs, reward_model)


def eval_set_completions(
    *, eval_set_id: int, model_names: Sequence[str], prompt_ids: Sequence[int], reward_model: str | None = None,
) -> list[EvalCompletion]:
    """The newest evaluation completion of each (prompt, model) for ``model_names`` on
    ``prompt_ids``, written by any generation job on eval set ``eval_set_id`` (strategy ``each``),
    with ``reward_model``'s scores when named. For comparing with models outside this run."""
    qs = Completion.objects.filter(model_name__in=list(model_names), prompt_id__in=list(prompt_ids),
                                   generation_params__eval_set_id=eval_set_id, generation_params__strategy="each")
    newest: dict[tuple[int, str], EvalCompletion] = {}
    for row in _rows(qs, reward_model):
        newest[(row.prompt_id, row.model_name)] = row  # ids ascend: the newest wins
    return sorted(newest.values(), key=lambda r: r.completion_id)


def human_campaign_create(
    *, name: str, pairs: Sequence[tuple[int, int, int]], description: str = "", votes_required: int = 1,
    groups: Sequence[str] | None = None, created_by=None, rng: random.Random | None = None,
) -> tuple[int, int]:
    """Make an active campaign of blind comparisons from completions that exist already.

    Args:
        pairs: ``(prompt_id, completion_x, completion_y)``; which becomes A is drawn per pair
            (probability 1/2, ``rng``, default the system's source). Pairs with an empty side or
            two equivalent texts (``responses_equivalent``) are left out, as annotation never asks them.
        groups: the campaign's pool (default: the annotators group, made if missing).
    Returns: ``(campaign id, comparisons made)``.
    Raises:
        ValidationError: a bad or taken name (``campaign_create``), or ``{"comparisons": ...}``
            when no pair is left to ask; nothing is written then.
    """
    from django.core.exceptions import ValidationError

    from ..roles import roles_ensure

    if groups is None:
        groups = [roles_ensure()["annotator"].name]
    draw = rng or random.SystemRandom()
    ids = {c for _, x, y in pairs for c in (x, y)}
    found = {c.pk: c for c in Completion.objects.filter(pk__in=ids).only("id", "text", "is_empty")}
    kept = [(p, x, y) for p, x, y in pairs if x in found and y in found and not found[x].is_empty
            and not found[y].is_empty and not responses_equivalent(found[x].text, found[y].text)]
    if not kept:
        raise ValidationError({"comparisons": "no pair to ask: every sampled pair has an empty or identical side"})
    with transaction.atomic():
        campaign = campaign_create(values={"name": name, "description": description, "groups": list(groups),
                                           "votes_required": votes_required}, created_by=created_by)
        Comparison.objects.bulk_create([
            Comparison(prompt_id=p, completion_a_id=a, completion_b_id=b, votes_required=votes_required,
                       campaign=campaign)
            for p, x, y in kept for a, b in [(x, y) if draw.random() < 0.5 else (y, x)]
        ])
        campaign_activate(campaign=campaign)
    return campaign.pk, len(kept)


def campaign_votes(*, campaign_id: int) -> list[tuple[int, int, str, str, str]]:
    """Every vote on campaign ``campaign_id``'s comparisons: ``(completion_a_id, completion_b_id,
    choice, origin, judge)``, by vote id; ``choice`` is ``a``, ``b``, ``tie`` or ``both_bad``,
    ``origin`` ``human`` or ``ai`` (then ``judge`` names the AI judge; ``""`` for people)."""
    return list(Vote.objects.filter(comparison__campaign_id=campaign_id).order_by("id").values_list(
        "comparison__completion_a_id", "comparison__completion_b_id", "choice", "origin", "judge"))


def campaign_exists(*, campaign_id: int) -> str | None:
    """The campaign's name, or None when there is no such campaign."""
    return Campaign.objects.filter(pk=campaign_id).values_list("name", flat=True).first()
