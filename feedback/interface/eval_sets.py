"""Eval sets, evaluation completions, campaigns and counts (issue 17). Part of ``feedback.interface``."""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


from ..campaigns.models import Campaign, CampaignStatus
from ..models import Completion, Prompt
from ..evalsets import evaluation as _evaluation
from ..evalsets.evaluation import EvalPromptRef
from ..evalsets import results as _results
from ..evalsets.results import EvalCompletion  # noqa: F401


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
    from ..evalsets.models import EvalSet

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
