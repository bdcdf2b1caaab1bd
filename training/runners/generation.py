"""The generation runner: sample completions with the chat template, pair them, store them in batches.

Each batch of prompts is left-padded and generated in one ``model.generate`` call, then written
(completions, comparisons and the job's progress together) in one transaction through
``feedback.interface``. A killed runner therefore leaves whole batches only, and
``progress_done`` counts exactly the prompts whose completions were committed.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from django.db import transaction
from transformers import PreTrainedTokenizerBase, StoppingCriteriaList, StopStringCriteria

from feedback import interface as feedback
from training.config import GenerationConfig
from training.models import Checkpoint

from .loading import LoadedPolicy, checkpoint_policy_load
from .progress import Reporter, Stopwatch
from .role_markers import SECOND_SIDE_SEED_OFFSET, role_marker_find  # noqa: F401 - shared with the server backend


@dataclass(frozen=True)
class Sample:
    """One sampled reply.

    ``text``: the reply up to (not including) the first end-of-turn token or role marker.
    ``is_truncated``: it hit ``max_new_tokens`` without ending its turn (no end-of-turn token, no marker).
    ``new_tokens``: tokens generated up to the end of the turn (through the marker's last token when cut).
    ``truncated_at_role_marker``: the model went on to write another turn (a role marker, e.g.
    ``"\\n\\nHuman:"``); ``text`` stops before it, trailing whitespace removed.
    """

    text: str
    is_truncated: bool
    new_tokens: int
    truncated_at_role_marker: bool = False


def role_markers_split(tokenizer: PreTrainedTokenizerBase, stop_strings: Sequence[str]) -> tuple[list[str], list[int]]:
    """Split role markers into text markers and marker tokens.

    A marker that is one special token of this vocabulary (``"<|im_start|>"``, say) is skipped by
    ``decode(skip_special_tokens=True)``, so it is matched by its id; every other marker is matched
    in the decoded text. Returns ``(text_markers, marker_token_ids)``.
    """
    special = {token.content: token_id for token_id, token in tokenizer.added_tokens_decoder.items() if token.special}
    text_markers = [marker for marker in stop_strings if marker not in special]
    return text_markers, sorted({special[marker] for marker in stop_strings if marker in special})


def _tokens_through(tokenizer: PreTrainedTokenizerBase, tokens: list[int], marker: str) -> int:
    """The fewest leading ``tokens`` whose decoded text holds ``marker`` (it is in the whole decode).

    Binary search: the decoded text of a prefix is a prefix of the decoded text (byte-level BPE).
    """
    low, high = 1, len(tokens)
    while low < high:
        middle = (low + high) // 2
        if marker in tokenizer.decode(tokens[:middle], skip_special_tokens=True):
            high = middle
        else:
            low = middle + 1
    return high


def stop_string_criteria(policy: LoadedPolicy, text_markers: Sequence[str]) -> dict:
    """``generate`` keyword arguments that stop a row at any of ``text_markers`` (none without markers).

    The ``StopStringCriteria`` is built once per loaded policy and markers and kept on the policy:
    building one reads the whole vocabulary (about 0.1 s for SmolLM2's 49,152 tokens on a CPU core),
    which transformers would do again in every ``generate`` call given ``stop_strings``. It stops
    exactly where ``stop_strings=`` would.
    """
    if not text_markers:
        return {}
    key = tuple(text_markers)
    if key not in policy.stop_criteria:
        policy.stop_criteria[key] = StopStringCriteria(tokenizer=policy.tokenizer, stop_strings=list(key))
    return {"stopping_criteria": StoppingCriteriaList([policy.stop_criteria[key]])}


def sample_batch(
    policy: LoadedPolicy,
    conversations: Sequence[list[dict[str, str]]],
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    num_samples: int = 1,
) -> list[list[Sample]]:
    """Sample ``num_samples`` replies to each conversation in one batched ``generate`` call.

    A reply ends at the first end-of-turn token (``policy.eos_token_ids``) or role marker
    (``policy.stop_strings``). Markers stop generation early (transformers' ``StopStringCriteria``,
    built once per policy by ``stop_string_criteria``, and marker tokens as extra end ids), and the decoded text is then cut
    before the first marker anyway: a marker can end inside a token, and a row of a batch keeps
    generating until every row has stopped.

    Args:
        conversations: B chat histories, each ending with a user turn.
        temperature: 0 for greedy decoding; otherwise sampling with ``top_p`` nucleus filtering.
        seed: seeds torch's generator for this call, so the same inputs give the same outputs.
    Returns: B lists of ``num_samples`` ``Sample`` s.
    Raises:
        ValueError: ``num_samples`` > 1 with ``temperature`` 0 (greedy decoding repeats itself).
    """
    if num_samples > 1 and temperature <= 0:
        raise ValueError("greedy decoding (temperature 0) gives identical samples; use num_samples=1 or temperature > 0")
    tokenizer, model = policy.tokenizer, policy.model
    text_markers, marker_ids = role_markers_split(tokenizer, policy.stop_strings)
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    stopping = stop_string_criteria(policy, text_markers)
    with torch.inference_mode():
        output = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            num_return_sequences=num_samples,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=sorted(set(policy.eos_token_ids) | set(marker_ids)),
            **stopping,
            **sampling,
        )
    new_tokens = output[:, encoded["input_ids"].shape[1]:].tolist()
    ends, markers = set(policy.eos_token_ids), set(marker_ids)
    results: list[list[Sample]] = [[] for _ in conversations]
    for row, tokens in enumerate(new_tokens):
        end = next((i for i, token in enumerate(tokens) if token in ends or token in markers), None)
        kept = tokens if end is None else tokens[:end]
        at_marker_token = end is not None and tokens[end] in markers
        text = tokenizer.decode(kept, skip_special_tokens=True)
        found = role_marker_find(text, text_markers)
        if found is not None:  # a text marker comes first (a marker token ends ``kept``)
            index, marker = found
            sample = Sample(text[:index].rstrip(), False, _tokens_through(tokenizer, kept, marker), True)
        elif at_marker_token:
            sample = Sample(text.rstrip(), False, len(kept) + 1, True)
        else:
            sample = Sample(text, end is None and len(tokens) >= max_new_tokens, len(kept))
        results[row // num_samples].append(sample)
    return results


def run_generation(job, reporter: Reporter) -> dict:
    """Run a generation job (see ``GenerationConfig``); returns the job summary.

    Strategy ``each`` (evaluations) stores every checkpoint's completion of each prompt without
    pairing (``paired`` stays 0). Summary keys: ``prompts`` (done), ``paired``, ``completions``, ``skipped_empty``,
    ``skipped_identical``, ``truncated`` (completions that hit ``max_new_tokens``),
    ``truncated_at_role_marker`` (completions cut before a role marker: the model went on to write
    another turn), ``new_tokens``, ``seconds``, ``tokens_per_s``. With ``backend: "server"`` the
    job runs in ``generation_server.run_server_generation`` instead (no model is loaded).
    """
    config = GenerationConfig.from_dict(job.config)
    if config.backend == "server":
        from .generation_server import run_server_generation

        return run_server_generation(job, reporter)
    prompts = feedback.prompts_select(
        ids=config.prompt_ids, tag=config.tag or None, split=config.split or None,
        max_open_comparisons=config.max_open_comparisons, limit=config.limit,
        include_eval_sets=config.eval_set_id is not None,
    )
    checkpoints = {c.name: c for c in Checkpoint.objects.filter(name__in=config.checkpoints).select_related("parent")}
    policies = [checkpoint_policy_load(checkpoints[name]) for name in config.checkpoints]
    clock, summary, new_tokens, done = Stopwatch(), feedback.PairingSummary(), 0, 0
    cuts = {"truncated": 0, "truncated_at_role_marker": 0}
    base = {"temperature": config.temperature, "top_p": config.top_p, "max_new_tokens": config.max_new_tokens}
    markers = {policy.name: list(policy.stop_strings) for policy in policies}
    reporter.progress(done=0, total=len(prompts))
    for batch_index, start in enumerate(range(0, len(prompts), config.batch_size)):
        if reporter.stop_requested():
            reporter.halted = True
            break
        batch = prompts[start:start + config.batch_size]
        seed = config.seed + batch_index
        conversations = [p.messages for p in batch]
        if config.strategy == "each":
            stored, batch_tokens = _each_batch(policies, batch, config, seed=seed, job_id=job.pk, markers=markers, cuts=cuts)
            new_tokens += batch_tokens
            elapsed = clock.elapsed()
            with transaction.atomic():  # the batch's completions and the progress that counts them commit together
                summary.completions += len(feedback.completions_record(completions=stored))
                done += len(batch)
                reporter.progress(
                    done=done, total=len(prompts), tokens_per_s=new_tokens / elapsed if elapsed else None,
                    summary={**summary.as_dict(), **cuts, "prompts": done},
                )
            continue
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
            for model_name, sample, sample_index in (left, right):
                new_tokens += sample.new_tokens
                cuts["truncated"] += sample.is_truncated
                cuts["truncated_at_role_marker"] += sample.truncated_at_role_marker
                side_seed = seed + SECOND_SIDE_SEED_OFFSET if config.strategy == "head_to_head" and sample_index else seed
                params = {
                    "backend": "transformers", **base, "seed": side_seed, "sample_index": sample_index, "strategy": config.strategy, "job": job.pk,
                    "stop_strings": markers[model_name],
                }
                generated.append(feedback.GeneratedText(
                    model_name, sample.text, params, sample.is_truncated, sample.truncated_at_role_marker,
                ))
            pairs.append(feedback.CandidatePair(prompt.id, generated[0], generated[1]))
        elapsed = clock.elapsed()
        with transaction.atomic():  # the batch's rows and the progress that counts them commit together
            summary.add(feedback.pairs_record(
                pairs=pairs, votes_required=config.votes_required, priority=config.priority, campaign_id=config.campaign_id,
            ))
            done += len(batch)
            reporter.progress(
                done=done, total=len(prompts), tokens_per_s=new_tokens / elapsed if elapsed else None,
                summary={**summary.as_dict(), **cuts, "prompts": done},
            )
    elapsed = clock.elapsed()
    return {
        **summary.as_dict(), **cuts, "prompts": done, "new_tokens": new_tokens, "seconds": round(elapsed, 3),
        "tokens_per_s": round(new_tokens / elapsed, 2) if elapsed else None,
    }


def _each_batch(policies, batch, config: GenerationConfig, *, seed: int, job_id: int, markers, cuts) -> tuple[list, int]:
    """Strategy ``each``: every policy once on each prompt of ``batch``, all with ``seed`` (so a
    greedy or seeded run of the same checkpoint repeats). Returns ``([(prompt_id, GeneratedText),
    ...], new tokens)`` and adds to ``cuts``."""
    base = {"temperature": config.temperature, "top_p": config.top_p, "max_new_tokens": config.max_new_tokens}
    conversations = [p.messages for p in batch]
    stored, new_tokens = [], 0
    for policy in policies:
        outputs = sample_batch(policy, conversations, seed=seed, **_sampling(config))
        for prompt, samples in zip(batch, outputs):
            sample = samples[0]
            new_tokens += sample.new_tokens
            cuts["truncated"] += sample.is_truncated
            cuts["truncated_at_role_marker"] += sample.truncated_at_role_marker
            params = {**base, "seed": seed, "sample_index": 0, "strategy": "each", "job": job_id,
                      "stop_strings": markers[policy.name], "eval_set_id": config.eval_set_id}
            stored.append((prompt.id, feedback.GeneratedText(
                policy.name, sample.text, params, sample.is_truncated, sample.truncated_at_role_marker)))
    return stored, new_tokens


def _sampling(config: GenerationConfig) -> dict:
    return {"max_new_tokens": config.max_new_tokens, "temperature": config.temperature, "top_p": config.top_p}
