"""Reads for the training app: checkpoints and jobs as the admin pages and the API show them."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from django.db.models import QuerySet

from feedback import interface as feedback

from .models import Checkpoint, CheckpointKind, Job, JobStatus, LoopRound
from .ratings import BothBad, Leaderboard, leaderboard

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def checkpoint_list() -> QuerySet[Checkpoint]:
    """Every checkpoint, newest first, with its parent, run and model server joined."""
    return Checkpoint.objects.select_related("parent", "run", "server")


def policy_checkpoint_names() -> list[str]:
    """Names of the checkpoints generation can sample from (policies), newest first."""
    return list(Checkpoint.objects.filter(kind=CheckpointKind.POLICY).values_list("name", flat=True))


def base_policy_names() -> list[str]:
    """Names of the imported base models (full policy checkpoints with no parent), oldest first:
    what a newcomer can start the loop or a run from."""
    return list(Checkpoint.objects.filter(kind=CheckpointKind.POLICY, parent=None, is_adapter=False)
                .order_by("created_at", "id").values_list("name", flat=True))


def reward_checkpoint_names() -> list[str]:
    """Names of the reward models scoring can use, newest first."""
    return list(Checkpoint.objects.filter(kind=CheckpointKind.REWARD).values_list("name", flat=True))


def job_list(*, status: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    """Jobs, newest first, with their creator joined; optionally of one status and/or kind."""
    qs = Job.objects.select_related("created_by", "output_checkpoint")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def jobs_any_active(jobs: Iterable[Job]) -> bool:
    """True when any of ``jobs`` is queued or running (its page should keep polling)."""
    return any(job.status in ACTIVE for job in jobs)


LEADERBOARD_MODELS = ("checkpoints", "external")


def leaderboard_compute(
    *,
    both_bad: BothBad = "tie",
    rounds: int = 200,
    models: str = "checkpoints",
    include_non_blind: bool = False,
    include_identity_leak: bool = False,
    votes: str = "human",
    ai_weight: float = 1.0,
    eval_set_id: int | None = None,
    category: str | None = None,
    length_controlled: bool = False,
) -> Leaderboard:
    """A Bradley-Terry leaderboard from every vote between two different models.

    ``models="checkpoints"`` (default): the policy checkpoints, from the votes between two of
    them; reward checkpoints and external models are left out. ``models="external"``: the models
    that are not checkpoints (e.g. the real model names of imported Chatbot Arena battles), from
    the votes between two of them, whatever their source; a vote involving any checkpoint is
    left out. The two boards are kept apart because their models never meet: one board of both
    would rate two groups that are not comparable. Votes comparing a model with itself never
    count. Votes cast by someone who could see model names (``blind`` False: an admin) are left
    out unless ``include_non_blind``; the board's ``non_blind_excluded`` says how many. Votes on
    comparisons flagged as revealing which model wrote a response (``HeadToHead.identity_leak``:
    an identity pattern matched, or an annotator said so) are left out unless
    ``include_identity_leak``; ``identity_leak_excluded`` counts those among the votes still in
    after the non-blind rule (a vote left out for both reasons is counted once, as non-blind). Seeded
    (seed 0), so the same votes give the same intervals. See
    ``training.ratings.leaderboard`` for the model, scale and rank rule. ``votes``: whose votes
    (``"human"``, the default, ``"ai"``, or ``"both"`` with AI votes weighing ``ai_weight``; see
    ``feedback.vote_origins``); the board records the choice (``votes_from``, ``ai_weight``).

    ``eval_set_id`` (and ``category``, one of its categories; ``""`` for items without one) limit
    the votes to comparisons of that eval set's prompts; ``length_controlled`` adds the
    length-controlled ratings (``training.evaluation.style_control``) as ``length_controlled``.

    Raises:
        ValueError: an unknown ``both_bad`` mode or ``models``, a negative ``rounds``, or a bad
            ``votes``/``ai_weight`` ("votes: ..." / "ai_weight: ...").
        LookupError: no such eval set.
    """
    scope, prompt_ids = None, None
    if eval_set_id is not None:
        eval_set = feedback.eval_set_get(eval_set_id=eval_set_id)
        prompt_ids = [ref.prompt_id for ref in feedback.eval_set_prompts(eval_set_id=eval_set_id)
                      if category is None or ref.category == category]
        scope = {"eval_set_id": eval_set.id, "eval_set": f"{eval_set.name} v{eval_set.version}", "category": category}
    choice = {"votes": votes, "ai_weight": ai_weight, "prompt_ids": prompt_ids, "with_lengths": length_controlled}
    if models == "checkpoints":
        found = feedback.head_to_head_votes(model_names=policy_checkpoint_names(), **choice)
    elif models == "external":
        checkpoints = set(Checkpoint.objects.values_list("name", flat=True))
        found = [
            vote for vote in feedback.head_to_head_votes(**choice)
            if vote.model_a not in checkpoints and vote.model_b not in checkpoints
        ]
    else:
        raise ValueError(f"unknown models {models!r}; expected one of {', '.join(LEADERBOARD_MODELS)}")
    seen = 0 if include_non_blind else sum(1 for vote in found if not vote.blind)
    if seen:
        found = [vote for vote in found if vote.blind]
    leaked = 0 if include_identity_leak else sum(1 for vote in found if vote.identity_leak)
    if leaked:
        found = [vote for vote in found if not vote.identity_leak]
    board = leaderboard(found, both_bad=both_bad, rounds=rounds, seed=0)
    styled = None
    if length_controlled:
        from .evaluation.style_control import length_controlled_ratings

        styled = length_controlled_ratings([(v.model_a, v.model_b, v.choice, v.length_a or 0, v.length_b or 0)
                                            for v in found], both_bad=both_bad)
    return replace(board, non_blind_excluded=seen, identity_leak_excluded=leaked, votes_from=votes,
                   ai_weight=ai_weight if votes == "both" else 1.0, scope=scope, length_controlled=styled)


def checkpoint_ids_by_name(*, names: Iterable[str]) -> dict[str, int]:
    """``{name: id}`` of the checkpoints with these names (names with no checkpoint are absent)."""
    return dict(Checkpoint.objects.filter(name__in=list(names)).values_list("name", "pk"))


def loop_rounds() -> QuerySet[LoopRound]:
    """Loop rounds, newest first, with their jobs and checkpoints joined."""
    return LoopRound.objects.select_related(
        "parent", "checkpoint", "reward_job", "policy_job", "generation_job"
    ).order_by("-id")


def lineage(*, checkpoint: Checkpoint, max_depth: int = 100) -> list[dict]:
    """The chain from ``checkpoint`` back to its root, newest first. Each step: the checkpoint, the
    run that made it (or None for an import), its dataset snapshot (``SnapshotRef``: vote and
    annotator counts), the reward-model accuracy behind it (a reward run's own held-out accuracy;
    for RL the reward model's; for a loop round's DPO run the round's reward run), and its current
    Bradley-Terry rating row (``ModelRating`` or None)."""
    chain, seen = [], set()
    node = checkpoint
    while node is not None and node.pk not in seen and len(chain) < max_depth:
        seen.add(node.pk)
        chain.append(node)
        node = Checkpoint.objects.select_related("parent", "run").filter(pk=node.parent_id).first() if node.parent_id else None
    policies = [c.name for c in chain if c.kind == CheckpointKind.POLICY]
    ratings = {row.model: row for row in leaderboard_compute(rounds=100).rows} if policies else {}
    steps = []
    for node in chain:
        run = node.run
        snapshot = None
        if run is not None and run.snapshot_id:
            try:
                snapshot = feedback.snapshot_get(snapshot_id=run.snapshot_id)
            except LookupError:
                snapshot = None
        steps.append({
            "checkpoint": node, "run": run, "snapshot": snapshot,
            "reward_accuracy": _reward_accuracy(node, run), "rating": ratings.get(node.name),
        })
    return steps


def _reward_accuracy(checkpoint: Checkpoint, run: Job | None) -> float | None:
    if run is None:
        return checkpoint.metadata.get("eval_accuracy") if checkpoint.kind == CheckpointKind.REWARD else None
    if run.kind == "reward":
        return (run.summary or {}).get("eval_accuracy")
    if run.kind == "rl":
        reward = Checkpoint.objects.filter(name=run.config.get("reward_model")).first()
        return reward.metadata.get("eval_accuracy") if reward else None
    loop_round = LoopRound.objects.filter(policy_job=run).select_related("reward_job").first()
    if loop_round is not None and loop_round.reward_job is not None:
        return (loop_round.reward_job.summary or {}).get("eval_accuracy")
    return None
