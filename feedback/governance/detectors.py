"""Personal-data detectors over plain text: pure functions, no Django.

``detect(text)`` finds e-mail addresses, phone numbers, payment card numbers (Luhn check), IBANs
(ISO 13616 mod-97 check) and IP addresses (v4 and v6, validated by ``ipaddress``), and returns
each as a ``Finding`` with its span and a masked excerpt; the finding itself is never returned.

Person names come from outside: a maintained recogniser (presidio-analyzer over a spaCy model, run
in a child process by ``feedback.governance.names`` when ``ARBITER_NAME_MODEL`` is set) gives
their spans, and ``detect(text, names=spans)`` turns them into ``name`` findings like the others.

Where two findings overlap, the earlier detector in ``DETECTORS`` wins (an IBAN's digits are not
also a phone number; an IP address is not a phone number written with dots), and names come last:
a name overlapping any other finding is dropped (the recogniser may tag ``Alice`` inside
``alice@example.org``, which stays one e-mail finding).
"""
from __future__ import annotations

import bisect
import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

MAX_EXCERPT = 80


@dataclass(frozen=True)
class Finding:
    """``detector`` (``email``, ``phone``, ``card``, ``iban``, ``ip``, ``name``), the span ``[start, end)`` in
    characters of the text, and ``excerpt``: the finding masked (``mask``)."""

    detector: str
    start: int
    end: int
    excerpt: str


LABELS = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "iban": "[IBAN]", "ip": "[IP]", "name": "[NAME]"}
NAME = "name"

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])")
_CARD = re.compile(r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d]|[.-]\d)")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:.]{0,44}:[0-9A-Fa-f:.]{0,44}:)[0-9A-Fa-f:.]{2,45}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,5}){1,5}(?![\w]|[.-]\d)"
    r"|(?<![\w+])\+\d{8,15}(?!\w)"
)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (ISO/IEC 7812): True when it is valid."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616: 15-34 characters, two letters, two check digits; moved and as a number, mod 97 == 1."""
    iban = iban.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", iban):
        return False
    number = "".join(str(int(char, 36)) for char in iban[4:] + iban[:4])
    return int(number) % 97 == 1


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def mask(detector: str, value: str) -> str:
    """Enough of a finding to recognise it, no more: ``j***@e***.com``, ``****1111`` (card),
    ``DE***00`` (IBAN), ``+4***67`` (phone), ``192.*.*.*`` or ``2001:***`` (IP), ``A*** J***``
    (name: each word's initial)."""
    if detector == "email":
        local, _, domain = value.partition("@")
        host, _, tld = domain.rpartition(".")
        return f"{local[:1]}***@{host[:1]}***.{tld}"[:MAX_EXCERPT]
    if detector == "card":
        return "****" + _digits(value)[-4:]
    if detector == "iban":
        compact = value.replace(" ", "")
        return f"{compact[:2]}***{compact[-2:]}"
    if detector == "phone":
        digits = _digits(value)
        return f"{'+' if value.startswith('+') else ''}{digits[:1]}***{digits[-2:]}"
    if detector == "ip":
        return value.split(".")[0] + ".*.*.*" if "." in value and ":" not in value else value.split(":")[0] + ":***"
    if detector == NAME:
        return " ".join(f"{word[:1]}***" for word in value.split())[:MAX_EXCERPT]
    raise ValueError(f"unknown detector {detector!r}")


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for match in _EMAIL.finditer(text):
        yield match.span()


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for match in _CARD.finditer(text):
        digits = _digits(match.group())
        if 13 <= len(digits) <= 19 and digits.strip("0") and luhn_valid(digits):
            yield match.span()


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for match in _IBAN.finditer(text):
        if iban_valid(match.group()):
            yield match.span()


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for match in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        yield match.span()
    for match in _IPV6.finditer(text):
        candidate = match.group()
        try:
            address = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        if not address.is_unspecified:
            yield match.span()


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for match in _PHONE.finditer(text):
        value = match.group()
        digits = _digits(value)
        if not 9 <= len(digits) <= 15:
            continue
        if not value.startswith("+") and re.fullmatch(r"\d{1,4}(?:\.\d{1,4})+", value) and value.count(".") > 2:
            continue  # a dotted run of short groups: a version number, not a phone
        yield match.span()


DETECTORS: dict[str, Callable[[str], Iterator[tuple[int, int]]]] = {
    "email": _emails, "iban": _ibans, "card": _cards, "ip": _ips, "phone": _phones,
}


def detect(text: str, *, names: Iterable[tuple[int, int]] = ()) -> list[Finding]:
    """Every finding in ``text``, in order of ``start``; overlaps resolved by detector order, names last.

    Args:
        names: person-name spans ``(start, end)`` in ``text`` from a recogniser (``feedback.governance.names``).
    Returns: ``Finding`` s with masked excerpts (never the matched text itself).
    Raises: ValueError for a name span outside ``text`` or empty.
    """
    starts: list[int] = []  # the spans taken so far, sorted by start (they never overlap)
    ends: list[int] = []
    found: list[Finding] = []
    if not text:
        return found
    names = list(names)
    for start, end in names:
        if not 0 <= start < end <= len(text):
            raise ValueError(f"name span ({start}, {end}) is not inside a text of {len(text)} characters")
    sources = [*DETECTORS.items(), (NAME, lambda _text: iter(names))]
    for name, spans in sources:
        for start, end in spans(text):
            index = bisect.bisect_left(starts, start)
            if (index > 0 and ends[index - 1] > start) or (index < len(starts) and starts[index] < end):
                continue  # overlaps a finding of an earlier detector
            starts.insert(index, start)
            ends.insert(index, end)
            found.append(Finding(detector=name, start=start, end=end, excerpt=mask(name, text[start:end])))
    return sorted(found, key=lambda finding: finding.start)


def redact(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, detector)`` span replaced by its label (``[EMAIL]``, ...);
    spans may come in any order and must not overlap."""
    for start, end, detector in sorted(spans, reverse=True):
        text = text[:start] + LABELS[detector] + text[end:]
    return text
