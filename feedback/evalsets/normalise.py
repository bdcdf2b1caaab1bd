"""How an eval set's prompts are matched against training prompts, and how a set's content is
hashed (pure code, no Django imports).

The documented normalisation (``text_normalise``), applied to each turn's text:

1. Unicode NFKC (compatibility forms fold: full-width letters, ligatures, non-breaking spaces);
2. ``str.casefold()`` (a stronger ``lower()``: ``"Straße"`` -> ``"strasse"``), then NFKC again;
3. punctuation (Unicode general category ``P*``: ``.,;:!?"()[]{}-_/`` and their Unicode kin such
   as ``« » — 。``) becomes a space, so ``"held-out"``, ``"held out"`` and ``"hello,world"``/
   ``"hello world"`` match; apostrophes (``'``, ``‘``, ``’``) are deleted instead, so ``"don't"``
   and ``"dont"`` match; symbols (``$ + = < >``, category ``S*``) and digits are kept;
4. every run of whitespace becomes one space, and leading and trailing whitespace is dropped.

``text_normalise("  What's   the  CAPITAL of France?? ") == "whats the capital of france"``.
This is close to the answer normalisation of SQuAD's evaluation script (lower case, no
punctuation, one space), without its article removal.

A prompt's key (``messages_key``) is the SHA-256 of its non-system turns, each as
``[role, normalised text]`` in order, as canonical JSON: two prompts with the same key are
near-duplicates. System turns are left out, because they say how to answer, not what is asked.
An exact copy always has the same key, so one indexed key column finds exact and near copies.
"""
from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CONTENT_HASH_HEADER = b"arbiter-evalset-v1\n"
APOSTROPHES = frozenset("'\u2018\u2019")


def _without_punctuation(text: str) -> str:
    return "".join(
        "" if c in APOSTROPHES else " " if unicodedata.category(c).startswith("P") else c for c in text
    )


def text_normalise(text: str) -> str:
    """The documented normalisation of one text (module docstring): NFKC, casefold, NFKC,
    apostrophes deleted and other punctuation made a space, whitespace collapsed. Idempotent:
    ``text_normalise(text_normalise(t)) == text_normalise(t)``."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(_without_punctuation(folded).split())


def messages_key(messages: Sequence[Mapping[str, str]]) -> str:
    """The near-duplicate key of a prompt's messages (``[{"role", "content"}, ...]``): a 64-character
    SHA-256 hex digest of ``[[role, text_normalise(content)], ...]`` over the non-system turns, as
    canonical JSON (no spaces, UTF-8)."""
    turns = [[m["role"], text_normalise(m["content"])] for m in messages if m["role"] != "system"]
    canonical = json.dumps(turns, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def item_line(item: Mapping[str, Any]) -> str:
    """One eval-set item as its canonical line: JSON of ``{"category", "messages", "reference",
    "tags"}`` with sorted keys, tags sorted, no spaces, UTF-8, ending in ``\\n``."""
    canonical = {
        "category": item.get("category", ""),
        "messages": [{"content": m["content"], "role": m["role"]} for m in item["messages"]],
        "reference": item.get("reference", ""),
        "tags": sorted(item.get("tags", ())),
    }
    return json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def content_hash(items: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 hex digest of an eval set's content: ``CONTENT_HASH_HEADER`` then its items'
    ``item_line``s in sorted order. Order-free (a set is a set: the same items in another order
    hash the same), and every field of every item counts (messages exactly, category, tags,
    reference), so any change of content gives another hash."""
    digest = hashlib.sha256(CONTENT_HASH_HEADER)
    for line in sorted(item_line(item) for item in items):
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()
