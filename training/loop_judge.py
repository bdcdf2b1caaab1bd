"""RLAIF in the loop (issue 16, item 6): an AI judge labels each round's new-vs-parent comparisons.

With ``LoopSettings.judge`` set, the generation job that ends a round is followed by a judging job
over exactly the comparisons it wrote (``LoopRound.judging_job``). People still get those
comparisons. The judge's votes count toward the next round (``loop_vote_kinds``), and when a
round's judging ends the loop checks at once whether enough votes arrived, so a round can start
without waiting for people; whether a round's *snapshot* trains on AI votes is its rules' choice
(``votes: "both"`` or ``"ai"``, see ``feedback.vote_origins``). The round report shows how far the
judge agrees with the people who voted on the same comparisons, updated as their votes arrive.
"""
from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError

from feedback import interface as feedback

from .models import Job, LoopRound, LoopSettings

logger = logging.getLogger(__name__)


def loop_vote_kinds(settings: LoopSettings) -> str:
    """Whose votes count toward the next round: ``"both"`` with a loop judge, else ``"human"``."""
    return "both" if settings.judge_id else "human"


def round_judging_queue(loop_round: LoopRound, *, generation: Job, settings: LoopSettings) -> Job | None:
    """Queue the loop judge over the comparisons ``generation`` wrote for ``loop_round``.

    Returns the judging job, or None (no judge set, or nothing to judge: the reason is recorded in
    the generation job's summary as ``judging``, and the round keeps its outcome).
    """
    if settings.judge_id is None:
        return None
    from .judges.services import judging_job_create

    ids = feedback.comparisons_of_job(job_id=generation.pk)
    try:
        if not ids:
            raise ValidationError({"comparison_ids": "the round's generation wrote no comparisons"})
        job = judging_job_create(config={"judge": settings.judge.ref, "comparison_ids": ids})
    except ValidationError as error:
        note = "no judging: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
        Job.objects.filter(pk=generation.pk).update(summary={**generation.summary, "judging": note})
        return None
    LoopRound.objects.filter(pk=loop_round.pk).update(judging_job=job)
    loop_round.judging_job = job
    return job


def round_judge_report(loop_round: LoopRound) -> dict[str, Any] | None:
    """The judge's part of a round's report: ``judge``, ``judging_job`` (id, status, counts of
    its summary) and ``agreement`` with people on the round's comparisons
    (``feedback.interface.judge_agreement``); None when the round had no judging."""
    job = loop_round.judging_job
    if job is None:
        return None
    judge = job.config.get("judge", "")
    ids = job.config.get("comparison_ids") or []
    summary = job.summary or {}
    counts = {k: summary[k] for k in ("judged", "votes", "inconsistent", "unparsed", "failed") if k in summary}
    return {
        "judge": judge,
        "judging_job": {"id": job.pk, "status": job.status, **counts},
        "agreement": feedback.judge_agreement(judge=judge, comparison_ids=ids, resamples=500),
    }
