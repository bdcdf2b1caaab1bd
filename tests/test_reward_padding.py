"""A reward model reads its score at a conversation's last real token, whatever its chat template.

transformers' ``*ForSequenceClassification`` reads the score at the last token that is not the pad
token. SmolLM2's pad token is its end-of-turn token ``<|im_end|>``; its own template ends with a
newline after it, but a template that ends exactly with ``<|im_end|>`` would have the score read
one token early. Here a tiny Llama carries such a template (``END_TEMPLATE``), and both scoring and
reward training (TRL's ``RewardTrainer``, through ``run_reward``) must read at that closing token,
alone and inside a right-padded batch. The reference score is the head applied to the last
position of the unpadded sequence.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import torch

from feedback.models import DatasetSnapshot
from training.config import RewardConfig
from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobStatus
from training.runners.progress import Reporter
from training.services import checkpoint_register

# ChatML, but nothing after the last <|im_end|>: a conversation ends exactly with the end-of-turn token.
END_TEMPLATE = (
    "{% for message in messages %}{% if not loop.first %}\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>{% endfor %}"
    "{% if add_generation_prompt %}\n<|im_start|>assistant\n{% endif %}"
)
BASE_DIR = "checkpoints/tiny-end-of-turn"
RM_DIR = "checkpoints/tiny-end-of-turn-rm"
SHORT = ([{"role": "user", "content": "Hi"}], [{"role": "assistant", "content": "Hello."}])
LONG = (
    [{"role": "user", "content": "Tell me about Paris, its history and its river, in a few sentences."}],
    [{"role": "assistant", "content": "Paris lies on the Seine. It grew from a Roman town into a capital."}],
)


@pytest.fixture(scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def end_template_files(model_store) -> Path:
    """tiny-x with ``END_TEMPLATE`` (a causal LM, a base to train on) and the same as a reward model
    saved the way SmolLM2 comes: pad token ``<|im_end|>``, ``config.pad_token_id`` set from it."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    source = model_store.data_dir / "checkpoints" / "tiny-x"
    base, reward = model_store.data_dir / BASE_DIR, model_store.data_dir / RM_DIR
    if not (reward / "config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(source)
        tokenizer.chat_template = END_TEMPLATE
        assert tokenizer.pad_token == "<|im_end|>"
        AutoModelForCausalLM.from_pretrained(source).save_pretrained(base)
        tokenizer.save_pretrained(base)
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
        model.config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(reward)
        tokenizer.save_pretrained(reward)
    return model_store.data_dir


def score_at_last_token(model, ids: list[int]) -> float:
    """The head on the last position of the unpadded sequence: where the score belongs."""
    with torch.inference_mode():
        hidden = model.model(input_ids=torch.tensor([ids], device=model.device)).last_hidden_state
        return float(model.score(hidden)[0, -1, 0])


def score_one_token_early(model, ids: list[int]) -> float:
    return score_at_last_token(model, ids[:-1])


def test_scoring_reads_at_the_closing_token_alone_and_in_a_padded_batch(end_template_files, one_torch_thread):
    from training.runners.rewards import conversation_ids, reward_model_load, rewards_compute

    model, tokenizer = reward_model_load(str(end_template_files / RM_DIR))
    short, long = (conversation_ids(tokenizer, *side) for side in (SHORT, LONG))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert short[-1] == long[-1] == im_end  # the template ends exactly with the end-of-turn token

    expected = score_at_last_token(model, short)
    assert abs(expected - score_one_token_early(model, short)) > 1e-3  # reading early would show
    [alone] = rewards_compute(model, tokenizer.pad_token_id, [short], batch_size=1)
    padded = rewards_compute(model, tokenizer.pad_token_id, [long, short], batch_size=2)  # short is padded
    assert alone == pytest.approx(expected, abs=1e-5)
    assert padded[1] == pytest.approx(expected, abs=1e-5)
    assert padded[0] == pytest.approx(score_at_last_token(model, long), abs=1e-5)
    assert tokenizer.pad_token_id != im_end and model.config.pad_token_id == tokenizer.pad_token_id


def test_scoring_refuses_a_sequence_that_ends_with_its_pad_token(end_template_files, one_torch_thread):
    from training.runners.rewards import conversation_ids, reward_model_load, rewards_compute

    model, tokenizer = reward_model_load(str(end_template_files / RM_DIR))
    ids = conversation_ids(tokenizer, *SHORT) + [tokenizer.pad_token_id]
    with pytest.raises(ValueError, match="ends with the pad token"):
        rewards_compute(model, tokenizer.pad_token_id, [ids], batch_size=1)
    with pytest.raises(ValueError, match="load the model with reward_model_load"):
        rewards_compute(model, tokenizer.convert_tokens_to_ids("<|im_end|>"), [ids[:-1]], batch_size=1)


def test_the_pad_token_is_one_the_template_never_writes(model_store, end_template_files):
    from transformers import AutoTokenizer

    from training.runners.rewards import conversation_ids, reward_pad_token

    for directory in (model_store.data_dir / model_store.smollm2_dir, end_template_files / BASE_DIR):
        tokenizer = AutoTokenizer.from_pretrained(directory)
        pad = reward_pad_token(tokenizer)
        written = conversation_ids(tokenizer, *LONG)
        assert pad == "<|endoftext|>" and tokenizer.convert_tokens_to_ids(pad) not in written


def snapshot_make(data_dir: Path, rows: list[dict]) -> DatasetSnapshot:
    folder = Path("snapshots") / f"test-{uuid.uuid4().hex[:12]}"
    (data_dir / folder).mkdir(parents=True)
    (data_dir / folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (data_dir / folder / "eval.jsonl").write_text("")
    return DatasetSnapshot.objects.create(
        rules={}, counts={}, train_rows=len(rows), eval_rows=0, annotator_count=1,
        content_hash=uuid.uuid4().hex * 2, files_dir=str(folder),
    )


@pytest.mark.django_db
def test_reward_training_reads_at_the_closing_token_of_each_padded_sequence(data_dir, end_template_files, one_torch_thread):
    """``run_reward`` gives TRL a pad token the template never writes; the model it saves, run as
    TRL's trainer runs it (its collator's right padding, the model's own forward), scores each
    side at its closing token."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    from training.runners.reward import run_reward
    from training.runners.rewards import conversation_ids

    checkpoint_register(name="tiny-end-of-turn", weights_dir=BASE_DIR)
    rows = [
        {"prompt": SHORT[0], "chosen": SHORT[1], "rejected": [{"role": "assistant", "content": "No."}]},
        {"prompt": LONG[0], "chosen": LONG[1], "rejected": [{"role": "assistant", "content": "Paris."}]},
    ] * 2
    snapshot = snapshot_make(data_dir, rows)
    config = RewardConfig.from_dict({
        "base": "tiny-end-of-turn", "snapshot_id": snapshot.pk, "max_steps": 1, "per_device_train_batch_size": 4,
        "max_length": 128, "logging_steps": 1,
    })
    job = Job.objects.create(kind=JobKind.REWARD, config=config.as_dict(), snapshot=snapshot, status=JobStatus.RUNNING)
    summary = run_reward(job, Reporter(job.pk))
    saved = Checkpoint.objects.get(name=summary["checkpoint"], kind=CheckpointKind.REWARD)

    tokenizer = AutoTokenizer.from_pretrained(saved.location)
    model = AutoModelForSequenceClassification.from_pretrained(saved.location).eval()
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    sides = [conversation_ids(tokenizer, row["prompt"], row[side]) for row in rows[:2] for side in ("chosen", "rejected")]
    assert all(ids[-1] == im_end for ids in sides)
    collator = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)
    batch = collator([{"chosen_ids": sides[i], "rejected_ids": sides[i + 1]} for i in (0, 2)])
    assert (batch["attention_mask"] == 0).any()  # some sides are padded
    with torch.inference_mode():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0].tolist()
    expected = [score_at_last_token(model, sides[i]) for i in (0, 2, 1, 3)]  # TRL stacks chosen, then rejected
    assert logits == pytest.approx(expected, abs=1e-5)
    assert model.config.pad_token_id == tokenizer.pad_token_id != im_end
