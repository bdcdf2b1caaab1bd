"""manage.py import_model and manage.py generate: what an operator types and what they read back."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from feedback.models import Completion
from tests.factories import PromptFactory
from tests.model_fixtures import SMOLLM2_NAME
from training.models import Checkpoint, Job, JobStatus
from training.registry import METADATA_FILE, model_cache_dir


def run_command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def command_error(*args) -> str:
    """Run a command that must fail; return its one-line message."""
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=io.StringIO())
    message = str(caught.value)
    assert message.strip() and "\n" not in message.strip(), message
    return message


# --- import_model ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_import_model_with_no_arguments_links_the_cached_smollm2(model_store, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path  # an empty data directory; the cache is warm (model_store filled it)
    first = run_command("import_model")
    assert first.startswith(f"imported: {SMOLLM2_NAME}")
    checkpoint = Checkpoint.objects.get(name=SMOLLM2_NAME)
    directory = tmp_path / checkpoint.weights_dir
    assert (directory / "config.json").is_file() and (directory / "model.safetensors").is_file()
    assert checkpoint.metadata["param_count"] > 100_000_000 and checkpoint.metadata["has_chat_template"]
    assert checkpoint.metadata["license"] == "apache-2.0"
    cached = model_cache_dir() / directory.name / "model.safetensors"
    if os.stat(cached).st_dev == os.stat(tmp_path).st_dev:  # same filesystem: a hard link, not a 540 MB copy
        assert os.path.samefile(cached, directory / "model.safetensors")

    second = run_command("import_model")
    assert second.startswith(f"already imported: {SMOLLM2_NAME}")
    assert Checkpoint.objects.filter(name=SMOLLM2_NAME).count() == 1


@pytest.mark.django_db
def test_import_model_under_another_name_reuses_the_one_conversion(model_store, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    assert run_command("import_model", "--name", "house-policy").startswith("imported: house-policy")
    checkpoint = Checkpoint.objects.get(name="house-policy")
    assert checkpoint.metadata["source"].startswith("gguf:")
    assert not (model_cache_dir() / "house-policy").exists()


@pytest.mark.django_db
def test_import_model_refuses_a_name_whose_directory_holds_another_model(model_store, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    run_command("import_model", "--path", str(model_store.tiny_source), "--name", "Tiny Model")
    other = model_store.data_dir / "checkpoints" / "tiny-y"
    message = command_error("import_model", "--path", str(other), "--name", "tiny model")  # same directory name
    assert "already holds another model" in message
    assert list(Checkpoint.objects.values_list("name", flat=True)) == ["Tiny Model"]


@pytest.mark.django_db
def test_import_model_path_that_is_not_a_model_fails_in_one_line(data_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    assert "no config.json" in command_error("import_model", "--path", str(tmp_path))
    assert "not a directory" in command_error("import_model", "--path", str(tmp_path / "missing"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))  # a config but no weights
    assert str(tmp_path) in command_error("import_model", "--path", str(tmp_path), "--name", "weightless")
    assert not Checkpoint.objects.exists()
    assert not (data_dir / "checkpoints" / "weightless").exists()


@pytest.mark.django_db(transaction=True)
def test_import_model_failure_exits_non_zero_with_one_line(runner_env, tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "import_model", "--path", str(tmp_path)],
        cwd=settings.BASE_DIR, env=runner_env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"CommandError: {tmp_path} is not a Hugging Face model directory (no config.json)"]


@pytest.mark.django_db
def test_import_model_never_deletes_its_own_source(data_dir):
    """An incomplete directory already where the checkpoint would go is the source here, not debris."""
    source = data_dir / "checkpoints" / "half-copied"
    source.mkdir(parents=True)
    (source / "config.json").write_text(json.dumps({"model_type": "llama"}))
    try:
        assert "not a complete model directory" in command_error("import_model", "--path", str(source))
        assert (source / "config.json").is_file()
    finally:
        (source / "config.json").unlink()
        source.rmdir()


@pytest.mark.django_db
def test_import_model_path_imports_a_hugging_face_directory(model_store, data_dir):
    output = run_command("import_model", "--path", str(model_store.tiny_source))
    assert output.startswith("imported: tiny-source")
    checkpoint = Checkpoint.objects.get(name="tiny-source")
    directory = data_dir / checkpoint.weights_dir
    assert directory.parent == data_dir / "checkpoints"
    assert (directory / "config.json").is_file() and list(directory.glob("*.safetensors"))
    assert (directory / "tokenizer.json").is_file() and (directory / METADATA_FILE).is_file()
    assert checkpoint.metadata["architecture"] == "LlamaForCausalLM"
    assert checkpoint.metadata["source"] == f"path:{model_store.tiny_source}"
    assert "already imported" in run_command("import_model", "--path", str(model_store.tiny_source))


@pytest.mark.django_db
def test_import_model_hub_id_offline_fails_in_one_line(data_dir, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    message = command_error("import_model", "--hf-id", "some/model")
    assert "some/model" in message
    assert not Checkpoint.objects.exists()


# --- generate ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_generate_with_an_unknown_checkpoint_names_it(tiny_checkpoints):
    PromptFactory()
    message = command_error("generate", "--checkpoint", "no-such-model")
    assert message.startswith("checkpoints:") and "no-such-model" in message
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_generate_with_no_matching_prompts_says_so(tiny_checkpoints):
    PromptFactory(tags=["math"])
    assert command_error("generate", "--checkpoint", "tiny-x", "--tag", "poetry").startswith("prompts:")
    assert not Job.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("tokens", ["0", "100000"])
def test_generate_with_max_new_tokens_out_of_range_names_the_field(tiny_checkpoints, tokens):
    PromptFactory()
    assert command_error("generate", "--checkpoint", "tiny-x", "--max-new-tokens", tokens).startswith("max_new_tokens:")
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_generate_two_samples_greedy_is_refused(tiny_checkpoints):
    PromptFactory()
    assert command_error("generate", "--checkpoint", "tiny-x", "--temperature", "0").startswith("temperature:")


@pytest.mark.django_db
def test_generate_queues_a_job_without_wait(tiny_checkpoints, django_capture_on_commit_callbacks):
    PromptFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=True):
        output = run_command("generate", "--checkpoint", "tiny-x", "--limit", "2")
    job = Job.objects.get()
    assert output.strip() == f"queued generation job {job.pk} over 2 prompts"  # scripts/demo.sh reads the id here
    assert job.status == JobStatus.QUEUED and job.config["limit"] == 2 and job.task_id


@pytest.mark.django_db(transaction=True)
def test_generate_wait_runs_the_job_to_success(tiny_checkpoints, runner_env):
    prompts = PromptFactory.create_batch(3)
    output = run_command(
        "generate", "--checkpoint", "tiny-x", "--checkpoint", "tiny-y", "--max-new-tokens", "4", "--batch-size", "2",
        "--temperature", "0", "--wait",
    )
    job = Job.objects.get()
    assert job.status == JobStatus.SUCCEEDED, job.error + job.traceback
    assert f"job {job.pk} succeeded" in output
    assert json.loads(output.strip().splitlines()[-1].split(": ", 1)[1]) == job.summary
    assert job.config["strategy"] == "head_to_head"
    assert Completion.objects.filter(prompt__in=prompts).count() == 6


# --- cancel_job --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cancel_job_if_queued_cancels_only_the_jobs_that_have_not_started():
    queued, running, done = (Job.objects.create(kind="generation", status=status, config={"checkpoints": ["m"]})
                             for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED))
    output = run_command("cancel_job", "--if-queued", str(queued.pk), str(running.pk), str(done.pk))
    assert output.splitlines() == [
        f"generation job {queued.pk}: cancelled (it had not started)",
        f"generation job {running.pk}: running, left alone (--if-queued)",
        f"generation job {done.pk}: already succeeded, left as it is",
    ]
    for job in (queued, running, done):
        job.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED and queued.finished_at is not None
    assert running.status == JobStatus.RUNNING and not running.cancel_requested  # its worker decides its end
    assert done.status == JobStatus.SUCCEEDED


@pytest.mark.django_db
def test_cancel_job_without_if_queued_asks_a_running_job_to_stop():
    running = Job.objects.create(kind="generation", status=JobStatus.RUNNING, config={"checkpoints": ["m"]})
    assert "asked to stop" in run_command("cancel_job", str(running.pk))
    running.refresh_from_db()
    assert running.status == JobStatus.RUNNING and running.cancel_requested


@pytest.mark.django_db
def test_cancel_job_names_the_ids_that_do_not_exist_after_cancelling_the_rest():
    queued = Job.objects.create(kind="generation", config={"checkpoints": ["m"]})
    assert command_error("cancel_job", str(queued.pk), "999") == "no job with id 999"
    queued.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED
