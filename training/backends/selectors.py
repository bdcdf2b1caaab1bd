"""Reads for model servers."""
from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import ModelServer


def model_server_list() -> QuerySet[ModelServer]:
    """Every model server by name, each with ``checkpoint_count`` (checkpoints it serves)."""
    return ModelServer.objects.annotate(checkpoint_count=Count("checkpoints"))
