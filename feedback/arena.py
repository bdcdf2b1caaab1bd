"""Chatbot-Arena battle files: rows of two models' conversations and the judge's verdict, parsed
into a prompt, two responses and a choice (no Django imports).

A row (the shape of LMSYS's ``chatbot_arena_conversations``; Zheng et al. 2023, "Judging
LLM-as-a-Judge with MT-Bench and Chatbot Arena", https://huggingface.co/datasets/lmsys/chatbot_arena_conversations)::

    {"model_a": "vicuna-13b", "model_b": "koala-13b", "winner": "model_a",
     "conversation_a": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}],
     "conversation_b": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}],
     "judge": "arena_user_973", "question_id": "...", "tstamp": 1682351591.1322, ...}

``winner`` is one of ``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``, which become the choices
``a``, ``b``, ``tie``, ``both_bad``. Each conversation must end with the assistant's answer (the
response judged); everything before it is the prompt, which must be the same in both and end with
a user turn (``feedback.messages.messages_validate``).

Multi-turn battles whose two sides differ before the last turn (in the Arena each side's earlier
answers differ, so almost every multi-turn battle) are **refused** (``RowRefused``: the file is
refused, or with ``skip_refused`` the battle is skipped and reported), not imported by their longest common prefix: the verdict judged the whole conversation,
and storing it as a preference between the first answers would claim a judgement nobody made.
With ``allow_flagged`` such a battle is imported whole, the HH-RLHF way: the prompt up to the last
user turn both sides share, each answer the rest of its side's conversation as one text, marked
``diverged_before_last_turn``.

A battle whose two final answers are the same text, or differ only in whitespace, is parsed
(``responses_identical``); the importer skips and counts it, as it carries no preference between the texts.

Flags (``feedback.import_flags``: the file is refused, or with ``allow_flagged`` the battle is
imported and marked): a battle lacking ``question_id``, ``judge`` or ``tstamp`` while other battles
of the file have it (``<key>_missing``: it may be a different battle with the same text), and an
answer that is a strict prefix of the other (``strict_prefix``).

Other keys are not stored. ``judge`` is not made an annotator: each imported vote is by one
system user named after the import's source (``feedback.imports``), so thousands of anonymous
judges do not become accounts. ``judge``, ``question_id`` and ``tstamp`` do enter the
``external_id``, so two distinct battles that happen to have the same text stay two.
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
    model_name_check,
    read_rows,
    shared_prompt_end,
)
from .messages import MessagesError, messages_validate, responses_equivalent

EXTERNAL_ID_PREFIX = "arena:"
CHOICE_OF_WINNER = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}
REQUIRED = ("model_a", "model_b", "winner", "conversation_a", "conversation_b")
IDENTITY = ("question_id", "judge", "tstamp")  # optional keys that tell two battles apart
COLUMNS = REQUIRED + IDENTITY


@dataclass(frozen=True)
class ArenaBattle:
    """One parsed battle.

    Attributes:
        prompt_messages: ``[{"role", "content"}, ...]`` shared by both sides, ending with a user turn.
        model_a, model_b: the models' names, verbatim (1-200 characters).
        response_a, response_b: each side's final assistant message.
        choice: ``"a"``, ``"b"``, ``"tie"`` or ``"both_bad"`` (``CHOICE_OF_WINNER``).
        external_id: ``arena_external_id`` of the row.
        optional_present: the ``IDENTITY`` keys the row has a (non-null) value for.
        diverged_before_last_turn: a multi-turn battle whose answers hold the later turns (only on
            a refusal's ``flagged`` record).
    """

    prompt_messages: list[dict[str, str]]
    model_a: str
    model_b: str
    response_a: str
    response_b: str
    choice: str
    external_id: str
    optional_present: frozenset[str] = frozenset()
    diverged_before_last_turn: bool = False

    @property
    def responses_identical(self) -> bool:
        """True when the two answers differ at most in whitespace (``feedback.messages.responses_equivalent``)."""
        return responses_equivalent(self.response_a, self.response_b)


def arena_external_id(*, battle: dict[str, Any]) -> str:
    """``"arena:"`` + SHA-256 hex of the canonical JSON (sorted keys, no spaces, UTF-8) of the
    battle: ``model_a``, ``model_b``, ``winner``, both conversations (as normalised ``{role, content}``
    messages) and, when not null, ``question_id``, ``judge`` and ``tstamp``. 70 characters."""
    return EXTERNAL_ID_PREFIX + hashlib.sha256(canonical_json(battle).encode("utf-8")).hexdigest()


def _conversation_of(value: Any, field: str) -> list[dict[str, str]]:
    messages = conversation_check(value, field)
    if len(messages) < 2:
        raise ValueError(f"{field}: needs a user turn and the assistant's answer; it has {len(messages)} message(s)")
    if messages[-1]["role"] != "assistant":
        raise ValueError(f"{field}: the last message must be the assistant's (the answer judged), not {messages[-1]['role']!r}")
    return messages


def arena_battle_parse(row: dict[str, Any]) -> ArenaBattle:
    """One row of an Arena battle file as an ``ArenaBattle`` (rules in the module docstring).

    Raises:
        ValueError: a problem naming the field: a missing or null required key, a blank model name,
            an unknown ``winner``, a conversation that is not a list of messages or does not end with
            the assistant's answer, a prompt that ``messages_validate`` refuses.
        RowRefused: the two conversations differ before their last turn.
    """
    missing = [key for key in REQUIRED if row.get(key) is None]
    if missing:
        raise ValueError(f"missing {' and '.join(repr(key) for key in missing)}")
    model_a = model_name_check(row["model_a"], "model_a")
    model_b = model_name_check(row["model_b"], "model_b")
    winner = row["winner"]
    if not isinstance(winner, str) or winner not in CHOICE_OF_WINNER:
        raise ValueError(
            f"winner: {str(winner)[:50]!r} is not one of {', '.join(repr(key) for key in CHOICE_OF_WINNER)}"
        )
    conversation_a = _conversation_of(row["conversation_a"], "conversation_a")
    conversation_b = _conversation_of(row["conversation_b"], "conversation_b")
    battle = {"model_a": model_a, "model_b": model_b, "winner": winner,
              "conversation_a": conversation_a, "conversation_b": conversation_b}
    battle.update((key, row[key]) for key in IDENTITY if row.get(key) is not None)
    parsed = {"model_a": model_a, "model_b": model_b, "choice": CHOICE_OF_WINNER[winner],
              "external_id": arena_external_id(battle=battle),
              "optional_present": frozenset(key for key in IDENTITY if row.get(key) is not None)}
    prompt_a, prompt_b = conversation_a[:-1], conversation_b[:-1]
    if prompt_a != prompt_b:
        raise RowRefused(
            f"conversation_a and conversation_b differ at message {common_prefix_length(prompt_a, prompt_b)}, "
            "before their last turn (a multi-turn battle); only the final answers to one shared prompt can be stored",
            flagged=_diverged_battle(conversation_a, conversation_b, parsed),
        )
    try:
        prompt = messages_validate(prompt_a)
    except MessagesError as error:
        raise ValueError(f"conversation_a: prompt (every message before the answer): {error}") from None
    return ArenaBattle(
        prompt_messages=prompt, response_a=conversation_a[-1]["content"], response_b=conversation_b[-1]["content"],
        **parsed,
    )


def _diverged_battle(conversation_a, conversation_b, parsed: dict[str, Any]) -> ArenaBattle | None:
    """A multi-turn battle stored the HH-RLHF way, for an import that allows flagged rows: the
    prompt up to the last user turn both sides share, each answer the rest of its side's
    conversation as one text (``continuation_text``), marked ``diverged_before_last_turn``; None
    where the sides share no user turn."""
    end = shared_prompt_end(conversation_a, conversation_b)
    if not end:
        return None
    try:
        prompt = messages_validate(conversation_a[:end])
        response_a = continuation_text(conversation_a[end:], "conversation_a")
        response_b = continuation_text(conversation_b[end:], "conversation_b")
    except ValueError:
        return None
    return ArenaBattle(prompt_messages=prompt, response_a=response_a, response_b=response_b,
                       diverged_before_last_turn=True, **parsed)


def read_arena_battles(path: str | Path) -> RowsRead[ArenaBattle]:
    """Read and parse a whole Arena battle file: JSON lines (gzip or plain) or Parquet.

    Returns: every row in file order as ``(number, ArenaBattle or RowRefused)``.
    Raises:
        PreferenceFileError: every problem with its line or row number; nothing should be imported.
        OSError: the file cannot be opened.
    """
    return read_rows(path, parse=arena_battle_parse, columns=COLUMNS, noun="battles")
