"""The loop on real input, end to end, as in the README: the bundled SmolLM2, 300 pairs of the shared
HH-RLHF sample as bootstrap, an annotator in headless Chromium casting 10 votes on comparisons
SmolLM2 generated, then ``manage.py loop --rounds 1`` (reward model, then DPO, small sizes) through
the real child-process runners. The new checkpoint must be registered with lineage back to those
votes, new-vs-parent comparisons must exist, and the browser annotator must be served one of them.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Q

from feedback.models import Comparison, Vote
from tests.factories import PASSWORD, UserFactory
from tests.model_fixtures import SMOLLM2_NAME
from tests.browser_support import (
    open_tab,
    shown_comparison_id,
    shown_item,
    wait_until_item_changes,
    wait_until_ready,
)
from training import selectors
from training.models import CheckpointKind, JobKind, JobStatus, LoopRound, RoundStatus
from training.services import generation_job_create
from training.supervisor import job_log_path, job_supervise

HH_RLHF = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"
BROWSER_VOTES = 10


def run_command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def explain(job) -> str:
    log = job_log_path(job.pk)
    return f"{job.status}: {job.error}\n{log.read_text()[-3000:] if log.exists() else ''}"


@pytest.mark.browser
@pytest.mark.real_model
@pytest.mark.django_db(transaction=True)
def test_browser_votes_on_smollm2_outputs_become_a_dpo_checkpoint_whose_outputs_come_back(
    smollm2_checkpoint, runner_env, monkeypatch, chromium_browser, live_server
):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    out = run_command("import_hh_rlhf", str(HH_RLHF), "--limit", "300")
    assert "300" in out

    # SmolLM2 answers 14 of the imported train prompts twice; the annotator judges those pairs.
    job = generation_job_create(config={
        "checkpoints": [SMOLLM2_NAME], "strategy": "two_samples", "split": "train", "limit": 14,
        "max_new_tokens": 24, "temperature": 0.9, "batch_size": 7, "priority": 10,
    })
    assert job_supervise(job_id=job.pk) == JobStatus.SUCCEEDED, explain(job)
    generated = set(Comparison.objects.filter(completion_a__model_name=SMOLLM2_NAME).values_list("pk", flat=True))
    assert generated == set(Comparison.objects.filter(completion_b__model_name=SMOLLM2_NAME).values_list("pk", flat=True))
    assert len(generated) >= BROWSER_VOTES

    annotator = UserFactory(username="browser-annotator", role="annotator")
    tab = open_tab(chromium_browser, live_server.url)
    page = tab.page
    try:
        page.goto("/annotate/")
        page.get_by_label("Username").fill(annotator.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/annotate/$"))
        for index in range(BROWSER_VOTES):
            shown = shown_comparison_id(tab)
            assert shown in generated  # the generated pairs come first (priority 10)
            item = shown_item(tab)
            wait_until_ready(tab)  # keys during the guard after an item appears never vote
            page.keyboard.press("1" if index % 2 else "2")
            wait_until_item_changes(tab, item)
        browser_votes = list(Vote.objects.filter(annotator=annotator))
        assert len(browser_votes) == BROWSER_VOTES and {v.comparison_id for v in browser_votes} <= generated

        # One round, headless: bootstrap (already imported: adds nothing), reward model, DPO, new comparisons.
        report = run_command(
            "loop", "--rounds", "1", "--policy", SMOLLM2_NAME, "--method", "dpo",
            "--bootstrap-hh-rlhf", str(HH_RLHF), "--bootstrap-limit", "300",
            "--reward", "max_steps=4", "--reward", "max_length=128", "--reward", "per_device_train_batch_size=4",
            "--train", "max_steps=2", "--train", "max_length=128", "--train", "per_device_train_batch_size=2",
            "--generate", "limit=2", "--generate", "max_new_tokens=16",
        )
        loop_round = LoopRound.objects.get()
        assert loop_round.status == RoundStatus.SUCCEEDED, (loop_round.error, report)
        assert "bootstrap: 0 HH-RLHF pairs imported, 300 already present" in report
        assert f"round #{loop_round.pk} succeeded: votes used" in report

        # Lineage back to the browser votes.
        new = loop_round.checkpoint
        assert new.kind == CheckpointKind.POLICY and new.parent == smollm2_checkpoint
        assert new.run.kind == JobKind.DPO and new.run.snapshot_id == loop_round.snapshot_id
        used = set(loop_round.snapshot.votes.values_list("pk", flat=True))
        assert {v.pk for v in browser_votes if v.choice in ("a", "b")} <= used
        steps = selectors.lineage(checkpoint=new)
        assert [s["checkpoint"] for s in steps] == [new, smollm2_checkpoint]
        assert steps[0]["snapshot"].vote_count == len(used) and steps[0]["reward_accuracy"] is not None

        # New-vs-parent comparisons exist, and the browser annotator is served one next.
        fresh = set(  # which side is the new policy is drawn per pair (blind): either order
            Comparison.objects.filter(
                Q(completion_a__model_name=new.name, completion_b__model_name=SMOLLM2_NAME)
                | Q(completion_a__model_name=SMOLLM2_NAME, completion_b__model_name=new.name)
            ).values_list("pk", flat=True)
        )
        assert fresh
        page.goto("/annotate/")
        shown = shown_comparison_id(tab)
        if shown in generated:  # the item leased when the 10th vote was cast is still theirs: finish it
            item = shown_item(tab)
            wait_until_ready(tab)
            page.keyboard.press("1")
            wait_until_item_changes(tab, item)
            shown = shown_comparison_id(tab)
        assert shown in fresh  # priority 100: ahead of the generated pairs still waiting
        tab.assert_no_errors()
    finally:
        page.context.close()
    print(f"\n{report}")
