"""API shapes. Serializers check types and sizes; the rules live in ``feedback.services``.

Annotator-facing shapes never carry model names or gold answers.
"""
from __future__ import annotations

import copy

from rest_framework import serializers

from feedback.messages import MAX_COMPLETION_CHARS
from feedback.models import (
    AspectChoice,
    Assignment,
    Choice,
    Comparison,
    ComparisonStatus,
    Completion,
    Prompt,
    Split,
    Strength,
    Vote,
)
from feedback.selectors import Display

MAX_BULK = 1000


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=1_000_000)


class PromptSerializer(serializers.ModelSerializer):
    messages = MessageSerializer(many=True, allow_empty=False, max_length=200)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=50)

    class Meta:
        model = Prompt
        fields = ["id", "messages", "source", "tags", "split", "created_at"]
        read_only_fields = ["id", "created_at"]


class CompletionSerializer(serializers.ModelSerializer):
    text = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=MAX_COMPLETION_CHARS)
    generation_params = serializers.DictField(required=False)

    class Meta:
        model = Completion
        fields = ["id", "prompt", "model_name", "text", "generation_params", "is_truncated", "is_empty", "created_at"]
        read_only_fields = ["id", "is_empty", "created_at"]
        extra_kwargs = {"prompt": {"queryset": Prompt.objects.all()}}


class InlineCompletionSerializer(serializers.Serializer):
    model_name = serializers.CharField(max_length=200)
    text = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=MAX_COMPLETION_CHARS)
    generation_params = serializers.DictField(required=False)
    is_truncated = serializers.BooleanField(required=False, default=False)


class InlinePromptSerializer(serializers.Serializer):
    messages = MessageSerializer(many=True, allow_empty=False, max_length=200)
    source = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=50)
    split = serializers.ChoiceField(choices=Split.choices, required=False, default=Split.TRAIN)


class ComparisonCreateSerializer(serializers.Serializer):
    """Either ``completion_a``/``completion_b`` as ids, or inline texts with ``prompt`` (an id or prompt fields)."""

    prompt = serializers.JSONField(required=False, help_text="Prompt id, or {messages, source, tags, split}.")
    completion_a = serializers.JSONField(help_text="Completion id, or {model_name, text, generation_params}.")
    completion_b = serializers.JSONField(help_text="Completion id, or {model_name, text, generation_params}.")
    votes_required = serializers.IntegerField(min_value=1, max_value=100, default=1)
    priority = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000, default=0)
    gold_choice = serializers.ChoiceField(choices=Choice.choices, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        a, b = attrs["completion_a"], attrs["completion_b"]
        by_id = isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool)
        inline = isinstance(a, dict) and isinstance(b, dict)
        if by_id:
            found = Completion.objects.in_bulk([a, b])
            errors = {f: "no such completion" for f, v in (("completion_a", a), ("completion_b", b)) if v not in found}
            if errors:
                raise serializers.ValidationError(errors)
            attrs["completion_a"], attrs["completion_b"] = found[a], found[b]
            return attrs
        if not inline:
            raise serializers.ValidationError(
                {"completion_a": "give both completions as ids, or both as {model_name, text} objects"}
            )
        errors = {}
        for field in ("completion_a", "completion_b"):
            nested = InlineCompletionSerializer(data=attrs[field])
            if nested.is_valid():
                attrs[field] = nested.validated_data
            else:
                errors[field] = nested.errors
        prompt = attrs.get("prompt")
        if isinstance(prompt, int) and not isinstance(prompt, bool):
            attrs["prompt"] = Prompt.objects.filter(pk=prompt).first()
            if attrs["prompt"] is None:
                errors["prompt"] = "no such prompt"
        elif isinstance(prompt, dict):
            nested = InlinePromptSerializer(data=prompt)
            if nested.is_valid():
                attrs["prompt"] = {**nested.validated_data, "messages": [dict(m) for m in nested.validated_data["messages"]]}
            else:
                errors["prompt"] = nested.errors
        else:
            errors["prompt"] = "inline completions need a prompt: an id or {messages, ...}"
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class AdminComparisonSerializer(serializers.ModelSerializer):
    """Everything about a comparison, model names included (admins only)."""

    completion_a = CompletionSerializer(read_only=True)
    completion_b = CompletionSerializer(read_only=True)
    messages = serializers.JSONField(source="prompt.messages", read_only=True)
    import_flags = serializers.ListField(
        child=serializers.CharField(), source="import_flag_codes", read_only=True,
        help_text="Why an imported pair may not be what its file meant (feedback.import_flags codes); [] when clean.",
    )

    class Meta:
        model = Comparison
        fields = [
            "id", "prompt", "messages", "completion_a", "completion_b", "votes_required", "vote_count",
            "priority", "status", "gold_choice", "import_flags", "created_at",
        ]


class AnnotatorCompletionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Completion
        fields = ["id", "text"]


class AnnotatorComparisonSerializer(serializers.ModelSerializer):
    """A comparison as its annotator may see it: no model names, no gold answer."""

    completion_a = AnnotatorCompletionSerializer(read_only=True)
    completion_b = AnnotatorCompletionSerializer(read_only=True)
    messages = serializers.JSONField(source="prompt.messages", read_only=True)

    class Meta:
        model = Comparison
        fields = ["id", "messages", "completion_a", "completion_b", "status"]


class ShownCompletionSerializer(serializers.Serializer):
    completion = serializers.ChoiceField(choices=["a", "b"], help_text="Which completion of the comparison this is.")
    id = serializers.IntegerField()
    text = serializers.CharField()


class AssignmentSerializer(serializers.Serializer):
    """The next comparison to judge, with the completions in the order to show them."""

    assignment = serializers.IntegerField(source="assignment.id")
    comparison = serializers.IntegerField(source="comparison.id")
    expires_at = serializers.DateTimeField(source="assignment.expires_at")
    messages = serializers.ListField(child=serializers.DictField())
    left = serializers.SerializerMethodField()
    right = serializers.SerializerMethodField()

    def _shown(self, letter: str, completion: Completion) -> dict:
        return {"completion": letter, "id": completion.id, "text": completion.text}

    def get_left(self, display: Display) -> dict:
        return self._shown(display.left_letter, display.left)

    def get_right(self, display: Display) -> dict:
        return self._shown(display.right_letter, display.right)


class VoteSubmitSerializer(serializers.Serializer):
    comparison = serializers.IntegerField(min_value=1)
    choice = serializers.ChoiceField(choices=Choice.choices, help_text="In terms of the comparison: a, b, tie, both_bad.")
    strength = serializers.ChoiceField(choices=Strength.choices, required=False, allow_blank=True, default="")
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=10_000, default="")
    helpfulness = serializers.ChoiceField(choices=AspectChoice.choices, required=False, allow_blank=True, default="")
    harmlessness = serializers.ChoiceField(choices=AspectChoice.choices, required=False, allow_blank=True, default="")
    honesty = serializers.ChoiceField(choices=AspectChoice.choices, required=False, allow_blank=True, default="")
    ms_on_item = serializers.IntegerField(required=False, min_value=0, max_value=24 * 3600 * 1000, allow_null=True)
    demonstration = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        default="",
        help_text="Optional: your own better response to the prompt (at most 20,000 characters); "
        "stored as a demonstration for supervised fine-tuning with the vote.",
    )


class VoteSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", read_only=True)

    class Meta:
        model = Vote
        fields = [
            "id", "comparison", "annotator", "choice", "strength", "rationale", "helpfulness", "harmlessness",
            "honesty", "shown_left", "ms_on_item", "source", "created_at",
        ]
        read_only_fields = fields

    def get_fields(self):
        # ModelSerializer builds every field from the model again for each instance, about 7% of a
        # worker's CPU under bench/annotate_load.py since every vote is answered with this one. Build
        # them once per class and hand each instance copies, as DRF does with declared fields.
        cls = type(self)
        if "_built_fields" not in cls.__dict__:
            cls._built_fields = super().get_fields()
        return copy.deepcopy(cls._built_fields)


class SkipSerializer(serializers.ModelSerializer):
    class Meta:
        model = Assignment
        fields = ["id", "comparison", "status", "finished_at"]
        read_only_fields = fields


class ComparisonStatusFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=ComparisonStatus.choices, required=False)
    split = serializers.ChoiceField(choices=Split.choices, required=False)
    prompt = serializers.IntegerField(required=False, min_value=1)
    model_name = serializers.CharField(required=False, max_length=200)
    tag = serializers.CharField(required=False, max_length=100)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class VoteFilter(serializers.Serializer):
    comparison = serializers.IntegerField(required=False, min_value=1)
    annotator = serializers.IntegerField(required=False, min_value=1)
    choice = serializers.ChoiceField(choices=Choice.choices, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
