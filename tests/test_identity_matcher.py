"""The identity matcher (feedback.identity.matcher): pure, no database."""
import pytest

from feedback.identity.matcher import PatternError, PatternSet, PatternSpec, identity_matches, regex_check, word_source

WORD_PATTERNS = [
    PatternSpec(1, "I'm Claude", "word"),
    PatternSpec(2, "OpenAI", "word"),
    PatternSpec(3, "as an AI developed by", "word"),
]


def matched(texts, patterns) -> list[int]:
    return [spec.id for spec in identity_matches(texts, patterns)]


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("Hello! I'm Claude, happy to help.", [1]),
        ("hello, i’m   CLAUDE.", [1]),  # any case, curly apostrophe, any whitespace
        ("I'm Claudette, a bot.", []),  # not inside a longer word
        ("Trained at OpenAI.", [2]),
        ("OpenAIs and NotOpenAI are not the word.", []),
        ("As an AI developed by a lab, I can't.", [3]),
        ("As an AI\ndeveloped by OpenAI, I'm Claude.", [1, 2, 3]),
        ("Paris is the capital of France.", []),
    ],
)
def test_word_patterns_match_whole_words_in_any_case(text, ids):
    assert matched([("model-x", text)], WORD_PATTERNS) == ids


def test_regex_patterns_match_as_written_in_any_case():
    patterns = [PatternSpec(7, r"\bGPT-?4o?\b", "regex"), PatternSpec(8, r"trained by [A-Z]\w+", "regex")]
    assert matched([("m", "I am gpt4o.")], patterns) == [7]
    assert matched([("m", "I was TRAINED BY acme labs")], patterns) == [8]
    assert matched([("m", "GPT-45 is not a model.")], patterns) == []


def test_a_scoped_pattern_applies_to_that_models_completions_only():
    patterns = [PatternSpec(1, "Smol", "word", scope="smol-dpo"), PatternSpec(2, "OpenAI", "word")]
    assert matched([("smol-dpo", "I am Smol."), ("gpt", "Hi.")], patterns) == [1]
    assert matched([("smol", "I am Smol."), ("gpt", "Hi.")], patterns) == []
    assert matched([("smol", "Hi."), ("smol-dpo", "by OpenAI")], patterns) == [2]


def test_a_pattern_set_is_reused_and_empty_sets_match_nothing():
    compiled = PatternSet(WORD_PATTERNS)
    assert matched([("m", "OpenAI")], compiled) == [2]
    assert not PatternSet([]) and matched([("m", "OpenAI")], []) == []


@pytest.mark.parametrize(
    ("regex", "words"),
    [
        ("(a+)+$", "inside another repeat"),
        ("(?:x*)*", "inside another repeat"),
        ("(a|ab)*c", "alternation inside a repeat"),
        (r"(a)\1", "back-reference"),
        ("(?P<name>a)", "must not name groups"),
        ("[unclosed", "not a valid regular expression"),
        ("(?i)claude", "write flags as a group"),
        ("x{5000}", "repeat count above 1000"),
        ("a?", "matches an empty text"),
        ("a" * 301, "at most 300"),
    ],
)
def test_unsafe_or_broken_regexes_are_refused_with_the_reason(regex, words):
    with pytest.raises(PatternError, match=words.replace("(", r"\(").replace("?", r"\?")):
        regex_check(regex)


def test_safe_regexes_pass():
    assert regex_check(r"\bI(?:'|’| a)m (?:Claude|Gemini)\b") and regex_check(r"(?-i:GPT)-\d+")


def test_an_empty_word_pattern_is_refused():
    with pytest.raises(PatternError, match="must not be empty"):
        word_source("   ")
