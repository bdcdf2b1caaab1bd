"""Which prompts are eval-set prompts, by the near-duplicate key (``feedback.evalsets.normalise``):
what keeps eval-set prompts out of training snapshots and out of the prompt selection for
training data (``feedback.interface.prompts_select``).

The match is two indexed semi-joins (``feedback.evalsets.models`` says how it is stored); the
only Python loop is ``prompt_keys_fill``'s, over prompt texts that have no key yet (each text
is keyed once, ever).
"""
from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from config.wording import counted

from ..models import Prompt
from .models import EvalSetItem, PromptKey
from .normalise import messages_key

FILL_BATCH = 2000


def prompt_keys_fill() -> int:
    """Store the near-duplicate key of every prompt text (``Prompt.messages_sha256``) that has
    none, in batches of ``FILL_BATCH``; safe to run concurrently (a key written by another run is
    skipped). Returns how many keys were written."""
    written, after = 0, 0
    missing = Prompt.objects.filter(~Exists(PromptKey.objects.filter(messages_sha256=OuterRef("messages_sha256"))))
    while True:  # by id, so each batch starts where the last one ended (no rescans of keyed rows)
        rows = list(missing.filter(id__gt=after).order_by("id").values_list("id", "messages_sha256", "messages")[:FILL_BATCH])
        if not rows:
            return written
        after = rows[-1][0]
        keys = {digest: messages_key(messages) for _, digest, messages in rows}
        PromptKey.objects.bulk_create(
            [PromptKey(messages_sha256=digest, normal_key=key) for digest, key in keys.items()], ignore_conflicts=True,
        )
        written += len(keys)


def eval_set_note(count: int, *, noun: str = "comparison") -> str:
    """``counts["eval_set_excluded"]`` in words, as snapshot and export pages show it:
    ``"3 comparisons left out: their prompts are in an eval set"`` (``noun`` ``"row"`` for SFT
    snapshots); ``""`` when none was left out."""
    if not count:
        return ""
    return f"{counted(count, noun)} left out: {'its prompt is' if count == 1 else 'their prompts are'} in an eval set"


def eval_sets_exist() -> bool:
    """Whether any eval set holds a prompt (when none does, nothing needs to be matched)."""
    return EvalSetItem.objects.exists()


def eval_set_prompt_hashes() -> QuerySet:
    """The ``messages_sha256`` values (a values queryset, for ``__in``) of every prompt text that
    is an eval-set prompt or a near-duplicate of one, in any eval set and version. Call
    ``prompt_keys_fill`` first so new prompts have keys."""
    return PromptKey.objects.filter(normal_key__in=EvalSetItem.objects.values("normal_key")).values("messages_sha256")


def eval_set_prompt_ids() -> frozenset[int]:
    """Ids of every prompt whose messages match an eval-set prompt exactly or as a near-duplicate
    (keys filled first); empty, with one cheap query, when there is no eval set."""
    if not eval_sets_exist():
        return frozenset()
    prompt_keys_fill()
    return frozenset(Prompt.objects.filter(messages_sha256__in=eval_set_prompt_hashes()).values_list("id", flat=True))


def prompts_outside_eval_sets(prompts: QuerySet) -> QuerySet:
    """``prompts`` (a ``Prompt`` queryset) without eval-set prompts and their near-duplicates."""
    if not eval_sets_exist():
        return prompts
    prompt_keys_fill()
    return prompts.exclude(messages_sha256__in=eval_set_prompt_hashes())
