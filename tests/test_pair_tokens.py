"""Preference pairs fitted to max_length before a trainer sees them (training.runners.pair_tokens).

With SmolLM2's real tokenizer and chat template: a long prompt loses its start (its end, the
assistant header included, stays), then the responses lose their end; a pair whose responses are
the same tokens after that is left out and counted; a chat template whose prompt is not a prefix
of prompt + response refuses, naming the checkpoint. Ties in held-out evaluation are their own
figure, not wrong answers.
"""
from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from training.runners.pair_tokens import (
    ChatTemplatePrefixError,
    PairIds,
    pair_fit,
    pair_tokenize,
    pairs_prepare,
    split_counts,
)


@pytest.fixture(scope="module")
def tokenizer(model_store):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_store.data_dir / "checkpoints" / "tiny-x")


def user(text):
    return [{"role": "user", "content": text}]


def reply(text):
    return [{"role": "assistant", "content": text}]


def test_pair_fit_cuts_the_prompt_start_first_then_the_responses_end():
    pair = PairIds(prompt=list(range(100, 140)), chosen=[1, 2, 3], rejected=[4, 5])
    fitted, prompt_cut, response_cut = pair_fit(pair, 20)
    assert fitted.prompt == list(range(123, 140)) and fitted.chosen == [1, 2, 3] and fitted.rejected == [4, 5]
    assert (prompt_cut, response_cut) == (True, False)
    # Responses too long for what is left: the prompt keeps a quarter of max_length, the responses' ends go.
    long = PairIds(prompt=list(range(100, 140)), chosen=list(range(30)), rejected=list(range(50, 75)))
    fitted, prompt_cut, response_cut = pair_fit(long, 20)
    assert fitted.prompt == list(range(135, 140)) and fitted.chosen == list(range(15)) and fitted.rejected == list(range(50, 65))
    assert (prompt_cut, response_cut) == (True, True)
    assert pair_fit(PairIds([1, 2], [3], [4]), 16) == (PairIds([1, 2], [3], [4]), False, False)


def test_pairs_tokenise_as_trl_and_the_whole_sequence_is_prompt_plus_response(tokenizer):
    from training.runners.rewards import conversation_ids

    prompt, chosen, rejected = user("How do I boil an egg?"), reply("Put it in boiling water for 8 minutes."), reply("No.")
    pair = pair_tokenize(tokenizer, prompt, chosen, rejected, checkpoint="tiny-x")
    assert pair.chosen_sequence == conversation_ids(tokenizer, prompt, chosen)
    assert pair.rejected_sequence == conversation_ids(tokenizer, prompt, rejected)
    assert tokenizer.decode(pair.prompt).endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(pair.rejected) == "No.<|im_end|>\n"


def test_a_long_prompt_keeps_its_end_and_every_side_fits(tokenizer):
    story = " ".join(f"word{i}" for i in range(200))
    rows = [{"prompt": user(story + " Which word came last?"), "chosen": reply("word199"), "rejected": reply("word0")}]
    pairs, counts = pairs_prepare(tokenizer, rows, max_length=48, checkpoint="tiny-x")
    assert len(pairs) == 1 and counts.prompt_cut == 1 and counts.response_cut == 0 and counts.kept == [0]
    assert len(pairs[0].chosen_sequence) <= 48 and len(pairs[0].rejected_sequence) <= 48
    text = tokenizer.decode(pairs[0].chosen_sequence)
    assert "Which word came last?<|im_end|>\n<|im_start|>assistant\nword199<|im_end|>" in text
    assert "word0 " not in text  # the prompt's start went


def test_a_pair_identical_after_truncation_is_left_out_and_counted(tokenizer):
    shared = "Here is a long answer that starts the same way in both responses and goes on. " * 6
    rows = [
        {"prompt": user("Tell me something."), "chosen": reply(shared + "The end is kind."), "rejected": reply(shared + "The end is rude.")},
        {"prompt": user("Hello?"), "chosen": reply("Hello! How can I help?"), "rejected": reply("What.")},
    ]
    untruncated, counts = pairs_prepare(tokenizer, rows, max_length=1024, checkpoint="tiny-x")
    assert len(untruncated) == 2 and counts.identical == 0
    pairs, counts = pairs_prepare(tokenizer, rows, max_length=64, checkpoint="tiny-x")
    assert counts.kept == [1] and counts.identical == 1 and counts.response_cut == 1 and len(pairs) == 1
    assert split_counts(counts, counts)["filtered_identical"] == {"train": 1, "eval": 1}


def prefix_breaking_template(tokenizer):
    """A copy of ``tokenizer`` whose template writes a different assistant header for the
    generation prompt than for an assistant message (the rendered prompt is no prefix)."""
    import copy

    broken = copy.deepcopy(tokenizer)
    broken.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant thinking\n{% endif %}"
    )
    return broken


def test_a_template_whose_prompt_is_no_prefix_refuses_naming_the_checkpoint(tokenizer):
    rows = [{"prompt": user("Hi"), "chosen": reply("Hello!"), "rejected": reply("Go away.")}]
    with pytest.raises(ChatTemplatePrefixError) as error:
        pairs_prepare(prefix_breaking_template(tokenizer), rows, max_length=64, checkpoint="odd-template-model")
    message = str(error.value)
    assert "'odd-template-model'" in message and "\n" not in message and "thinking" in message


def test_held_out_ties_are_their_own_rate_not_wrong_answers():
    from training.runners.pair_tokens import pair_outcomes
    from training.runners.reward import PairAccuracy, evaluation_values

    rewards = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [2.0, 2.0]])
    assert pair_outcomes(rewards) == {"accuracy": 0.25, "tie_rate": 0.5, "n": 4}
    accuracy = PairAccuracy()
    accuracy.strengths = ["clear", "clear", "slight", "slight"]
    metrics = accuracy(SimpleNamespace(predictions=rewards))
    values = evaluation_values({f"eval_{key}": value for key, value in metrics.items()})
    assert values["eval_accuracy"] == 0.25 and values["eval_tie_rate"] == 0.5
    assert values["eval_accuracy_clear"] == 0.5 and values["eval_accuracy_slight"] == 0.0


def test_library_warnings_while_preparing_data_are_collected_for_the_summary():
    import warnings as python_warnings

    from training.runners.reporting import data_warnings

    collected: list[str] = []
    with data_warnings(collected):
        logging.getLogger("transformers.tokenization_utils_base").warning(
            "Token indices sequence length is longer than the specified maximum sequence length\nsecond line"
        )
        python_warnings.warn("3 rows were changed", UserWarning)
        python_warnings.warn("old argument", FutureWarning)
    assert collected == [
        "Token indices sequence length is longer than the specified maximum sequence length", "3 rows were changed",
    ]
