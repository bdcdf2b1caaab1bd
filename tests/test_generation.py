"""The generation pipeline: batched sampling, and whole jobs run by the supervisor in a real child process.

Sampling tests run in this process with a tiny random Llama (SmolLM2's real tokenizer and chat
template). Job tests start ``python -m training.runner JOB_ID`` through ``job_supervise`` against
the test database, so they are transactional. One test uses the bundled SmolLM2-135M-Instruct.
"""
from __future__ import annotations

import signal
import threading
import time
from types import SimpleNamespace

import pytest
import torch
from django.db import connection

from feedback.models import Comparison, ComparisonStatus, Completion
from tests.factories import PromptFactory
from tests.model_fixtures import SMOLLM2_NAME
from training.models import Job, JobStatus
from training.services import checkpoint_register, generation_job_create, job_cancel
from training.supervisor import job_log_path, job_supervise

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France, and why is it so well known?"}],
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a colour."}],
]


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread in this process (see ``runner_env``: on a busy two-core machine, two
    spinning OpenMP threads make these few-millisecond calls take seconds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_policy(model_store, one_torch_thread):
    """tiny-x loaded in this process."""
    from training.runners.loading import policy_load

    return policy_load("tiny-x", str(model_store.data_dir / "checkpoints" / "tiny-x"))


def sample(policy, conversations=CONVERSATIONS, **options):
    from training.runners.generation import sample_batch

    settings = {"max_new_tokens": 10, "temperature": 0, "top_p": 1.0, "seed": 0, **options}
    return sample_batch(policy, conversations, **settings)


def reference_tokens(policy, conversations, max_new_tokens: int) -> list[list[int]]:
    """Greedy new tokens for each conversation, straight from ``model.generate`` (left padded)."""
    tokenizer = policy.tokenizer
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        output = policy.model.generate(
            **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    return output[:, encoded["input_ids"].shape[1]:].tolist()


# --- sample_batch (in process) ----------------------------------------------------------------


def test_sample_batch_left_pads_and_returns_one_result_list_per_prompt(tiny_policy):
    assert tiny_policy.tokenizer.padding_side == "left"
    batched = sample(tiny_policy)
    assert [len(results) for results in batched] == [1, 1, 1]
    # Padding must not change a reply: each prompt alone gives the same greedy text as in the batch.
    for conversation, results in zip(CONVERSATIONS, batched):
        assert sample(tiny_policy, [conversation]) == [results]
    assert len({results[0].text for results in batched}) == 3

    two = sample(tiny_policy, temperature=1.0, num_samples=2)
    assert [len(results) for results in two] == [2, 2, 2]


def test_a_reply_stops_at_the_first_end_of_turn_token_and_is_truncated_only_without_one(tiny_policy):
    from training.runners.loading import LoadedPolicy

    limit = 10
    reference = reference_tokens(tiny_policy, CONVERSATIONS, limit)
    assert all(len(tokens) == limit for tokens in reference), "the tiny model should not end its turn by itself"
    # The tiny model never ends a turn: every reply runs to the limit and says so.
    for result, tokens in zip([r[0] for r in sample(tiny_policy, max_new_tokens=limit)], reference):
        assert (result.is_truncated, result.new_tokens, result.truncated_at_role_marker) == (True, limit, False)
        assert result.text == tiny_policy.tokenizer.decode(tokens, skip_special_tokens=True)

    # Declare the 5th token of the first reply an end-of-turn token: replies now end there.
    stop = reference[0][4]
    stopping = LoadedPolicy("tiny-x", tiny_policy.model, tiny_policy.tokenizer, [stop])
    for result, tokens in zip([r[0] for r in sample(stopping, max_new_tokens=limit)], reference):
        end = tokens.index(stop) if stop in tokens else None
        if end is None:
            assert (result.is_truncated, result.new_tokens) == (True, limit)
            assert result.text == tiny_policy.tokenizer.decode(tokens, skip_special_tokens=True)
        else:
            assert (result.is_truncated, result.new_tokens) == (False, end)
            assert result.text == tiny_policy.tokenizer.decode(tokens[:end], skip_special_tokens=True)
        assert not result.truncated_at_role_marker
    first = sample(stopping, max_new_tokens=limit)[0][0]
    assert (first.is_truncated, first.new_tokens) == (False, reference[0].index(stop))


def test_the_same_seed_gives_the_same_samples(tiny_policy):
    first = sample(tiny_policy, temperature=1.0, top_p=0.95, seed=3, num_samples=2)
    again = sample(tiny_policy, temperature=1.0, top_p=0.95, seed=3, num_samples=2)
    other = sample(tiny_policy, temperature=1.0, top_p=0.95, seed=4, num_samples=2)
    assert first == again
    assert first != other
    assert all(a.text != b.text for a, b in first), "two samples of one prompt should differ"


def test_greedy_decoding_refuses_to_repeat_itself(tiny_policy):
    with pytest.raises(ValueError, match="temperature"):
        sample(tiny_policy, temperature=0, num_samples=2)


def test_smollm2_turns_end_at_im_end(model_store):
    """SmolLM2's chat template closes each turn with <|im_end|>, which is its EOS and its generation EOS."""
    from transformers import AutoTokenizer, GenerationConfig

    from training.runners.loading import end_of_turn_ids

    directory = model_store.data_dir / model_store.smollm2_dir
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = SimpleNamespace(generation_config=GenerationConfig.from_pretrained(directory))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn_ids(tokenizer, model) == [im_end]
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}], tokenize=False
    )
    assert rendered.endswith("Hello.<|im_end|>\n")


class DyingReporter:
    """A reporter whose process "dies" (raises) when recording the progress of batch ``dies_at``."""

    def __init__(self, job_id: int, dies_at: int):
        from training.runners.progress import Reporter

        self.real, self.dies_at, self.batches, self.halted = Reporter(job_id), dies_at, 0, False

    def stop_requested(self) -> bool:
        return False

    def progress(self, *, done: int, **fields) -> None:
        if done:
            self.batches += 1
            if self.batches == self.dies_at:
                raise RuntimeError("killed while recording progress")
        self.real.progress(done=done, **fields)


@pytest.mark.django_db
def test_a_batch_and_the_progress_that_counts_it_commit_together(tiny_checkpoints, one_torch_thread):
    """Dying between a batch's rows and its progress update must lose both, never leave rows uncounted."""
    from training.runners.generation import run_generation

    PromptFactory.create_batch(6)
    job = generation_job_create(config={"checkpoints": ["tiny-x"], "max_new_tokens": 3, "batch_size": 2, "temperature": 1.0})
    with pytest.raises(RuntimeError, match="killed"):
        run_generation(job, DyingReporter(job.pk, dies_at=2))
    job.refresh_from_db()
    assert job.progress_done == 2
    assert Completion.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_cancel_that_arrives_after_the_last_batch_leaves_the_job_succeeded(tiny_checkpoints, one_torch_thread, monkeypatch):
    """The runner's entry point, in process: all the work was done, so the job did not stop early."""
    from training import runner, runners

    PromptFactory.create_batch(2)
    job = generation_job_create(config={"checkpoints": ["tiny-x"], "max_new_tokens": 3, "temperature": 1.0})
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    generate = runners.RUNNERS["generation"]

    def generate_then_cancel(job, reporter):
        summary = generate(job, reporter)
        job_cancel(job=job)
        return summary

    monkeypatch.setitem(runners.RUNNERS, "generation", generate_then_cancel)
    sigterm = signal.getsignal(signal.SIGTERM)  # the runner installs its own handler
    try:
        assert runner.main(["training.runner", str(job.pk)]) == 0
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    job.refresh_from_db()
    assert job.cancel_requested
    assert (job.status, job.progress_done, job.summary["prompts"]) == (JobStatus.SUCCEEDED, 2, 2)


# --- whole jobs (child process) ---------------------------------------------------------------


def run_job(config: dict) -> Job:
    job = generation_job_create(config=config)
    status = job_supervise(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == status
    return job


def explain(job: Job) -> str:
    log = job_log_path(job.pk)
    return f"{job.status}: {job.error}\n{job.traceback}\n{log.read_text()[-3000:] if log.exists() else ''}"


def assert_whole_batches(job: Job, *, per_prompt: int = 2) -> None:
    """Every committed prompt has all its completions; comparisons pair completions of their own prompt."""
    completions = Completion.objects.filter(generation_params__job=job.pk)
    assert completions.count() == per_prompt * job.progress_done
    counts = {}
    for completion in completions:
        counts[completion.prompt_id] = counts.get(completion.prompt_id, 0) + 1
    assert set(counts.values()) <= {per_prompt}
    assert len(counts) == job.progress_done
    comparisons = Comparison.objects.filter(prompt_id__in=counts).select_related("completion_a", "completion_b")
    for comparison in comparisons:
        assert comparison.completion_a.prompt_id == comparison.completion_b.prompt_id == comparison.prompt_id
    summary = job.summary
    assert summary["prompts"] == job.progress_done
    assert summary["completions"] == completions.count()
    assert summary["paired"] == comparisons.count()
    assert summary["paired"] + summary["skipped_empty"] + summary["skipped_identical"] == job.progress_done


@pytest.mark.django_db(transaction=True)
def test_a_two_samples_job_runs_in_a_child_process_and_stores_paired_samples(tiny_checkpoints, runner_env):
    prompts = PromptFactory.create_batch(5)
    job = run_job({
        "checkpoints": ["tiny-x"], "strategy": "two_samples", "max_new_tokens": 6, "temperature": 1.0,
        "top_p": 0.9, "batch_size": 2, "seed": 11, "votes_required": 2, "priority": 3,
    })
    assert job.status == JobStatus.SUCCEEDED, explain(job)
    assert job.progress_done == job.progress_total == 5
    assert job.error == "" and job.pid and job.started_at <= job.finished_at
    assert job.tokens_per_s > 0
    assert_whole_batches(job)

    batch_seed = {p.id: 11 + index // 2 for index, p in enumerate(prompts)}  # batch i is seeded seed + i
    for completion in Completion.objects.all():
        assert completion.model_name == "tiny-x"
        params = completion.generation_params
        assert {k: params[k] for k in ("temperature", "top_p", "max_new_tokens", "seed")} == {
            "temperature": 1.0, "top_p": 0.9, "max_new_tokens": 6, "seed": batch_seed[completion.prompt_id],
        }
        assert params["strategy"] == "two_samples" and params["job"] == job.pk
    for p in prompts:
        assert sorted(Completion.objects.filter(prompt=p).values_list("generation_params__sample_index", flat=True)) == [0, 1]
    assert job.summary["completions"] == 10
    truncated = Completion.objects.filter(is_truncated=True).count()
    assert 6 * truncated <= job.summary["new_tokens"] <= 6 * 10
    for comparison in Comparison.objects.all():
        assert (comparison.status, comparison.votes_required, comparison.priority) == (ComparisonStatus.OPEN, 2, 3)


@pytest.mark.django_db(transaction=True)
def test_head_to_head_pairs_model_x_against_model_y_on_the_same_prompts(tiny_checkpoints, runner_env):
    prompts = PromptFactory.create_batch(3)
    job = run_job({
        "checkpoints": ["tiny-x", "tiny-y"], "strategy": "head_to_head", "temperature": 0, "max_new_tokens": 5,
        "batch_size": 2,
    })
    assert job.status == JobStatus.SUCCEEDED, explain(job)
    assert job.progress_done == 3
    assert_whole_batches(job)
    assert job.summary["paired"] == 3
    for p in prompts:
        assert sorted(Completion.objects.filter(prompt=p).values_list("model_name", flat=True)) == ["tiny-x", "tiny-y"]
        comparison = Comparison.objects.get(prompt=p)
        # Either model may be completion A (drawn per pair, so the letter does not tell an annotator).
        assert {comparison.completion_a.model_name, comparison.completion_b.model_name} == {"tiny-x", "tiny-y"}
        assert comparison.completion_a.generation_params["temperature"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_job_cancelled_while_queued_never_starts(tiny_checkpoints, runner_env):
    PromptFactory.create_batch(2)
    job = generation_job_create(config={"checkpoints": ["tiny-x"], "max_new_tokens": 4})
    job_cancel(job=job)
    assert job_supervise(job_id=job.pk) == JobStatus.CANCELLED
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.started_at is None and job.pid is None
    assert Completion.objects.count() == 0


def cancel_when(job_id: int, ready, timeout_s: float = 300) -> None:
    """In a thread: wait until ``ready(job)`` (or the job ends), then ask the job to stop."""
    try:
        deadline = time.monotonic() + timeout_s
        job = Job.objects.get(pk=job_id)
        while time.monotonic() < deadline and not ready(job) and not job.is_finished:
            time.sleep(0.02)
            job.refresh_from_db()
        job_cancel(job=job)
    finally:
        connection.close()


def supervise_and_cancel(job: Job, ready) -> Job:
    canceller = threading.Thread(target=cancel_when, args=(job.pk, ready))
    canceller.start()
    try:
        job_supervise(job_id=job.pk)
    finally:
        canceller.join()
    job.refresh_from_db()
    return job


@pytest.mark.django_db(transaction=True)
def test_a_job_cancelled_as_it_starts_ends_cancelled_with_whole_batches_only(tiny_checkpoints, runner_env):
    PromptFactory.create_batch(40)
    job = generation_job_create(config={"checkpoints": ["tiny-x"], "max_new_tokens": 48, "batch_size": 2, "temperature": 1.0})
    job = supervise_and_cancel(job, lambda j: j.status == JobStatus.RUNNING)
    assert job.status == JobStatus.CANCELLED, explain(job)
    assert job.cancel_requested and job.error == "" and job.finished_at
    assert job.progress_done < 40 and job.progress_done % 2 == 0
    assert Completion.objects.count() == 2 * job.progress_done


@pytest.mark.django_db(transaction=True)
def test_a_job_cancelled_while_running_stops_after_a_whole_batch(tiny_checkpoints, runner_env):
    PromptFactory.create_batch(40)
    job = generation_job_create(config={"checkpoints": ["tiny-x"], "max_new_tokens": 48, "batch_size": 2, "temperature": 1.0})
    job = supervise_and_cancel(job, lambda j: j.progress_done > 0)
    assert job.status == JobStatus.CANCELLED, explain(job)
    assert job.cancel_requested and job.error == "" and job.finished_at
    assert 0 < job.progress_done < 40
    assert job.progress_done % 2 == 0  # whole batches of two
    assert_whole_batches(job)


@pytest.mark.django_db(transaction=True)
def test_a_checkpoint_that_cannot_load_fails_the_job_with_a_readable_error(data_dir, runner_env):
    broken = data_dir / "checkpoints" / f"broken-{time.monotonic_ns()}"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text((data_dir / "checkpoints" / "tiny-x" / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    checkpoint_register(name="broken", weights_dir=str(broken.relative_to(data_dir)))
    PromptFactory.create_batch(2)
    job = run_job({"checkpoints": ["broken"], "max_new_tokens": 4})
    assert job.status == JobStatus.FAILED
    assert job.error and "\n" not in job.error.strip()
    assert "Traceback" in job.traceback
    assert Completion.objects.count() == 0 and job.progress_done == 0


@pytest.mark.real_model
@pytest.mark.django_db(transaction=True)
def test_the_bundled_smollm2_answers_and_stops_at_the_end_of_its_turn(smollm2_checkpoint, runner_env):
    PromptFactory(messages=[{"role": "user", "content": "What is the capital of France?"}])
    PromptFactory(messages=[{"role": "user", "content": "Say hello."}])
    job = run_job({
        "checkpoints": [SMOLLM2_NAME], "strategy": "two_samples", "max_new_tokens": 96, "temperature": 0.7,
        "top_p": 0.9, "seed": 0, "batch_size": 2,
    })
    assert job.status == JobStatus.SUCCEEDED, explain(job)
    completions = list(Completion.objects.all())
    assert len(completions) == 4
    for completion in completions:
        assert completion.model_name == SMOLLM2_NAME
        assert completion.text.strip() and not completion.is_empty
        assert "<|im_end|>" not in completion.text and "<|im_start|>" not in completion.text
    # With 96 tokens to spare, a 135M chat model answers these in a sentence or two and ends its turn.
    assert any(not c.is_truncated for c in completions)
    assert job.summary["new_tokens"] < 4 * 96
