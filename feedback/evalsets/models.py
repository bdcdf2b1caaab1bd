"""Eval sets (named, versioned, frozen sets of real queries), their items, and the near-duplicate
key of every prompt's messages, which is what keeps eval-set prompts out of training.

How the exclusion is stored (issue 17 item 1):

- ``EvalSetItem.normal_key`` (indexed): ``feedback.evalsets.normalise.messages_key`` of the item.
- ``PromptKey`` (``messages_sha256`` -> ``normal_key``, both indexed): the same key for every
  distinct prompt text, filled lazily for prompts that have none (``selectors.prompt_keys_fill``);
  a function of the messages alone, so it never goes stale.
- A prompt is an eval-set prompt when its ``messages_sha256`` has a ``PromptKey`` whose
  ``normal_key`` is some item's: two indexed semi-joins, never a loop over prompts.

Rows are written once, by ``feedback.evalsets.services.eval_set_import``; ``save()`` refuses to
change a stored row (a frozen set), and nothing in the app deletes one.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class FrozenRowError(RuntimeError):
    """An attempt to change a stored eval set or item."""


class _WrittenOnce(models.Model):
    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise FrozenRowError(f"{type(self).__name__} {self.pk} is frozen; import a new version instead")
        super().save(*args, **kwargs)


class EvalSet(_WrittenOnce):
    """One version of a named eval set. ``content_hash``: ``normalise.content_hash`` of its items;
    re-importing the same content under the same name gives this version back. ``categories``:
    ``{category: item count}`` (``""``: items without one). ``lines_read`` prompts were read and
    ``duplicates_merged`` of them were merged into an earlier near-duplicate, leaving ``item_count``."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    item_count = models.PositiveIntegerField()
    lines_read = models.PositiveIntegerField()
    duplicates_merged = models.PositiveIntegerField(default=0)
    categories = models.JSONField(default=dict, blank=True)
    source_format = models.CharField(max_length=8)
    file_name = models.CharField(max_length=255, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="evalset_name_version_unique"),
            models.UniqueConstraint(fields=["name", "content_hash"], name="evalset_name_content_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="evalset_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class EvalSetItem(_WrittenOnce):
    """One prompt of an eval set: ``messages`` (a chat list ending with a user turn), optional
    ``category``, ``tags`` and ``reference`` answer; ``line`` is where it was first read and
    ``duplicates`` how many later lines were merged into it."""

    eval_set = models.ForeignKey(EvalSet, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    messages = models.JSONField()
    messages_sha256 = models.CharField(max_length=64, db_index=True)
    normal_key = models.CharField(max_length=64, db_index=True)
    category = models.CharField(max_length=100, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    reference = models.TextField(blank=True, default="")
    line = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["eval_set", "position"]
        constraints = [
            models.UniqueConstraint(fields=["eval_set", "position"], name="evalset_item_position_unique"),
            models.UniqueConstraint(fields=["eval_set", "normal_key"], name="evalset_item_key_unique"),
        ]

    def __str__(self) -> str:
        last = self.messages[-1]["content"] if self.messages else ""
        return f"{self.eval_set_id}/{self.position}: {last[:60]}"


class PromptKey(models.Model):
    """The near-duplicate key (``normalise.messages_key``) of one prompt text, by its exact hash."""

    messages_sha256 = models.CharField(max_length=64, primary_key=True)
    normal_key = models.CharField(max_length=64, db_index=True)

    def __str__(self) -> str:
        return f"{self.messages_sha256[:12]} -> {self.normal_key[:12]}"
