"""Critique-revise templates: versioned JSON files in ``templates/`` (``critique-revise-v1.json``),
named ``"name@version"``. Pure code: no Django, no torch.

A template holds two user turns, each with a ``{principle}`` slot: the critique request and the
revision request. The conversation a reviser sees (Bai et al. 2022, section 3.1):

    prompt turns ... user | assistant: response | user: critique request -> assistant: critique
    ... | user: revision request -> assistant: revision

The response and critique travel as assistant turns of the chat template, never inside the
request text, so whatever they say cannot change the requests' wording.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_TEMPLATE = "critique-revise@1"


@dataclass(frozen=True)
class CritiqueTemplate:
    """A loaded template: ``ref`` ("name@version") and its two request texts."""

    ref: str
    critique_request: str
    revision_request: str

    def critique_turns(self, messages: list[dict], response: str, principle: str) -> list[dict]:
        """The chat that asks for a critique of ``response`` (the reply to ``messages``) by ``principle``."""
        return [*messages, {"role": "assistant", "content": response},
                {"role": "user", "content": self.critique_request.replace("{principle}", principle)}]

    def revision_turns(self, messages: list[dict], response: str, principle: str, critique: str) -> list[dict]:
        """The chat that asks for the revision, after the critique turn."""
        return [*self.critique_turns(messages, response, principle), {"role": "assistant", "content": critique},
                {"role": "user", "content": self.revision_request.replace("{principle}", principle)}]


def template_refs() -> list[str]:
    """Every shipped template, as "name@version", sorted."""
    refs = []
    for path in TEMPLATES_DIR.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        refs.append(f"{data['name']}@{data['version']}")
    return sorted(refs)


@cache
def template_load(ref: str) -> CritiqueTemplate:
    """Load template ``ref`` ("name@version").

    Raises ValueError naming the shipped templates when there is no such file or it lacks a request.
    """
    name, _, version = ref.partition("@")
    path = TEMPLATES_DIR / f"{name}-v{version}.json"
    if not name or not version.isdigit() or not path.is_file():
        raise ValueError(f"no critique-revise template {ref!r}; shipped: {', '.join(template_refs())}")
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("critique_request", "revision_request"):
        if "{principle}" not in data.get(key, ""):
            raise ValueError(f"template {ref!r}: {key} must contain {{principle}}")
    return CritiqueTemplate(ref, data["critique_request"], data["revision_request"])


def principle_draw(principles: list[str], *, seed: int, completion_id: int) -> str:
    """The principle a response is checked against: drawn uniformly, fixed by ``seed`` and the
    response's completion id (so a rerun draws the same one)."""
    return random.Random(f"{seed}:{completion_id}").choice(principles)
