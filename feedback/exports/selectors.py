"""Reads about exports: lists, one export, its file on disk."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet

from feedback.models import Export, ExportStatus

from .services import exports_root


def export_list() -> QuerySet[Export]:
    """Every export, newest first, with its creator."""
    return Export.objects.select_related("created_by").order_by("-created_at", "-id")


def exports_any_active(exports) -> bool:
    """True when any of ``exports`` is queued or running (a page showing them keeps polling)."""
    return any(not export.is_finished for export in exports)


def export_file(*, export: Export) -> Path:
    """The finished export's file (a directory for ``hf-dataset``).

    Raises:
        LookupError: the export has not succeeded, its path leaves the exports folder, or the file is gone.
    """
    if export.status != ExportStatus.SUCCEEDED or not export.file_path:
        raise LookupError(f"export {export.pk} has no file (status {export.status})")
    root = exports_root().resolve()
    path = (Path(settings.ARBITER_DATA_DIR) / export.file_path).resolve()
    if path.parent != root:
        raise LookupError(f"export {export.pk} has no file in the exports folder")
    if not path.exists():
        raise LookupError(f"export {export.pk}'s file is gone ({export.file_path})")
    return path


def export_download_name(*, export: Export) -> str:
    """The name a download is saved as: ``arbiter-export-<id>-<format>.<ext>`` (``.zip`` for ``hf-dataset``)."""
    extension = {"jsonl": "jsonl", "parquet": "parquet", "csv": "csv", "hf-dataset": "zip"}[export.file_type]
    return f"arbiter-export-{export.pk}-{export.format}.{extension}"
