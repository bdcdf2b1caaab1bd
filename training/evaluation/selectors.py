"""Reads for evaluation pages, the API and the command: lists, and the report as shown, which adds
the human (and AI-judge) win rates of the run's blind campaign, computed on read from its votes."""
from __future__ import annotations

import copy
from typing import Any

from django.db.models import QuerySet

from feedback import interface as feedback

from .models import EvaluationRun
from .report import vote_outcomes
from .stats import win_rate


def evaluation_list() -> QuerySet[EvaluationRun]:
    """Every evaluation run, newest first, with its jobs loaded."""
    return EvaluationRun.objects.select_related("generation_job", "scoring_job", "created_by").order_by("-id")


def _votes_section(run: EvaluationRun) -> dict[str, dict[str, Any]]:
    """candidate -> ``{"human": win_rate, "judges": {judge: win_rate}}`` from the campaign's votes."""
    votes = feedback.campaign_votes(campaign_id=run.campaign_id)
    if not votes:
        return {}
    written = feedback.evaluation_completions(job_id=run.generation_job_id,
                                              prompt_ids=run.generation_job.config.get("prompt_ids"))
    owners = {c.completion_id: c.model_name for c in written}
    out: dict[str, dict[str, Any]] = {}
    for name in run.candidates:
        human = [(a, b, choice) for a, b, choice, origin, _ in votes if origin == "human"]
        judges: dict[str, list] = {}
        for a, b, choice, origin, judge in votes:
            if origin == "ai":
                judges.setdefault(judge, []).append((a, b, choice))
        out[name] = {
            "human": win_rate(vote_outcomes(human, owners, candidate=name, baseline=run.baseline)),
            "judges": {judge: win_rate(vote_outcomes(rows, owners, candidate=name, baseline=run.baseline))
                       for judge, rows in sorted(judges.items())},
        }
    return out


def evaluation_report(run: EvaluationRun) -> dict[str, Any]:
    """The run's report as pages and downloads show it: the stored report (``summary``; ``{}``
    before it exists) with the run's identity and, per candidate, ``human`` (the blind campaign's
    human win rate with its bootstrap interval, ``None`` without a campaign) and ``judges``
    (``{judge name: win rate}`` from AI-judge votes on the campaign's comparisons, when any)."""
    report = copy.deepcopy(run.summary or {})
    votes = _votes_section(run) if run.campaign_id else {}
    for row in report.get("candidates", []):
        found = votes.get(row["name"], {})
        row["human"] = found.get("human") if run.campaign_id else None
        row["judges"] = found.get("judges", {})
    return {"id": run.pk, "status": run.status, "error": run.error, "eval_set_id": run.eval_set_id,
            "eval_set": run.eval_set_label, "baseline": run.baseline, "candidate_names": list(run.candidates),
            "generation": run.generation, "campaign_id": run.campaign_id, **report}


CSV_HEADER = ["candidate", "against", "scope", "n", "wins", "ties", "losses", "win_rate", "low", "high"]


def report_csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The report as one table (``CSV_HEADER`` first): per candidate, the overall reward-model
    win rate against the baseline, each category's, the length-controlled one, the human and
    judge win rates, and each parent/base comparison. Undefined figures are empty cells."""
    rows: list[list[Any]] = [CSV_HEADER]

    def add(candidate: str, against: str, scope: str, figure: dict | None) -> None:
        if not figure:
            return
        rows.append([candidate, against, scope, figure.get("n", ""), figure.get("wins", ""), figure.get("ties", ""),
                     figure.get("losses", ""), *("" if figure.get(k) is None else round(figure[k], 6)
                                                 for k in ("value", "low", "high"))])

    baseline = report.get("baseline", {}).get("name", "")
    for row in report.get("candidates", []):
        vs = row["vs_baseline"]
        add(row["name"], baseline, "overall", vs["win_rate"])
        for category, figure in vs.get("by_category", {}).items():
            add(row["name"], baseline, f"category:{category}", figure)
        add(row["name"], baseline, "length-controlled", vs.get("length_controlled"))
        add(row["name"], baseline, "human", row.get("human"))
        for judge, figure in (row.get("judges") or {}).items():
            add(row["name"], baseline, f"judge:{judge}", figure)
        for ref in row.get("references", []):
            add(row["name"], ref["name"], ref["role"], ref["win_rate"])
    return rows
