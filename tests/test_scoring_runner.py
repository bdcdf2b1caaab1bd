"""The scoring runner: a reward checkpoint scores completions as it was trained to read them.

The reward checkpoint here is ``tiny-x`` with a random one-output ``score`` head (saved once per
session as a sequence-classification model): agreement between training and scoring is a matter of
tokens and padding, not of what the head learned. The agreement test runs TRL's own
``RewardTrainer`` preprocessing, collator and ``compute_loss`` on training pairs and compares its
chosen-minus-rejected rewards with the scorer's, which scores each completion alone.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from feedback import interface as feedback
from feedback.models import Comparison, ComparisonStatus, CompletionScore
from tests.factories import ComparisonFactory
from training.models import CheckpointKind, Job, JobKind, JobStatus
from training.runners.progress import Reporter
from training.services import checkpoint_register, scoring_job_create
from training.supervisor import job_log_path, job_supervise

RM_DIR = "checkpoints/tiny-rm"

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a colour."}],
    [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke about cats, please, a long one with a twist at the end."},
    ],
]
ANSWERS = [
    ("Paris. It has been the capital for centuries.", "London."),
    ("Blue.", "I would rather not say anything about colours today, sorry."),
    ("A cat walked into a bar and ordered a saucer of milk; the twist: it paid by card.", "No."),
]


@pytest.fixture(scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reward_files(model_store) -> Path:
    """``tiny-rm``'s folder: tiny-x as a sequence-classification model with a random head (written once)."""
    directory = model_store.data_dir / RM_DIR
    if not (directory / "config.json").is_file():
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.manual_seed(0)
        source = model_store.data_dir / "checkpoints" / "tiny-x"
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
        model.config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def reward_checkpoint(data_dir, reward_files):
    return checkpoint_register(name="tiny-rm", kind=CheckpointKind.REWARD, weights_dir=RM_DIR)


@pytest.fixture(scope="module")
def scorer(reward_files, one_torch_thread):
    from training.runners.rewards import reward_model_load

    return reward_model_load(str(reward_files))


def score_alone(scorer, prompt, text, max_length=1024) -> float:
    from training.runners.rewards import rewards_compute
    from training.runners.scoring import scoring_ids

    model, tokenizer = scorer
    ids, _ = scoring_ids(tokenizer, prompt, text, max_length)
    return rewards_compute(model, tokenizer.pad_token_id, [ids], batch_size=1)[0]


def comparisons_make(count: int = 3) -> list[Comparison]:
    comparisons = []
    for i in range(count):
        prompt, (a, b) = CONVERSATIONS[i % 3], ANSWERS[i % 3]
        comparisons.append(ComparisonFactory(
            prompt__messages=prompt, completion_a__text=f"{a} ({i})", completion_b__text=f"{b} ({i})",
        ))
    return comparisons


def scoring_job(**settings) -> Job:
    from training.config import ScoringConfig

    config = ScoringConfig.from_dict({"reward_model": "tiny-rm", **settings})
    return Job.objects.create(kind=JobKind.SCORING, config=config.as_dict(), status=JobStatus.RUNNING)


# --- training and scoring agree -------------------------------------------------------------------


@pytest.mark.django_db
def test_score_differences_equal_the_reward_differences_trl_trains_on(reward_checkpoint, one_torch_thread, tmp_path):
    """Each side scored alone by the scorer gives TRL's chosen - rejected reward for the pair."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from training.runners.rewards import conversation_ids, reward_model_load

    model, tokenizer = reward_model_load(reward_checkpoint.location)
    rows = [
        {"prompt": prompt, "chosen": [{"role": "assistant", "content": a}], "rejected": [{"role": "assistant", "content": b}]}
        for prompt, (a, b) in zip(CONVERSATIONS, ANSWERS)
    ]
    args = RewardConfig(
        output_dir=str(tmp_path), report_to="none", bf16=False, activation_checkpointing=False, max_length=None
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.model.eval()
    # TRL's own batch: its tokenisation, its collator (right padding, chosen then rejected), its loss path.
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    with torch.no_grad():
        _, outputs = trainer.compute_loss(trainer.model, dict(batch), return_outputs=True)
    chosen, rejected = outputs.logits.squeeze(-1).chunk(2)
    trl_differences = (chosen - rejected).tolist()

    scorer = (model, tokenizer)
    for row, trl_difference, trl_chosen_ids in zip(rows, trl_differences, trainer.train_dataset["chosen_ids"]):
        assert conversation_ids(tokenizer, row["prompt"], row["chosen"]) == list(trl_chosen_ids)
        difference = score_alone(scorer, row["prompt"], row["chosen"][0]["content"]) - score_alone(
            scorer, row["prompt"], row["rejected"][0]["content"]
        )
        assert difference == pytest.approx(trl_difference, abs=1e-4)
    assert len({round(d, 3) for d in trl_differences}) == 3  # a real head: the pairs differ


def test_a_long_conversation_loses_its_oldest_tokens_and_keeps_the_response(model_store):
    from transformers import AutoTokenizer

    from training.runners.rewards import conversation_ids
    from training.runners.scoring import scoring_ids

    tokenizer = AutoTokenizer.from_pretrained(model_store.data_dir / "checkpoints" / "tiny-x")
    prompt = [{"role": "user", "content": "Please read this. " + "blah " * 200}]
    full = conversation_ids(tokenizer, prompt, [{"role": "assistant", "content": "Short answer."}])
    ids, truncated = scoring_ids(tokenizer, prompt, "Short answer.", 64)
    assert truncated and len(full) > 64
    assert ids == full[-64:]
    assert tokenizer.decode(ids).endswith("<|im_start|>assistant\nShort answer.<|im_end|>\n")
    assert scoring_ids(tokenizer, prompt, "Short answer.", 4096) == (full, False)


# --- the runner in process ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_scoring_job_stores_every_score_in_batches_and_reorders_the_queue(reward_checkpoint, scorer, one_torch_thread):
    from training.runners.scoring import run_scoring

    comparisons = comparisons_make(4)
    closed = ComparisonFactory(status=ComparisonStatus.COMPLETE, priority=7)
    job = scoring_job(batch_size=3, prioritize_uncertain=True)
    summary = run_scoring(job, Reporter(job.pk))

    assert summary["scored"] == summary["to_score"] == 8 and summary["truncated"] == 0
    assert summary["prioritized"] == 4 and summary["tokens"] > 0
    job.refresh_from_db()
    assert (job.progress_done, job.progress_total) == (8, 8)
    scores = dict(CompletionScore.objects.filter(reward_model="tiny-rm").values_list("completion_id", "score"))
    assert len(scores) == 8 and closed.completion_a_id not in scores
    for comparison in comparisons:
        for completion in (comparison.completion_a, comparison.completion_b):
            alone = score_alone(scorer, comparison.prompt.messages, completion.text)
            assert scores[completion.pk] == pytest.approx(alone, abs=1e-4)
        comparison.refresh_from_db()
        margin = scores[comparison.completion_a_id] - scores[comparison.completion_b_id]
        assert comparison.priority == feedback.uncertainty_priority(margin)
    closed.refresh_from_db()
    assert closed.priority == 7

    # Nothing left to score for this reward model.
    again = scoring_job()
    assert run_scoring(again, Reporter(again.pk))["to_score"] == 0


class StopAfterBatches(Reporter):
    def __init__(self, job_id: int, batches: int):
        super().__init__(job_id)
        self.batches, self.checks = batches, 0

    def stop_requested(self) -> bool:
        self.checks += 1
        return self.checks > self.batches


@pytest.mark.django_db
def test_a_cancelled_scoring_job_keeps_whole_batches_and_does_not_reorder_the_queue(reward_checkpoint, one_torch_thread):
    from training.runners.scoring import run_scoring

    comparisons = comparisons_make(4)
    job = scoring_job(batch_size=3, prioritize_uncertain=True)
    reporter = StopAfterBatches(job.pk, batches=1)
    summary = run_scoring(job, reporter)
    assert reporter.halted and summary["scored"] == 3 and summary["prioritized"] is None
    assert CompletionScore.objects.count() == 3
    job.refresh_from_db()
    assert (job.progress_done, job.progress_total) == (3, 8)
    assert all(c.priority == 0 for c in Comparison.objects.filter(pk__in=[c.pk for c in comparisons]))


@pytest.mark.django_db
def test_a_policy_checkpoint_cannot_score(tiny_checkpoints):
    from training.runners.scoring import run_scoring

    job = Job.objects.create(kind=JobKind.SCORING, config={"reward_model": "tiny-x"})
    with pytest.raises(ValueError, match="'tiny-x' is a policy checkpoint; scoring needs a reward model"):
        run_scoring(job, Reporter(job.pk))


# --- a whole job (child process) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_scoring_job_in_a_child_process_writes_scores_and_sets_priorities(reward_checkpoint, runner_env):
    comparisons = comparisons_make(3)
    job = scoring_job_create(config={"reward_model": "tiny-rm", "batch_size": 4, "prioritize_uncertain": True})
    job_supervise(job_id=job.pk)
    job.refresh_from_db()
    log = job_log_path(job.pk)
    assert job.status == JobStatus.SUCCEEDED, f"{job.error}\n{log.read_text()[-3000:] if log.exists() else ''}"
    assert job.summary["scored"] == 6 and job.summary["prioritized"] == 3
    assert (job.progress_done, job.progress_total) == (6, 6)
    scores = dict(CompletionScore.objects.filter(reward_model="tiny-rm").values_list("completion_id", "score"))
    assert len(scores) == 6
    for comparison in comparisons:
        comparison.refresh_from_db()
        assert comparison.priority == feedback.uncertainty_priority(
            scores[comparison.completion_a_id] - scores[comparison.completion_b_id]
        )
