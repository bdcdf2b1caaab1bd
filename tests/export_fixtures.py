"""A small, fully known set of votes for the export tests (``export_world``), and helpers to read exports back.

Comparisons (prompt split, tags, models, votes in id order, when):

- ``pair``: train, ``math``; m-good (A) vs m-bad (B); alice a strong, bob a clear, carol b slight
  (majority a, agreement 2/3, margin (1 + 2/3) / 2); 2025-01-10.
- ``tie``: eval, ``chat``; m-good vs m-bad; alice tie; 2025-02-10.
- ``both_bad``: train; m-good vs m-other; bob both_bad; 2025-02-10.
- ``gold``: train, gold choice b; m-bad vs m-good; carol b clear; 2025-02-10.
- ``system``: train, a system turn first; m-good vs m-bad; alice a strong; 2025-02-11.
- ``split``: train; m-good vs m-bad; alice a, bob b (no majority); 2025-02-12.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from feedback.messages import messages_sha256
from feedback.models import Comparison, Completion, Prompt, Vote
from tests.factories import UserFactory


@dataclass
class ExportWorld:
    users: dict
    comparisons: dict
    votes: dict


def _comparison(*, question, a, b, split="train", tags=(), gold="", system=None):
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    prompt = Prompt.objects.create(messages=messages, messages_sha256=messages_sha256(messages), split=split, tags=list(tags))
    completion_a = Completion.objects.create(prompt=prompt, model_name=a[0], text=a[1])
    completion_b = Completion.objects.create(prompt=prompt, model_name=b[0], text=b[1])
    return Comparison.objects.create(prompt=prompt, completion_a=completion_a, completion_b=completion_b, gold_choice=gold)


def _vote(comparison, annotator, choice, *, when, strength="", **fields):
    vote = Vote.objects.create(comparison=comparison, annotator=annotator, choice=choice, strength=strength,
                               shown_left=fields.pop("shown_left", "a"), **fields)
    Vote.objects.filter(pk=vote.pk).update(created_at=when)
    vote.refresh_from_db()
    return vote


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def export_world() -> ExportWorld:
    users = {name: UserFactory(username=name, role="annotator") for name in ("alice", "bob", "carol")}
    users["admin"] = UserFactory(username="boss", role="admin")
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    c = {
        "pair": _comparison(question="What is 2 + 2?", a=("m-good", "Four."), b=("m-bad", "Five."), tags=["math"]),
        "tie": _comparison(question="Say hi.", a=("m-good", "Hi!"), b=("m-bad", "Hello!"), split="eval", tags=["chat"]),
        "both_bad": _comparison(question="Name a prime.", a=("m-good", "Nine."), b=("m-other", "Fifteen.")),
        "gold": _comparison(question="Capital of France?", a=("m-bad", "Lyon."), b=("m-good", "Paris."), gold="b"),
        "system": _comparison(question="Greet me.", a=("m-good", "Ahoy, matey!"), b=("m-bad", "Hello."),
                              system="You are a pirate."),
        "split": _comparison(question="Best colour?", a=("m-good", "Blue."), b=("m-bad", "Red.")),
    }
    v = {
        "pair_alice": _vote(c["pair"], alice, "a", strength="strong", when=day("2025-01-10T09:00"),
                            rationale="=SUM(A1:A2)", helpfulness="a", harmlessness="tie", honesty="b",
                            ms_on_item=4200, shown_left="b"),
        "pair_bob": _vote(c["pair"], bob, "a", strength="clear", when=day("2025-01-10T10:00"), rationale="-5 points for B"),
        "pair_carol": _vote(c["pair"], carol, "b", strength="slight", when=day("2025-01-10T11:00"), rationale="@here B"),
        "tie_alice": _vote(c["tie"], alice, "tie", when=day("2025-02-10T09:00"), rationale="\tsame"),
        "both_bad_bob": _vote(c["both_bad"], bob, "both_bad", when=day("2025-02-10T10:00"), rationale="+1 neither"),
        "gold_carol": _vote(c["gold"], carol, "b", strength="clear", when=day("2025-02-10T11:00")),
        "system_alice": _vote(c["system"], alice, "a", strength="strong", when=day("2025-02-11T09:00")),
        "split_alice": _vote(c["split"], alice, "a", strength="slight", when=day("2025-02-12T09:00")),
        "split_bob": _vote(c["split"], bob, "b", strength="slight", when=day("2025-02-12T10:00")),
    }
    return ExportWorld(users=users, comparisons=c, votes=v)


def jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def user_message(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]
