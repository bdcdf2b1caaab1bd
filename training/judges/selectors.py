"""Reads for AI judges: judges and constitutions by version, and the judging jobs of a judge."""
from __future__ import annotations

from django.db.models import QuerySet

from feedback import interface as feedback
from training.models import Job, JobKind

from .models import Constitution, Judge, JudgeVerdict


def judge_list() -> QuerySet[Judge]:
    """Every judge version, by name then newest version first, with checkpoint and constitution."""
    return Judge.objects.select_related("checkpoint", "constitution").order_by("name", "-version")


def judge_refs() -> list[str]:
    """``"name@version"`` of every judge, latest version of each name first."""
    return [f"{name}@{version}" for name, version in Judge.objects.order_by("name", "-version").values_list("name", "version")]


def constitution_refs() -> list[str]:
    """``"name@version"`` of every constitution version, newest version of each name first."""
    return [c.ref for c in Constitution.objects.order_by("name", "-version").only("name", "version")]


def judging_jobs(*, judge: Judge | None = None, limit: int = 20) -> list[Job]:
    """Recent judging jobs, newest first (of one judge version when given)."""
    qs = Job.objects.filter(kind=JobKind.JUDGING)
    if judge is not None:
        qs = qs.filter(config__judge=judge.ref)
    return list(qs.order_by("-created_at", "-id")[:limit])


def judging_problem_calls(*, job: Job, limit: int = 20) -> list:
    """A judging job's latest calls that gave no verdict (unparsed or failed), newest first."""
    from .models import CallStatus, JudgeCall

    return list(JudgeCall.objects.filter(job=job).exclude(status=CallStatus.OK).order_by("-id")[:limit])


def judge_against_people(*, judge: Judge) -> dict:
    """How far ``judge`` agrees with people (``feedback.interface.judge_agreement``): agreement
    with their majority and Cohen's kappa on the comparisons both voted on, tie rate, and from its
    judging jobs' records the position consistency (each pair's verdicts in both orders) and each
    principle's figures. Two reads of the verdicts plus the agreement's queries."""
    order_verdicts, by_principle = [], {}
    for comparison_id, ab, ba, principles in JudgeVerdict.objects.filter(judge=judge).values_list(
        "comparison_id", "choice_ab", "choice_ba", "principles"
    ):
        if ab and ba:
            order_verdicts.append((ab, ba))
        for entry in principles or []:
            if entry.get("choice"):
                by_principle.setdefault(entry["principle"], {})[comparison_id] = entry["choice"]
    return feedback.judge_agreement(judge=judge.ref, order_verdicts=order_verdicts,
                                    by_principle=by_principle or None, resamples=500)
