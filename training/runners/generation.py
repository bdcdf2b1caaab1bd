"""The generation runner: sample completions with the chat template, pair them, store them in batches.

Each batch of prompts is left-padded and generated in one ``model.generate`` call, then written
(completions, comparisons and the job's progress together) in one transaction through
``feedback.interface``. A killed runner therefore leaves whole batches only, and
``progress_done`` counts exactly the prompts whose completions were committed.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from django.db import transaction

from feedback import interface as feedback
from training.config import GenerationConfig
from training.models import Checkpoint

from .loading import LoadedPolicy, checkpoint_policy_load
from .progress import Reporter, Stopwatch


def sample_batch(
    policy: LoadedPolicy,
    conversations: Sequence[list[dict[str, str]]],
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    num_samples: int = 1,
) -> list[list[tuple[str, bool, int]]]:
    """Sample ``num_samples`` replies to each conversation in one batched ``generate`` call.

    Args:
        conversations: B chat histories, each ending with a user turn.
        temperature: 0 for greedy decoding; otherwise sampling with ``top_p`` nucleus filtering.
        seed: seeds torch's generator for this call, so the same inputs give the same outputs.
    Returns: B lists of ``num_samples`` tuples ``(text, is_truncated, new_tokens)``: the reply up
        to (not including) the first end-of-turn token, whether it hit ``max_new_tokens`` without
        ending, and how many tokens were generated up to the end of turn.
    Raises:
        ValueError: ``num_samples`` > 1 with ``temperature`` 0 (greedy decoding repeats itself).
    """
    if num_samples > 1 and temperature <= 0:
        raise ValueError("greedy decoding (temperature 0) gives identical samples; use num_samples=1 or temperature > 0")
    tokenizer, model = policy.tokenizer, policy.model
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    with torch.inference_mode():
        output = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            num_return_sequences=num_samples,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=policy.eos_token_ids,
            **sampling,
        )
    new_tokens = output[:, encoded["input_ids"].shape[1]:].tolist()
    stops = set(policy.eos_token_ids)
    results: list[list[tuple[str, bool, int]]] = [[] for _ in conversations]
    for row, tokens in enumerate(new_tokens):
        end = next((i for i, token in enumerate(tokens) if token in stops), None)
        kept = tokens if end is None else tokens[:end]
        truncated = end is None and len(tokens) >= max_new_tokens
        text = tokenizer.decode(kept, skip_special_tokens=True)
        results[row // num_samples].append((text, truncated, len(kept)))
    return results


SECOND_SIDE_SEED_OFFSET = 1_000_003  # head_to_head: B's seed is A's plus this


def run_generation(job, reporter: Reporter) -> dict:
    """Run a generation job (see ``GenerationConfig``); returns the job summary.

    Summary keys: ``prompts`` (done), ``paired``, ``completions``, ``skipped_empty``,
    ``skipped_identical``, ``new_tokens``, ``seconds``, ``tokens_per_s``.
    """
    config = GenerationConfig.from_dict(job.config)
    prompts = feedback.prompts_select(
        ids=config.prompt_ids, tag=config.tag or None, split=config.split or None,
        max_open_comparisons=config.max_open_comparisons, limit=config.limit,
    )
    checkpoints = {c.name: c for c in Checkpoint.objects.filter(name__in=config.checkpoints).select_related("parent")}
    policies = [checkpoint_policy_load(checkpoints[name]) for name in config.checkpoints]
    clock, summary, new_tokens, done = Stopwatch(), feedback.PairingSummary(), 0, 0
    base = {"temperature": config.temperature, "top_p": config.top_p, "max_new_tokens": config.max_new_tokens}
    reporter.progress(done=0, total=len(prompts))
    for batch_index, start in enumerate(range(0, len(prompts), config.batch_size)):
        if reporter.stop_requested():
            reporter.halted = True
            break
        batch = prompts[start:start + config.batch_size]
        seed = config.seed + batch_index
        conversations = [p.messages for p in batch]
        if config.strategy == "two_samples":
            outputs = sample_batch(policies[0], conversations, seed=seed, num_samples=2, **_sampling(config))
            sides = [[(policies[0].name, s, i) for i, s in enumerate(samples)] for samples in outputs]
        else:
            # Each side draws with its own seed: a checkpoint one short training run away from its
            # parent would otherwise often sample the very same text, and identical pairs are never
            # queued. The seeds are still fixed by config.seed, so runs repeat.
            first = sample_batch(policies[0], conversations, seed=seed, **_sampling(config))
            second = sample_batch(policies[1], conversations, seed=seed + SECOND_SIDE_SEED_OFFSET, **_sampling(config))
            sides = [[(policies[0].name, a[0], 0), (policies[1].name, b[0], 1)] for a, b in zip(first, second)]
        pairs = []
        for prompt, (left, right) in zip(batch, sides):
            generated = []
            for model_name, (text, truncated, count), sample_index in (left, right):
                new_tokens += count
                side_seed = seed + SECOND_SIDE_SEED_OFFSET if config.strategy == "head_to_head" and sample_index else seed
                params = {**base, "seed": side_seed, "sample_index": sample_index, "strategy": config.strategy, "job": job.pk}
                generated.append(feedback.GeneratedText(model_name, text, params, truncated))
            pairs.append(feedback.CandidatePair(prompt.id, generated[0], generated[1]))
        elapsed = clock.elapsed()
        with transaction.atomic():  # the batch's rows and the progress that counts them commit together
            summary.add(feedback.pairs_record(pairs=pairs, votes_required=config.votes_required, priority=config.priority))
            done += len(batch)
            reporter.progress(
                done=done, total=len(prompts), tokens_per_s=new_tokens / elapsed if elapsed else None,
                summary={**summary.as_dict(), "prompts": done},
            )
    elapsed = clock.elapsed()
    return {
        **summary.as_dict(), "prompts": done, "new_tokens": new_tokens, "seconds": round(elapsed, 3),
        "tokens_per_s": round(new_tokens / elapsed, 2) if elapsed else None,
    }


def _sampling(config: GenerationConfig) -> dict:
    return {"max_new_tokens": config.max_new_tokens, "temperature": config.temperature, "top_p": config.top_p}
