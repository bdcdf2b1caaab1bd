"""API shapes for checkpoints and jobs. Shape only: ``GenerationConfig`` and the services hold the rules."""
from __future__ import annotations

from dataclasses import MISSING, fields

from rest_framework import serializers

from training.config import GenerationConfig
from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobStatus


def _config_help() -> str:
    """The generation settings and their defaults, from ``GenerationConfig`` itself (so the docs cannot drift)."""
    parts = []
    for f in fields(GenerationConfig):
        if f.default is not MISSING:
            parts.append(f"`{f.name}` (default {f.default!r})")
        elif f.default_factory is not MISSING:
            parts.append(f"`{f.name}` (default {f.default_factory()!r})")
        else:
            parts.append(f"`{f.name}` (required)")
    return (
        "Settings of the job. For `generation`: " + ", ".join(parts) + ". `checkpoints` names one policy "
        "checkpoint for `two_samples`, two for `head_to_head`; `max_open_comparisons` keeps prompts with fewer "
        "open comparisons than this; `temperature` 0 is greedy."
    )


class CheckpointSerializer(serializers.ModelSerializer):
    parent_name = serializers.CharField(source="parent.name", read_only=True, allow_null=True)
    children = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    location = serializers.CharField(read_only=True, help_text="absolute weights directory, or hub id")

    class Meta:
        model = Checkpoint
        fields = [
            "id", "name", "kind", "parent", "parent_name", "children", "weights_dir", "hub_id", "location",
            "is_adapter", "metadata", "created_at",
        ]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)
    percent = serializers.IntegerField(read_only=True, help_text="progress_done / progress_total, 0-100")
    is_finished = serializers.BooleanField(read_only=True)

    class Meta:
        model = Job
        fields = [
            "id", "kind", "status", "config", "created_by", "created_at", "started_at", "finished_at",
            "heartbeat_at", "progress_done", "progress_total", "percent", "tokens_per_s", "summary", "error",
            "traceback", "cancel_requested", "is_finished",
        ]
        read_only_fields = fields


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=JobKind.choices)
    config = serializers.DictField(help_text=_config_help())


class JobFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=JobStatus.choices, required=False)
    kind = serializers.ChoiceField(choices=JobKind.choices, required=False)


class CheckpointFilter(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CheckpointKind.choices, required=False)
