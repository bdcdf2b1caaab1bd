"""A vote in the annotator's words, and what differs between two votes (no Django imports).

Votes here are in screen terms: ``choice`` is ``left``/``right``/``tie``/``both_bad``, ``strength``
``""``/``slight``/``clear``/``strong``, and each aspect ``""``/``left``/``right``/``tie``.
"""
from __future__ import annotations

from collections.abc import Mapping

CHOICE_WORDS = {"left": "Left", "right": "Right", "tie": "Tie", "both_bad": "Both bad"}
ASPECT_WORDS = {"left": "left", "right": "right", "tie": "same", "": "no answer"}


def vote_in_words(choice: str, strength: str = "") -> str:
    """``("left", "clear")`` -> ``"Left (clear)"``; ``("tie", "")`` -> ``"Tie"``."""
    said = CHOICE_WORDS.get(choice, choice.replace("_", " "))
    return f"{said} ({strength})" if strength else said


def vote_difference(before: Mapping[str, str], after: Mapping[str, str], aspects: tuple[str, ...]) -> str:
    """One sentence saying how vote ``after`` (just sent) differs from ``before`` (already stored).

    Both map ``choice``, ``strength``, ``rationale`` and each name in ``aspects`` to screen terms.
    E.g. ``"You already voted Left (clear); this vote says Right (slight)."`` or, with the same
    choice, ``"You already voted Left (clear); this vote differs in: honesty (left, not same), reason."``
    """
    stored = vote_in_words(before.get("choice", ""), before.get("strength", ""))
    sent = vote_in_words(after.get("choice", ""), after.get("strength", ""))
    if stored != sent:
        return f"You already voted {stored}; this vote says {sent}."
    differs = [
        f"{name} ({ASPECT_WORDS.get(after.get(name, ''), after.get(name))}, not "
        f"{ASPECT_WORDS.get(before.get(name, ''), before.get(name))})"
        for name in aspects
        if (before.get(name) or "") != (after.get(name) or "")
    ]
    if (before.get("rationale") or "").strip() != (after.get("rationale") or "").strip():
        differs.append("reason")
    if not differs:
        return f"You already voted {stored}."
    return f"You already voted {stored}; this vote differs in: {', '.join(differs)}."
