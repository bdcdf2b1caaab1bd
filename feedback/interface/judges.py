"""AI judges measured against people; the comparisons a generation job paired. Part of ``feedback.interface``."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


from ..models import Comparison


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
    from ..quality.judge_selectors import judge_agreement_for

    return judge_agreement_for(judge=judge, campaign=campaign_id, comparison_ids=comparison_ids, order_verdicts=order_verdicts,
                               by_principle=by_principle, resamples=resamples, seed=seed)


def judge_agreement_of(
    judge_votes: Mapping[int, str], human_majority: Mapping[int, str], **options: Any
) -> dict[str, Any]:
    """The pure figures (``feedback.quality.judges.judge_agreement``) for votes the caller holds,
    e.g. a judging job's per-principle verdicts before they become votes. Same keyword options."""
    from ..quality.judges import judge_agreement as figures

    return figures(judge_votes, human_majority, **options)


def comparisons_complete_counted(*, comparison_ids: Sequence[int]) -> int:
    """After AI votes are written: complete the open comparisons among ``comparison_ids`` whose
    campaign counts AI votes (``ai_votes_count``) and whose people's plus AI votes reach
    ``votes_required`` (``feedback.ai_votes.comparisons_complete_counted``). Returns how many."""
    from ..ai_votes import comparisons_complete_counted as complete

    return complete(comparison_ids=comparison_ids)


# --- AI judges (issue 16): what a judge reads and how its votes are written (feedback/ai_judging.py) ---


def comparisons_of_job(*, job_id: int) -> list[int]:
    """Ids of the comparisons pairing completions that generation job ``job_id`` wrote (its
    ``generation_params["job"]``), lowest first: e.g. a loop round's new-vs-parent comparisons."""
    return list(
        Comparison.objects.filter(completion_a__generation_params__job=job_id).order_by("pk").values_list("pk", flat=True)
    )
