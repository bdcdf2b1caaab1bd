"""From a judge's answers to a comparison's verdict (pure code, no Django).

Words: a *label* is what the judge answered about the pair as shown ("A": the first shown, "B":
the second, "tie"); a *choice* is about the comparison's own sides (``"a"``, ``"b"``, ``"tie"``:
``feedback.models.Choice`` values). Every pair is shown in both orders: ``"ab"`` (completion a
shown as Response A) and ``"ba"`` (completion b shown as Response A).

- Per order, the principles' choices are aggregated by majority (more a than b: a; more b: b;
  equal, including all ties: tie). Calls that failed or gave no verdict are left out; an order
  with none left has no choice.
- The two orders combine: the same choice -> it; different choices -> tie, *inconsistent* (the
  answer flipped with the order: position bias). Either order without a choice -> no verdict and
  no vote.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

ORDERS = ("ab", "ba")
A, B, TIE = "a", "b", "tie"

# Keywords in any case; the labels A and B in capitals only ("the answer is a tricky one" is no verdict).
_WORD = r"(A|B|tie|TIE|Tie)"
_VERDICT_LINE = re.compile(
    r"(?i:verdict|answer|final answer|winner)\s*(?i:is)?\s*[:=\-]?\s*[\[\(\*\"']*\s*" + _WORD + r"\b"
)
_BRACKETED = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.I)
_NAMED = re.compile(r"\b(?i:response|assistant|answer|option)\s+(A|B)\b")


def verdict_parse(text: str, labels: Sequence[str]) -> str | None:
    """The label (``"A"``, ``"B"`` or ``"tie"``) a judge's text answer gives, or None.

    Tried in order, first match wins:
      1. the whole answer is one label, give or take punctuation and markdown (``"A"``, ``"**B**."``, ``"Tie"``);
      2. the last ``Verdict: X`` / ``Answer: X`` / ``Winner: X`` (a judge reasoning first ends with it);
      3. the last MT-bench style ``[[A]]``, ``[[B]]``, ``[[C]]`` (C: tie);
      4. exactly one of "Response A" / "Response B" named (a judge that only names the winner).
    A tie is only a verdict when ``labels`` allow it; otherwise that answer gives None.
    Args:
        text: the judge's raw answer.
        labels: the template's labels, ``("A", "B")`` or ``("A", "B", "tie")``.
    """
    found = _parse(text or "")
    if found is None or found not in labels:
        return None
    return found


def _normalise(word: str) -> str:
    word = word.strip()
    if word.upper() in ("A", "B"):
        return word.upper()
    return "tie"  # "tie" in any case, or MT-bench's "C"


def _parse(text: str) -> str | None:
    bare = re.sub(r"[\s\*\.\!\"'`\[\]\(\):]+", " ", text).strip()
    if re.fullmatch(r"(?i:tie)|A|B", bare) or re.fullmatch(r"(?i:(?:response|option)\s+)(A|B)", bare):
        return _normalise(bare.split()[-1])
    lines = _VERDICT_LINE.findall(text)
    if lines:
        return _normalise(lines[-1])
    bracketed = _BRACKETED.findall(text)
    if bracketed:
        return _normalise(bracketed[-1])
    named = {m.upper() for m in _NAMED.findall(text)}
    if len(named) == 1:
        return named.pop()
    return None


def label_to_choice(label: str | None, order: str) -> str | None:
    """A label about the pair as shown -> a choice about the comparison's sides.

    ``("A", "ab")`` -> ``"a"``; ``("A", "ba")`` -> ``"b"``; ``"tie"`` -> ``"tie"``; None -> None.
    Raises ValueError for an unknown order or label.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be ab or ba, not {order!r}")
    if label is None:
        return None
    if label == "tie":
        return TIE
    if label not in ("A", "B"):
        raise ValueError(f"unknown label {label!r}")
    first_is_a = order == "ab"
    return A if (label == "A") == first_is_a else B


def majority(choices: Sequence[str | None]) -> str | None:
    """The principles' choices aggregated: more a than b -> a, more b -> b, equal -> tie; None
    entries (failed or unparsed calls) are left out; None when nothing is left."""
    given = [c for c in choices if c is not None]
    if not given:
        return None
    wins_a, wins_b = given.count(A), given.count(B)
    return A if wins_a > wins_b else B if wins_b > wins_a else TIE


def orders_combine(ab: str | None, ba: str | None) -> tuple[str | None, bool]:
    """``(choice, inconsistent)`` from the two orders' choices: agreeing -> that choice; flipping
    -> ``("tie", True)``; either None -> ``(None, False)`` (no verdict)."""
    if ab is None or ba is None:
        return None, False
    if ab == ba:
        return ab, False
    return TIE, True


def score_label(score_first: float, score_second: float, tie_band: float) -> str:
    """A reward model's label for a pair as shown: ``"tie"`` when ``|first - second| <= tie_band``
    (reward units, the model's own scale), else the higher-scored side's label."""
    diff = score_first - score_second
    if abs(diff) <= tie_band:
        return "tie"
    return "A" if diff > 0 else "B"
