"""Where a reply ends when the model goes on to write another turn (no torch here, so both
generation backends share it): ``role_marker_find``, and the seed offset of a pair's second side."""
from __future__ import annotations

from collections.abc import Sequence

SECOND_SIDE_SEED_OFFSET = 1_000_003  # a pair's second sample (head_to_head: side B) is seeded with the first's plus this


def role_marker_find(text: str, markers: Sequence[str]) -> tuple[int, str] | None:
    """``(index, marker)`` of the earliest role marker in ``text`` (the longest one at that index), or None."""
    found = [(text.find(marker), -len(marker), marker) for marker in markers if marker in text]
    if not found:
        return None
    index, _, marker = min(found)
    return index, marker
