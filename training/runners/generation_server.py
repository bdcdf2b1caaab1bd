"""The generation runner's server backend: each checkpoint's requests go to the OpenAI-compatible
server it names (``Checkpoint.server``), one chat completion per sample. No model is loaded and
torch is not imported.

Batches are as in ``generation.run_generation``: a batch's completions, comparisons and progress
commit together in one transaction, so a killed job leaves whole batches only. While batch ``i``
is awaited and written, the calls of the next batches are already queued on each server's client
(enough for about twice its ``max_concurrency``), so the servers stay busy across batch boundaries.

A failed call (unreachable server, 401, 404 for a wrong model name, 429/5xx past the retry budget,
a timeout, an empty choices list, malformed JSON, a stream cut short) never becomes a completion.
``on_failure: "fail"`` ends the job before writing the batch that holds it (the batches already
committed stay, and the summary so far counts ``failed_calls``); ``"skip"`` stores nothing for
that prompt and counts it in ``failed_prompts``. A job whose every call failed fails either way.
"""
from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

from django.db import transaction

from feedback import interface as feedback
from training.backends.models import ModelServer
from training.backends.openai_client import ChatClient, ChatResult, EndpointSettings, api_key_read
from training.config import GenerationConfig
from training.models import Checkpoint

from .progress import Reporter, Stopwatch
from .role_markers import SECOND_SIDE_SEED_OFFSET, role_marker_find

BACKOFF_MAX_S = 30.0


class GenerationFailed(RuntimeError):
    """A server call failed (``on_failure: "fail"``), or every call of the job failed."""


@dataclass(frozen=True)
class Call:
    """One request: side ``side`` (0 or 1) of the pair for the batch's prompt ``row``, by
    ``checkpoint`` on ``server``, with the sampling settings sent (``temperature``, ``top_p``,
    ``max_tokens``, ``seed``, ``stop``)."""

    row: int
    side: int
    checkpoint: str
    server: ModelServer
    sampling: dict


def server_client_open(server: ModelServer) -> ChatClient:
    """A client for ``server`` with its key read from the worker's environment.

    Raises:
        LookupError: the server names a key variable that is not set here.
    """
    settings = EndpointSettings(
        base_url=server.base_url, model=server.model_name, timeout_s=server.timeout_s, max_retries=server.max_retries,
        backoff_s=server.backoff_s, backoff_max_s=BACKOFF_MAX_S, max_concurrency=server.max_concurrency,
        stream=server.stream,
    )
    return ChatClient(settings, api_key_read(server.api_key_env, owner=f"model server {server.name!r}"))


def batch_calls(config: GenerationConfig, checkpoints: dict[str, Checkpoint], size: int, seed: int) -> list[Call]:
    """The requests for a batch of ``size`` prompts seeded ``seed``: two per prompt, in prompt order.

    ``two_samples``: both to ``checkpoints[0]``'s server, seeded ``seed`` and ``seed + SECOND_SIDE_SEED_OFFSET``;
    ``head_to_head``: side A to the first checkpoint's server (``seed``), side B to the second's
    (``seed + SECOND_SIDE_SEED_OFFSET``). ``stop`` is the checkpoint's role markers (left out when it has none).
    """
    names = config.checkpoints * 2 if config.strategy == "two_samples" else config.checkpoints
    calls = []
    for row in range(size):
        for side, name in enumerate(names[:2]):
            checkpoint = checkpoints[name]
            sampling = {
                "temperature": config.temperature, "top_p": config.top_p, "max_tokens": config.max_new_tokens,
                "seed": seed + SECOND_SIDE_SEED_OFFSET * side,
            }
            if checkpoint.stop_strings:
                sampling["stop"] = list(checkpoint.stop_strings)
            calls.append(Call(row, side, name, checkpoint.server, sampling))
    return calls


def completion_from(result: ChatResult, call: Call, *, strategy: str, job_id: int) -> feedback.GeneratedText:
    """A successful call's answer as a completion.

    The text is cut before the first role marker the model wrote (a server that ignored ``stop``),
    and flagged ``truncated_at_role_marker`` then or when the server says a marker stopped it
    (``stop_reason``); ``is_truncated`` when ``finish_reason`` is ``"length"``. ``generation_params``
    records the backend, the server, the model name requested and the one the server reported, the
    sampling settings sent, the finish reason, and the job.
    """
    markers = call.sampling.get("stop", [])
    text, at_marker = result.text or "", False
    found = role_marker_find(text, markers)
    if found is not None:
        text, at_marker = text[:found[0]].rstrip(), True
    elif result.stop_reason is not None and result.stop_reason in markers:
        text, at_marker = text.rstrip(), True
    params = {
        "backend": "server", "server": call.server.name, "requested_model": call.server.model_name,
        "served_model": result.model or None, "stream": call.server.stream, **call.sampling,
        "finish_reason": result.finish_reason, "sample_index": call.side, "strategy": strategy, "job": job_id,
    }
    truncated = result.finish_reason == "length" and not at_marker
    return feedback.GeneratedText(call.checkpoint, text, params, truncated, at_marker)


def run_server_generation(job, reporter: Reporter) -> dict:
    """Run a generation job with ``backend: "server"``; returns the job summary.

    Summary keys: those of ``generation.run_generation`` (``prompts`` counts the prompts done,
    failed ones included) plus ``backend``, ``servers`` (names), ``calls``, ``failed_calls``,
    ``failed_prompts`` and ``calls_per_s``. ``new_tokens`` adds up the servers' ``usage.completion_tokens``.

    Raises:
        GenerationFailed: a checkpoint names no server; a call failed with ``on_failure: "fail"``;
            every call failed.
        LookupError: a server's key variable is not set in the worker's environment.
    """
    config = GenerationConfig.from_dict(job.config)
    prompts = feedback.prompts_select(
        ids=config.prompt_ids, tag=config.tag or None, split=config.split or None,
        max_open_comparisons=config.max_open_comparisons, limit=config.limit,
    )
    checkpoints = {c.name: c for c in Checkpoint.objects.filter(name__in=config.checkpoints).select_related("server")}
    for name in config.checkpoints:
        if name not in checkpoints or checkpoints[name].server is None:
            raise GenerationFailed(f"checkpoint {name!r} names no model server; the server backend needs one")
    servers = {checkpoints[name].server.pk: checkpoints[name].server for name in config.checkpoints}
    clients: dict[int, ChatClient] = {}
    try:
        for pk, server in servers.items():
            clients[pk] = server_client_open(server)
        return _generate(job, reporter, config, prompts, checkpoints, clients, [s.name for s in servers.values()])
    finally:
        for client in clients.values():
            client.close(cancel=True)


def _generate(job, reporter, config, prompts, checkpoints, clients, server_names) -> dict:
    batches = [prompts[start:start + config.batch_size] for start in range(0, len(prompts), config.batch_size)]
    calls_per_batch = 2 * config.batch_size
    ahead = max(1, math.ceil(2 * max(c.settings.max_concurrency for c in clients.values()) / calls_per_batch))
    queued: deque[tuple[list[Call], list[Future]]] = deque()

    def submit(index: int) -> None:
        batch = batches[index]
        calls = batch_calls(config, checkpoints, len(batch), config.seed + index)
        queued.append((calls, [clients[c.server.pk].submit(batch[c.row].messages, c.sampling) for c in calls]))

    clock, summary = Stopwatch(), feedback.PairingSummary()
    counts = {"truncated": 0, "truncated_at_role_marker": 0, "calls": 0, "failed_calls": 0, "failed_prompts": 0}
    new_tokens, done, first_error = 0, 0, ""

    def figures() -> dict:
        return {**summary.as_dict(), **counts, "prompts": done, "backend": "server", "servers": server_names}

    reporter.progress(done=0, total=len(prompts))
    for index in range(min(ahead, len(batches))):
        submit(index)
    for index, batch in enumerate(batches):
        if reporter.stop_requested():
            reporter.halted = True
            break
        if index + ahead < len(batches):
            submit(index + ahead)
        calls, futures = queued.popleft()
        results = [future.result() for future in futures]
        by_row: dict[int, list[tuple[Call, ChatResult]]] = {}
        for call, result in zip(calls, results):
            by_row.setdefault(call.row, []).append((call, result))
        pairs = []
        for row, prompt in enumerate(batch):
            answered = by_row[row]
            failed = [(call, result) for call, result in answered if result.text is None]
            counts["calls"] += len(answered)
            counts["failed_calls"] += len(failed)
            if failed:
                call, result = failed[0]
                reason = f"prompt {prompt.id}: {call.checkpoint} on server {call.server.name!r}: {result.error}"
                first_error = first_error or reason
                if config.on_failure == "fail":
                    reporter.progress(done=done, total=len(prompts), summary=figures())
                    raise GenerationFailed(reason)
                counts["failed_prompts"] += 1
                continue
            generated = [completion_from(result, call, strategy=config.strategy, job_id=job.pk) for call, result in answered]
            for text, (_, result) in zip(generated, answered):
                new_tokens += result.completion_tokens or 0
                counts["truncated"] += text.is_truncated
                counts["truncated_at_role_marker"] += text.truncated_at_role_marker
            pairs.append(feedback.CandidatePair(prompt.id, generated[0], generated[1]))
        elapsed = clock.elapsed()
        with transaction.atomic():  # the batch's rows and the progress that counts them commit together
            if pairs:
                summary.add(feedback.pairs_record(
                    pairs=pairs, votes_required=config.votes_required, priority=config.priority,
                    campaign_id=config.campaign_id,
                ))
            done += len(batch)
            reporter.progress(done=done, total=len(prompts), tokens_per_s=new_tokens / elapsed if elapsed else None,
                              summary=figures())
    if counts["calls"] and counts["failed_calls"] == counts["calls"]:
        raise GenerationFailed(f"every call failed ({counts['failed_calls']} of {counts['calls']}): {first_error}")
    elapsed = clock.elapsed()
    return {
        **figures(), "new_tokens": new_tokens, "seconds": round(elapsed, 3),
        "tokens_per_s": round(new_tokens / elapsed, 2) if elapsed else None,
        "calls_per_s": round(counts["calls"] / elapsed, 2) if elapsed else None,
    }
