"""What an evaluation needs from feedback (issue 17 item 2): prompt rows for an eval set's items,
so completions can be written against them, and completions stored without being paired into
comparisons (an evaluation's generations are not annotation work until someone asks for it).

Eval-set prompt rows are ordinary ``Prompt`` rows (source ``EVALSET_SOURCE``, split ``eval``,
reused when a prompt with the same messages exists); being eval-set prompts they stay out of
training snapshots and of the prompt selection for training data (``feedback.evalsets.exclusion``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from ..messages import text_is_empty
from ..models import Completion, Prompt, Split
from .models import EvalSet

EVALSET_SOURCE = "evalset"


@dataclass(frozen=True)
class EvalPromptRef:
    """One eval-set item as an evaluation needs it: the item, the prompt row holding its messages,
    its category (``""``: none), and the chat messages (``[{"role", "content"}, ...]``)."""

    item_id: int
    prompt_id: int
    category: str
    messages: list[dict[str, str]]


def eval_set_load(*, eval_set_id: int) -> EvalSet:
    """The eval set with this id. Raises LookupError ``"no eval set with id <id>"``."""
    try:
        return EvalSet.objects.get(pk=eval_set_id)
    except (EvalSet.DoesNotExist, ValueError, TypeError):
        raise LookupError(f"no eval set with id {eval_set_id}") from None


def eval_set_prompts_ensure(*, eval_set_id: int) -> list[EvalPromptRef]:
    """Every item of the eval set with the id of a ``Prompt`` row holding its messages, in item
    order: an existing prompt with the same messages (the oldest), else a new one (source
    ``"evalset"``, split ``eval``, tagged ``evalset:<name>``), all in one transaction.
    Idempotent: a second call creates nothing.

    Raises:
        LookupError: no such eval set.
    """
    eval_set = eval_set_load(eval_set_id=eval_set_id)
    items = list(eval_set.items.order_by("position").values_list("id", "messages_sha256", "category", "messages"))
    with transaction.atomic():
        found: dict[str, int] = {}
        for digest, pk in (Prompt.objects.filter(messages_sha256__in={i[1] for i in items})
                           .order_by("-id").values_list("messages_sha256", "id")):
            found[digest] = pk  # oldest last, so it wins
        missing = {digest: messages for _, digest, _, messages in items if digest not in found}
        created = Prompt.objects.bulk_create(
            Prompt(messages=messages, messages_sha256=digest, source=EVALSET_SOURCE, split=Split.EVAL,
                   tags=[f"evalset:{eval_set.name}"])
            for digest, messages in missing.items()
        )
        found.update({p.messages_sha256: p.pk for p in created})
    return [EvalPromptRef(item_id, found[digest], category, messages) for item_id, digest, category, messages in items]


def completions_store(*, completions: Sequence[tuple[int, str, str, dict, bool, bool]]) -> list[int]:
    """Store completions without pairing them, in one transaction; returns their ids in order.

    Args:
        completions: ``(prompt_id, model_name, text, generation_params, is_truncated,
            truncated_at_role_marker)`` each; empty texts are stored and flagged ``is_empty``.
    Raises:
        ValueError: a prompt id that does not exist (nothing is written).
    """
    prompt_ids = {row[0] for row in completions}
    missing = prompt_ids - set(Prompt.objects.filter(id__in=prompt_ids).values_list("id", flat=True))
    if missing:
        raise ValueError(f"no such prompt(s): {sorted(missing)}")
    with transaction.atomic():
        rows = Completion.objects.bulk_create(
            Completion(prompt_id=prompt_id, model_name=model_name, text=text, generation_params=params,
                       is_truncated=truncated, truncated_at_role_marker=at_marker, is_empty=text_is_empty(text))
            for prompt_id, model_name, text, params, truncated, at_marker in completions
        )
    return [row.pk for row in rows]
