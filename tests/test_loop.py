"""The closed loop and policy-run launching, with the runners simulated: a round's chain of jobs
(snapshot -> reward run -> DPO/RL run -> new-vs-parent generation), failures, the vote trigger,
the follow-up of any policy run, and the Loop and policy-run pages."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django_tasks_db.models import DBTaskResult

from tests.factories import ComparisonFactory, PromptFactory, UserFactory, VoteFactory
from training import loop, services
from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobStatus, LoopRound, LoopSettings, RoundStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings, tmp_path, admin_user, annotator):
    """A policy and a reward checkpoint, 12 voted comparisons (4 on eval prompts), 3 extra eval prompts."""
    settings.ARBITER_DATA_DIR = tmp_path
    smol = Checkpoint.objects.create(name="smol", hub_id="x/smol")
    rm = Checkpoint.objects.create(name="smol-rm", hub_id="x/smol-rm", kind=CheckpointKind.REWARD, parent=smol)
    for index in range(12):
        comparison = ComparisonFactory(prompt=PromptFactory(split="eval" if index % 3 == 0 else "train"), status="complete", vote_count=1)
        VoteFactory(comparison=comparison, annotator=annotator, choice="a" if index % 2 else "b", strength="clear")
    return {"smol": smol, "rm": rm, "admin": admin_user, "annotator": annotator}


def finish(job: Job, status=JobStatus.SUCCEEDED, *, output_kind=None, error="", summary=None) -> Checkpoint | None:
    """Simulate a runner: end ``job`` and, for a successful training run, register its output."""
    output = None
    if status == JobStatus.SUCCEEDED and output_kind:
        output = Checkpoint.objects.create(
            name=f"{job.config['base']}-{job.kind}-{job.pk}", hub_id=f"x/{job.pk}", kind=output_kind,
            parent=Checkpoint.objects.get(name=job.config["base"]), run=job,
        )
    Job.objects.filter(pk=job.pk).update(status=status, error=error, summary=summary or {})
    loop.job_finished(job_id=job.pk)
    return output


def enable(**overrides) -> LoopSettings:
    values = {"enabled": True, "votes_per_round": 3, "method": "dpo", "policy": "smol", **overrides}
    return loop.loop_settings_update(**values)


# --- settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"method": "ppo"}, "method", "must be one of dpo, rl"),
        ({"policy": "smol-rm"}, "policy", "the loop needs a policy"),
        ({"policy": None}, "policy", "choose the policy"),
        ({"policy_config": {"beta": -1}}, "policy_config.beta", "(0, 10]"),
        ({"method": "rl", "policy_config": {"algorithm": "ppo"}}, "policy_config.algorithm", "no longer ships PPO"),
        ({"reward_config": {"base": "smol"}}, "reward_config", "set by the loop"),
        ({"generation_config": {"strategy": "x"}}, "generation_config", "takes only"),
        ({"votes_per_round": 0}, "votes_per_round", "from 1"),
    ],
)
def test_bad_loop_settings_are_refused_by_field(world, overrides, field, words):
    with pytest.raises(ValidationError) as caught:
        enable(**overrides)
    assert words in " ".join(caught.value.message_dict[field])
    assert not LoopSettings.objects.filter(enabled=True).exists()


def test_switching_the_loop_on_counts_votes_from_then(world, annotator):
    settings = enable()
    assert loop.loop_votes_pending(settings) == 0
    VoteFactory(annotator=annotator)
    assert loop.loop_votes_pending(LoopSettings.objects.get()) == 1


# --- a round ------------------------------------------------------------------------------------------


def test_a_dpo_round_chains_reward_then_policy_then_new_vs_parent_comparisons(world, django_capture_on_commit_callbacks):
    enable(policy_config={"beta": 0.2}, generation_config={"limit": 3, "priority": 50})
    with django_capture_on_commit_callbacks(execute=True):
        loop_round = loop.loop_round_start(trigger="manual")
    reward_job = loop_round.reward_job
    assert reward_job.kind == JobKind.REWARD and reward_job.config["base"] == "smol"
    assert loop_round.snapshot_id == reward_job.snapshot_id and loop_round.parent == world["smol"]
    with pytest.raises(ValidationError, match="still running"):
        loop.loop_round_start()

    finish(reward_job, output_kind=CheckpointKind.REWARD, summary={"eval_accuracy": 0.75})
    loop_round.refresh_from_db()
    policy_job = loop_round.policy_job
    assert policy_job.kind == JobKind.DPO and policy_job.snapshot_id == loop_round.snapshot_id
    assert policy_job.config["base"] == "smol" and policy_job.config["beta"] == 0.2

    new = finish(policy_job, output_kind=CheckpointKind.POLICY, summary={"train_loss": 0.5})
    loop_round.refresh_from_db()
    generation = loop_round.generation_job
    assert loop_round.checkpoint == new and generation.kind == JobKind.GENERATION
    assert generation.config["checkpoints"] == [new.name, "smol"] and generation.config["strategy"] == "head_to_head"
    assert generation.config["split"] == "eval" and generation.config["priority"] == 50 and generation.progress_total == 3
    assert "generation job" in Job.objects.get(pk=policy_job.pk).summary["followup"]

    finish(generation, summary={"paired": 3})
    loop_round.refresh_from_db()
    assert loop_round.status == RoundStatus.SUCCEEDED and loop_round.finished_at is not None
    assert LoopSettings.objects.get().policy == new  # the next round starts from the new checkpoint
    report = loop.round_report(loop_round)
    assert report["votes_used"] == 12 and report["reward_accuracy"] == 0.75
    assert report["policy_metrics"] == {"train_loss": 0.5} and report["comparisons"] == 3 and report["checkpoint"] == new.name


def test_an_rl_round_trains_against_the_new_reward_model(world):
    enable(method="rl", policy_config={"algorithm": "grpo", "max_steps": 2})
    loop_round = loop.loop_round_start()
    rm = finish(loop_round.reward_job, output_kind=CheckpointKind.REWARD)
    loop_round.refresh_from_db()
    assert loop_round.policy_job.kind == JobKind.RL
    assert loop_round.policy_job.config["reward_model"] == rm.name and loop_round.policy_job.config["algorithm"] == "grpo"


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_failed_step_ends_the_round_with_its_reason(world, status):
    enable()
    loop_round = loop.loop_round_start()
    finish(loop_round.reward_job, status, error="RuntimeError: out of memory")
    loop_round.refresh_from_db()
    assert loop_round.status == status and "out of memory" in loop_round.error and loop_round.policy_job is None
    assert loop.loop_round_start().pk != loop_round.pk  # the next round may start


def test_cancelling_a_queued_step_ends_the_round(world, django_capture_on_commit_callbacks):
    enable()
    loop_round = loop.loop_round_start()
    with django_capture_on_commit_callbacks(execute=True):
        services.job_cancel(job=loop_round.reward_job)
    loop_round.refresh_from_db()
    assert loop_round.status == RoundStatus.CANCELLED


def test_enough_new_votes_start_a_round_and_fewer_do_not(world, annotator):
    enable(votes_per_round=2)
    VoteFactory(annotator=annotator, comparison=ComparisonFactory(prompt=PromptFactory(split="train")))
    assert loop.loop_maybe_start() is None
    VoteFactory(annotator=annotator, comparison=ComparisonFactory(prompt=PromptFactory(split="train")))
    started = loop.loop_maybe_start()
    assert started is not None and started.trigger == "votes" and LoopRound.objects.count() == 1
    assert loop.loop_votes_pending() == 0 and loop.loop_maybe_start() is None  # one round at a time
    loop.loop_settings_update(enabled=False, votes_per_round=2, method="dpo", policy="smol")
    assert loop.loop_maybe_start() is None


# --- any policy run's outputs come back to the annotators ------------------------------------------------


def test_a_policy_run_outside_the_loop_is_put_against_its_parent(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.dpo_run_create(config={"base": "smol", "max_steps": 2})
    new = finish(job, output_kind=CheckpointKind.POLICY)
    generation = Job.objects.get(kind=JobKind.GENERATION)
    assert generation.config["checkpoints"] == [new.name, "smol"] and generation.config["priority"] == 100
    assert generation.progress_total == 4  # the eval prompts


def test_no_eval_prompts_is_noted_on_the_run_not_raised(world):
    from feedback.models import Prompt

    job = services.dpo_run_create(config={"base": "smol"})
    Prompt.objects.update(split="train")
    finish(job, output_kind=CheckpointKind.POLICY)
    assert not Job.objects.filter(kind=JobKind.GENERATION).exists()
    assert "no new-vs-parent comparisons" in Job.objects.get(pk=job.pk).summary["followup"]


# --- bad input before anything is queued ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("create", "config", "field", "words"),
    [
        (services.dpo_run_create, {"base": "smol-rm"}, "base", "needs a policy"),
        (services.dpo_run_create, {"base": "smol", "beta": -1}, "beta", "(0, 10]"),
        (services.rl_run_create, {"base": "smol", "reward_model": "smol"}, "reward_model", "needs a reward model"),
        (services.rl_run_create, {"base": "smol-rm", "reward_model": "smol-rm"}, "base", "needs a policy"),
        (services.sft_run_create, {"base": "smol", "snapshot_id": 999}, "snapshot_id", "no snapshot 999"),
    ],
)
def test_bad_policy_runs_are_refused_before_anything_is_queued(world, create, config, field, words):
    with pytest.raises(ValidationError) as caught:
        create(config=config)
    assert words in " ".join(caught.value.message_dict[field])
    assert Job.objects.count() == 0


def test_an_empty_dataset_is_refused(world):
    from feedback.models import Vote

    Vote.objects.all().delete()
    with pytest.raises(ValidationError) as caught:
        services.dpo_run_create(config={"base": "smol"})
    assert "no training pairs" in " ".join(caught.value.message_dict["snapshot"])
    assert Job.objects.count() == 0


def test_a_preference_snapshot_cannot_feed_sft(world):
    job = services.dpo_run_create(config={"base": "smol"})
    with pytest.raises(ValidationError) as caught:
        services.sft_run_create(config={"base": "smol", "snapshot_id": job.snapshot_id})
    assert "needs sft rows" in " ".join(caught.value.message_dict["snapshot_id"])


# --- pages ----------------------------------------------------------------------------------------------------


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


LOOP_FORM = {"enabled": "on", "votes_per_round": "5", "method": "dpo", "policy": "smol", "rules": "",
             "reward_config": '{"max_steps": 3}', "policy_config": "", "generation_config": ""}


@pytest.mark.parametrize("path", ["/manage/loop/", "/manage/train/policy/"])
def test_loop_and_policy_pages_are_for_admins(world, path):
    assert client_as(world["annotator"]).get(path).status_code == 403
    assert client_as(UserFactory()).get(path).status_code == 403
    assert client_as(world["admin"]).get(path).status_code == 200


def test_loop_page_saves_settings_and_shows_field_errors(world):
    admin = client_as(world["admin"])
    assert admin.post("/manage/loop/", LOOP_FORM).status_code == 302
    settings = LoopSettings.objects.get()
    assert settings.enabled and settings.votes_per_round == 5 and settings.reward_config == {"max_steps": 3}
    bad = admin.post("/manage/loop/", {**LOOP_FORM, "policy_config": '{"beta": -1}', "rules": "[1]"})
    body = bad.content.decode()
    assert bad.status_code == 400 and "must be a JSON object" in body
    bad = admin.post("/manage/loop/", {**LOOP_FORM, "policy_config": '{"beta": -1}'})
    assert bad.status_code == 400 and "beta: must be a number in (0, 10]" in bad.content.decode()
    assert LoopSettings.objects.get().policy_config == {}


def test_loop_page_says_whether_the_loop_is_off_counting_or_running(world, annotator, django_capture_on_commit_callbacks):
    admin = client_as(world["admin"])

    def votes_line() -> str:
        return admin.get("/manage/loop/").content.decode().split('<dd id="loop-votes">')[1].split("</dd>")[0]

    def vote(count: int) -> None:
        for _ in range(count):
            VoteFactory(comparison=ComparisonFactory(prompt=PromptFactory(split="train")), annotator=annotator)

    # Off, never on: every vote so far, no "of K" (no round is counting towards).
    assert votes_line() == "The loop is off: 12 new votes so far. Switch it on to start a round every 100 votes."
    enable(votes_per_round=5)
    assert votes_line() == "0 of 5 new votes for the next round."
    vote(6)  # votes made here, not through vote_submit: no round starts by itself
    assert votes_line() == "6 new votes, enough for a round (every 5): one starts with the next vote, or start it now."
    with django_capture_on_commit_callbacks(execute=True):
        loop_round = loop.loop_round_start()
    assert votes_line() == f"Round {loop_round.pk} is running; 0 of 5 new votes for the next round."
    vote(5)
    assert votes_line() == (f"Round {loop_round.pk} is running; 5 new votes since it started, enough for the next "
                            "round, which starts with the first vote after it ends.")
    loop.loop_settings_update(enabled=False, votes_per_round=5, method="dpo", policy="smol")
    line = votes_line()
    assert line == f"The loop is off: 5 new votes since round {loop_round.pk} started. Switch it on to start a round every 5 votes."
    assert " of 5" not in line


def test_loop_page_starts_a_round_and_polls_while_it_runs(world, django_capture_on_commit_callbacks):
    admin = client_as(world["admin"])
    admin.post("/manage/loop/", LOOP_FORM)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post("/manage/loop/start/", follow=True)
    loop_round = LoopRound.objects.get()
    assert f"Round {loop_round.pk} started" in response.content.decode() and DBTaskResult.objects.count() == 1
    poll = admin.get("/manage/loop/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="loop-rounds")
    assert poll.status_code == 200 and f'id="round-{loop_round.pk}"' in poll.content.decode()
    again = admin.post("/manage/loop/start/", follow=True)
    assert "still running" in again.content.decode()
    finish(loop_round.reward_job, JobStatus.FAILED, error="boom")
    done = admin.get("/manage/loop/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="loop-rounds")
    assert done.status_code == 286 and "boom" in done.content.decode()


def test_loop_page_without_a_policy_says_what_to_choose_from_and_start_refuses_clearly(world):
    admin = client_as(world["admin"])
    Checkpoint.objects.create(name="smol-dpo-9", hub_id="x/dpo", parent=world["smol"])  # trained, not a base model

    def policy_line() -> str:
        return admin.get("/manage/loop/").content.decode().split('<dd id="loop-policy">')[1].split("</dd>")[0]

    line = policy_line()
    assert "<strong>not set</strong>: choose the policy the loop starts from" in line
    assert "the imported base model is smol." in line and "smol-dpo-9" not in line and "Until then no round can start" in line
    page = admin.get("/manage/loop/").content.decode()
    assert '<option value="" selected>not set: choose a policy</option>' in page

    response = admin.post("/manage/loop/start/", follow=True)
    body = response.content.decode()
    assert ('<li class="error">No round started: the loop has no policy to start from. Choose one in its settings '
            "and save; the imported base model is smol.</li>") in body
    assert not LoopRound.objects.exists() and not Job.objects.exists()  # nothing queued, no surprise

    Checkpoint.objects.create(name="other-base", hub_id="x/other")
    assert "the imported base models are smol, other-base." in policy_line()
    admin.post("/manage/loop/", {**LOOP_FORM, "enabled": ""})
    line = policy_line()
    assert line.startswith('<a href="/manage/checkpoints/') and ">smol</a>" in line and "trains from it" in line


def test_starting_a_round_without_any_policy_checkpoint_says_how_to_import_one():
    with pytest.raises(ValidationError) as caught:
        loop.loop_round_start()
    assert "there is no policy checkpoint yet: manage.py import_model" in caught.value.message_dict["policy"][0]


POLICY_FORM = {"kind": "dpo", "base": "smol", "reward_model": "", "algorithm": "rloo", "snapshot": "", "rules": "",
               "output_name": "", "beta": "0.1", "learning_rate": "", "num_train_epochs": "1", "max_steps": "2",
               "per_device_train_batch_size": "4", "max_length": "", "num_generations": "4", "max_completion_length": "64",
               "lora": "on", "seed": "0"}


def test_policy_page_launches_runs_and_refuses_bad_ones(world, django_capture_on_commit_callbacks):
    admin = client_as(world["admin"])
    page = admin.get("/manage/train/policy/").content.decode()
    assert "TRL no longer ships PPO" in page
    with django_capture_on_commit_callbacks(execute=True):
        ok = admin.post("/manage/train/policy/", POLICY_FORM)
    job = Job.objects.get()
    assert ok.status_code == 302 and job.kind == JobKind.DPO and job.config["beta"] == 0.1 and job.config["max_steps"] == 2
    assert "num_generations" not in job.config  # settings of other kinds are not sent
    bad = admin.post("/manage/train/policy/", {**POLICY_FORM, "beta": "-1"})
    assert bad.status_code == 400 and "must be a number in (0, 10]" in bad.content.decode()
    rl = admin.post("/manage/train/policy/", {**POLICY_FORM, "kind": "rl", "per_device_train_batch_size": "6"})
    assert rl.status_code == 400 and "multiple of num_generations" in rl.content.decode()
    assert Job.objects.count() == 1


def test_policy_page_takes_qlora_under_the_rule_every_run_kind_shares(world, django_capture_on_commit_callbacks):
    admin = client_as(world["admin"])
    assert 'name="quantization"' in admin.get("/manage/train/policy/").content.decode()
    merged = admin.post("/manage/train/policy/", {**POLICY_FORM, "quantization": "4bit"})
    assert merged.status_code == 400 and "set save_adapter true" in merged.content.decode() and not Job.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        ok = admin.post("/manage/train/policy/", {**POLICY_FORM, "quantization": "4bit", "save_adapter": "on"})
    assert ok.status_code == 302
    assert (Job.objects.get().config["quantization"], Job.objects.get().config["save_adapter"]) == ("4bit", True)


def test_lineage_page_shows_the_chain_runs_snapshots_accuracy_and_rating(world, annotator):
    from tests.factories import CompletionFactory

    enable()
    loop_round = loop.loop_round_start()
    finish(loop_round.reward_job, output_kind=CheckpointKind.REWARD, summary={"eval_accuracy": 0.8125})
    loop_round.refresh_from_db()
    new = finish(loop_round.policy_job, output_kind=CheckpointKind.POLICY)
    prompt = PromptFactory(split="eval")
    for index in range(3):  # the annotator prefers the new checkpoint twice out of three
        a = CompletionFactory(prompt=prompt, model_name=new.name, text=f"new {index}")
        b = CompletionFactory(prompt=prompt, model_name="smol", text=f"old {index}")
        VoteFactory(comparison=ComparisonFactory(prompt=prompt, completion_a=a, completion_b=b), annotator=annotator,
                    choice="a" if index < 2 else "b")
    page = client_as(world["admin"]).get(f"/manage/checkpoints/{new.pk}/").content.decode()
    table = page.split('id="lineage"')[1].split("</table>")[0]
    rows = table.split("<tr>")[2:]
    assert len(rows) == 2 and new.name in rows[0] and "smol" in rows[1] and "imported" in rows[1]
    assert f"DPO run {loop_round.policy_job_id}" in rows[0]
    assert f"snapshot {loop_round.snapshot_id}: 12 votes by 1 annotators" in rows[0]
    assert "0.812" in rows[0] or "0.813" in rows[0]  # the round's reward model, behind this DPO run
    assert "rank 1" in rows[0] and "rank 1" in rows[1]  # 3 votes: the intervals overlap


def test_the_vote_that_completes_a_batch_starts_a_round(world, annotator, django_capture_on_commit_callbacks):
    from feedback.services import assignment_claim, vote_submit

    enable(votes_per_round=2)
    for index in range(2):
        ComparisonFactory(prompt=PromptFactory(split="train"), completion_a__text=f"a{index}", completion_b__text=f"b{index}")
    voted = []
    for _ in range(2):
        assignment = assignment_claim(annotator=annotator)
        with django_capture_on_commit_callbacks(execute=True):
            vote, _ = vote_submit(annotator=annotator, comparison_id=assignment.comparison_id, choice="a", strength="strong")
        voted.append(vote)
        if len(voted) == 1:
            assert not LoopRound.objects.exists()  # one new vote of two
    loop_round = LoopRound.objects.get()
    assert loop_round.trigger == "votes" and loop_round.triggered_at == voted[-1].created_at
    assert loop_round.last_vote_id == voted[-1].pk and loop_round.snapshot.votes.filter(pk=voted[-1].pk).exists()


def test_an_rl_run_page_draws_reward_kl_and_completion_length(world):
    from training.models import JobMetric

    job = services.rl_run_create(config={"base": "smol", "reward_model": "smol-rm"})
    for step, reward in [(1, 0.5), (2, 0.9)]:
        JobMetric.objects.create(job=job, step=step, values={"reward": reward, "kl": 0.01 * step, "completion_length": 30 + step})
    page = client_as(world["admin"]).get(f"/manage/jobs/{job.pk}/").content.decode()
    assert "Mean reward" in page and "KL to the reference" in page and "Completion length" in page
    assert page.count("<polyline") == 3 and "0.9000" in page
