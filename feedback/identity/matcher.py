"""Matching responses against identity patterns: pure Python (``re``), no Django.

Two kinds of pattern:

- ``word``: a word or phrase matched as whole words (not inside a longer word), in any case;
  runs of whitespace in the phrase match any whitespace, and a straight apostrophe also matches
  a curly one ("I'm Claude" matches "i’m  claude").
- ``regex``: a Python regular expression (``re``), also matched in any case (write ``(?-i:...)``
  for a case-sensitive part).

Safety of admins' regexes. ``re`` has no timeout, so a pattern that can backtrack exponentially
(``(a+)+$``) could stall a scan. ``regex_check`` therefore refuses, before anything is stored:
patterns longer than ``MAX_PATTERN_CHARS``; a repeat (``*``, ``+``, ``{m,n}``) of something
that itself holds a repeat or an alternation (``(a+)+``, ``(a|ab)*``: the shapes of catastrophic
backtracking); repeat counts above ``MAX_REPEAT``; back-references and named groups (they cannot
be combined with other patterns). What is left backtracks at most polynomially on the bounded
texts we store. The check is conservative (``(?:foo|bar)+`` is refused too); identity phrases
rarely need more than literal words, character classes and single repeats.

Speed: ``PatternSet`` compiles one combined alternation per scope (global, and each model name)
once; ``identity_matches`` runs that on each text and only when it matches looks for which
patterns did, so a clean text costs one regex search per scope that applies to it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

try:  # Python 3.11+: the parser behind ``re.compile``
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

WORD = "word"
REGEX = "regex"
KINDS = (WORD, REGEX)
MAX_PATTERN_CHARS = 300
MAX_REPEAT = 1000
GLOBAL = ""  # the scope of a pattern that applies to every completion

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
if hasattr(sre_constants, "POSSESSIVE_REPEAT"):
    _REPEATS.add(sre_constants.POSSESSIVE_REPEAT)


class PatternError(ValueError):
    """A pattern that cannot be used; the message says why, in a person's words."""


@dataclass(frozen=True)
class PatternSpec:
    """One active pattern as the matcher needs it: its id, ``text``, ``kind`` (``word``/``regex``)
    and ``scope`` (``""``: every completion; otherwise the model name whose completions it applies to)."""

    id: int
    text: str
    kind: str
    scope: str = GLOBAL


def _has_risky(items, inside_repeat: bool) -> str | None:
    """Why a parsed regex may backtrack badly (a message), or None."""
    for op, value in items:
        if op in _REPEATS:
            low, high, body = value
            if high != sre_constants.MAXREPEAT and high > MAX_REPEAT or low > MAX_REPEAT:
                return f"a repeat count above {MAX_REPEAT}"
            if inside_repeat and high > 1:
                return "a repeated part inside another repeat (like (a+)+); this can take exponential time"
            reason = _has_risky(body, inside_repeat or high > 1)
            if reason:
                return reason
        elif op == sre_constants.BRANCH:
            if inside_repeat:
                return "an alternation inside a repeat (like (a|ab)*); this can take exponential time"
            for branch in value[1]:
                reason = _has_risky(branch, inside_repeat)
                if reason:
                    return reason
        elif op == sre_constants.SUBPATTERN:
            reason = _has_risky(value[-1], inside_repeat)
            if reason:
                return reason
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            reason = _has_risky(value[1], inside_repeat)
            if reason:
                return reason
        elif op in (sre_constants.GROUPREF, getattr(sre_constants, "GROUPREF_EXISTS", None)):
            return "a back-reference; these are not allowed"
        elif op == getattr(sre_constants, "ATOMIC_GROUP", None):
            reason = _has_risky(value, inside_repeat)
            if reason:
                return reason
    return None


def regex_check(text: str) -> str:
    """``text`` when it is a regular expression the matcher accepts; otherwise PatternError saying why
    (does not compile, too long, named groups, back-references, nested or alternated repeats)."""
    if len(text) > MAX_PATTERN_CHARS:
        raise PatternError(f"is {len(text)} characters; at most {MAX_PATTERN_CHARS}")
    try:
        parsed = sre_parse.parse(f"(?:{text})", re.IGNORECASE)
        re.compile(f"(?:{text})", re.IGNORECASE)
    except (re.error, OverflowError, RecursionError) as error:
        hint = "; write flags as a group, e.g. (?-i:...)" if "global flags" in str(error) else ""
        raise PatternError(f"is not a valid regular expression: {error.msg if isinstance(error, re.error) else error}{hint}") from None
    if parsed.state.groupdict:
        raise PatternError("must not name groups ((?P<name>...)); use (?:...)")
    reason = _has_risky(list(parsed), False)
    if reason:
        raise PatternError(f"is refused: it has {reason}")
    if re.search(f"(?:{text})", "", re.IGNORECASE):
        raise PatternError("matches an empty text, so it would flag every response")
    return text


def word_source(text: str) -> str:
    """The regular expression of a ``word`` pattern: whole words, any whitespace between them,
    straight and curly apostrophes alike. Raises PatternError for an empty or too long phrase."""
    words = text.split()
    if not words:
        raise PatternError("must not be empty")
    if len(text) > MAX_PATTERN_CHARS:
        raise PatternError(f"is {len(text)} characters; at most {MAX_PATTERN_CHARS}")
    escaped = [re.sub("['’]", "['’]", re.escape(word)) for word in words]
    return r"(?<!\w)" + r"\s+".join(escaped) + r"(?!\w)"


def pattern_source(spec: PatternSpec) -> str:
    """The regular expression source of one pattern (checked). Raises PatternError."""
    if spec.kind == WORD:
        return word_source(spec.text)
    if spec.kind == REGEX:
        return regex_check(spec.text)
    raise PatternError(f"unknown kind {spec.kind!r}; expected one of {', '.join(KINDS)}")


class PatternSet:
    """Compiled patterns: per scope, one combined regex and each pattern's own regex.

    Build it with ``pattern_set(specs)`` (cached per tuple of specs). A pattern that no longer
    passes the checks (it cannot be stored so, but rows may be edited by hand) is left out.
    """

    def __init__(self, specs: Iterable[PatternSpec]):
        self.specs: tuple[PatternSpec, ...] = tuple(specs)
        by_scope: dict[str, list[tuple[PatternSpec, re.Pattern]]] = {}
        for spec in self.specs:
            try:
                compiled = re.compile(pattern_source(spec), re.IGNORECASE)
            except (PatternError, re.error):
                continue
            by_scope.setdefault(spec.scope, []).append((spec, compiled))
        self._scopes = {
            scope: (re.compile("|".join(f"(?:{p.pattern})" for _, p in items), re.IGNORECASE), items)
            for scope, items in by_scope.items()
        }

    def __bool__(self) -> bool:
        return bool(self._scopes)

    def matches(self, model_name: str, text: str) -> set[int]:
        """Ids of the patterns matching one completion's ``text`` (by ``model_name``)."""
        found: set[int] = set()
        for scope in {GLOBAL, model_name}:
            entry = self._scopes.get(scope)
            if entry is None or not entry[0].search(text):
                continue
            found.update(spec.id for spec, compiled in entry[1] if compiled.search(text))
        return found


@lru_cache(maxsize=8)
def pattern_set(specs: tuple[PatternSpec, ...]) -> PatternSet:
    """The compiled ``PatternSet`` of these specs, compiled once per distinct tuple."""
    return PatternSet(specs)


def identity_matches(texts: Sequence[tuple[str, str]], patterns: PatternSet | Sequence[PatternSpec]) -> list[PatternSpec]:
    """The patterns matched by any of ``texts`` (``(model_name, text)`` pairs: the responses of
    one comparison), in id order; ``[]`` when none does. A global pattern applies to every
    text, a scoped one only to texts whose model name equals its scope."""
    compiled = patterns if isinstance(patterns, PatternSet) else pattern_set(tuple(patterns))
    found: set[int] = set()
    for model_name, text in texts:
        found |= compiled.matches(model_name, text or "")
    return [spec for spec in sorted(compiled.specs, key=lambda s: s.id) if spec.id in found]
