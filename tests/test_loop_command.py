"""``manage.py loop`` end to end through the real child-process runners: one round freezes the
votes, trains a reward model, runs DPO, registers the new checkpoint with lineage back to those
votes, and queues new-vs-parent comparisons that an annotator is then served first.

With tiny Llamas in every run of the suite, and with the bundled SmolLM2 (``real_model``)."""
from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Q

from feedback.models import Comparison
from feedback.services import assignment_claim
from tests.factories import ComparisonFactory, CompletionFactory, PromptFactory, VoteFactory
from tests.model_fixtures import SMOLLM2_NAME
from training import selectors
from training.models import Checkpoint, JobKind, LoopRound, LoopSettings, RoundStatus

SMALL = [
    "--reward", "max_steps=2", "--reward", "max_length=96", "--reward", "per_device_train_batch_size=4",
    "--train", "max_steps=2", "--train", "max_length=96", "--train", "per_device_train_batch_size=2",
    "--generate", "limit=2", "--generate", "max_new_tokens=12", "--generate", "temperature=0.9",
]


def voted_world(annotator, *, comparisons: int = 12) -> None:
    """Comparisons with one vote each: every third prompt is an eval prompt."""
    for index in range(comparisons):
        prompt = PromptFactory(
            split="eval" if index % 3 == 0 else "train",
            messages=[{"role": "user", "content": f"Give me one tip about topic number {index}."}],
        )
        polite = CompletionFactory(prompt=prompt, model_name="seed", text=f"Sure! A kind and careful tip about topic {index}.")
        rude = CompletionFactory(prompt=prompt, model_name="seed", text="no")
        a, b = (polite, rude) if index % 2 else (rude, polite)
        comparison = ComparisonFactory(prompt=prompt, completion_a=a, completion_b=b, status="complete", vote_count=1)
        VoteFactory(comparison=comparison, annotator=annotator, choice="a" if a is polite else "b", strength="strong")


def run_loop(*args) -> str:
    out = io.StringIO()
    call_command("loop", *args, stdout=out)
    return out.getvalue()


def assert_round_closed_the_loop(out: str, *, parent: Checkpoint, annotator, votes: int) -> Checkpoint:
    loop_round = LoopRound.objects.get()
    assert loop_round.status == RoundStatus.SUCCEEDED, (loop_round.error, out)
    assert f"round #{loop_round.pk} succeeded: votes used {votes}" in out
    new = loop_round.checkpoint
    # Lineage back to the votes: parent, the DPO run and the snapshot of exactly those votes.
    assert new.parent == parent and new.run.kind == JobKind.DPO and new.run.snapshot_id == loop_round.snapshot_id
    steps = selectors.lineage(checkpoint=new)
    assert [step["checkpoint"] for step in steps] == [new, parent]
    assert steps[0]["snapshot"].vote_count == votes and steps[0]["reward_accuracy"] is not None
    reward = Checkpoint.objects.get(run=loop_round.reward_job)
    assert reward.kind == "reward" and reward.parent == parent
    assert LoopSettings.objects.get().policy == new  # the next round starts from here
    # New-vs-parent comparisons on eval prompts, served to the annotator first.
    fresh = Comparison.objects.filter(  # either side: which one is A is drawn per pair
        Q(completion_a__model_name=new.name, completion_b__model_name=parent.name)
        | Q(completion_a__model_name=parent.name, completion_b__model_name=new.name)
    )
    assert fresh.exists() and all(c.prompt.split == "eval" and c.priority == 100 for c in fresh)
    ComparisonFactory(priority=0)  # ordinary work waiting in the queue
    served = assignment_claim(annotator=annotator)
    assert served is not None and served.comparison_id in {c.pk for c in fresh}
    return new


@pytest.mark.django_db(transaction=True)
def test_one_round_with_tiny_models(tiny_checkpoints, runner_env, annotator, other_annotator):
    voted_world(annotator)
    out = run_loop("--rounds", "1", "--policy", "tiny-x", "--method", "dpo", *SMALL)
    assert "reward model held-out accuracy" in out and "not yet rated" in out
    assert_round_closed_the_loop(out, parent=tiny_checkpoints["tiny-x"], annotator=other_annotator, votes=12)


@pytest.mark.django_db(transaction=True)
def test_a_round_that_cannot_start_says_why(tiny_checkpoints, annotator):
    with pytest.raises(CommandError, match=r"^the loop has no policy to start from: give --policy NAME "
                                           r"\(the imported base models are tiny-x, tiny-y\)$"):
        run_loop("--rounds", "1")
    with pytest.raises(CommandError, match="round 1: snapshot: the votes give no training pairs"):
        run_loop("--rounds", "1", "--policy", "tiny-x")
    with pytest.raises(CommandError, match="policy: no checkpoint named 'nope'"):
        run_loop("--rounds", "1", "--policy", "nope")
    assert not LoopRound.objects.exists()


@pytest.mark.real_model
@pytest.mark.django_db(transaction=True)
def test_one_round_with_the_bundled_smollm2(smollm2_checkpoint, runner_env, monkeypatch, annotator, other_annotator):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    voted_world(annotator)
    out = run_loop("--rounds", "1", "--policy", SMOLLM2_NAME, "--method", "dpo", *SMALL)
    new = assert_round_closed_the_loop(out, parent=smollm2_checkpoint, annotator=other_annotator, votes=12)
    print(f"\n{out}\nnew checkpoint {new.name}: {new.metadata}")


@pytest.mark.django_db(transaction=True)
def test_a_round_generating_through_servers_stops_and_says_what_it_waits_for(tiny_checkpoints, runner_env, annotator):
    """With ``--generate backend=server`` the new checkpoint has no server when its run ends: the
    command stops with one line saying what to do (it does not poll forever), the round stays
    running with no generation queued."""
    voted_world(annotator)
    with pytest.raises(CommandError, match=r"^round \d+ is waiting for a model server for tiny-x-dpo-\d+: serve its weights "):
        run_loop("--rounds", "1", "--policy", "tiny-x", "--method", "dpo", *SMALL, "--generate", "backend=server")
    loop_round = LoopRound.objects.get()
    assert loop_round.status == RoundStatus.RUNNING and loop_round.generation_job is None
    assert loop_round.checkpoint.name.startswith("tiny-x-dpo-") and loop_round.checkpoint.server is None
