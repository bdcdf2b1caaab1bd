"""API shapes. Serializers check types and sizes; the rules live in ``feedback.services``.

Annotator-facing shapes never carry model names, generation settings, gold answers, completion
ids or the letter (a/b) behind a screen side: they give the texts as left/right, in the order that
annotator was shown them, and take votes in those terms (the server maps them to a/b).
"""
from __future__ import annotations

import copy

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
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
    RationaleMode,
    SkipReason,
    Split,
    Strength,
    Vote,
)
from feedback.queue import choice_on_screen
from feedback.services import MAX_ID
from feedback.selectors import Display
from feedback.services import MAX_SKIP_NOTE_CHARS

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
        fields = [
            "id", "prompt", "model_name", "text", "generation_params", "is_truncated", "truncated_at_role_marker",
            "is_empty", "created_at",
        ]
        read_only_fields = ["id", "truncated_at_role_marker", "is_empty", "created_at"]
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
    # No default: a prompt that is already stored keeps its split, and only a split that is given
    # and differs is refused (services.prompt_get_or_create). A new prompt defaults to train.
    split = serializers.ChoiceField(choices=Split.choices, required=False)


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
            too_big = {f: f"is not an id (at most {MAX_ID})" for f, v in (("completion_a", a), ("completion_b", b))
                       if not 0 < v <= MAX_ID}
            if too_big:
                raise serializers.ValidationError(too_big)
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
            attrs["prompt"] = Prompt.objects.filter(pk=prompt).first() if 0 < prompt <= MAX_ID else None
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


class ShownTextSerializer(serializers.Serializer):
    text = serializers.CharField()
    is_empty = serializers.BooleanField(help_text="The text is empty or whitespace only (the page shows '(empty response)').")


def _shown(completion: Completion) -> dict:
    return {"text": completion.text, "is_empty": completion.is_empty}


class AnnotatorComparisonSerializer(serializers.ModelSerializer):
    """A comparison as its annotator may see it: the texts as they were shown (left, right); no
    model names, completion ids, a/b letters or gold answer. Rows from ``selectors.comparison_list``
    (which annotates ``shown_left``)."""

    messages = serializers.JSONField(source="prompt.messages", read_only=True)
    left = serializers.SerializerMethodField()
    right = serializers.SerializerMethodField()

    class Meta:
        model = Comparison
        fields = ["id", "messages", "left", "right", "status"]

    def _sides(self, comparison: Comparison) -> tuple[Completion, Completion]:
        a, b = comparison.completion_a, comparison.completion_b
        return (a, b) if getattr(comparison, "shown_left", "a") == "a" else (b, a)

    @extend_schema_field(ShownTextSerializer)
    def get_left(self, comparison: Comparison) -> dict:
        return _shown(self._sides(comparison)[0])

    @extend_schema_field(ShownTextSerializer)
    def get_right(self, comparison: Comparison) -> dict:
        return _shown(self._sides(comparison)[1])


class AspectQuestionSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The vote's field: helpfulness, harmlessness or honesty.")
    label = serializers.CharField(help_text="The question as the campaign words it.")


class QuestionsSerializer(serializers.Serializer):
    """What the campaign asks with each vote; a field it does not ask must be left empty (400 otherwise)."""

    strength = serializers.BooleanField(help_text="strength is asked (slight, clear, strong).")
    aspects = AspectQuestionSerializer(many=True, help_text="The aspects asked, in order.")
    rationale = serializers.ChoiceField(choices=RationaleMode.choices)
    demonstration = serializers.BooleanField(help_text="A better response may be sent.")


class GuidelinesStateSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The latest guidelines version's number.")
    acknowledged = serializers.BooleanField(
        help_text="False: votes are refused (409 guidelines_unread) until POST /api/guidelines/acknowledge/."
    )


class AssignmentCampaignSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    questions = QuestionsSerializer()
    guidelines = GuidelinesStateSerializer(allow_null=True, help_text="null: the campaign has no guidelines.")


def _campaign_of(display: Display) -> dict:
    campaign, questions, guidelines = display.campaign, display.questions, display.guidelines
    return {
        "slug": campaign.slug,
        "name": campaign.name,
        "questions": {
            "strength": questions.strength, "aspects": [{"name": n, "label": label} for n, label in questions.aspects],
            "rationale": questions.rationale, "demonstration": questions.demonstration,
        },
        "guidelines": {"version": guidelines.number, "acknowledged": guidelines.acknowledged} if guidelines else None,
    }


class AssignmentSerializer(serializers.Serializer):
    """The next comparison to judge: the prompt and the two texts in the order to show them. Vote
    with ``item`` and ``left``/``right``; nothing here says which stored completion is which."""

    item = serializers.CharField(help_text="Opaque token of this item; send it with the vote.")
    comparison = serializers.IntegerField(source="comparison.id")
    expires_at = serializers.DateTimeField(source="assignment.expires_at")
    messages = serializers.ListField(child=serializers.DictField())
    left = serializers.SerializerMethodField()
    right = serializers.SerializerMethodField()
    campaign = serializers.SerializerMethodField()

    @extend_schema_field(ShownTextSerializer)
    def get_left(self, display: Display) -> dict:
        return _shown(display.left)

    @extend_schema_field(AssignmentCampaignSerializer)
    def get_campaign(self, display: Display) -> dict:
        return _campaign_of(display)

    @extend_schema_field(ShownTextSerializer)
    def get_right(self, display: Display) -> dict:
        return _shown(display.right)


SUBMIT_CHOICES = ["left", "right", *Choice.values]
SUBMIT_ASPECT_CHOICES = ["left", "right", *AspectChoice.values]


class VoteSubmitSerializer(serializers.Serializer):
    item = serializers.CharField(
        required=False, max_length=24, help_text="The item token from /api/assignments/next/ (or give comparison)."
    )
    comparison = serializers.IntegerField(min_value=1, required=False)
    choice = serializers.ChoiceField(
        choices=SUBMIT_CHOICES,
        help_text="left or right (as shown), tie, both_bad; a or b name the comparison's stored completions.",
    )
    strength = serializers.ChoiceField(choices=Strength.choices, required=False, allow_blank=True, default="")
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=10_000, default="")
    helpfulness = serializers.ChoiceField(choices=SUBMIT_ASPECT_CHOICES, required=False, allow_blank=True, default="")
    harmlessness = serializers.ChoiceField(choices=SUBMIT_ASPECT_CHOICES, required=False, allow_blank=True, default="")
    honesty = serializers.ChoiceField(choices=SUBMIT_ASPECT_CHOICES, required=False, allow_blank=True, default="")
    ms_on_item = serializers.IntegerField(required=False, min_value=0, max_value=24 * 3600 * 1000, allow_null=True)
    demonstration = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        default="",
        help_text="Optional: your own better response to the prompt (at most 20,000 characters); "
        "stored as a demonstration for supervised fine-tuning with the vote.",
    )

    def validate(self, attrs: dict) -> dict:
        # A misspelt field ("stregth") would otherwise vanish silently and the vote be stored without it.
        given = getattr(self, "initial_data", {}) or {}
        unknown = sorted(key for key in given if key not in self.fields) if hasattr(given, "keys") else []
        if unknown:
            expected = ", ".join(self.fields)
            raise serializers.ValidationError({key: f"not a vote field; expected one of {expected}" for key in unknown})
        if not attrs.get("item") and attrs.get("comparison") is None:
            raise serializers.ValidationError({"item": "send item (the token from /api/assignments/next/) or comparison"})
        return attrs


class VoteSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", read_only=True)
    # Read-only model fields lose ``allow_blank`` in DRF, so the schema would leave "" (not given) out
    # of these enums; declared here, the schema says what a vote without them carries.
    strength = serializers.ChoiceField(choices=Strength.choices, allow_blank=True, read_only=True)
    helpfulness = serializers.ChoiceField(choices=AspectChoice.choices, allow_blank=True, read_only=True)
    harmlessness = serializers.ChoiceField(choices=AspectChoice.choices, allow_blank=True, read_only=True)
    honesty = serializers.ChoiceField(choices=AspectChoice.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Vote
        fields = [
            "id", "comparison", "annotator", "choice", "strength", "rationale", "helpfulness", "harmlessness",
            "honesty", "shown_left", "ms_on_item", "source", "created_at", "origin", "judge",
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


class GoldNoteSerializer(serializers.Serializer):
    """A ``feedback.gold.GoldCheck`` as the annotator reads it, in the sides they saw."""

    matched = serializers.BooleanField()
    expected = serializers.CharField(help_text="left, right, tie or both_bad, as this annotator saw the item")
    note = serializers.CharField()

    def to_representation(self, check) -> dict:
        return {"matched": check.matched, "expected": choice_on_screen(check.gold_choice, check.shown_left),
                "note": check.note()}


class AnnotatorVoteSerializer(serializers.Serializer):
    """A vote as its annotator sees it: choice and aspects in screen terms (left, right, tie,
    both_bad), without the stored side shown on the left."""

    id = serializers.IntegerField()
    comparison = serializers.IntegerField(source="comparison_id")
    annotator = serializers.CharField(source="annotator.username")
    choice = serializers.SerializerMethodField()
    strength = serializers.CharField()
    rationale = serializers.CharField()
    helpfulness = serializers.SerializerMethodField()
    harmlessness = serializers.SerializerMethodField()
    honesty = serializers.SerializerMethodField()
    ms_on_item = serializers.IntegerField(allow_null=True)
    source = serializers.CharField()
    created_at = serializers.DateTimeField()
    # Only where vote_submit found a check item with feedback on (the view sets ``gold_note``): the key
    # is absent otherwise, so an answer never mentions gold items unless the vote was on one.
    gold = GoldNoteSerializer(source="gold_note", required=False, help_text=(
        "Only in the answer to a vote on a check (gold) item of a campaign that gives gold feedback: "
        "whether it matched the expected answer, that answer in screen terms, and the note the page shows."))

    def get_choice(self, vote: Vote) -> str:
        return choice_on_screen(vote.choice, vote.shown_left)

    def get_helpfulness(self, vote: Vote) -> str:
        return choice_on_screen(vote.helpfulness, vote.shown_left)

    def get_harmlessness(self, vote: Vote) -> str:
        return choice_on_screen(vote.harmlessness, vote.shown_left)

    def get_honesty(self, vote: Vote) -> str:
        return choice_on_screen(vote.honesty, vote.shown_left)


REVISE_CHOICES = ["left", "right", Choice.TIE.value, Choice.BOTH_BAD.value]
REVISE_ASPECT_CHOICES = ["left", "right", AspectChoice.TIE.value]


class VoteReviseSerializer(serializers.Serializer):
    """PATCH /api/votes/{id}/: the fields to change, in your screen terms; fields left out keep their value."""

    choice = serializers.ChoiceField(
        choices=REVISE_CHOICES, required=False,
        help_text="left or right (as the item was shown to you), tie, both_bad; tie and both_bad clear the strength.",
    )
    strength = serializers.ChoiceField(choices=Strength.choices, required=False, allow_blank=True)
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    helpfulness = serializers.ChoiceField(choices=REVISE_ASPECT_CHOICES, required=False, allow_blank=True)
    harmlessness = serializers.ChoiceField(choices=REVISE_ASPECT_CHOICES, required=False, allow_blank=True)
    honesty = serializers.ChoiceField(choices=REVISE_ASPECT_CHOICES, required=False, allow_blank=True)


class WithdrawnVoteSerializer(serializers.Serializer):
    """An undone vote's inputs, in screen terms, to fill the form again."""

    choice = serializers.CharField()
    strength = serializers.CharField()
    rationale = serializers.CharField()
    helpfulness = serializers.CharField()
    harmlessness = serializers.CharField()
    honesty = serializers.CharField()
    demonstration = serializers.CharField(required=False)


class VoteUndoSerializer(serializers.Serializer):
    """POST /api/votes/{id}/undo/: the vote is withdrawn and its item is yours again."""

    vote = serializers.IntegerField(source="change.vote_ref", help_text="the id of the withdrawn vote")
    comparison = serializers.IntegerField(source="assignment.comparison_id")
    item = serializers.CharField(source="assignment.token", help_text="the item's new token: vote on it again with it")
    expires_at = serializers.DateTimeField(source="assignment.expires_at", help_text="when your restored lease ends")
    withdrawn = WithdrawnVoteSerializer(source="inputs")


class SkipSerializer(serializers.ModelSerializer):
    class Meta:
        model = Assignment
        fields = ["id", "comparison", "status", "finished_at", "skip_reason", "skip_note"]
        read_only_fields = fields


class SkipRequestSerializer(serializers.Serializer):
    """Optional body of a skip: a reason flags the item for the admins (``note`` required for ``other``)."""

    reason = serializers.ChoiceField(choices=SkipReason.choices, required=False, allow_blank=True, default="")
    note = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False,
        help_text=f"At most {MAX_SKIP_NOTE_CHARS} characters once stripped; required when the reason is other.",
    )


class PromptFilter(serializers.Serializer):
    """Query parameters of the prompt list. CharField refuses NUL characters (PostgreSQL cannot compare them)."""

    split = serializers.ChoiceField(choices=Split.choices, required=False)
    source = serializers.CharField(required=False, max_length=100)
    tag = serializers.CharField(required=False, max_length=100)


class CompletionFilter(serializers.Serializer):
    """Query parameters of the completion list."""

    prompt = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    model_name = serializers.CharField(required=False, max_length=200)


class ComparisonStatusFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=ComparisonStatus.choices, required=False)
    split = serializers.ChoiceField(choices=Split.choices, required=False)
    prompt = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    model_name = serializers.CharField(required=False, max_length=200)
    tag = serializers.CharField(required=False, max_length=100)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class VoteFilter(serializers.Serializer):
    comparison = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    annotator = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    choice = serializers.ChoiceField(
        choices=SUBMIT_CHOICES, required=False, help_text="left, right, tie, both_bad; a or b for admins only."
    )

    def validate_choice(self, value: str) -> str:
        if value in (Choice.A, Choice.B) and not self.context.get("is_admin"):
            raise serializers.ValidationError("filter by left, right, tie or both_bad (the sides as you saw them)")
        return value
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


@extend_schema_serializer(examples=[
    # What "Try it out" sends by default: no campaign, i.e. every campaign whose pool holds you (a
    # placeholder slug such as "string" would name no campaign and answer 404).
    OpenApiExample("Every campaign of yours", value={}, request_only=True),
    OpenApiExample("One campaign", value={"campaign": "default"}, request_only=True),
])
class NextAssignmentSerializer(serializers.Serializer):
    campaign = serializers.SlugField(
        required=False, allow_blank=True, max_length=80,
        help_text="Claim inside this campaign only (its slug); also accepted as ?campaign=. Default: every active "
        "campaign whose pool holds you, highest priority first.",
    )


class GuidelinesAcknowledgeSerializer(serializers.Serializer):
    campaign = serializers.SlugField(max_length=80, help_text="The campaign's slug.")
    version = serializers.IntegerField(min_value=1, required=False, help_text="The version read (default: the latest).")


class GuidelinesAcknowledgedSerializer(serializers.Serializer):
    campaign = serializers.CharField(source="version.campaign.slug")
    version = serializers.IntegerField(source="version.number")
    at = serializers.DateTimeField()
