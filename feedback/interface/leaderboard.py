"""Head-to-head votes for the leaderboard, and vote counters. Part of ``feedback.interface``."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import F

from ..models import Vote


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
    from ..vote_origins import vote_choice_problems, vote_weight

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


# Constitutional AI, supervised stage (training.runners.cai): responses to revise, and their revisions.
