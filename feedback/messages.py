"""Pure validation and hashing of chat messages (no Django imports).

A prompt is the conversation so far: a non-empty list of ``{"role", "content"}`` dicts whose roles
are ``system``, ``user`` or ``assistant`` and whose last turn is the user's (the next turn is the
completion being judged). This is the conversational format TRL's trainers take as ``prompt``.
"""
from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Any

ROLES = ("system", "user", "assistant")
MAX_MESSAGES = 200
MAX_MESSAGE_CHARS = 1_000_000
MAX_COMPLETION_CHARS = 2_000_000


class MessagesError(ValueError):
    """The messages are malformed; ``str(error)`` names the turn and the problem."""


def messages_validate(messages: Any) -> list[dict[str, str]]:
    """Check a prompt's messages and return them normalised to ``[{"role": str, "content": str}, ...]``.

    Raises:
        MessagesError: not a list, empty, more than ``MAX_MESSAGES`` turns, a turn that is not an
            object with a known ``role`` and a string ``content``, content over ``MAX_MESSAGE_CHARS``
            characters, or a last turn that is not the user's.
    """
    if not isinstance(messages, list):
        raise MessagesError("must be a list of {role, content} messages")
    if not messages:
        raise MessagesError("must contain at least one message")
    if len(messages) > MAX_MESSAGES:
        raise MessagesError(f"has {len(messages)} messages; at most {MAX_MESSAGES} are allowed")
    cleaned = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise MessagesError(f"message {index} must be an object with role and content")
        extra = set(message) - {"role", "content"}
        if extra:
            raise MessagesError(f"message {index} has unknown keys: {', '.join(sorted(map(str, extra)))}")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise MessagesError(f"message {index} has role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise MessagesError(f"message {index} content must be a string")
        if len(content) > MAX_MESSAGE_CHARS:
            raise MessagesError(f"message {index} content is {len(content)} characters; at most {MAX_MESSAGE_CHARS}")
        if "\x00" in content:
            raise MessagesError(f"message {index} content contains a NUL character")
        if role != "system" and not content.strip():
            raise MessagesError(f"message {index} ({role}) is empty")
        cleaned.append({"role": role, "content": content})
    if cleaned[-1]["role"] != "user":
        raise MessagesError("the last message must be the user's (the completion answers it)")
    return cleaned


def messages_sha256(messages: list[dict[str, str]]) -> str:
    """SHA-256 hex digest (64 chars) of the messages as canonical JSON (sorted keys, UTF-8)."""
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def text_is_empty(text: str) -> bool:
    """True when a completion shows nothing: empty or whitespace only."""
    return not text.strip()


def response_key(text: str) -> str:
    """The text two responses are compared on when deciding whether a pair carries a signal.

    The documented rule: Unicode NFC normalisation, then every run of whitespace (spaces, tabs,
    newlines, Unicode spaces, as ``str.split()`` sees them) becomes one space, and leading and
    trailing whitespace is dropped. Case, punctuation and every other character count. Two
    responses with the same key are *equivalent*: a pair of them is never queued, imported or
    trained on. ``response_key("  Hi\\n\\n there ") == "Hi there"``.
    """
    return " ".join(unicodedata.normalize("NFC", text).split())


def responses_equivalent(text_a: str, text_b: str) -> bool:
    """True when two responses differ at most in whitespace or Unicode composition (``response_key``)."""
    return response_key(text_a) == response_key(text_b)
