"""API shapes for checkpoints and jobs. Shape only: ``GenerationConfig`` and the services hold the rules."""
from __future__ import annotations

from dataclasses import MISSING, fields

from rest_framework import serializers

from training.config import GenerationConfig, RewardConfig, ScoringConfig
from training.constitutional.config import CaiConfig
from training.judges.config import JudgingConfig
from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobMetric, JobStatus


def _settings(config_class) -> str:
    parts = []
    for f in fields(config_class):
        if f.default is not MISSING:
            parts.append(f"`{f.name}` (default {f.default!r})")
        elif f.default_factory is not MISSING:
            parts.append(f"`{f.name}` (default {f.default_factory()!r})")
        else:
            parts.append(f"`{f.name}` (required)")
    return ", ".join(parts)


def _config_help() -> str:
    """Each kind's settings and defaults, from the config dataclasses themselves (so the docs cannot drift)."""
    return (
        f"Settings of the job. For `generation`: {_settings(GenerationConfig)}. `checkpoints` names one policy "
        "checkpoint for `two_samples`, two for `head_to_head`; `max_open_comparisons` keeps prompts with fewer "
        "open comparisons than this; `temperature` 0 is greedy. "
        f"For `reward` (train a reward model with TRL RewardTrainer): {_settings(RewardConfig)}; `base` is a policy "
        "checkpoint; give `snapshot_id` or `rules` (aggregation rules for a new snapshot of the current votes). "
        f"For `scoring` (score completions with a reward model): {_settings(ScoringConfig)}. "
        f"For `cai` (Constitutional AI critique-revise: the reviser critiques stored responses against the "
        f"constitution's principles and revises them): {_settings(CaiConfig)}. "
        f"For `judging` (an AI judge labels comparisons as AI votes): {_settings(JudgingConfig)}; `judge` is a judge's "
        "name (its latest version) or name@version; give `campaign_id` (its open comparisons) or `comparison_ids`."
    )


class CheckpointSerializer(serializers.ModelSerializer):
    parent_name = serializers.CharField(source="parent.name", read_only=True, allow_null=True)
    children = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    location = serializers.CharField(read_only=True, help_text="absolute weights directory, or hub id")
    server = serializers.CharField(source="server.name", read_only=True, allow_null=True,
                                   help_text="name of the model server that serves it (generation backend \"server\"), or null")

    class Meta:
        model = Checkpoint
        fields = [
            "id", "name", "kind", "parent", "parent_name", "children", "weights_dir", "hub_id", "location",
            "is_adapter", "metadata", "stop_strings", "server", "created_at",
        ]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)
    percent = serializers.IntegerField(read_only=True, help_text="progress_done / progress_total, 0-100")
    is_finished = serializers.BooleanField(read_only=True)
    snapshot = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="the dataset snapshot a training run used (null for other jobs)"
    )
    output_checkpoint = serializers.SerializerMethodField(help_text="name of the checkpoint the run registered")

    def get_output_checkpoint(self, job: Job) -> str | None:
        output = job.output
        return output.name if output else None

    class Meta:
        model = Job
        fields = [
            "id", "kind", "status", "config", "created_by", "created_at", "started_at", "finished_at",
            "heartbeat_at", "progress_done", "progress_total", "percent", "phase", "tokens_per_s", "summary", "error",
            "traceback", "cancel_requested", "is_finished", "snapshot", "output_checkpoint",
        ]
        read_only_fields = fields


class JobMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobMetric
        fields = ["step", "epoch", "values", "created_at"]
        read_only_fields = fields


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=JobKind.choices)
    config = serializers.DictField(help_text=_config_help())
    policy_override = serializers.CharField(
        required=False, allow_blank=True, max_length=5000,
        help_text="Training runs: an admin's written justification (20+ characters) for training on data its data-use policy refuses.",
    )
    justification = serializers.CharField(
        required=False, allow_blank=True, max_length=5000,
        help_text="Training runs: why the run is warranted (why prompting or retrieval is not enough, which data, "
        "expected maintenance); required when the server sets ARBITER_RUN_JUSTIFICATION_REQUIRED. Goes into the model card.",
    )


class CheckpointServerSerializer(serializers.Serializer):
    server = serializers.CharField(allow_null=True, help_text="a model server's name, or null: no server")


class JobFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=JobStatus.choices, required=False)
    kind = serializers.ChoiceField(choices=JobKind.choices, required=False)


class CheckpointFilter(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CheckpointKind.choices, required=False)


class LeaderboardQuery(serializers.Serializer):
    both_bad = serializers.ChoiceField(
        choices=[("tie", "count as a tie"), ("exclude", "leave out")], default="tie",
        help_text="How a both-bad vote counts: as a tie (half a win each) or not at all.",
    )
    models = serializers.ChoiceField(
        choices=[("checkpoints", "policy checkpoints"), ("external", "external models")], default="checkpoints",
        help_text="Rate the policy checkpoints, or the external models (e.g. imported Chatbot Arena battles).",
    )
    non_blind = serializers.ChoiceField(
        choices=[("exclude", "leave out"), ("include", "count")], default="exclude",
        help_text="Votes cast by someone who could see model names (admins): left out by default.",
    )
    identity_leak = serializers.ChoiceField(
        choices=[("exclude", "leave out"), ("include", "count")], default="exclude",
        help_text="Votes on comparisons flagged as revealing which model wrote a response: left out by default.",
    )
    eval_set = serializers.IntegerField(required=False, help_text="only votes on comparisons of this eval set's prompts")
    category = serializers.CharField(required=False, allow_blank=True,
                                     help_text="with eval_set: only its prompts of this category ('' for none)")
    votes = serializers.ChoiceField(
        choices=[("human", "people's votes"), ("ai", "AI judges' votes"), ("both", "both, AI votes weighted")],
        default="human", help_text="Whose votes: people's (default), AI judges' only, or both with ai_weight.",
    )
    ai_weight = serializers.FloatField(
        required=False, help_text="With votes=both: the weight of an AI vote, 0-1 (a person's weighs 1; default 1).",
    )

    def validate(self, data):
        """``ai_weight`` from 0 to 1, and only with ``votes=both`` (``feedback.vote_origins``)."""
        from feedback.vote_origins import vote_choice_problems

        problems = vote_choice_problems(data["votes"], data.get("ai_weight"), ai_weight_given="ai_weight" in data)
        if problems:
            raise serializers.ValidationError({name: [message] for name, message in problems.items()})
        return data


class LeaderboardRowSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="the checkpoint's name (or the external model's, with models=external)")
    checkpoint_id = serializers.IntegerField(allow_null=True)
    rating = serializers.FloatField(help_text="Elo-like points: mean 1000, +400 = 10:1 odds")
    ci_low = serializers.FloatField(help_text="2.5th percentile of the bootstrap ratings")
    ci_high = serializers.FloatField(help_text="97.5th percentile of the bootstrap ratings")
    rank = serializers.IntegerField(help_text="1 + checkpoints whose ci_low is above this ci_high")
    votes = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField(help_text="includes both-bad votes when they count as ties")


class LeaderboardSerializer(serializers.Serializer):
    """The shape of ``training.ratings.Leaderboard.as_dict()`` (documentation only)."""

    models = LeaderboardRowSerializer(many=True, help_text="by rank, then rating")
    win_rate = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()),
        help_text="win_rate[a][b]: a's share of the score against b (ties half); pairs with votes only",
    )
    pair_votes = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()), help_text="pair_votes[a][b]: votes between a and b"
    )
    votes = serializers.IntegerField(help_text="votes counted")
    both_bad = serializers.CharField()
    both_bad_excluded = serializers.IntegerField()
    non_blind_excluded = serializers.IntegerField(help_text="votes left out: their voter could see model names")
    identity_leak_excluded = serializers.IntegerField(
        help_text="votes left out: their comparison is flagged as revealing which model wrote a response"
    )
    rounds = serializers.IntegerField(help_text="bootstrap refits")
    seed = serializers.IntegerField()
    anchor = serializers.CharField(allow_null=True)
    connected = serializers.BooleanField(help_text="false when some checkpoints were never linked by votes to the rest")
    votes_from = serializers.CharField(help_text="whose votes: human, ai or both")
    ai_weight = serializers.FloatField(help_text="with votes_from both: an AI vote's weight (else 1)")
    scope = serializers.DictField(allow_null=True, help_text="{eval_set_id, eval_set, category} when the votes were filtered")
    length_controlled = serializers.DictField(
        allow_null=True, help_text="{ratings: {model: rating at equal length}, length_coefficient, votes}: "
                                   "Bradley-Terry with a length covariate (Chatbot Arena style control)")
    scale = serializers.DictField()
