"""The loop's regression gate (issue 17 item 4): "promote only if not worse than the parent on
eval set X", with a margin.

After a round's policy run, the new checkpoint is evaluated against its parent on eval set X
(an ordinary ``EvaluationRun``, scored by the round's own reward model, tie band 0). The rule:

    not worse  <=>  win rate >= 0.5 - margin

where the win rate is the reward-model win rate of the new checkpoint against its parent over
the eval set's prompts, ties counting half (``training.evaluation.stats.win_rate``'s point
estimate). A margin of 0.05 lets a checkpoint through that loses slightly more prompts than it
wins (down to 45 %), since a reward model is noisy; a margin of 0 demands at least parity. The
bootstrap interval is recorded beside the verdict for the reader, but the verdict uses the point
estimate: with a few dozen prompts the interval is wide, and asking its upper bound to clear the
bar would pass nearly anything. A win rate that is undefined (no prompt could be scored) fails.
"""
from __future__ import annotations

from typing import Any

from .models import EvaluationRun

MAX_MARGIN = 0.5


def gate_verdict(win: dict[str, Any], *, margin: float) -> dict[str, Any]:
    """The gate's decision from a ``win_rate`` result (``{"value", "low", "high", "n", ...}``).

    Returns ``{"passed": bool, "win_rate", "low", "high", "n", "margin", "threshold", "reason"}``;
    ``reason`` says it in words either way.
    """
    threshold = 0.5 - margin
    verdict = {"win_rate": win.get("value"), "low": win.get("low"), "high": win.get("high"), "n": win.get("n", 0),
               "margin": margin, "threshold": threshold}
    if not win.get("defined"):
        return {**verdict, "passed": False,
                "reason": f"no win rate against the parent ({win.get('reason') or 'undefined'}): not promoted"}
    value = win["value"]
    interval = f"{value:.3f} [{win['low']:.3f}, {win['high']:.3f}] on {win['n']} prompts"
    if value >= threshold:
        return {**verdict, "passed": True, "reason": f"win rate against the parent {interval} >= {threshold:.3f}"}
    return {**verdict, "passed": False,
            "reason": f"worse than the parent: win rate {interval} < {threshold:.3f} (0.5 - margin {margin:g})"}


def gate_evaluation_create(*, eval_set_id: int, checkpoint: str, parent: str, reward_model: str,
                           generation: dict[str, Any] | None = None) -> EvaluationRun:
    """Queue the gate's evaluation: ``checkpoint`` against ``parent`` on the eval set, scored by
    ``reward_model``. Raises ValidationError as ``evaluation_run_create``."""
    from .services import evaluation_run_create

    return evaluation_run_create(eval_set_id=eval_set_id, baseline=parent, candidates=[checkpoint],
                                 reward_model=reward_model, tie_band=0.0, generation=generation)


def gate_win_rate(run: EvaluationRun) -> dict[str, Any]:
    """The gate's evaluation's win rate of its one candidate (undefined when there is no report)."""
    rows = (run.summary or {}).get("candidates") or []
    if not rows:
        return {"value": None, "defined": False, "reason": "the evaluation has no report", "n": 0}
    return rows[0]["vs_baseline"]["win_rate"]
