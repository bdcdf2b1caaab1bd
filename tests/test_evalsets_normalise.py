"""The documented normalisation, the near-duplicate key and the content hash of eval sets (pure)."""
from __future__ import annotations

import pytest

from feedback.evalsets.normalise import content_hash, item_line, messages_key, text_normalise


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("  What's   the  CAPITAL of France?? ", "whats the capital of france"),
        ("Hello,\n\tworld!", "hello world"),
        ("hello,world", "hello world"),  # punctuation becomes a space
        ("held-out/test_set", "held out test set"),
        ("ＦＵＬＬ　ｗｉｄｔｈ", "full width"),  # NFKC: full-width letters and ideographic space
        ("Straße", "strasse"),  # casefold, not lower
        ("don’t «stop» — now。", "dont stop now"),  # Unicode punctuation, curly apostrophe
        ("x\u00a0=\u00a0$5 + 3", "x = $5 + 3"),  # symbols and digits stay; NBSP is a space
        ("ﬁne", "fine"),  # ligature
    ],
)
def test_text_normalise_follows_the_documented_steps(text, expected):
    assert text_normalise(text) == expected


def test_text_normalise_is_idempotent():
    for text in ["A, b; C!", "ＡＢＣ d", "İstanbul", "  "]:
        once = text_normalise(text)
        assert text_normalise(once) == once


def test_near_duplicates_share_a_key_and_different_prompts_do_not():
    key = messages_key(user("What is the capital of France?"))
    assert messages_key(user("what is the CAPITAL of france")) == key
    assert messages_key(user("  What is the capital of France ?!")) == key
    assert messages_key(user("What is the capital of Spain?")) != key
    assert messages_key(user("What is the capital of France? Explain.")) != key


def test_the_key_ignores_system_turns_but_not_other_turns():
    plain = messages_key(user("Summarise this"))
    with_system = [{"role": "system", "content": "Be brief."}, *user("summarise THIS.")]
    assert messages_key(with_system) == plain
    multi = [*user("Hi"), {"role": "assistant", "content": "Hello"}, *user("Summarise this")]
    assert messages_key(multi) != plain


def test_key_is_a_sha256_hex_digest():
    key = messages_key(user("x"))
    assert len(key) == 64 and int(key, 16) >= 0


def item(text, **fields):
    return {"messages": user(text), **fields}


def test_content_hash_ignores_order_and_tag_order_but_sees_every_field():
    a = [item("one", category="c", tags=["x", "y"]), item("two", reference="2")]
    digest = content_hash(a)
    assert content_hash(list(reversed(a))) == digest
    assert content_hash([item("one", category="c", tags=["y", "x"]), item("two", reference="2")]) == digest
    assert content_hash([item("one", category="d", tags=["x", "y"]), item("two", reference="2")]) != digest
    assert content_hash([item("one", category="c", tags=["x"]), item("two", reference="2")]) != digest
    assert content_hash([item("one", category="c", tags=["x", "y"]), item("two", reference="3")]) != digest
    assert content_hash([item("One", category="c", tags=["x", "y"]), item("two", reference="2")]) != digest
    assert content_hash(a[:1]) != digest


def test_item_line_is_canonical_json():
    assert item_line(item("é", tags=["b", "a"])) == (
        '{"category":"","messages":[{"content":"é","role":"user"}],"reference":"","tags":["a","b"]}\n'
    )
