"""Chat message validation and hashing (pure; no database)."""
import re

import pytest

from feedback.messages import (
    MAX_MESSAGE_CHARS,
    MAX_MESSAGES,
    MessagesError,
    messages_sha256,
    messages_validate,
    text_is_empty,
)


def test_a_valid_conversation_comes_back_normalised():
    messages = [
        {"role": "system", "content": ""},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "  What is 2+2?  "},
    ]
    cleaned = messages_validate(messages)
    assert cleaned == messages
    assert cleaned is not messages  # a copy: the caller's list is not stored by reference


def test_content_is_kept_exactly_including_whitespace_and_unicode():
    content = "  مرحبا 👋\n\tשלום  "
    assert messages_validate([{"role": "user", "content": content}]) == [{"role": "user", "content": content}]


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ("hello", "must be a list"),
        ({"role": "user", "content": "hi"}, "must be a list"),
        (None, "must be a list"),
        ([], "at least one message"),
        (["hi"], "message 0 must be an object"),
        ([{"role": "user", "content": "hi", "name": "x"}], "message 0 has unknown keys: name"),
        ([{"role": "tool", "content": "hi"}], "message 0 has role 'tool'"),
        ([{"content": "hi"}], "message 0 has role None"),
        ([{"role": "user", "content": 5}], "message 0 content must be a string"),
        ([{"role": "user"}], "message 0 content must be a string"),
        ([{"role": "user", "content": "a\x00b"}], "NUL"),
        ([{"role": "user", "content": "   "}], "message 0 (user) is empty"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "\n"}, {"role": "user", "content": "q"}],
         "message 1 (assistant) is empty"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "last message must be the user's"),
        ([{"role": "system", "content": "be brief"}], "last message must be the user's"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(messages, fragment):
    with pytest.raises(MessagesError) as caught:
        messages_validate(messages)
    assert fragment in str(caught.value)


def test_message_count_limit():
    ok = [{"role": "user", "content": "q"}] * MAX_MESSAGES
    assert len(messages_validate(ok)) == MAX_MESSAGES
    with pytest.raises(MessagesError, match=f"has {MAX_MESSAGES + 1} messages"):
        messages_validate(ok + [{"role": "user", "content": "q"}])


def test_message_length_limit():
    at_limit = "x" * MAX_MESSAGE_CHARS
    assert messages_validate([{"role": "user", "content": at_limit}])[0]["content"] == at_limit
    with pytest.raises(MessagesError, match=f"at most {MAX_MESSAGE_CHARS}"):
        messages_validate([{"role": "user", "content": at_limit + "x"}])


def test_sha256_is_a_hex_digest_that_ignores_key_order():
    one = messages_sha256([{"role": "user", "content": "hi"}])
    other_order = messages_sha256([{"content": "hi", "role": "user"}])
    assert re.fullmatch(r"[0-9a-f]{64}", one)
    assert one == other_order


def test_sha256_tells_conversations_apart():
    base = [{"role": "user", "content": "hi"}]
    assert messages_sha256(base) != messages_sha256([{"role": "user", "content": "hi "}])
    assert messages_sha256(base) != messages_sha256([{"role": "system", "content": ""}, *base])
    assert messages_sha256([{"role": "user", "content": "é"}]) != messages_sha256([{"role": "user", "content": "e"}])


def test_sha256_of_a_known_value():
    # sha256 of '[{"content":"hi","role":"user"}]' (canonical JSON: sorted keys, no spaces)
    import hashlib

    expected = hashlib.sha256(b'[{"content":"hi","role":"user"}]').hexdigest()
    assert messages_sha256([{"role": "user", "content": "hi"}]) == expected


@pytest.mark.parametrize(("text", "empty"), [("", True), ("  \n\t", True), ("x", False), ("  .  ", False), ("🙂", False)])
def test_text_is_empty(text, empty):
    assert text_is_empty(text) is empty


def test_response_key_collapses_whitespace_and_composition_only():
    from feedback.messages import response_key, responses_equivalent

    assert response_key("  Hi\n\n\tthere \u00a0") == "Hi there"
    assert responses_equivalent("caf\u00e9", "cafe\u0301")  # NFC: one character either way
    assert not responses_equivalent("Hello.", "hello.")  # case counts
    assert not responses_equivalent("Hello.", "Hello!")  # punctuation counts
    assert not responses_equivalent("ab", "a b")  # whitespace inside a word is a difference
