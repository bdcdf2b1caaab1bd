"""Reward runs and scoring jobs: validation before anything is queued (service, API, command line,
page), the frozen snapshot, and the run page's curves and lineage."""
from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django_tasks_db.models import DBTaskResult

from feedback.models import DatasetSnapshot
from tests.factories import ComparisonFactory, PromptFactory, UserFactory, VoteFactory
from training import services
from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobMetric, JobStatus

pytestmark = pytest.mark.django_db

HASH_SPLIT = {"split_by": "hash", "eval_fraction": 0.5}


@pytest.fixture
def world(settings, tmp_path, admin_user, annotator):
    """Two checkpoints (a policy and a reward model) and 12 voted comparisons, 4 on eval prompts."""
    settings.ARBITER_DATA_DIR = tmp_path
    smol = Checkpoint.objects.create(name="smol", hub_id="x/smol")
    reward = Checkpoint.objects.create(name="smol-rm", hub_id="x/smol-rm", kind=CheckpointKind.REWARD, parent=smol)
    comparisons = []
    for index in range(12):
        prompt = PromptFactory(split="eval" if index % 3 == 0 else "train")
        comparison = ComparisonFactory(prompt=prompt, status="complete", vote_count=1)
        VoteFactory(comparison=comparison, annotator=annotator, choice="a" if index % 2 else "b",
                    strength=["slight", "clear", "strong"][index % 3])
        comparisons.append(comparison)
    return {"smol": smol, "reward": reward, "admin": admin_user, "annotator": annotator, "comparisons": comparisons}


def errors_of(call) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.message_dict


# --- the service ------------------------------------------------------------------------------------


def test_a_reward_run_freezes_a_snapshot_of_the_votes_and_queues_one_task(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.reward_run_create(config={"base": "smol"}, created_by=world["admin"])
    assert job.kind == JobKind.REWARD and job.status == JobStatus.QUEUED
    snapshot = DatasetSnapshot.objects.get()
    assert job.snapshot_id == snapshot.pk and job.config["snapshot_id"] == snapshot.pk
    assert (snapshot.train_rows, snapshot.eval_rows) == (8, 4)  # split by the prompts' own split field
    assert snapshot.votes.count() == 12
    assert job.config["learning_rate"] == 5e-5 and job.config["max_length"] == 160  # defaults stored in full
    assert (job.config["per_device_train_batch_size"], job.config["gradient_accumulation_steps"]) == (4, 2)
    assert (job.config["lr_scheduler_type"], job.config["activation_checkpointing"]) == ("cosine", False)
    task = DBTaskResult.objects.get()
    assert task.args_kwargs["args"] == [job.pk]


def test_an_existing_snapshot_is_reused_and_not_rebuilt(world, django_capture_on_commit_callbacks):
    first = services.reward_run_create(config={"base": "smol"})
    second = services.reward_run_create(config={"base": "smol", "snapshot_id": first.snapshot_id})
    assert second.snapshot_id == first.snapshot_id and DatasetSnapshot.objects.count() == 1


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"base": "smol-rm"}, "base", "reward model"),
        ({"base": "nope"}, "base", "no checkpoint named 'nope'"),
        ({}, "base", "required"),
        ({"base": "smol", "learning_rate": -1}, "learning_rate", "(0, 1]"),
        ({"base": "smol", "max_length": 4}, "max_length", "16"),
        ({"base": "smol", "bogus": 1}, "bogus", "unknown setting"),
        ({"base": "smol", "output_name": "smol-rm"}, "output_name", "exists"),
        ({"base": "smol", "snapshot_id": 999}, "snapshot_id", "no snapshot 999"),
        ({"base": "smol", "snapshot_id": 1, "rules": HASH_SPLIT}, "rules", "not both"),
    ],
)
def test_bad_reward_runs_are_refused_before_anything_is_queued(world, django_capture_on_commit_callbacks, config, field, words):
    with django_capture_on_commit_callbacks(execute=True):
        errors = errors_of(lambda: services.reward_run_create(config=config))
    assert words in " ".join(errors[field])
    assert Job.objects.count() == 0 and DBTaskResult.objects.count() == 0 and DatasetSnapshot.objects.count() == 0


def test_no_votes_means_no_run(world):
    from feedback.models import Vote

    Vote.objects.all().delete()
    errors = errors_of(lambda: services.reward_run_create(config={"base": "smol"}))
    assert "no training pairs" in " ".join(errors["snapshot"])
    assert Job.objects.count() == 0


def test_a_dataset_without_held_out_pairs_is_refused_with_a_way_out(world):
    from feedback.models import Prompt

    Prompt.objects.update(split="train")
    errors = errors_of(lambda: services.reward_run_create(config={"base": "smol"}))
    assert "no eval pairs" in " ".join(errors["snapshot_id"]) and "split_by=hash" in " ".join(errors["snapshot_id"])
    assert Job.objects.count() == 0
    job = services.reward_run_create(config={"base": "smol", "rules": HASH_SPLIT})
    assert job.snapshot.eval_rows > 0 and job.snapshot.train_rows > 0


def test_scoring_needs_a_reward_model_and_something_to_score(world):
    assert "needs a reward model" in " ".join(errors_of(lambda: services.scoring_job_create(config={"reward_model": "smol"}))["reward_model"])
    errors = errors_of(lambda: services.scoring_job_create(config={"reward_model": "smol-rm"}))  # every comparison is complete
    assert "no completions to score" in " ".join(errors["scope"])
    job = services.scoring_job_create(config={"reward_model": "smol-rm", "scope": "all"})
    assert job.kind == JobKind.SCORING and job.progress_total == 24
    assert Job.objects.count() == 1


# --- the API ----------------------------------------------------------------------------------------


def api_client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_launches_a_reward_run_and_reports_400_by_field(world, django_capture_on_commit_callbacks):
    client = api_client(world["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/jobs/", {"kind": "reward", "config": {"base": "smol", "max_steps": 5}}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["kind"] == "reward" and body["snapshot"] == Job.objects.get().snapshot_id and body["output_checkpoint"] is None
    bad = client.post("/api/jobs/", {"kind": "reward", "config": {"base": "smol-rm", "learning_rate": 0}}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()) >= {"learning_rate"} or set(bad.json()) >= {"base"}
    assert Job.objects.count() == 1 and DBTaskResult.objects.count() == 1


def test_api_metrics_come_back_in_step_order_and_only_to_admins(world):
    job = services.reward_run_create(config={"base": "smol"})
    JobMetric.objects.create(job=job, step=10, values={"loss": 0.6})
    JobMetric.objects.create(job=job, step=5, values={"loss": 0.7, "eval_accuracy": 0.5})
    rows = api_client(world["admin"]).get(f"/api/jobs/{job.pk}/metrics/").json()
    assert [row["step"] for row in rows] == [5, 10] and rows[0]["values"]["eval_accuracy"] == 0.5
    assert api_client(world["annotator"]).get(f"/api/jobs/{job.pk}/metrics/").status_code == 403


# --- the command line ---------------------------------------------------------------------------------


def command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def command_error(*args) -> str:
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=io.StringIO())
    message = str(caught.value).strip()
    assert message and "\n" not in message
    return message


def test_train_reward_command_queues_a_run_on_a_new_snapshot(world):
    out = command("train", "reward", "--base", "smol", "--max-steps", "3", "--set", "lora=true", "--no-gold")
    job = Job.objects.get()
    assert out.startswith(f"queued reward run {job.pk} on snapshot {job.snapshot_id} (8 train / 4 eval rows)")
    assert job.config["lora"] is True and job.config["max_steps"] == 3
    assert job.snapshot.rules["include_gold"] is False


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--base", "smol-rm"), "base: 'smol-rm' is a reward model checkpoint"),
        (("--base", "smol", "--set", "learning_rate=-1"), "learning_rate: must be"),
        (("--base", "smol", "--exclude-annotator", "nobody"), "no user named 'nobody'"),
        (("--base", "smol", "--rules", "{not json"), "--rules is not JSON"),
        (("--base", "smol", "--set", "novalue"), "--set takes key=value"),
    ],
)
def test_train_reward_command_errors_are_one_line(world, args, words):
    assert words in command_error("train", "reward", *args)
    assert Job.objects.count() == 0


def test_excluding_an_annotator_can_leave_nothing_to_train_on(world):
    message = command_error("train", "reward", "--base", "smol", "--exclude-annotator", world["annotator"].username)
    assert "no training pairs" in message


def test_score_command(world):
    assert "needs a reward model" in command_error("score", "--reward-model", "smol")
    out = command("score", "--reward-model", "smol-rm", "--scope", "all", "--prioritize-uncertain")
    job = Job.objects.get()
    assert out.startswith(f"queued scoring job {job.pk} over 24 completions") and job.config["prioritize_uncertain"]


# --- the pages ------------------------------------------------------------------------------------------


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


REWARD_FORM = {
    "base": "smol", "snapshot": "", "split_by": "prompt", "eval_fraction": "0.1", "include_margin": "on",
    "include_gold": "on", "output_name": "", "learning_rate": "5e-05", "num_train_epochs": "1", "max_steps": "",
    "per_device_train_batch_size": "8", "max_length": "256", "eval_steps": "50", "seed": "0",
}


@pytest.mark.parametrize("path", ["/manage/train/reward/", "/manage/score/"])
def test_launch_pages_are_for_admins_only(world, path):
    assert client_as(world["annotator"]).get(path).status_code == 403
    assert client_as(UserFactory()).get(path).status_code == 403
    page = client_as(world["admin"]).get(path)
    assert page.status_code == 200


def test_reward_form_defaults_suit_a_cpu_laptop_and_launch_a_run(world, django_capture_on_commit_callbacks):
    admin = client_as(world["admin"])
    page = admin.get("/manage/train/reward/").content.decode()
    assert 'value="160"' in page and 'value="5e-05"' in page and "smol-rm" not in page.split('name="base"')[1].split("</select>")[0]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post("/manage/train/reward/", {**REWARD_FORM, "exclude_annotators": []})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/manage/jobs/{job.pk}/"
    assert job.config["rules"] == {} and job.snapshot.rules["split_by"] == "prompt" and DBTaskResult.objects.count() == 1


def test_reward_form_errors_are_shown_by_field_and_nothing_is_queued(world):
    admin = client_as(world["admin"])
    response = admin.post("/manage/train/reward/", {**REWARD_FORM, "learning_rate": "-1", "max_length": "8"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was queued" in body and "must be a number in (0, 1]" in body and "from 16 to 32768" in body
    excluded = admin.post("/manage/train/reward/", {**REWARD_FORM, "exclude_annotators": [str(world["annotator"].pk)]})
    assert excluded.status_code == 400 and "no training pairs" in excluded.content.decode()
    assert Job.objects.count() == 0


def field_error(body: str, name: str) -> str:
    """The error text shown under the form field ``name`` ('' when none)."""
    marker = f'<p class="field-error" id="id_{name}_error">'
    return body.split(marker)[1].split("</p>")[0] if marker in body else ""


def test_reward_form_errors_about_the_split_show_beside_the_eval_fraction_field(world):
    admin = client_as(world["admin"])
    hashed = {**REWARD_FORM, "split_by": "hash"}
    none_in_eval = admin.post("/manage/train/reward/", {**hashed, "eval_fraction": "0"})
    body = none_in_eval.content.decode()
    assert none_in_eval.status_code == 400 and "rules.eval_fraction" not in body
    assert field_error(body, "eval_fraction") == (
        "the snapshot has no eval pairs, so held-out accuracy cannot be measured: at an eval fraction of 0 all 12 "
        "pairs fell in train; raise it"
    )
    assert body.index("Eval fraction (hash split)") < body.index('id="id_eval_fraction_error"')
    out_of_range = admin.post("/manage/train/reward/", {**hashed, "eval_fraction": "1.5"}).content.decode()
    assert field_error(out_of_range, "eval_fraction") == "must be a number from 0 to 1" and "rules:" not in out_of_range
    assert Job.objects.count() == 0


def test_reward_form_says_in_words_why_the_votes_give_no_training_pairs(world, annotator):
    from feedback.models import Vote

    Vote.objects.all().delete()
    second = UserFactory(role="annotator")
    for choices in (("a", "b"), ("b", "a"), ("tie", "tie")):
        comparison = ComparisonFactory(prompt=PromptFactory(split="train"), status="complete", vote_count=2)
        for voter, choice in zip((annotator, second), choices):
            VoteFactory(comparison=comparison, annotator=voter, choice=choice)
    body = client_as(world["admin"]).post("/manage/train/reward/", REWARD_FORM).content.decode()
    assert field_error(body, "snapshot") == (
        "the votes give no training pairs: of 3 comparisons, 2 have split votes and 1 is a tie"
    )
    assert Job.objects.count() == 0


def test_the_run_page_draws_loss_and_accuracy_curves_and_shows_lineage(world):
    job = services.reward_run_create(config={"base": "smol"})
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, progress_done=10, progress_total=20)
    for step, loss in [(5, 0.69), (10, 0.52)]:
        JobMetric.objects.create(job=job, step=step, values={"loss": loss})
    JobMetric.objects.create(job=job, step=10, values={"eval_loss": 0.6, "eval_accuracy": 0.625, "eval_accuracy_strong": 0.75})
    admin = client_as(world["admin"])
    page = admin.get(f"/manage/jobs/{job.pk}/").content.decode()
    assert page.count("<polyline") == 4  # loss, eval_loss, eval_accuracy, eval_accuracy_strong
    assert "Held-out pairwise accuracy" in page and "0.6250" in page and "10/20" in page
    assert f"snapshot {job.snapshot_id}: 8 train / 4 eval pairs from 12 votes by 1 annotators" in page
    live = admin.get(f"/manage/jobs/{job.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="job-live")
    assert live.status_code == 200 and live.content.decode().count("<polyline") == 4  # curves update while it runs

    trained = Checkpoint.objects.create(name="smol-rm-2", hub_id="x/rm2", kind=CheckpointKind.REWARD,
                                        parent=world["smol"], run=job)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    done = admin.get(f"/manage/jobs/{job.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="job-live")
    assert done.status_code == 286 and f'href="/manage/checkpoints/{trained.pk}/"' in done.content.decode()
    listing = admin.get("/manage/jobs/").content.decode()
    assert "smol → smol-rm-2" in listing


def test_scoring_form_launches_a_job(world, django_capture_on_commit_callbacks):
    admin = client_as(world["admin"])
    bad = admin.post("/manage/score/", {"reward_model": "smol-rm", "scope": "open", "only_unscored": "on", "batch_size": "16"})
    assert bad.status_code == 400 and "no completions to score" in bad.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        ok = admin.post("/manage/score/", {"reward_model": "smol-rm", "scope": "all", "batch_size": "16"})
    job = Job.objects.get()
    assert ok.status_code == 302 and job.kind == "scoring" and job.config["only_unscored"] is False


def test_train_command_queues_policy_runs_with_each_kinds_defaults(world):
    out = command("train", "rl", "--base", "smol", "--reward-model", "smol-rm", "--algorithm", "grpo", "--max-steps", "2")
    job = Job.objects.get()
    assert out.startswith(f"queued rl run {job.pk} on snapshot {job.snapshot_id}")
    assert job.config["algorithm"] == "grpo" and job.config["lora"] is True and job.config["beta"] == 0.05
    command("train", "dpo", "--base", "smol", "--snapshot", str(job.snapshot_id), "--no-lora", "--beta", "0.3")
    dpo = Job.objects.get(kind="dpo")
    assert dpo.config["lora"] is False and dpo.config["beta"] == 0.3 and dpo.snapshot_id == job.snapshot_id


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("dpo", "--base", "smol-rm"), "base: 'smol-rm' is a reward model checkpoint; policy training needs a policy"),
        (("dpo", "--base", "smol", "--beta", "-1"), "beta: must be a number in (0, 10]"),
        (("rl", "--base", "smol"), "reward_model: required"),
        (("sft", "--base", "smol", "--rules", '{"include_strongly_chosen": false}'), "snapshot: no demonstrations"),
    ],
)
def test_train_command_refuses_bad_policy_runs_in_one_line(world, args, words):
    assert words in command_error("train", *args)
    assert Job.objects.count() == 0
