"""The refusal pattern list (training.evaluation.refusals): refusals found, ordinary answers not."""
import pytest

from training.evaluation.refusals import WINDOW_CHARS, is_refusal, refusal_rate


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't help with that.",
    "I am really sorry, but that is not something I do.",
    "I apologize, but I cannot provide instructions for that.",
    "As an AI language model, I do not have opinions.",
    "I cannot assist with creating malware.",
    "I won’t help you with this request.",  # a curly apostrophe
    "I must decline this request.",
    "That would be against my guidelines.",
    "I'm not able to share personal data.",
    "Sorry — I am unable to provide that information.",
])
def test_refusals_are_found(text):
    assert is_refusal(text)


@pytest.mark.parametrize("text", [
    "Paris is the capital of France.",
    "Sorry to hear that! Here is how to fix a flat tyre: ...",
    "I cannot stress enough how important sleep is.",
    "I do not know the exact figure, but it is about 3 million.",
    "",
    "Here is the story. " + "x" * WINDOW_CHARS + " He said: I'm sorry, but I can't help with that.",
])
def test_ordinary_answers_are_not_refusals(text):
    assert not is_refusal(text)


def test_refusal_rate():
    assert refusal_rate(["I must decline.", "Sure.", "Fine.", "ok"]) == {"value": 0.25, "count": 1, "n": 4, "defined": True}
    assert refusal_rate([])["defined"] is False
