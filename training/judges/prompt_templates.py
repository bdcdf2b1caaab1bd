"""Judge prompt templates: versioned text files, the pair fenced so a response cannot break out (pure code).

A template is ``training/judges/prompts/<name>-v<version>.txt``, named ``name@version``
(``pairwise@1``). The file starts with ``key: value`` settings up to a line ``---``:
``allow_tie`` (true/false: the answer may be "tie"). The rest is the prompt, with the placeholders
``{conversation}``, ``{response_a}``, ``{response_b}`` and, for a per-principle template,
``{principle}``. A published file is never edited: a change is a new version, so an AI vote's
``judge_template`` always names the exact words the judge saw.

Prompt injection: every piece of data (the conversation, each response) is put in a fence of
backticks longer than any run of backticks inside it (CommonMark's rule), so nothing in a response
can close its fence or open a section of the template. Placeholders are filled in one pass, so a
response that contains ``{response_b}`` stays that text.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
PLACEHOLDER = re.compile(r"\{(conversation|response_a|response_b|principle)\}")
REF = re.compile(r"^([a-z][a-z0-9_-]{0,60})@([1-9][0-9]{0,5})$")
LABELS = ("A", "B")
TIE_LABEL = "tie"


class TemplateError(ValueError):
    """An unknown or malformed template reference or file."""


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded template. ``ref``: ``"name@version"``; ``labels``: the answers it allows
    (``("A", "B")`` or ``("A", "B", "tie")``); ``per_principle``: it has ``{principle}``."""

    ref: str
    body: str
    allow_tie: bool

    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS + ((TIE_LABEL,) if self.allow_tie else ())

    @property
    def per_principle(self) -> bool:
        return "{principle}" in self.body

    def render(self, *, conversation: Sequence[dict[str, str]], first: str, second: str, principle: str = "") -> str:
        """The prompt for one call: ``first`` shown as Response A, ``second`` as Response B.

        Args:
            conversation: the comparison's prompt messages (``[{"role", "content"}, ...]``).
            first, second: the two completion texts in the order shown.
            principle: the constitution's question (required iff ``per_principle``).
        Raises:
            TemplateError: a principle given to a template without ``{principle}``, or missing for one with it.
        """
        if self.per_principle != bool(principle):
            raise TemplateError(f"template {self.ref} {'needs' if self.per_principle else 'takes no'} principle")
        values = {
            "conversation": fence(conversation_text(conversation)),
            "response_a": fence(first),
            "response_b": fence(second),
            "principle": principle,
        }
        return PLACEHOLDER.sub(lambda match: values[match.group(1)], self.body)


def conversation_text(messages: Sequence[dict[str, str]]) -> str:
    """``role: content`` blocks, one per message, separated by blank lines."""
    return "\n\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)


def fence(text: str) -> str:
    """``text`` inside a backtick fence longer than any backtick run in it (at least 3), so it
    cannot be closed from inside: ``fence("hi")`` is ``"```\\nhi\\n```"``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    marks = "`" * max(3, longest + 1)
    return f"{marks}\n{text}\n{marks}"


def template_ref_parse(ref: str) -> tuple[str, int]:
    """``"pairwise@1"`` -> ``("pairwise", 1)``. Raises TemplateError for anything else."""
    match = REF.match(ref or "")
    if not match:
        raise TemplateError(f"{ref!r} is not a template reference like pairwise@1")
    return match.group(1), int(match.group(2))


@lru_cache(maxsize=64)
def template_load(ref: str) -> PromptTemplate:
    """Load ``name@version`` from ``PROMPTS_DIR``.

    Raises:
        TemplateError: a malformed reference, no such file, a missing ``---`` line, an unknown
            setting, or a body without the three data placeholders.
    """
    name, version = template_ref_parse(ref)
    path = PROMPTS_DIR / f"{name}-v{version}.txt"
    if not path.is_file():
        raise TemplateError(f"no prompt template {ref} (looked for {path.name})")
    head, sep, body = path.read_text(encoding="utf-8").partition("\n---\n")
    if not sep:
        raise TemplateError(f"template {ref}: no '---' line after its settings")
    settings: dict[str, str] = {}
    for line in head.splitlines():
        key, _, value = line.partition(":")
        settings[key.strip()] = value.strip().lower()
    unknown = set(settings) - {"allow_tie"}
    if unknown:
        raise TemplateError(f"template {ref}: unknown settings {', '.join(sorted(unknown))}")
    found = set(PLACEHOLDER.findall(body))
    if not {"conversation", "response_a", "response_b"} <= found:
        raise TemplateError(f"template {ref} lacks {{conversation}}, {{response_a}} or {{response_b}}")
    return PromptTemplate(ref=ref, body=body.strip() + "\n", allow_tie=settings.get("allow_tie") == "true")


def templates_available() -> list[str]:
    """Every template reference in ``PROMPTS_DIR``, sorted (``["pairwise@1", "principle@1"]``)."""
    refs = []
    for path in PROMPTS_DIR.glob("*-v*.txt"):
        name, _, version = path.stem.rpartition("-v")
        if version.isdigit():
            refs.append(f"{name}@{int(version)}")
    return sorted(refs)
