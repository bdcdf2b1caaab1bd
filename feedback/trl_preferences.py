"""TRL preference files: rows of ``prompt``/``chosen``/``rejected``, parsed into a prompt's
messages and two response texts (no Django imports).

A row is one of TRL's preference formats (https://huggingface.co/docs/trl/dataset_formats)::

    {"prompt": [{"role": "user", "content": "..."}], "chosen": [{"role": "assistant", "content": "..."}],
     "rejected": [{"role": "assistant", "content": "..."}]}                   # conversational, explicit prompt
    {"prompt": "text", "chosen": "text", "rejected": "text"}                  # standard (plain text)
    {"chosen": [...whole conversation...], "rejected": [...whole conversation...]}   # implicit prompt

Explicit prompt: ``prompt`` is text (it becomes one user message) or messages that
``feedback.messages.messages_validate`` accepts (so it ends with a user turn); ``chosen`` and
``rejected`` are each text or a list of one assistant message.

Text in transcript form (``feedback.hh_rlhf.is_transcript_prompt``): a text ``prompt`` that starts
with ``"\\n\\nHuman:"`` (or ``"\\n\\nSystem:"``) and ends with the assistant cue ``"\\n\\nAssistant:"``
is the conversation written out, as TRL's plain-text HH-RLHF datasets and Arbiter's own plain-text
exports (``feedback.exports.formats.prompt_text``) write it. It is read back as its messages
(``feedback.hh_rlhf.transcript_prompt_parse``), and one leading space, where there is one, is
removed from each text response (the space after ``"Assistant:"``), so a plain-text export imports
as the same prompts and responses as the conversational one. A transcript turn with no space after
its marker is a problem.

Implicit prompt (no ``prompt``, or a null one): ``chosen`` and ``rejected`` must be message lists
(whole conversations). The prompt is their longest common prefix of messages, which must end with a
user turn; each response is the rest of its conversation and must be exactly one assistant message.
Plain-text ``chosen``/``rejected`` without a prompt are a problem: a prompt cut from two strings at
their first differing character (TRL's ``extract_prompt`` for text) would put the shared start of
the two answers into the prompt.

Problems (``ValueError``, the file is refused): a missing or null ``chosen``/``rejected``, a value
of the wrong type, a message with an unknown role or non-text content, a response message that is
not the assistant's, an empty or missing prompt, ``chosen`` equal to ``rejected`` (it carries no
preference; also when they differ only in whitespace, ``feedback.messages.responses_equivalent``),
a response over ``MAX_COMPLETION_CHARS`` characters or holding NUL, a ``margin`` that is not a number.

Refusals (``RowRefused``: the file is refused, or with ``skip_refused`` the row is skipped and reported): a response of more than one message
(explicit), or conversations whose remainders after the shared prefix are more than one message
each, or whose shared prefix ends with an assistant turn (implicit): the two sides diverged before
the last turn, and Arbiter stores a response as one assistant message. With ``allow_flagged`` such a
row is imported the way HH-RLHF pairs that diverge are: the prompt up to the last shared user turn,
each response the rest of its conversation as one text in transcript form
(``feedback.import_rows.continuation_text``), marked ``diverged_before_last_turn``.

Flags (``feedback.import_flags``: the file is refused, or with ``allow_flagged`` the row is imported
and its comparison marked): a row with no ``margin`` (absent or null) in a file where other rows have
one (``margin_missing``), and a response that is a strict prefix of the other (``strict_prefix``).

``margin`` (TRL's optional reward-margin column) is checked to be a number and **not stored**:
Arbiter's margins are derived from a vote's strength (``feedback.preferences.MARGIN_BY_STRENGTH``),
and an outside margin is in its own units (a score gap, a rating difference), so mapping it to a
strength would invent one. Other keys (``id``, ``score_chosen``, ...) are ignored.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .import_rows import (
    RowRefused,
    RowsRead,
    canonical_json,
    common_prefix_length,
    continuation_text,
    conversation_check,
    margin_check,
    read_rows,
    shared_prompt_end,
    text_check,
)
from .hh_rlhf import is_transcript_prompt, transcript_prompt_parse
from .messages import MessagesError, messages_validate, responses_equivalent

EXTERNAL_ID_PREFIX = "trl:"
OPTIONAL_COLUMNS = ("margin",)  # a file must have them on every row or none (else rows are flagged)
COLUMNS = ("prompt", "chosen", "rejected", *OPTIONAL_COLUMNS)


@dataclass(frozen=True)
class TRLPair:
    """One parsed row.

    Attributes:
        prompt_messages: ``[{"role", "content"}, ...]`` ending with a user turn.
        chosen: the preferred response's text (verbatim).
        rejected: the other response's text; never equal to ``chosen``.
        implicit_prompt: the prompt was the conversations' common prefix.
        external_id: ``trl_external_id`` of the three.
        optional_present: the ``OPTIONAL_COLUMNS`` the row has a (non-null) value for.
        diverged_before_last_turn: the sides ran past one response; each response is the rest of
            its conversation as one text (only on a refusal's ``flagged`` record).
    """

    prompt_messages: list[dict[str, str]]
    chosen: str
    rejected: str
    implicit_prompt: bool
    external_id: str
    optional_present: frozenset[str] = frozenset()
    diverged_before_last_turn: bool = False


def trl_external_id(*, prompt_messages: list[dict[str, str]], chosen: str, rejected: str) -> str:
    """``"trl:"`` + SHA-256 hex of the canonical JSON (sorted keys, no spaces, UTF-8) of
    ``{"prompt": messages, "chosen": text, "rejected": text}``. 68 characters. A text prompt and the
    same prompt as one user message, or a response as text and as one assistant message, give the
    same id: the id is of the content, not of how the row spelled it."""
    canonical = canonical_json({"prompt": prompt_messages, "chosen": chosen, "rejected": rejected})
    return EXTERNAL_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _prompt_of(value: Any) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("prompt: is empty")
        text_check(value, "prompt")
        if is_transcript_prompt(value):
            try:
                value = transcript_prompt_parse(value)
            except ValueError as error:
                raise ValueError(f"prompt (a transcript ending in 'Assistant:'): {error}") from None
        else:
            value = [{"role": "user", "content": value}]
    elif isinstance(value, list):
        value = conversation_check(value, "prompt")
    else:
        raise ValueError(f"prompt: must be text or a list of messages, not {type(value).__name__}")
    try:
        return messages_validate(value)
    except MessagesError as error:
        raise ValueError(f"prompt: {error}") from None


def _response_message(message: dict[str, str], field: str) -> str:
    if message["role"] != "assistant":
        raise ValueError(f"{field}: the response must be the assistant's message, not {message['role']!r}")
    return message["content"]


class _Diverged(Exception):
    """The two sides run past one response: ``reason`` for the refusal and, where the row can be
    stored the HH-RLHF way, ``alternative`` = ``(prompt, chosen text, rejected text)``."""

    def __init__(self, reason: str, alternative: tuple[list[dict[str, str]], str, str] | None = None):
        super().__init__(reason)
        self.reason, self.alternative = reason, alternative


def _flattened(messages: list[dict[str, str]], field: str) -> str | None:
    """``continuation_text`` of a response's messages, or None where it cannot be one text."""
    try:
        return continuation_text(messages, field)
    except ValueError:
        return None


def _response_of(value: Any, field: str) -> str | list[dict[str, str]]:
    """Text, or a list of exactly one assistant message (its text); a list of more messages is
    returned as the messages (a continuation, see ``trl_pair_parse``)."""
    if isinstance(value, str):
        return text_check(value, field)
    if not isinstance(value, list):
        raise ValueError(f"{field}: must be text or a list of messages, not {type(value).__name__}")
    messages = conversation_check(value, field)
    if not messages:
        raise ValueError(f"{field}: is an empty list of messages")
    if len(messages) > 1:
        return messages
    return _response_message(messages[0], field)


def _explicit(prompt: list[dict[str, str]], chosen: Any, rejected: Any) -> tuple[str, str]:
    responses = {"chosen": _response_of(chosen, "chosen"), "rejected": _response_of(rejected, "rejected")}
    long = {field: value for field, value in responses.items() if isinstance(value, list)}
    if not long:
        return responses["chosen"], responses["rejected"]
    reason = "; ".join(f"{field}: holds {len(value)} messages" for field, value in long.items()) + (
        "; a response is stored as one assistant message, so a multi-turn continuation cannot be imported"
    )
    texts = {field: _flattened(value, field) if isinstance(value, list) else value for field, value in responses.items()}
    alternative = None if None in texts.values() else (prompt, texts["chosen"], texts["rejected"])
    raise _Diverged(reason, alternative)


def _implicit(chosen: Any, rejected: Any) -> tuple[list[dict[str, str]], str, str]:
    if not isinstance(chosen, list) or not isinstance(rejected, list):
        raise ValueError(
            "prompt: missing; plain-text chosen and rejected need a prompt "
            "(an implicit prompt is taken only from two message lists)"
        )
    chosen_messages = conversation_check(chosen, "chosen")
    rejected_messages = conversation_check(rejected, "rejected")
    if chosen_messages == rejected_messages:
        raise ValueError("chosen equals rejected: a pair needs two different responses to carry a preference")
    shared = common_prefix_length(chosen_messages, rejected_messages)
    if shared == 0:
        raise ValueError("prompt: missing, and chosen and rejected differ from their first message, so they share no prompt")
    for field, messages in (("chosen", chosen_messages), ("rejected", rejected_messages)):
        if len(messages) == shared:
            raise ValueError(f"{field}: has no response after the prompt it shares with the other conversation")
    rest_chosen, rest_rejected = chosen_messages[shared:], rejected_messages[shared:]
    if len(rest_chosen) > 1 or len(rest_rejected) > 1:
        raise _Diverged(
            f"the conversations differ at message {shared}, before their last turn "
            f"(chosen continues with {len(rest_chosen)} messages, rejected with {len(rest_rejected)}); "
            "a response is stored as one assistant message",
            _diverged_alternative(chosen_messages, rejected_messages),
        )
    chosen_text = _response_message(rest_chosen[0], "chosen")
    rejected_text = _response_message(rest_rejected[0], "rejected")
    prompt = chosen_messages[:shared]
    if prompt[-1]["role"] != "user":
        raise _Diverged(
            f"the prompt the conversations share ends with a {prompt[-1]['role']} turn, not a user turn",
            _diverged_alternative(chosen_messages, rejected_messages),
        )
    try:
        prompt = messages_validate(prompt)
    except MessagesError as error:
        raise ValueError(f"prompt (shared by chosen and rejected): {error}") from None
    return prompt, chosen_text, rejected_text


def _diverged_alternative(chosen: list[dict[str, str]], rejected: list[dict[str, str]]):
    """The HH-RLHF way to store two conversations that diverge before their last turn: the prompt up
    to their last shared user turn, each response the rest as one text; None where there is no such
    prompt or a rest does not start with the assistant."""
    end = shared_prompt_end(chosen, rejected)
    if not end:
        return None
    try:
        prompt = messages_validate(chosen[:end])
    except MessagesError:
        return None
    texts = _flattened(chosen[end:], "chosen"), _flattened(rejected[end:], "rejected")
    return None if None in texts else (prompt, *texts)


def trl_pair_parse(row: dict[str, Any]) -> TRLPair:
    """One row of a TRL preference file as a ``TRLPair`` (formats and rules in the module docstring).

    Raises:
        ValueError: a problem, naming the field (``"missing 'rejected'"``, ``"chosen: ..."``).
        RowRefused: a valid row that cannot be stored (a multi-message response), with the reason.
    """
    missing = [key for key in ("chosen", "rejected") if key not in row]
    if missing:
        raise ValueError(f"missing {' and '.join(repr(key) for key in missing)}")
    for key in ("chosen", "rejected"):
        if row[key] is None:
            raise ValueError(f"{key}: is null")
    margin_check(row.get("margin"))
    optional_present = frozenset(column for column in OPTIONAL_COLUMNS if row.get(column) is not None)
    implicit = row.get("prompt") is None
    try:
        if implicit:
            prompt, chosen, rejected = _implicit(row["chosen"], row["rejected"])
        else:
            prompt = _prompt_of(row["prompt"])
            chosen, rejected = _explicit(prompt, row["chosen"], row["rejected"])
            if isinstance(row["prompt"], str) and is_transcript_prompt(row["prompt"]):
                chosen, rejected = _after_cue(row["chosen"], chosen), _after_cue(row["rejected"], rejected)
    except _Diverged as diverged:
        flagged = None
        if diverged.alternative is not None and not responses_equivalent(*diverged.alternative[1:]):
            prompt, chosen, rejected = diverged.alternative
            flagged = TRLPair(
                prompt_messages=prompt, chosen=chosen, rejected=rejected, implicit_prompt=implicit,
                external_id=trl_external_id(prompt_messages=prompt, chosen=chosen, rejected=rejected),
                optional_present=optional_present, diverged_before_last_turn=True,
            )
        raise RowRefused(diverged.reason, flagged=flagged) from None
    if chosen == rejected:
        raise ValueError("chosen equals rejected: a pair needs two different responses to carry a preference")
    if responses_equivalent(chosen, rejected):
        raise ValueError(
            "chosen equals rejected up to whitespace: a pair needs two different responses to carry a preference"
        )
    return TRLPair(
        prompt_messages=prompt,
        chosen=chosen,
        rejected=rejected,
        implicit_prompt=implicit,
        external_id=trl_external_id(prompt_messages=prompt, chosen=chosen, rejected=rejected),
        optional_present=optional_present,
    )


def _after_cue(value: Any, text: str) -> str:
    """A text response that follows a transcript prompt's ``"Assistant:"`` cue, without the one
    space that separates them (a response given as messages is kept as it is)."""
    return text[1:] if isinstance(value, str) and text.startswith(" ") else text


def read_trl_preferences(path: str | Path) -> RowsRead[TRLPair]:
    """Read and parse a whole TRL preference file: JSON lines (gzip or plain) or Parquet.

    Returns: every row in file order as ``(number, TRLPair or RowRefused)`` (``feedback.import_rows.RowsRead``).
    Raises:
        PreferenceFileError: every problem with its line or row number; nothing should be imported.
        OSError: the file cannot be opened.
    """
    return read_rows(path, parse=trl_pair_parse, columns=COLUMNS, noun="preference pairs")
