"""The README's tour, page by page, in a real browser (Debian's Chromium through Playwright, as in
test_browser.py): each step checks what a person following the tour would look at (headings, the
numbers that matter, no console errors or CSP violations) and saves the screenshot the README shows,
under docs/screenshots/, at a fixed 1280x900 viewport.

The content is fixed: the demo's usernames and model name, one set of prompts and answers, and
training, scoring and generation jobs simulated as the runners would leave them (metric rows,
summaries, registered checkpoints, new-vs-parent comparisons), with fixed dates. No model runs.

Skips without /usr/bin/chromium, except under CI, where it fails.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from feedback import interface, services
from feedback.models import Comparison, Export
from tests import browser_support
from tests.factories import PASSWORD, UserFactory, VoteFactory
from training import loop
from training import services as training_services
from training.models import Checkpoint, Job, JobKind, JobMetric, JobStatus, LoopRound
from training.supervisor import job_log_path, log_error_line

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]

SCREENSHOTS = Path(django_settings.BASE_DIR) / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
BASE = "SmolLM2-135M-Instruct"
T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)  # the seeded jobs' clock: dates on the pages never change
KILLED = "The runner process was killed by SIGKILL (out of memory, or killed by an operator)."

# (question, a better answer, a worse one); every fourth prompt is held out (eval split).
PROMPTS = [
    ("What is the boiling point of water at sea level?", "100 °C (212 °F) at standard atmospheric pressure.",
     "Water boils when it gets hot enough, usually around 90 degrees."),
    ("Give me a one-line Python expression that reverses a string `s`.",
     "`s[::-1]`: a slice with a step of -1 walks the string backwards.", "Use `reverse(s)`."),
    ("Suggest a name for a friendly robot in a children's story.",
     "How about **Pip**? It is short, easy to say and sounds cheerful.", "Robot 7."),
    ("How many minutes are there in a day?", "1,440 minutes (24 × 60).", "About 1,000 minutes."),
    ("Explain photosynthesis to a ten-year-old.",
     "Plants catch sunlight with their green leaves and use it to turn water and air into sugar, their food. "
     "They breathe out the oxygen we need.", "It is a chemical process in chloroplasts."),
    ("Translate 'good morning' into French.", "*Bonjour* (or, more formally, *bonjour madame / monsieur*).",
     "Bonne nuit."),
    ("What should I do if I burn my finger on the stove?",
     "Cool it under cool running water for 10–20 minutes, then cover it loosely with a clean dressing. "
     "See a doctor if it blisters badly or is larger than your palm.", "Put butter on it."),
    ("Write a haiku about autumn.", "Maple leaves let go,\nthe wind writes them down the street:\nred ink, then silence.",
     "Autumn is a season when leaves fall from trees."),
    ("Is 91 a prime number?", "No: 91 = 7 × 13.", "Yes, 91 is prime."),
    ("Summarise the plot of *Romeo and Juliet* in one sentence.",
     "Two young lovers from feuding families in Verona marry in secret, and a chain of mistakes ends in both "
     "their deaths, which finally reconciles the families.", "It is a play by Shakespeare about love."),
    ("What is the capital of Australia?", "Canberra.", "Sydney."),
    ("How can I remember a new password without writing it down?",
     "Use a passphrase of four or five random words and picture a scene that links them; better still, "
     "keep it in a password manager.", "Use your birthday, it is easy to remember."),
    ("Why is the sky blue?", "Air scatters short (blue) wavelengths of sunlight much more than long (red) ones, "
     "so blue light reaches your eyes from every direction.", "Because it reflects the ocean."),
    ("Convert 5 kilometres to miles.", "About 3.1 miles (5 × 0.621).", "About 8 miles."),
    ("Name three primary colours of light.", "Red, green and blue.", "Red, yellow and blue."),
    ("What does HTTP stand for?", "HyperText Transfer Protocol.", "High Transfer Text Program."),
]
STRENGTHS = ["strong", "clear", "slight", "clear"]


class Tab(browser_support.Tab):
    """The plugin's tab (errors, failed requests and CSP violations recorded) with the tour's steps."""

    def open(self, path: str) -> None:
        heartbeat()  # the running job stays alive however long the test has taken so far
        self.page.goto(path)

    def shoot(self, name: str, *, scroll_to: str | None = None) -> Path:
        """Check the page logged no error, then save its viewport (from the top, or scrolled to
        show ``scroll_to``) as docs/screenshots/<name>.png."""
        self.assert_no_errors()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if scroll_to:
            self.page.locator(scroll_to).scroll_into_view_if_needed()
        else:
            self.page.evaluate("window.scrollTo(0, 0)")
        self.page.evaluate("document.activeElement && document.activeElement.blur()")
        self.page.screenshot(path=str(path), animations="disabled")  # no half-faded focus ring
        return path

    def heading(self) -> str:
        return self.page.locator("h1").first.inner_text()


@pytest.fixture
def admin_tab(chromium_browser, live_server) -> Iterator[Tab]:
    tab = browser_support.open_tab(chromium_browser, live_server.url, viewport=VIEWPORT, tab_class=Tab, failed_requests=False)
    yield tab
    tab.page.context.close()


def log_in(tab: Tab, username: str) -> None:
    page = tab.page
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/manage/comparisons/$"))


# --- the world the tour shows -------------------------------------------------------------------


def heartbeat() -> None:
    Job.objects.filter(status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())


def demo_users():
    return (UserFactory(username="admin", role="admin"),
            UserFactory(username="annotator1", role="annotator"), UserFactory(username="annotator2", role="annotator"))


def vote(comparison: Comparison, annotators, choices: list[str], strength: str) -> None:
    for annotator, choice in zip(annotators, choices):
        VoteFactory(comparison=comparison, annotator=annotator, choice=choice,
                    strength=strength if choice in ("a", "b") else "", shown_left="a")
    Comparison.objects.filter(pk=comparison.pk).update(
        vote_count=len(choices), status="complete" if len(choices) >= comparison.votes_required else "open"
    )


def sampled_pairs(annotators) -> list[Comparison]:
    """Two SmolLM2 samples per prompt, both annotators' votes on each (one split decision)."""
    comparisons = []
    for index, (question, better, worse) in enumerate(PROMPTS):
        a, b = (better, worse) if index % 2 == 0 else (worse, better)
        comparison = services.comparison_create_inline(
            prompt={"messages": [{"role": "user", "content": question}], "source": "arbiter-demo",
                    "split": "eval" if index % 4 == 0 else "train", "tags": ["demo"]},
            completion_a={"model_name": BASE, "text": a}, completion_b={"model_name": BASE, "text": b},
            votes_required=2, priority=10,
        )
        winner = "a" if index % 2 == 0 else "b"
        choices = [winner, "tie"] if index == 5 else [winner, winner]
        vote(comparison, annotators, choices, STRENGTHS[index % 4])
        comparisons.append(comparison)
    return comparisons


def curve(start: float, end: float, step: int, steps: int, wiggle: float = 0.0) -> float:
    """A smooth, fixed curve from ``start`` to ``end`` with a small deterministic ripple."""
    t = step / steps
    return round(start + (end - start) * (1 - math.exp(-3 * t)) / (1 - math.exp(-3)) + wiggle * math.sin(step * 1.7), 4)


def metrics(job: Job, steps: int, values) -> None:
    JobMetric.objects.bulk_create([JobMetric(job=job, step=step, epoch=round(step / steps, 3), values=values(step))
                                   for step in range(1, steps + 1)])


def finish(job: Job, *, summary: dict, progress: int, output: tuple[str, str] | None = None, **fields) -> Checkpoint | None:
    """End ``job`` as its runner would have: summary, progress, the checkpoint it registered, then
    whatever follows it (the loop's next step, a policy's new-vs-parent generation)."""
    checkpoint = None
    if output is not None:
        kind, name = output
        metadata = {"base": job.config["base"], "snapshot_id": job.snapshot_id, "steps": summary.get("steps"),
                    "param_count": 134515008 if kind == "policy" else 134516160, "has_chat_template": True}
        if kind == "reward":
            metadata["eval_accuracy"] = summary.get("eval_accuracy")
        else:
            metadata.update({"method": job.kind, "lora": True, **{k: job.config[k] for k in ("beta", "algorithm") if k in job.config}})
        checkpoint = Checkpoint.objects.create(name=name, kind=kind, hub_id=f"arbiter/{name}",
                                               parent=Checkpoint.objects.get(name=job.config["base"]), run=job,
                                               metadata=metadata)
        summary = {**summary, "checkpoint": name}
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, summary=summary, progress_done=progress,
                                         progress_total=progress, **fields)
    loop.job_finished(job_id=job.pk)
    return checkpoint


def reward_metrics(job: Job, steps: int, accuracy: float) -> None:
    def values(step: int) -> dict:
        row = {"loss": curve(0.69, 0.38, step, steps, 0.03), "learning_rate": 1e-5 * (1 - step / steps)}
        if step % 6 == 0:
            row.update({"eval_loss": curve(0.69, 0.47, step, steps), "eval_accuracy": curve(0.5, accuracy, step, steps),
                        "eval_accuracy_strong": curve(0.5, 1.0, step, steps), "eval_accuracy_clear": curve(0.5, 0.5, step, steps, 0.1),
                        "eval_accuracy_slight": curve(0.25, 1.0, step, steps)})
        return row

    metrics(job, steps, values)


def head_to_head(new: str, old: str, annotators, outcomes: list[list[str]], *, prompts) -> None:
    """``new`` against ``old`` on these prompts, with each list of choices as the votes (none: still open)."""
    for prompt, choices in zip(prompts, outcomes):
        comparison = services.comparison_create_inline(
            prompt=prompt, completion_a={"model_name": new, "text": f"{new}'s answer to: {prompt.messages[-1]['content']}"},
            completion_b={"model_name": old, "text": f"{old}'s answer to: {prompt.messages[-1]['content']}"},
            votes_required=2, priority=100,
        )
        if choices:
            vote(comparison, annotators, choices, "clear")


def tour_world(settings, tmp_path) -> dict:
    """Everything the tour shows: see the module docstring. Job ids are fixed (sequences reset)."""
    settings.ARBITER_DATA_DIR = tmp_path
    admin, *annotators = demo_users()
    base = Checkpoint.objects.create(name=BASE, hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
                                     metadata={"param_count": 134515008, "has_chat_template": True})
    pairs = sampled_pairs(annotators)
    eval_prompts = [c.prompt for c in pairs if c.prompt.split == "eval"]
    loop.loop_settings_update(enabled=True, votes_per_round=20, method="dpo", policy=BASE,
                              reward_config={"max_length": 256}, policy_config={"beta": 0.1, "max_steps": 30},
                              generation_config={"votes_required": 2})

    # Round 1: reward model (job 1), DPO (job 2), new-vs-parent generation (job 3).
    round1 = loop.loop_round_start(trigger="manual", created_by=admin)
    reward = round1.reward_job
    reward_metrics(reward, 24, 0.75)
    job_log_path(reward.pk).parent.mkdir(parents=True, exist_ok=True)
    job_log_path(reward.pk).write_text(
        f"loading {BASE} with a sequence-classification head\ntrain 11 pairs, eval 4 pairs, max length 256\n"
        "{'loss': 0.3921, 'grad_norm': 4.12, 'learning_rate': 4.2e-07, 'epoch': 1.0}\n"
        f"registered {BASE}-rm-1\n"
    )
    rm = finish(reward, progress=24, output=("reward", f"{BASE}-rm-1"),
                summary={"train_rows": 11, "eval_rows": 4, "steps": 24, "epochs": 1.0, "eval_accuracy": 0.75,
                         "eval_accuracy_by_strength": {"strong": 1.0, "clear": 0.5, "slight": 1.0},
                         "train_loss": 0.4512, "samples_per_s": 3.9, "margin_used": True, "seconds": 377.2})
    round1.refresh_from_db()
    dpo = round1.policy_job
    metrics(dpo, 30, lambda step: {
        "loss": curve(0.693, 0.41, step, 30, 0.02), "rewards/accuracies": curve(0.5, 0.875, step, 30, 0.03),
        "rewards/margins": curve(0.0, 0.92, step, 30, 0.04),
        **({"eval_loss": curve(0.693, 0.52, step, 30), "eval_rewards/accuracies": curve(0.5, 0.75, step, 30),
            "eval_rewards/margins": curve(0.0, 0.61, step, 30)} if step % 10 == 0 else {}),
    })
    new = finish(dpo, progress=30, output=("policy", f"{BASE}-dpo-2"),
                 summary={"train_rows": 11, "eval_rows": 4, "steps": 30, "train_loss": 0.5213, "eval_reward_accuracy": 0.75,
                          "eval_reward_margin": 0.61, "samples_per_s": 2.7})
    round1.refresh_from_db()
    generation = round1.generation_job
    head_to_head(new.name, BASE, annotators, [["a", "a"], ["a", "b"], ["a", "tie"], []], prompts=eval_prompts)
    finish(generation, progress=4, summary={"paired": 4, "completions": 8, "new_tokens": 612}, tokens_per_s=96.4)

    # An RLOO run outside the loop (job 4) and its new-vs-parent generation (job 5).
    rl = training_services.rl_run_create(config={"base": BASE, "reward_model": rm.name, "algorithm": "rloo", "max_steps": 20},
                                         created_by=admin)
    metrics(rl, 20, lambda step: {"reward": curve(-0.4, 0.55, step, 20, 0.05), "kl": curve(0.0, 0.031, step, 20),
                                  "completion_length": curve(48, 61, step, 20, 1.5)})
    rloo = finish(rl, progress=20, output=("policy", f"{BASE}-rloo-4"),
                  summary={"steps": 20, "train_loss": 0.0412, "samples_per_s": 1.6})
    head_to_head(rloo.name, BASE, annotators, [["a", "b"], ["a", "a"], ["b", "tie"], ["a", "a"]], prompts=eval_prompts)
    head_to_head(new.name, rloo.name, annotators, [["a", "b"], ["tie", "a"]], prompts=eval_prompts[:2])
    finish(Job.objects.filter(kind=JobKind.GENERATION).latest("id"), progress=4,
           summary={"paired": 4, "completions": 8, "new_tokens": 587}, tokens_per_s=91.8)

    # The reward model scores every completion (job 6): admins see each comparison's margin.
    scoring = Job.objects.create(kind=JobKind.SCORING, config={"reward_model": rm.name, "scope": "all"}, created_by=admin)
    scores = []
    for index, comparison in enumerate(Comparison.objects.order_by("id").select_related("completion_a", "completion_b")):
        spread = 0.4 + (index % 5) * 0.55
        sign = 1 if comparison.completion_a.text in {better for _, better, _ in PROMPTS} or comparison.completion_a.model_name != BASE else -1
        scores += [(comparison.completion_a_id, round(0.3 + sign * spread / 2, 3)),
                   (comparison.completion_b_id, round(0.3 - sign * spread / 2, 3))]
    interface.scores_record(reward_model=rm.name, scores=scores)
    finish(scoring, progress=len(scores), summary={"scored": len(scores)}, tokens_per_s=412.0)

    # Round 2 fails: its reward run (job 7) is killed. Round 3's reward run (job 8) is running.
    loop.loop_settings_update(enabled=True, votes_per_round=20, method="dpo", policy=new.name,
                              reward_config={"max_length": 256}, policy_config={"beta": 0.1, "max_steps": 30},
                              generation_config={"votes_required": 2})
    round2 = loop.loop_round_start(trigger="votes")
    failed = round2.reward_job
    reward_metrics(failed, 5, 0.6)
    job_log_path(failed.pk).write_text(f"loading {new.name} with a sequence-classification head\n")
    log_error_line(failed.pk, KILLED)
    Job.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED, error=KILLED, progress_done=5, progress_total=24)
    loop.job_finished(job_id=failed.pk)
    round3 = loop.loop_round_start(trigger="manual", created_by=admin)
    running = round3.reward_job
    reward_metrics(running, 9, 0.7)
    Job.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING, progress_done=9, progress_total=24)

    # Fixed dates: each job ten minutes after the one before; rounds and checkpoints with their jobs.
    durations = {JobKind.REWARD: 380, JobKind.DPO: 540, JobKind.RL: 720, JobKind.GENERATION: 95, JobKind.SCORING: 41}
    for index, job in enumerate(Job.objects.order_by("id")):
        created = T0 + timedelta(minutes=10 * index)
        started = created + timedelta(seconds=3)
        finished = started + timedelta(seconds=durations[job.kind]) if job.pk != running.pk else None
        if job.pk == failed.pk:
            finished = started + timedelta(seconds=75)
        Job.objects.filter(pk=job.pk).update(created_at=created, started_at=started, finished_at=finished,
                                             heartbeat_at=finished or timezone.now())
    for checkpoint in Checkpoint.objects.exclude(run=None):
        Checkpoint.objects.filter(pk=checkpoint.pk).update(created_at=checkpoint.run.finished_at)
    Checkpoint.objects.filter(pk=base.pk).update(created_at=T0 - timedelta(minutes=30))
    for loop_round in LoopRound.objects.select_related("reward_job", "generation_job"):
        last = loop_round.generation_job or loop_round.reward_job
        LoopRound.objects.filter(pk=loop_round.pk).update(
            triggered_at=loop_round.reward_job.created_at, finished_at=last.finished_at if loop_round.finished_at else None)
    return {"admin": admin, "annotators": annotators, "rm": rm, "dpo": new, "rloo": rloo, "reward_job": reward,
            "failed_job": failed, "running_job": running, "rounds": (round1, round2, round3)}


# --- the tour -------------------------------------------------------------------------------------


def test_the_tour_pages_show_what_the_readme_says(admin_tab, settings, tmp_path):
    world = tour_world(settings, tmp_path)
    tab, page = admin_tab, admin_tab.page
    log_in(tab, "admin")

    # Launch a reward run: the form, with the imported SmolLM2 as its base.
    tab.open("/manage/train/reward/")
    assert tab.heading() == "Train a reward model"
    page.get_by_label("Base policy checkpoint").select_option(BASE)
    page.get_by_label("Max steps").fill("50")
    assert page.get_by_label("Max length (tokens)").input_value() == "160"  # CPU-sized defaults
    tab.shoot("train-reward")

    # The reward run's page: finished, its curves, and its lineage (snapshot, output checkpoint).
    reward = world["reward_job"]
    tab.open(f"/manage/jobs/{reward.pk}/")
    assert tab.heading() == f"Reward model training job {reward.pk}"
    assert page.locator(".status-succeeded").first.is_visible()
    assert page.locator("svg polyline").count() == 6  # loss, eval loss; accuracy overall and by 3 strengths
    assert page.get_by_text("Held-out pairwise accuracy").is_visible()
    live = page.locator("#job-live").inner_text()
    assert "24/24" in live and "0.75" in live and f"{BASE}-rm-1" in live
    assert re.search(r"snapshot \d+: 11 train / 4 eval pairs from 30 votes by 2 annotators", live), live
    assert page.locator("#job-live").get_attribute("hx-trigger") is None  # finished: no polling
    tab.shoot("reward-run")

    # Launch a policy run: DPO or online RL (RLOO/GRPO) from a policy checkpoint.
    tab.open("/manage/train/policy/")
    assert tab.heading() == "Train a policy"
    kinds = page.get_by_label("Kind", exact=True).locator("option").all_inner_texts()
    assert any("DPO" in k for k in kinds) and any("RL" in k for k in kinds), kinds
    assert world["rm"].name in page.get_by_label("Reward model (RL)").inner_text()
    page.get_by_label("Kind", exact=True).select_option("dpo")
    page.get_by_label("Base policy checkpoint").select_option(BASE)
    page.get_by_label("Beta").fill("0.1")
    page.get_by_label("Max steps").fill("30")
    tab.shoot("train-policy")

    # Watch progress: the jobs list, live while the round-3 reward run trains.
    running, failed = world["running_job"], world["failed_job"]
    tab.open("/manage/jobs/")
    assert tab.heading() == "Jobs"
    assert page.locator("#job-table tbody tr").count() == 8
    assert page.locator(f"#job-{running.pk} progress").get_attribute("value") == "9"
    assert "9/24" in page.locator(f"#job-{running.pk}").inner_text()
    assert "killed by SIGKILL" in page.locator(f"#job-{failed.pk}").inner_text()
    assert page.locator("#job-table").get_attribute("hx-trigger"), "a running job's list must poll"
    Job.objects.filter(pk=running.pk).update(progress_done=10, heartbeat_at=timezone.now())
    page.wait_for_function("id => document.querySelector(`#job-${id} progress`).value === 10", arg=running.pk, timeout=8_000)
    Job.objects.filter(pk=running.pk).update(progress_done=9)
    page.wait_for_function("id => document.querySelector(`#job-${id} progress`).value === 9", arg=running.pk, timeout=8_000)
    tab.shoot("jobs")

    # A failed job says why, at the top of its page and as the last line of its log.
    tab.open(f"/manage/jobs/{failed.pk}/")
    alert = page.get_by_role("alert").filter(has_text="Error:")
    assert alert.is_visible() and KILLED in alert.inner_text()
    assert page.locator("pre.log").last.inner_text().strip().endswith(f"error: {KILLED}")
    tab.shoot("job-failed")

    # The Loop page: round 1 done (accuracy, DPO metrics, new checkpoint, rating vs parent),
    # round 2 failed with its reason, round 3 running (the history polls).
    round1, round2, round3 = world["rounds"]
    tab.open("/manage/loop/")
    assert tab.heading() == "The loop"
    assert page.locator("#loop-rounds").get_attribute("hx-trigger"), "a running round's history must poll"
    first = page.locator(f"#round-{round1.pk}").inner_text()
    assert "succeeded" in first and "0.750" in first and world["dpo"].name in first and "(6 votes)" in first, first
    second = page.locator(f"#round-{round2.pk}").inner_text()
    assert f"reward model training job {failed.pk} failed: {KILLED}" in second and "…" not in second, second
    assert "running" in page.locator(f"#round-{round3.pk}").inner_text()
    tab.shoot("loop")

    # The new comparisons, newest first, with the reward model's margin (admins only).
    tab.open("/manage/comparisons/")
    assert tab.heading() == "Comparisons"
    top = page.locator("#comparison-table tbody tr").first.inner_text()
    assert world["dpo"].name in top and world["rloo"].name in top and "100" in top, top
    assert page.locator("#comparison-table td.num span").count() >= 10  # margins shown
    assert "(26 comparisons)" in page.locator(".pager").inner_text()
    tab.shoot("comparisons")

    # The leaderboard: three policies rated from the head-to-head votes; DPO first.
    tab.open("/manage/leaderboard/")
    assert tab.heading() == "Leaderboard"
    rows = page.locator("#ratings tbody tr").all_inner_texts()
    assert len(rows) == 3 and world["dpo"].name in rows[0], rows
    assert "from 18 human votes" in page.locator("main").inner_text()
    assert page.locator("#win-rates").is_visible()
    tab.shoot("leaderboard")

    # Lineage: the DPO checkpoint back to the imported SmolLM2, with the reward model behind it.
    dpo = world["dpo"]
    tab.open(f"/manage/checkpoints/{dpo.pk}/")
    assert tab.heading().startswith(dpo.name)
    lineage = page.locator("#lineage tbody tr").all_inner_texts()
    assert len(lineage) == 2 and "DPO run 2" in lineage[0] and "0.750" in lineage[0] and "imported" in lineage[1], lineage
    assert "votes by 2 annotators" in lineage[0] and "rank" in lineage[0]
    tab.shoot("lineage")

    # Import human preferences: a small HH-RLHF file through the upload page.
    hh = tmp_path / "hh-sample.jsonl"
    hh.write_text("".join(
        '{"chosen": "\\n\\nHuman: %s\\n\\nAssistant: %s", "rejected": "\\n\\nHuman: %s\\n\\nAssistant: %s"}\n' % (q, good, q, bad)
        for q, good, bad in [("How do I boil an egg?", "Simmer it for 9 minutes, then cool it in cold water.", "Microwave it."),
                             ("What is 12 squared?", "144.", "124."),
                             ("Can you recommend a short novel?", "Try *The Old Man and the Sea* by Hemingway.", "No.")]
    ))
    tab.open("/manage/imports/")
    assert tab.heading() == "Import preferences"
    page.get_by_label("File").set_input_files(str(hh))
    page.get_by_label("Format").select_option("hh-rlhf")
    page.get_by_role("button", name="Import").click()
    summary = page.locator("#import-summary")
    summary.wait_for()
    assert "3 lines read: 3 imported" in summary.inner_text()
    tab.shoot("import")


def test_the_exports_page_writes_a_dataset_file(admin_tab, settings, tmp_path):
    try:
        reverse("manage-exports")
    except NoReverseMatch:
        pytest.skip("the exports page (/manage/exports/) is not in this tree")
    settings.ARBITER_DATA_DIR = tmp_path
    demo_users()
    Checkpoint.objects.create(name=BASE, hub_id="HuggingFaceTB/SmolLM2-135M-Instruct")
    sampled_pairs(list(UserFactory._meta.model.objects.filter(username__startswith="annotator").order_by("username")))
    tab, page = admin_tab, admin_tab.page
    log_in(tab, "admin")
    tab.open("/manage/exports/")
    assert tab.heading() == "Export preferences"
    page.get_by_role("button", name="Export").click()
    assert "Export 1 written: 15 rows." in page.locator(".flash").inner_text()  # one of the 16 votes is split
    row = page.locator("#export-table tbody tr").first
    row.locator(".status-succeeded").wait_for()
    assert "15" in row.inner_text() and "trl-preference" in row.inner_text()
    Export.objects.update(created_at=T0)  # a fixed date in the screenshot
    tab.open("/manage/exports/")
    assert row.get_by_role("link", name="Download").is_visible() and "2025-06-02 09:00" in row.inner_text()
    tab.shoot("exports", scroll_to="#export-table")
