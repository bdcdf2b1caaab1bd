"""The mark a deletion leaves on a dataset snapshot (issue 18 item 6): "contains deleted data".

A snapshot that used a vote or demonstration later deleted (an annotator's erasure request, a
source's deletion, or ``retention_enforce``) gets one ``SnapshotDeletedData`` row. Its files are
removed from the data folder at the deletion (``files_removed``) and its lineage rows for the
deleted data are dropped, so it needs a rebuild (``rebuilt_as``: the snapshot built from the current
data with the same rules). Checkpoints trained on it are flagged from this row.
"""
from __future__ import annotations

from django.db import models


class SnapshotDeletedData(models.Model):
    """``reasons``: one line a deletion, e.g. ``"2026-12-06: annotator data deleted (4 votes)"``."""

    snapshot = models.OneToOneField("feedback.DatasetSnapshot", on_delete=models.CASCADE, related_name="deleted_data")
    reasons = models.JSONField(default=list, blank=True)
    votes_removed = models.PositiveIntegerField(default=0)
    demonstrations_removed = models.PositiveIntegerField(default=0)
    files_removed = models.BooleanField(default=False)
    rebuilt_as = models.ForeignKey("feedback.DatasetSnapshot", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    marked_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "snapshots with deleted data"

    def __str__(self) -> str:
        return f"snapshot {self.snapshot_id} contains deleted data"
