"""Which votes a dataset, export or leaderboard reads: people's, AI judges', or both (issue 16).

Pure (no Django import). The choice is ``votes``: ``"human"`` (the default: AI votes are left out),
``"ai"`` (only AI judges' votes) or ``"both"`` with ``ai_weight`` (0..1), the weight of each AI vote
when a comparison's votes are aggregated (a person's vote weighs 1).

What the weight does, and why there: TRL's preference formats carry one row per pair
(``prompt``/``chosen``/``rejected``, optional ``margin``) and its trainers take no per-row sample
weight, so the weight is applied where the votes become a row: the tally of each comparison is
weighted (a person's vote 1, an AI vote ``ai_weight``), so the strict majority, the agreement share
(``min_agreement``) and the mean margin of the winning votes are computed on weights; ``min_votes``
still counts votes (a comparison whose votes all weigh 0 decides nothing: ``too_few_votes``). Rows built from ``"ai"`` or ``"both"`` also carry ``ai_votes`` (how many AI votes the
comparison counted), which TRL ignores and an audit can read. The leaderboard's Bradley-Terry fit
takes a weight per vote (``HeadToHead.weight``).
"""
from __future__ import annotations

from typing import Any

VOTE_ORIGINS = ("human", "ai", "both")
JUDGE_USERNAME_PREFIX = "judge:"  # an AI judge's inactive system user: ``judge:<name>@<version>``
DEFAULT_VOTES = "human"
DEFAULT_AI_WEIGHT = 1.0
HUMAN, AI = "human", "ai"


def vote_weight(origin: str, *, votes: str = DEFAULT_VOTES, ai_weight: float = DEFAULT_AI_WEIGHT) -> float | None:
    """The weight of a vote of ``origin`` (``"human"``/``"ai"``) under the choice ``votes``, or None
    when the choice leaves it out: human -> 1 unless ``votes == "ai"``; ai -> None under
    ``"human"``, 1 under ``"ai"``, ``ai_weight`` under ``"both"``."""
    if origin == AI:
        return None if votes == HUMAN else (ai_weight if votes == "both" else 1.0)
    return None if votes == AI else 1.0


def vote_choice_problems(votes: Any, ai_weight: Any, *, ai_weight_given: bool) -> dict[str, str]:
    """``{field: message}`` for a bad choice (empty when good): ``votes`` one of ``VOTE_ORIGINS``;
    ``ai_weight`` a number from 0 to 1, given only with ``votes: "both"``."""
    problems: dict[str, str] = {}
    if votes not in VOTE_ORIGINS:
        problems["votes"] = f"must be one of {', '.join(VOTE_ORIGINS)} (whose votes: people's, AI judges' or both)"
    if ai_weight_given:
        number = isinstance(ai_weight, (int, float)) and not isinstance(ai_weight, bool)
        if not number or not 0 <= ai_weight <= 1 or ai_weight != ai_weight:
            problems["ai_weight"] = "must be a number from 0 to 1 (the weight of an AI vote; a person's weighs 1)"
        elif votes in ("human", "ai"):
            problems["ai_weight"] = 'only with votes "both" (it weighs AI votes against people\'s)'
    return problems


def vote_choice_dict(votes: str, ai_weight: float) -> dict[str, Any]:
    """The choice as stored in rules: nothing for the default (so older rules read the same),
    ``{"votes": "ai"}``, or ``{"votes": "both", "ai_weight": w}``."""
    if votes == DEFAULT_VOTES:
        return {}
    return {"votes": votes, **({"ai_weight": ai_weight} if votes == "both" else {})}


def vote_choice_words(rules: dict[str, Any] | None) -> str:
    """The choice in words for lineage: "human votes only", "AI votes only",
    "human and AI votes (AI weight 0.5)"."""
    votes = (rules or {}).get("votes", DEFAULT_VOTES)
    if votes == AI:
        return "AI votes only"
    if votes == "both":
        return f"human and AI votes (AI weight {float((rules or {}).get('ai_weight', DEFAULT_AI_WEIGHT)):g})"
    return "human votes only"
