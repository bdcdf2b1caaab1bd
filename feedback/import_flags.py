"""Per-row flags of imported pairs: what an importer cannot keep faithfully (no Django imports).

A row of a preference file that is valid but doubtful is *flagged* with one or more codes:

``<column>_missing``
    An optional column (TRL's ``margin``; Arena's ``question_id``, ``judge``, ``tstamp``) is absent
    or null on this row while other rows of the same file have a value: the file mixes rows with and
    without it, so what the column meant for this row is unknown. A missing margin is never invented.
``strict_prefix``
    One response is a strict prefix of the other (compared by ``feedback.messages.response_key``):
    usually a truncated response, so the preference may be about the cut, not the content.
``diverged_before_last_turn``
    The two conversations differ before their last turn (HH-RLHF): each response holds the later
    turns of its own transcript, so the pair is not two answers to one shared prompt.

By default a file with any flagged row imports nothing: the refusal names the problem, the first
lines and how many (``feedback.imports.RowsRefusedError``). With ``allow_flagged`` the rows are
imported and their comparison keeps the codes (``Comparison.import_flags``, comma-separated,
sorted). Dataset snapshots and exports leave flagged comparisons out and count them as
``flagged_import`` unless their rules say ``include_flagged``.
"""
from __future__ import annotations

from collections.abc import Iterable

from .messages import response_key

STRICT_PREFIX = "strict_prefix"
DIVERGED_BEFORE_LAST_TURN = "diverged_before_last_turn"
MISSING_SUFFIX = "_missing"
MAX_FLAGS_CHARS = 200  # Comparison.import_flags

_LABELS = {
    STRICT_PREFIX: "one response is a strict prefix of the other, perhaps truncated",
    DIVERGED_BEFORE_LAST_TURN: "the conversations differ before their last turn; each response holds the later turns",
}


def missing_flag(column: str) -> str:
    """The code for an optional ``column`` absent on a row while other rows have it: ``"<column>_missing"``."""
    return column + MISSING_SUFFIX


def flag_label(code: str) -> str:
    """A person's words for a flag code (an unknown code is returned as it is)."""
    if code in _LABELS:
        return _LABELS[code]
    if code.endswith(MISSING_SUFFIX):
        column = code[: -len(MISSING_SUFFIX)]
        return f"no {column}, while other rows of the file have one; never invented"
    return code


def flags_join(codes: Iterable[str]) -> str:
    """Codes as stored in ``Comparison.import_flags``: distinct, sorted, comma-separated (``""`` for none)."""
    return ",".join(sorted(set(codes)))


def flags_split(stored: str) -> list[str]:
    """``Comparison.import_flags`` as a list of codes (``[]`` for ``""``)."""
    return [code for code in stored.split(",") if code]


def strict_prefix(text_a: str, text_b: str) -> bool:
    """True when one response's ``response_key`` is a non-empty strict prefix of the other's.

    ``strict_prefix("The answer is", "The answer is 42")`` is True; equivalent responses (same key)
    and an empty response (blank is not a cut-off answer but no answer) are not strict prefixes.
    """
    key_a, key_b = response_key(text_a), response_key(text_b)
    if not key_a or not key_b or key_a == key_b:
        return False
    shorter, longer = sorted((key_a, key_b), key=len)
    return longer.startswith(shorter)


def optional_columns_missing(present: Iterable[frozenset[str]], columns: Iterable[str]) -> set[str]:
    """The ``columns`` that some rows have (a non-null value) and others lack, given each row's set
    of present optional columns: a row lacking one of them gets ``missing_flag(column)``."""
    rows = list(present)
    wanted = set(columns)
    some = set().union(*rows) & wanted if rows else set()
    return {column for column in some if any(column not in row for row in rows)}
