"""The scoring runner: a reward checkpoint scores completions, batch by batch, through ``feedback.interface``.

Each completion is read as the reward model was trained to read it (``training.runners.rewards``):
the prompt's chat plus one assistant message with the completion's text, chat template applied
exactly as TRL's ``RewardTrainer`` applies it, right padding. A conversation longer than
``max_length`` tokens loses tokens from its start (the prompt's oldest turns first), so the
response, where the reward is read, is kept. Each batch's scores and the progress that counts
them commit together, so a killed job leaves whole batches; a cancel stops between batches.
Afterwards, when asked, open comparisons are reordered so the ones the model is least sure of
come first (``feedback.interface.comparisons_prioritize_uncertain``).
"""
from __future__ import annotations

from accelerate import PartialState
from django.db import transaction

from feedback import interface as feedback
from training.config import ScoringConfig
from training.models import Checkpoint, CheckpointKind

from .progress import Reporter, Stopwatch
from .rewards import conversation_ids, reward_model_load, rewards_compute


def scoring_ids(tokenizer, prompt_messages: list[dict[str, str]], text: str, max_length: int) -> tuple[list[int], bool]:
    """Token ids of ``prompt + [assistant: text]`` as in reward training, cut to the last ``max_length``.

    Returns: ``(ids, truncated)``; ``truncated`` when tokens were dropped from the start.
    """
    ids = conversation_ids(tokenizer, prompt_messages, [{"role": "assistant", "content": text}])
    if len(ids) > max_length:
        return ids[-max_length:], True
    return ids, False


def run_scoring(job, reporter: Reporter) -> dict:
    """Score completions with a reward checkpoint (see ``ScoringConfig``); returns the job summary.

    Summary keys: ``scored`` (completions whose scores were stored), ``to_score``, ``truncated``
    (conversations cut to ``max_length`` tokens), ``prioritized`` (open comparisons given a priority
    from the scores; None when not asked, or when cancelled), ``tokens``, ``seconds``,
    ``completions_per_s``.
    Raises:
        LookupError: no such checkpoint. ValueError: the checkpoint is not a reward model.
        Anything transformers raises for unreadable weights.
    """
    config = ScoringConfig.from_dict(job.config)
    if not PartialState().is_main_process:  # under accelerate launch, one process does all the scoring
        return {}
    checkpoint = Checkpoint.objects.filter(name=config.reward_model).first()
    if checkpoint is None:
        raise LookupError(f"no checkpoint named {config.reward_model!r}")
    if checkpoint.kind != CheckpointKind.REWARD:
        raise ValueError(f"{checkpoint.name!r} is a {checkpoint.kind} checkpoint; scoring needs a reward model")
    model, tokenizer = reward_model_load(checkpoint.location)
    items = feedback.completions_to_score(
        reward_model=checkpoint.name, scope=config.scope, only_unscored=config.only_unscored, limit=config.limit,
        completion_ids=config.completion_ids,
    )
    clock = Stopwatch()
    encoded = [scoring_ids(tokenizer, item.prompt_messages, item.text, config.max_length) for item in items]
    # Longest first: similar lengths share a batch (less padding), and an out-of-memory shows at once.
    order = sorted(range(len(items)), key=lambda i: -len(encoded[i][0]))
    scored = tokens = 0
    truncated = sum(cut for _, cut in encoded)
    reporter.progress(done=0, total=len(items))
    for start in range(0, len(order), config.batch_size):
        if reporter.stop_requested():
            reporter.halted = True
            break
        batch = order[start:start + config.batch_size]
        rewards = rewards_compute(model, tokenizer.pad_token_id, [encoded[i][0] for i in batch], batch_size=len(batch))
        with transaction.atomic():  # a batch's scores and the progress that counts them commit together
            feedback.scores_record(
                reward_model=checkpoint.name, scores=[(items[i].completion_id, r) for i, r in zip(batch, rewards)]
            )
            scored += len(batch)
            tokens += sum(len(encoded[i][0]) for i in batch)
            elapsed = clock.elapsed()
            reporter.progress(
                done=scored, total=len(items), tokens_per_s=tokens / elapsed if elapsed else None,
                summary={"scored": scored, "to_score": len(items), "truncated": truncated},
            )
    prioritized = None
    if config.prioritize_uncertain and not reporter.halted:
        prioritized = feedback.comparisons_prioritize_uncertain(reward_model=checkpoint.name)
    elapsed = clock.elapsed()
    return {
        "scored": scored, "to_score": len(items), "truncated": truncated, "prioritized": prioritized,
        "tokens": tokens, "seconds": round(elapsed, 3),
        "completions_per_s": round(scored / elapsed, 2) if elapsed else None,
    }
