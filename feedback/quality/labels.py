"""Vote labels as codes for the agreement statistics: a nominal scale and an ordinal one.

Nominal: the four choices a vote can make, ``a``, ``b``, ``tie``, ``both_bad`` (codes 0-3). A tie
is a label like any other; skips and flags are not votes and never reach this module.

Ordinal: a 7-step scale from "strongly A" to "strongly B" in the stored a/b orientation (which
completion is ``completion_a`` in the database), never the screen sides, so two annotators who saw
the pair swapped still land on the same step when they meant the same completion:

    strong a = 1, clear a = 2, slight a = 3, tie = 4, slight b = 5, clear b = 6, strong b = 7

``both_bad`` is not a point between A and B, and an ``a``/``b`` vote without a strength (the
strength question is optional, and imported votes rarely have one) has no step: both are missing
on the ordinal scale (NaN, as ``krippendorff.alpha`` takes them), so an item's ordinal figures use
only its votes with a step. Codes here are 0-6 (step minus one), -1 for missing.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

LABELS: tuple[str, ...] = ("a", "b", "tie", "both_bad")
STEPS: tuple[str, ...] = ("strong a", "clear a", "slight a", "tie", "slight b", "clear b", "strong b")
MISSING = -1

_NOMINAL = {label: code for code, label in enumerate(LABELS)}
_ORDINAL = {
    ("a", "strong"): 0, ("a", "clear"): 1, ("a", "slight"): 2,
    ("tie", ""): 3,
    ("b", "slight"): 4, ("b", "clear"): 5, ("b", "strong"): 6,
}
_STRENGTHS = frozenset({"", "slight", "clear", "strong"})


def nominal_codes(choices: Iterable[str]) -> np.ndarray:
    """Codes 0-3 (int8, shape (n,)) for choices ``a``, ``b``, ``tie``, ``both_bad`` in ``LABELS`` order.

    Raises ValueError naming the first value that is not one of the four choices.
    """
    try:
        return np.fromiter((_NOMINAL[c] for c in choices), dtype=np.int8)
    except KeyError as error:
        raise ValueError(f"not a vote choice: {error.args[0]!r} (expected one of {', '.join(LABELS)})") from None


def ordinal_codes(choices: Iterable[str], strengths: Iterable[str | None]) -> np.ndarray:
    """Ordinal steps 0-6 (int8, shape (n,); step 1-7 minus one) or ``MISSING`` (-1) per vote.

    ``strengths`` pairs with ``choices`` (same length): ``slight``/``clear``/``strong`` or ``""``/None.
    Missing: ``both_bad``, and ``a``/``b`` without a strength. A tie with a strength, an unknown
    choice or an unknown strength raises ValueError (the database's constraints forbid them).
    """
    codes = []
    for choice, strength in zip(choices, strengths, strict=True):
        strength = strength or ""
        step = _ORDINAL.get((choice, strength))
        if step is None:
            if choice not in _NOMINAL or strength not in _STRENGTHS or (strength and choice not in ("a", "b")):
                raise ValueError(f"not a vote choice and strength: {choice!r}, {strength!r}")
            step = MISSING
        codes.append(step)
    return np.array(codes, dtype=np.int8)
