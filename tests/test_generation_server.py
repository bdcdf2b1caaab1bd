"""Generation through OpenAI-compatible servers (backend "server"), in process against the fake
server: what is sent and recorded, role markers and length, whole batches, the concurrency kept
busy, and every bad input (401, 404 for a wrong model, 429 past the budget, 500, timeouts, empty
choices, malformed JSON, unreachable) failing readably or skipped, never stored as an answer."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from django.core.exceptions import ValidationError

from feedback.models import Comparison, Completion
from tests.factories import PromptFactory
from tests.judge_server import FakeChatServer
from training.backends.openai_client import ChatResult
from training.backends.services import checkpoint_server_set, model_server_save
from training.models import Job
from training.runners.generation_server import Call, GenerationFailed, completion_from
from training.runners.progress import Reporter
from training.services import checkpoint_register, generation_job_create

pytestmark = pytest.mark.django_db
FAST = {"timeout_s": 2.0, "max_retries": 1, "backoff_s": 0.001}
MARKERS = ["\n\nHuman:", "\n\nAssistant:"]


@pytest.fixture
def fake():
    with FakeChatServer(reported_model="org/served-7b") as server:
        yield server


def served(name: str, url: str, model: str, **settings):
    """A policy checkpoint named ``name`` served by a new server ``<name>-server``."""
    server = model_server_save(name=f"{name}-server", base_url=url, model_name=model, **{**FAST, **settings})
    return checkpoint_server_set(checkpoint=checkpoint_register(name=name, hub_id=f"org/{name}"), server=server)


def run(config: dict, reporter=None) -> Job:
    from training.runners.generation import run_generation

    job = generation_job_create(config={"backend": "server", "batch_size": 2, "temperature": 0.7, **config})
    job.summary = run_generation(job, reporter or Reporter(job.pk))
    return job


def test_two_samples_send_two_seeded_calls_and_record_what_was_sent(fake):
    served("pol", fake.base_url, "gen")
    prompts = PromptFactory.create_batch(3)
    job = run({"checkpoints": ["pol"], "max_new_tokens": 40, "top_p": 0.9, "seed": 5})
    assert {k: job.summary[k] for k in ("prompts", "paired", "completions", "calls", "failed_calls", "failed_prompts")} == {
        "prompts": 3, "paired": 3, "completions": 6, "calls": 6, "failed_calls": 0, "failed_prompts": 0}
    assert job.summary["backend"] == "server" and job.summary["servers"] == ["pol-server"]
    assert sorted(b["seed"] for b in fake.bodies) == [5, 5, 6, 1_000_008, 1_000_008, 1_000_009]  # batch i: seed + i
    assert all(b["stop"] == MARKERS and b["max_tokens"] == 40 and b["model"] == "gen" for b in fake.bodies)
    first = Completion.objects.get(prompt=prompts[0], generation_params__sample_index=0)
    assert first.text == f"Reply to {prompts[0].messages[0]['content']} (seed 5, temperature 0.7)"
    assert first.generation_params == {
        "backend": "server", "server": "pol-server", "requested_model": "gen", "served_model": "org/served-7b",
        "stream": False, "temperature": 0.7, "top_p": 0.9, "max_tokens": 40, "seed": 5, "stop": MARKERS,
        "finish_reason": "stop", "sample_index": 0, "strategy": "two_samples", "job": job.pk,
    }
    assert Job.objects.get(pk=job.pk).progress_done == 3


def test_head_to_head_sends_each_side_to_its_own_server_streamed_or_not(fake):
    with FakeChatServer() as other:
        served("new", fake.base_url, "gen")
        served("old", other.base_url, "answer:The old answer.", stream=True)
        PromptFactory.create_batch(2)
        job = run({"checkpoints": ["new", "old"], "strategy": "head_to_head"})
    assert (len(fake.bodies), len(other.bodies)) == (2, 2)
    assert all(b.get("stream") is True for b in other.bodies) and not any(b.get("stream") for b in fake.bodies)
    old = Completion.objects.filter(model_name="old")
    assert {c.text for c in old} == {"The old answer."} and old[0].generation_params["stream"] is True
    assert Comparison.objects.count() == 2 and job.summary["paired"] == 2


def test_role_markers_are_sent_as_stop_and_cut_and_length_marks_truncation(fake):
    served("talky", fake.base_url, "marker")
    served("long", fake.base_url, "length")
    PromptFactory.create_batch(1)
    run({"checkpoints": ["talky", "long"], "strategy": "head_to_head"})
    talky, long = Completion.objects.get(model_name="talky"), Completion.objects.get(model_name="long")
    assert (talky.text, talky.truncated_at_role_marker, talky.is_truncated) == ("Sure thing.", True, False)
    assert (long.text, long.truncated_at_role_marker, long.is_truncated) == ("A reply that was cut", False, True)


def test_a_server_that_ignores_stop_is_still_cut_at_the_first_marker():
    call = Call(0, 0, "c", model_server_save(name="s", base_url="http://127.0.0.1:9/v1", model_name="m"), {"stop": MARKERS})
    ignored = ChatResult("Fine.  \n\nAssistant: x\n\nHuman: y", finish_reason="length", model="m")
    text = completion_from(ignored, call, strategy="two_samples", job_id=1)
    assert (text.text, text.truncated_at_role_marker, text.is_truncated) == ("Fine.", True, False)


def _unreachable_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/v1"


BAD = {
    "401": ("status:401", {}, "HTTP 401 from {url}/chat/completions: unauthorized: check the key"),
    "404": ("no-such-model", {}, "HTTP 404 from {url}/chat/completions: not found: check the base URL and the model name ('no-such-model')"),
    "429": ("status:429", {}, "HTTP 429 from {url}/chat/completions (gave up after 2 attempts)"),
    "500": ("status:500", {}, "HTTP 500 from {url}/chat/completions (gave up after 2 attempts)"),
    "timeout": ("slow:5", {"timeout_s": 0.05, "max_retries": 0}, "no answer from {url}/chat/completions within 0.05 s (gave up after 1 attempts)"),
    "empty": ("empty", {}, "no answer from {url}/chat/completions: the choices list is empty"),
    "malformed": ("malformed", {}, "malformed answer from {url}/chat/completions: JSONDecodeError"),
    "unreachable": ("gen", {"max_retries": 0}, "cannot reach {url}/chat/completions: ConnectError (gave up after 1 attempts)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_failed_call_fails_the_job_readably_and_stores_nothing(case):
    model, settings, words = BAD[case]
    with FakeChatServer(served_models=None if case != "404" else {"real"}) as server:
        url = _unreachable_url() if case == "unreachable" else server.base_url
        served("pol", url, model, **settings)
        prompt = PromptFactory()
        with pytest.raises(GenerationFailed) as failure:
            run({"checkpoints": ["pol"]})
    assert str(failure.value) == f"prompt {prompt.pk}: pol on server 'pol-server': " + words.format(url=url)
    assert not Completion.objects.exists() and not Comparison.objects.exists()
    job = Job.objects.get()
    assert (job.progress_done, job.summary["failed_calls"], job.summary["completions"]) == (0, 2, 0)


def test_fail_keeps_the_batches_already_committed(fake):
    served("pol", fake.base_url, "fail-on:POISON")
    good = PromptFactory.create_batch(2)
    PromptFactory(messages=[{"role": "user", "content": "POISON here"}])
    PromptFactory()
    with pytest.raises(GenerationFailed, match="HTTP 500"):
        run({"checkpoints": ["pol"], "max_new_tokens": 8})
    job = Job.objects.get()
    assert job.progress_done == 2 and set(Completion.objects.values_list("prompt_id", flat=True)) == {p.pk for p in good}


def test_skip_stores_nothing_for_a_failed_prompt_and_counts_it(fake):
    served("pol", fake.base_url, "fail-on:POISON", max_retries=0)
    prompts = PromptFactory.create_batch(2)
    poisoned = PromptFactory(messages=[{"role": "user", "content": "POISON here"}])
    prompts.append(PromptFactory())
    job = run({"checkpoints": ["pol"], "on_failure": "skip"})
    assert {k: job.summary[k] for k in ("prompts", "paired", "failed_prompts", "failed_calls", "calls")} == {
        "prompts": 4, "paired": 3, "failed_prompts": 1, "failed_calls": 2, "calls": 8}
    assert not Completion.objects.filter(prompt=poisoned).exists()
    assert set(Completion.objects.values_list("prompt_id", flat=True)) == {p.pk for p in prompts}


def test_skip_still_fails_a_job_whose_every_call_failed(fake):
    served("pol", fake.base_url, "status:401")
    PromptFactory.create_batch(3)
    with pytest.raises(GenerationFailed, match=r"^every call failed \(6 of 6\): prompt \d+: pol on server 'pol-server': HTTP 401"):
        run({"checkpoints": ["pol"], "on_failure": "skip"})


class StopAfterFirstBatch(Reporter):
    def stop_requested(self) -> bool:
        return Job.objects.get(pk=self.job_id).progress_done >= 2


def test_a_stopped_job_keeps_whole_batches_and_says_how_far_it_got(fake):
    served("pol", fake.base_url, "gen")
    PromptFactory.create_batch(6)
    job = generation_job_create(config={"backend": "server", "checkpoints": ["pol"], "batch_size": 2})
    from training.runners.generation_server import run_server_generation

    reporter = StopAfterFirstBatch(job.pk)
    summary = run_server_generation(job, reporter)
    assert reporter.halted and summary["prompts"] == 2 and Completion.objects.count() == 4
    assert Job.objects.get(pk=job.pk).progress_done == 2


def test_the_configured_concurrency_stays_busy_across_batches():
    with FakeChatServer(delay_s=0.03) as slow:
        served("pol", slow.base_url, "gen", max_concurrency=4)
        PromptFactory.create_batch(6)
        run({"checkpoints": ["pol"], "batch_size": 1})  # 2 calls a batch: only queuing ahead fills 4 slots
    assert slow.in_flight_max == 4 and slow.requests == 12


def test_queue_time_checks_name_the_checkpoint_and_the_settings(fake):
    checkpoint_register(name="bare", hub_id="org/bare")
    PromptFactory()
    with pytest.raises(ValidationError) as error:
        generation_job_create(config={"checkpoints": ["bare"], "backend": "server"})
    assert error.value.message_dict == {"checkpoints": [
        "'bare' names no model server; the server backend needs one for each checkpoint (set it on the checkpoint, or "
        "use the transformers backend)"]}
    with pytest.raises(ValidationError) as error:
        generation_job_create(config={"checkpoints": ["bare"], "backend": "vllm", "on_failure": "ignore"})
    assert error.value.message_dict == {"backend": ["must be one of transformers, server"],
                                        "on_failure": ["must be one of fail, skip"]}


def test_the_server_path_imports_no_torch():
    code = ("import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup(); "
            "import training.runners, training.runners.generation_server; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
