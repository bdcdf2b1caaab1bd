"""Which questions a campaign asks with each vote, and the check of a vote's answers against them.

Pure: no Django imports. ``feedback.services.vote_submit`` reads the campaign's settings in the
vote's own statement and calls ``answers_check``; the annotator page renders ``Questions``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OFF, OPTIONAL, REQUIRED = "off", "optional", "required"


@dataclass(frozen=True)
class Questions:
    """What a campaign asks: ``strength`` (how strongly), ``aspects`` (``[(name, label), ...]`` in
    order), ``rationale`` (``off``/``optional``/``required``), ``demonstration`` (the "write a better
    response" box)."""

    strength: bool
    aspects: tuple[tuple[str, str], ...]
    rationale: str
    demonstration: bool

    @property
    def aspect_names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.aspects)


def questions_of(*, ask_strength: Any, aspects: Any, rationale: str, ask_demonstration: Any) -> Questions:
    """A campaign's question settings (model fields, or the raw columns of a SQL row: ``aspects``
    may come as JSON text, booleans as 0/1) -> ``Questions``."""
    if isinstance(aspects, (str, bytes)):
        aspects = json.loads(aspects or "[]")
    pairs = tuple(
        (str(a["name"]), str(a.get("label") or a["name"]).strip() or str(a["name"]))
        for a in (aspects or []) if isinstance(a, Mapping) and a.get("name")
    )
    return Questions(bool(ask_strength), pairs, rationale or OPTIONAL, bool(ask_demonstration))


def answers_check(
    questions: Questions, *, strength: str, rationale: str, aspects: Mapping[str, str], demonstration: str
) -> dict[str, str]:
    """The problems of a vote's answers under a campaign's questions, as ``{field: message}``
    (empty: the answers fit). An empty answer is "not given" and is always allowed, except a
    reason where the campaign requires one (blank or whitespace-only counts as none)."""
    errors: dict[str, str] = {}
    if strength and not questions.strength:
        errors["strength"] = "this campaign does not ask how strongly; leave it empty"
    for name, value in aspects.items():
        if value and name not in questions.aspect_names:
            errors[name] = "this campaign does not ask about this aspect; leave it empty"
    if questions.rationale == REQUIRED and not (rationale or "").strip():
        errors["rationale"] = "this campaign asks for a reason with every vote: say why"
    elif questions.rationale == OFF and (rationale or "").strip():
        errors["rationale"] = "this campaign does not ask for a reason; leave it empty"
    if demonstration and not questions.demonstration:
        errors["demonstration"] = "this campaign does not take a better response; leave it empty"
    return errors
