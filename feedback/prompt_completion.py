"""Demonstration files: JSON lines of TRL's prompt-completion format, parsed into a prompt's
messages and an ideal response (no Django imports).

A line is one of (TRL's dataset formats, https://huggingface.co/docs/trl/dataset_formats)::

    {"prompt": [{"role": "user", "content": "..."}, ...], "completion": [{"role": "assistant", "content": "..."}]}
    {"prompt": "plain text", "completion": "plain text"}         # standard: the prompt becomes one user turn
    {"messages": [..., {"role": "user", ...}, {"role": "assistant", "content": "..."}]}

``prompt`` and ``completion`` may each be text or messages. With ``messages`` (a whole
conversation, TRL's conversational language-modeling format) the last message must be the
assistant's: it is the completion, and everything before it is the prompt. The prompt must pass
``feedback.messages.messages_validate`` (so it ends with a user turn); a completion given as
messages must be exactly one assistant message. Other keys on a line (``id``, ``source``, ...) are
ignored. The completion text is kept verbatim; one that is blank, holds a NUL character or is over
``MAX_COMPLETION_CHARS`` characters is refused.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .jsonl import JSONLFormatError, read_jsonl
from .messages import MAX_COMPLETION_CHARS, MessagesError, messages_validate

EXTERNAL_ID_PREFIX = "demo:"


class DemonstrationFileError(JSONLFormatError):
    """A demonstration file with problems; ``problems`` lists every one as ``(line_number, message)``."""


@dataclass(frozen=True)
class ImportedDemonstration:
    """One parsed line: ``prompt_messages`` (``[{"role", "content"}, ...]``, ending with a user
    turn), the ideal ``completion`` text and its stable ``external_id`` (``demonstration_external_id``)."""

    prompt_messages: list[dict[str, str]]
    completion: str
    external_id: str


def demonstration_external_id(*, prompt_messages: list[dict[str, str]], completion: str) -> str:
    """``"demo:"`` + SHA-256 hex of the canonical JSON of ``{"completion": text, "prompt": messages}``
    (sorted keys, no spaces, UTF-8). 69 characters; the same pair always gives the same id."""
    canonical = json.dumps(
        {"prompt": prompt_messages, "completion": completion}, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return EXTERNAL_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _prompt_of(value: Any, name: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    try:
        return messages_validate(value)
    except MessagesError as error:
        raise ValueError(f"{name}: {error}") from None


def _completion_of(value: Any) -> str:
    if isinstance(value, list):
        if len(value) != 1 or not isinstance(value[0], dict) or value[0].get("role") != "assistant":
            raise ValueError("completion: must be text or exactly one {\"role\": \"assistant\", \"content\"} message")
        extra = set(value[0]) - {"role", "content"}
        if extra:
            raise ValueError(f"completion: the message has unknown keys: {', '.join(sorted(map(str, extra)))}")
        value = value[0].get("content")
    if not isinstance(value, str):
        raise ValueError(f"completion: must be text or one assistant message, not {type(value).__name__}")
    if not value.strip():
        raise ValueError("completion: is empty")
    if "\x00" in value:
        raise ValueError("completion: contains a NUL character")
    if len(value) > MAX_COMPLETION_CHARS:
        raise ValueError(f"completion: is {len(value)} characters; at most {MAX_COMPLETION_CHARS}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"completion: is not valid Unicode text ({error.reason} at character {error.start})") from None
    return value


def demonstration_parse(row: dict[str, Any]) -> ImportedDemonstration:
    """One line's object as an ``ImportedDemonstration`` (formats in the module docstring).

    Raises:
        ValueError: a readable reason naming the key: both or neither of ``messages`` and
            ``prompt``/``completion``, a prompt that ``messages_validate`` refuses, a ``messages``
            list not ending in an assistant turn, a completion that is not text or one assistant
            message, or a blank, NUL-holding or too long completion.
    """
    if "messages" in row:
        if "prompt" in row or "completion" in row:
            raise ValueError("give either messages, or prompt and completion, not both")
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("messages: must be a non-empty list of {role, content} messages")
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "assistant":
            raise ValueError("messages: the last message must be the assistant's (the demonstration)")
        if len(messages) < 2:
            raise ValueError("messages: there is no prompt before the assistant's message")
        prompt = _prompt_of(messages[:-1], "messages")
        completion = _completion_of([last])
    else:
        missing = [key for key in ("prompt", "completion") if key not in row]
        if missing:
            raise ValueError(f"missing {' and '.join(repr(key) for key in missing)} (or give messages)")
        prompt = _prompt_of(row["prompt"], "prompt")
        completion = _completion_of(row["completion"])
    return ImportedDemonstration(
        prompt_messages=prompt,
        completion=completion,
        external_id=demonstration_external_id(prompt_messages=prompt, completion=completion),
    )


def read_demonstrations(path: str | Path) -> list[ImportedDemonstration]:
    """Read and parse a whole demonstration file (JSON lines, gzip-compressed or plain).

    Returns: the demonstrations in file order (duplicates included).
    Raises:
        DemonstrationFileError: every bad line with its number (see ``feedback.jsonl.read_jsonl``
            and ``demonstration_parse``); a file with none at all.
        OSError: the file cannot be opened.
    """
    return read_jsonl(path, parse=demonstration_parse, noun="demonstrations", error_class=DemonstrationFileError)
