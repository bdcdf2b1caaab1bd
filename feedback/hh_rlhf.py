"""Anthropic HH-RLHF preference pairs: parse transcripts into a prompt and two responses, exactly
invertibly (no Django imports).

A line of an HH-RLHF file is ``{"chosen": transcript, "rejected": transcript}``; a transcript is
``"\\n\\nHuman: ...\\n\\nAssistant: ...\\n\\nHuman: ...\\n\\nAssistant: ..."``. The two transcripts of a
pair share a prefix and (usually) differ in the final assistant turn; the human preferred ``chosen``.
Source: Bai et al. 2022, "Training a Helpful and Harmless Assistant with RLHF",
https://github.com/anthropics/hh-rlhf (MIT).

How a pair is split (``pair_parse``):

- The prompt is the longest common prefix of the two transcripts that ends at a ``"\\n\\nAssistant:"``
  marker whose turn follows a Human turn (the prompt must end with a user turn). When the transcripts
  differ before their last turn, that is the last such marker they share, and each response holds the
  rest of its transcript, later turns and markers included (``diverged_before_last_turn``).
- The prompt text before that marker is cut at every ``"\\n\\nHuman:"`` and ``"\\n\\nAssistant:"`` marker
  into ``{"role": "user"|"assistant", "content"}`` messages; the content is what follows ``"Role:"``
  with exactly one leading space removed, otherwise verbatim (no strip: some turns start with two
  spaces, some responses are a lone space). The final, empty Assistant cue is not a message.
- Each response is what follows the prompt's final marker, one leading space removed, otherwise verbatim.

So ``transcript_build(prompt_messages=pair.prompt_messages, response=pair.chosen)`` gives back the
chosen transcript byte for byte, and likewise for rejected. The parser refuses (``ValueError``) a
turn whose text does not start with that one space (``"Assistant:Hi"`` or a transcript ending in
``"Assistant:"``): the messages format cannot record the missing space, so it could not be rebuilt.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .jsonl import JSONLFormatError, jsonl_objects, read_jsonl
from .messages import MAX_COMPLETION_CHARS, MessagesError, messages_validate, responses_equivalent

HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
SYSTEM = "\n\nSystem:"  # not in HH-RLHF; how plain-text TRL exports write a system turn
ROLE_OF_MARKER = {HUMAN: "user", ASSISTANT: "assistant"}
MARKER_OF_ROLE = {role: marker for marker, role in ROLE_OF_MARKER.items()}
EXTERNAL_ID_PREFIX = "hh-rlhf:"
_MARKERS = re.compile(f"({re.escape(HUMAN)}|{re.escape(ASSISTANT)})")
_TEXT_MARKERS = re.compile(f"({re.escape(HUMAN)}|{re.escape(ASSISTANT)}|{re.escape(SYSTEM)})")
ROLE_OF_TEXT_MARKER = {HUMAN: "user", ASSISTANT: "assistant", SYSTEM: "system"}


@dataclass(frozen=True)
class HHPair:
    """One HH-RLHF pair, split into the shared prompt and the two responses.

    Attributes:
        prompt_messages: ``[{"role": "user"|"assistant", "content": str}, ...]``, ending with a user turn.
        chosen: the preferred response (verbatim but for one leading space).
        rejected: the other response.
        diverged_before_last_turn: the transcripts differ before their last turn, so the responses
            hold more than one turn (their text contains ``"\\n\\nHuman:"``/``"\\n\\nAssistant:"`` markers).
        external_id: ``"hh-rlhf:" + sha256(chosen transcript + "\\0" + rejected transcript)`` (hex, UTF-8).
    """

    prompt_messages: list[dict[str, str]]
    chosen: str
    rejected: str
    diverged_before_last_turn: bool
    external_id: str

    @property
    def responses_identical(self) -> bool:
        """True when both responses differ at most in whitespace (``feedback.messages.responses_equivalent``)."""
        return responses_equivalent(self.chosen, self.rejected)


class HHRLHFFormatError(JSONLFormatError):
    """An HH-RLHF file with problems; ``problems`` lists every one as ``(line_number, message)``
    (line 1 is the first line; 0 for the file as a whole), and ``str()`` names the first 20."""


def external_id_of(chosen: str, rejected: str) -> str:
    """The stable key of a pair: ``"hh-rlhf:"`` + SHA-256 hex of ``chosen + "\\0" + rejected`` (UTF-8). 72 characters."""
    digest = hashlib.sha256(f"{chosen}\0{rejected}".encode("utf-8")).hexdigest()
    return EXTERNAL_ID_PREFIX + digest


def _common_prefix_length(a: str, b: str) -> int:
    """Length of the longest common prefix of two strings (compares in blocks, then characters)."""
    limit = min(len(a), len(b))
    i, block = 0, 256
    while i + block <= limit and a[i : i + block] == b[i : i + block]:
        i += block
    while i < limit and a[i] == b[i]:
        i += 1
    return i


def _turn_text(segment: str, where: str) -> str:
    if not segment.startswith(" "):
        raise ValueError(
            f"{where} has no space after its 'Role:' marker, so the transcript could not be rebuilt byte for byte"
        )
    return segment[1:]


def _messages_of(text: str) -> list[dict[str, str]]:
    """``"\\n\\nHuman: a\\n\\nAssistant: b..."`` as messages (``text`` starts with a marker)."""
    parts = _MARKERS.split(text)  # ["", marker, segment, marker, segment, ...]
    return [
        {"role": ROLE_OF_MARKER[marker], "content": _turn_text(segment, f"prompt turn {index + 1}")}
        for index, (marker, segment) in enumerate(zip(parts[1::2], parts[2::2]))
    ]


def _prompt_end(chosen: str, common: int) -> int:
    """Index just past the last ``"\\n\\nAssistant:"`` within ``chosen[:common]`` that follows a Human turn, or -1."""
    end = common
    while (start := chosen.rfind(ASSISTANT, 0, end)) >= 0:
        if chosen.rfind(HUMAN, 0, start) > chosen.rfind(ASSISTANT, 0, start):
            return start + len(ASSISTANT)
        end = start
    return -1


def _text_check(text: str, name: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{name} is not valid Unicode text ({error.reason} at character {error.start})") from None


def pair_parse(chosen: str, rejected: str) -> HHPair:
    """Split one HH-RLHF pair of transcripts into the shared prompt and the two responses (rules in the module docstring).

    Args:
        chosen: the preferred transcript, ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``.
        rejected: the other transcript.
    Returns: an ``HHPair``; ``transcript_build`` turns its prompt and either response back into the
        original transcript byte for byte.
    Raises:
        ValueError: a transcript that is not a string, is not valid Unicode (a lone surrogate), does
            not start with ``"\\n\\nHuman:"``; transcripts that share no ``"\\n\\nAssistant:"`` turn
            after a Human turn; a turn with no space after its marker; a prompt turn that is empty
            (an empty prompt) or breaks ``feedback.messages.messages_validate``; a response with a NUL
            character or over ``MAX_COMPLETION_CHARS`` characters.
    """
    for name, value in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(value, str):
            raise ValueError(f"{name} is {type(value).__name__}, not a string")
        _text_check(value, name)
        if not value.startswith(HUMAN):
            raise ValueError(f"{name} does not start with {HUMAN!r}: {value[:30]!r}")
    end = _prompt_end(chosen, _common_prefix_length(chosen, rejected))
    if end < 0:
        raise ValueError(f"the transcripts share no {ASSISTANT!r} marker after a Human turn")
    messages = _messages_of(chosen[: end - len(ASSISTANT)])
    if not any(message["content"].strip() for message in messages):
        raise ValueError("the prompt is empty")
    try:
        messages = messages_validate(messages)
    except MessagesError as error:
        raise ValueError(f"the prompt is unusable: {error}") from None
    responses = []
    for name, transcript in (("chosen", chosen), ("rejected", rejected)):
        response = _turn_text(transcript[end:], f"the {name} response")
        if "\x00" in response:
            raise ValueError(f"the {name} response contains a NUL character")
        if len(response) > MAX_COMPLETION_CHARS:
            raise ValueError(f"the {name} response is {len(response)} characters; at most {MAX_COMPLETION_CHARS}")
        responses.append(response)
    return HHPair(
        prompt_messages=messages,
        chosen=responses[0],
        rejected=responses[1],
        diverged_before_last_turn=any(_MARKERS.search(response) for response in responses),
        external_id=external_id_of(chosen, rejected),
    )


def transcript_build(*, prompt_messages: list[dict[str, str]], response: str) -> str:
    """The HH-RLHF transcript of a prompt and a response: the inverse of ``pair_parse``.

    Each message becomes ``"\\n\\nHuman: " + content`` (user) or ``"\\n\\nAssistant: " + content``
    (assistant), then ``"\\n\\nAssistant: " + response``.

    Raises:
        ValueError: a message whose role is neither user nor assistant (HH-RLHF has no system turn).
    """
    parts = []
    for message in prompt_messages:
        marker = MARKER_OF_ROLE.get(message["role"])
        if marker is None:
            raise ValueError(f"HH-RLHF transcripts have no {message['role']!r} turns")
        parts.append(f"{marker} {message['content']}")
    parts.append(f"{ASSISTANT} {response}")
    return "".join(parts)


def is_transcript_prompt(text: str) -> bool:
    """True when ``text`` is a prompt in transcript form: it starts with ``"\\n\\nHuman:"`` or
    ``"\\n\\nSystem:"`` and ends with the assistant cue ``"\\n\\nAssistant:"`` (how plain-text TRL
    rows, Arbiter's exports included, write a conversation)."""
    return text.startswith((HUMAN, SYSTEM)) and text.endswith(ASSISTANT) and len(text) > len(ASSISTANT)


def transcript_prompt_parse(text: str) -> list[dict[str, str]]:
    """A transcript-form prompt (``is_transcript_prompt``) as messages: cut at every
    ``"\\n\\nHuman:"``/``"\\n\\nAssistant:"``/``"\\n\\nSystem:"`` marker, each turn's text with exactly
    one leading space removed, the final empty assistant cue dropped. The inverse of
    ``feedback.exports.formats.prompt_text`` for messages whose content holds no marker.

    Raises:
        ValueError: a turn with no space after its marker (it could not be written back the same).
    """
    parts = _TEXT_MARKERS.split(text[: -len(ASSISTANT)])  # ["", marker, segment, ...]
    return [
        {"role": ROLE_OF_TEXT_MARKER[marker], "content": _turn_text(segment, f"turn {index + 1}")}
        for index, (marker, segment) in enumerate(zip(parts[1::2], parts[2::2]))
    ]


def _pair_of_object(row: dict) -> HHPair:
    missing = [key for key in ("chosen", "rejected") if key not in row]
    if missing:
        raise ValueError(f"missing {' and '.join(repr(key) for key in missing)}")
    return pair_parse(row["chosen"], row["rejected"])


def read_hh_rlhf(path: str | Path) -> list[HHPair]:
    """Read and parse a whole HH-RLHF JSON-lines file, gzip-compressed (told by its magic bytes) or plain.

    Blank lines are ignored; every other line must be a JSON object with string ``chosen`` and
    ``rejected`` transcripts that ``pair_parse`` accepts.

    Returns: the pairs in file order (duplicates included).
    Raises:
        HHRLHFFormatError: every problem found, as ``(line_number, message)``: not UTF-8, not JSON, not
            an object, a missing key, a transcript that is not a string or does not parse, a line over
            10 MB, a gzip stream that is truncated or corrupt (numbered with the line it stopped in),
            or a file with no pairs at all (line 0).
        OSError: the file cannot be opened.
    """
    return read_jsonl(path, parse=_pair_of_object, noun="pairs", error_class=HHRLHFFormatError)


def read_hh_rlhf_rows(path: str | Path) -> list[tuple[int, HHPair]]:
    """``read_hh_rlhf`` with each pair's line number: ``[(line_number, pair), ...]`` in file order.

    Raises: as ``read_hh_rlhf``.
    """
    rows: list[tuple[int, HHPair]] = []
    problems: list[tuple[int, str]] = []
    for number, row in jsonl_objects(path):
        if isinstance(row, ValueError):
            problems.append((number, str(row)))
            continue
        try:
            rows.append((number, _pair_of_object(row)))
        except ValueError as error:
            problems.append((number, str(error)))
    if not rows and not problems:
        problems.append((0, "the file holds no pairs"))
    if problems:
        raise HHRLHFFormatError(path, problems)
    return rows
