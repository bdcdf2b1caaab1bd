"""Human preference data: prompts, completions, comparisons, votes and assignments (leases).

Invariants that matter for training data are enforced by the database (check and unique
constraints), not only by Python, so a bulk insert or a second code path cannot break them.
"""
from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from .exports.formats import FILE_TYPES as EXPORT_FILE_TYPE_NAMES
from .campaigns.models import default_campaign_id
from .import_flags import flag_label, flags_split
from .exports.formats import FORMATS as EXPORT_FORMAT_REGISTRY


class Split(models.TextChoices):
    TRAIN = "train", "train"
    EVAL = "eval", "eval"


class Choice(models.TextChoices):
    """A preference between completion A and completion B of a comparison."""

    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Strength(models.TextChoices):
    SLIGHT = "slight", "slightly"
    CLEAR = "clear", "clearly"
    STRONG = "strong", "strongly"


class AspectChoice(models.TextChoices):
    A = "a", "A"
    B = "b", "B"
    TIE = "tie", "Same"


class Side(models.TextChoices):
    """Which completion (A or B) was shown on the left. A vote stores ``""`` when
    nothing was shown: an imported vote, cast elsewhere."""

    A = "a", "A"
    B = "b", "B"


class Prompt(models.Model):
    """The conversation so far: a list of ``{"role": ..., "content": ...}`` messages ending with a user turn."""

    messages = models.JSONField()
    messages_sha256 = models.CharField(max_length=64, db_index=True, editable=False)
    source = models.CharField(max_length=100, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.TRAIN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(split__in=Split.values), name="prompt_split_valid"),
            models.CheckConstraint(condition=~Q(messages_sha256=""), name="prompt_hash_set"),
        ]
        indexes = [models.Index(fields=["split", "source"])]

    def __str__(self) -> str:
        last = self.messages[-1]["content"] if self.messages else ""
        return f"Prompt {self.pk}: {last[:60]}"


class Completion(models.Model):
    """One response to a prompt, written by the model named ``model_name`` (a checkpoint name or external model)."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="completions")
    model_name = models.CharField(max_length=200, db_index=True)
    text = models.TextField(blank=True)
    generation_params = models.JSONField(default=dict, blank=True)
    is_truncated = models.BooleanField(default=False, help_text="Stopped at its length limit without ending its turn.")
    truncated_at_role_marker = models.BooleanField(
        default=False,
        help_text="The model went on to write another turn (a role marker such as '\\n\\nHuman:'); the text was cut before it.",
    )
    is_empty = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(model_name=""), name="completion_model_name_set"),
            models.CheckConstraint(
                condition=~(Q(is_truncated=True) & Q(truncated_at_role_marker=True)),
                name="completion_one_truncation",
            ),
        ]

    def __str__(self) -> str:
        return f"Completion {self.pk} by {self.model_name}"


class ComparisonStatus(models.TextChoices):
    OPEN = "open", "open"
    COMPLETE = "complete", "complete"
    RETIRED = "retired", "retired"


class Comparison(models.Model):
    """Two completions of the same prompt, to be judged by ``votes_required`` annotators of its campaign."""

    campaign = models.ForeignKey(
        "feedback.Campaign", on_delete=models.PROTECT, related_name="comparisons", default=default_campaign_id
    )
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="comparisons")
    completion_a = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="+")
    completion_b = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="+")
    votes_required = models.PositiveSmallIntegerField(default=1)
    vote_count = models.PositiveIntegerField(default=0, editable=False)
    priority = models.IntegerField(default=0, help_text="Higher is served first.")
    status = models.CharField(max_length=10, choices=ComparisonStatus.choices, default=ComparisonStatus.OPEN)
    gold_choice = models.CharField(max_length=10, choices=Choice.choices, blank=True, default="")
    external_id = models.CharField(
        max_length=128, blank=True, default="",
        help_text="Stable key of an imported pair (e.g. 'hh-rlhf:<sha256>'); re-importing it adds nothing.",
    )
    import_flags = models.CharField(
        max_length=200, blank=True, default="",
        help_text="Why an imported pair may not be what its file meant (comma-separated codes, "
        "feedback.import_flags); empty when clean. Snapshots and exports leave flagged comparisons out unless asked.",
    )
    identity_leak = models.BooleanField(
        default=False, db_index=True,
        help_text="A response says which model wrote it: it matches an active identity pattern (identity_matches) "
        "or an annotator flagged it (identity_leak_annotator). Votes on it are left out of the leaderboard by default.",
    )
    identity_leak_annotator = models.BooleanField(
        default=False, help_text="An annotator skipped it with the reason 'reveals which model wrote it'.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(completion_a=F("completion_b")), name="comparison_distinct_completions"),
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="comparison_external_id_unique"
            ),
            models.UniqueConstraint(fields=["completion_a", "completion_b"], name="comparison_unique_pair"),
            models.CheckConstraint(condition=Q(votes_required__gte=1), name="comparison_votes_required_positive"),
            models.CheckConstraint(condition=Q(status__in=ComparisonStatus.values), name="comparison_status_valid"),
            models.CheckConstraint(
                condition=Q(gold_choice="") | Q(gold_choice__in=Choice.values), name="comparison_gold_valid"
            ),
        ]
        indexes = [
            # The queue walks open comparisons by priority, then age.
            models.Index(fields=["status", "-priority", "created_at", "id"], name="comparison_queue_order"),
            models.Index(fields=["campaign", "status", "-priority", "created_at", "id"], name="comparison_campaign_queue"),
        ]
        permissions = [
            ("annotate", "Can be served comparisons and vote on them"),
            ("manage_feedback", "Can see model names and every comparison, and create data"),
        ]

    def __str__(self) -> str:
        return f"Comparison {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status == ComparisonStatus.OPEN

    @property
    def import_flag_codes(self) -> list[str]:
        """``import_flags`` as a list of codes (``[]`` when clean)."""
        return flags_split(self.import_flags)

    @property
    def import_flag_labels(self) -> list[tuple[str, str]]:
        """``import_flags`` as ``[(code, a person's words), ...]`` (``[]`` when clean)."""
        return [(code, flag_label(code)) for code in flags_split(self.import_flags)]


class SkipReason(models.TextChoices):
    """Why an annotator skipped (flagged) an item; empty for a plain skip."""

    IDENTITY_LEAK = "identity_leak", "reveals which model wrote it"
    PERSONAL_DATA = "personal_data", "contains personal data"
    BROKEN = "broken", "prompt is broken or unreadable"
    OTHER = "other", "other"


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", "leased"
    VOTED = "voted", "voted"
    SKIPPED = "skipped", "skipped"


def item_token() -> str:
    """A fresh opaque item token: 16 URL-safe characters (96 random bits)."""
    return secrets.token_urlsafe(12)


class Assignment(models.Model):
    """A lease of one comparison slot to one annotator, and what became of it (voted or skipped).

    A lease whose ``expires_at`` has passed no longer holds a slot: the queue may give the slot to
    someone else. The side shown on the left is drawn once per assignment and kept with the vote.
    ``token`` is the opaque name of the item on the annotator's screen: a vote carries it, so a
    vote can only land on the item it was cast on; it says nothing about the comparison's sides.
    """

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED)
    shown_left = models.CharField(max_length=1, choices=Side.choices)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    token = models.CharField(max_length=24, default=item_token, editable=False)
    skip_reason = models.CharField(max_length=16, choices=SkipReason.choices, blank=True, default="")
    skip_note = models.TextField(blank=True, default="", help_text="The annotator's words when the reason is 'other'.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "annotator"], name="assignment_one_per_annotator"),
            models.CheckConstraint(condition=Q(status__in=AssignmentStatus.values), name="assignment_status_valid"),
            models.CheckConstraint(condition=Q(shown_left__in=Side.values), name="assignment_side_valid"),
            models.CheckConstraint(condition=Q(expires_at__gt=F("leased_at")), name="assignment_lease_positive"),
            models.CheckConstraint(
                condition=Q(skip_reason="") | Q(skip_reason__in=SkipReason.values), name="assignment_skip_reason_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["comparison", "status", "expires_at"], name="assignment_slot_lookup"),
            # An annotator's live lease, looked up on every claim without reading all their past assignments.
            models.Index(fields=["annotator", "status", "expires_at"], name="assignment_annotator_lease"),
            models.Index(fields=["annotator", "token"], name="assignment_annotator_token"),
        ]

    def __str__(self) -> str:
        return f"Assignment {self.pk} ({self.status})"


class VoteOrigin(models.TextChoices):
    HUMAN = "human", "Human"
    AI = "ai", "AI judge"


class Vote(models.Model):
    """One annotator's preference on one comparison (at most one per pair, enforced by the database)."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="votes")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="votes")
    choice = models.CharField(max_length=10, choices=Choice.choices)
    strength = models.CharField(max_length=10, choices=Strength.choices, blank=True, default="")
    rationale = models.TextField(blank=True, default="")
    helpfulness = models.CharField(max_length=3, choices=AspectChoice.choices, blank=True, default="")
    harmlessness = models.CharField(max_length=3, choices=AspectChoice.choices, blank=True, default="")
    honesty = models.CharField(max_length=3, choices=AspectChoice.choices, blank=True, default="")
    shown_left = models.CharField(
        max_length=1, choices=Side.choices, blank=True, default="",
        help_text="Which completion was on the left; empty when nothing was shown (an imported vote).",
    )
    ms_on_item = models.PositiveIntegerField(null=True, blank=True, help_text="Milliseconds the item was on screen.")
    source = models.CharField(max_length=100, default="annotator")
    guidelines_version = models.ForeignKey(
        "feedback.GuidelineVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="votes",
        help_text="The campaign's guidelines when the vote was cast (empty: none were written).",
    )
    blind = models.BooleanField(
        default=True, help_text="False when the voter could see model names (an admin): left out of the leaderboard by default."
    )
    # AI feedback (issue 16): who cast the vote. A judge's vote is cast by its own inactive system user
    # (one per judge name and version), never takes an annotator's slot, and is left out of snapshots,
    # exports and the leaderboard unless their rules ask for it (``votes: human|ai|both``).
    origin = models.CharField(
        max_length=5, choices=VoteOrigin.choices, default=VoteOrigin.HUMAN, db_index=True,
        help_text="human: a person cast it; ai: a registered judge did (see judge, judge_template, constitution).",
    )
    judge = models.CharField(max_length=200, blank=True, default="", help_text='The judge that cast an AI vote: "name@version".')
    judge_template = models.CharField(
        max_length=200, blank=True, default="", help_text='The prompt template of an AI vote: "name@version".'
    )
    constitution = models.CharField(
        max_length=200, blank=True, default="", help_text='The constitution of an AI vote, if any: "name@version".'
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    ASPECTS = ("helpfulness", "harmlessness", "honesty")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "annotator"], name="vote_one_per_annotator"),
            models.CheckConstraint(condition=Q(choice__in=Choice.values), name="vote_choice_valid"),
            # Strength grades a preference; a tie or both-bad has none.
            models.CheckConstraint(
                condition=Q(strength="") | (Q(strength__in=Strength.values) & Q(choice__in=[Choice.A, Choice.B])),
                name="vote_strength_valid",
            ),
            models.CheckConstraint(condition=Q(shown_left="") | Q(shown_left__in=Side.values), name="vote_side_valid"),
            models.CheckConstraint(
                condition=(Q(origin=VoteOrigin.HUMAN) & Q(judge="") & Q(judge_template="") & Q(constitution=""))
                | (Q(origin=VoteOrigin.AI) & ~Q(judge="")),
                name="vote_origin_judge_consistent",
            ),
            *[
                models.CheckConstraint(
                    condition=Q(**{aspect: ""}) | Q(**{f"{aspect}__in": AspectChoice.values}),
                    name=f"vote_{aspect}_valid",
                )
                for aspect in ("helpfulness", "harmlessness", "honesty")
            ],
        ]

    def __str__(self) -> str:
        return f"Vote {self.pk}: {self.choice}"


class Demonstration(models.Model):
    """An ideal response to a prompt, for supervised fine-tuning (SFT): written by an annotator
    in the "write a better response" box of a comparison, or imported."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="demonstrations")
    text = models.TextField()
    source = models.CharField(max_length=100, default="annotator")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="demonstrations"
    )
    comparison = models.ForeignKey(
        Comparison, null=True, blank=True, on_delete=models.SET_NULL, related_name="demonstrations",
        help_text="The comparison on whose page it was written.",
    )
    external_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(text=""), name="demonstration_text_set"),
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="demonstration_external_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Demonstration {self.pk} for prompt {self.prompt_id}"


class SnapshotKind(models.TextChoices):
    PREFERENCE = "preference", "preference pairs"
    SFT = "sft", "demonstrations (SFT)"


class DatasetSnapshot(models.Model):
    """A frozen dataset: exactly which votes (and, for SFT, demonstrations) it used, the rules,
    its row counts and a content hash, with the rows written to ``files_dir`` (relative to
    ``ARBITER_DATA_DIR``) as ``train.jsonl`` and ``eval.jsonl`` in TRL's conversational format:
    ``prompt``/``chosen``/``rejected`` for ``preference``, ``prompt``/``completion`` for ``sft``.
    """

    kind = models.CharField(max_length=12, choices=SnapshotKind.choices, default=SnapshotKind.PREFERENCE)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rules = models.JSONField(default=dict)
    counts = models.JSONField(default=dict, blank=True)
    train_rows = models.PositiveIntegerField(default=0)
    eval_rows = models.PositiveIntegerField(default=0)
    annotator_count = models.PositiveIntegerField(default=0)
    content_hash = models.CharField(max_length=64)
    files_dir = models.CharField(max_length=500)
    votes = models.ManyToManyField(Vote, through="SnapshotVote", related_name="snapshots")
    demonstrations = models.ManyToManyField(Demonstration, through="SnapshotDemonstration", related_name="snapshots")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=~Q(content_hash=""), name="snapshot_hash_set")]

    def __str__(self) -> str:
        return f"Snapshot {self.pk} ({self.train_rows}+{self.eval_rows} rows)"


class SnapshotVote(models.Model):
    """One vote used by one snapshot, as it was when the snapshot was frozen.

    ``frozen`` holds the vote's fields at freeze time (``vote_frozen_fields``), so a vote revised
    or undone later leaves the snapshot's lineage as it was; the snapshot's files (and so its
    ``content_hash``) are never rewritten. ``vote`` links the live row while it exists: a plain
    delete of it is refused (PROTECT); only an undo by its annotator (``feedback.revisions``)
    detaches it (``vote`` becomes null, ``vote_ref`` keeps its id).
    """

    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.CASCADE, related_name="+")
    vote = models.ForeignKey(Vote, null=True, on_delete=models.PROTECT, related_name="+")
    vote_ref = models.PositiveBigIntegerField(default=0, help_text="The id of the vote used (kept after an undo).")
    frozen = models.JSONField(default=dict, blank=True, help_text="The vote's fields when the snapshot was frozen.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "vote"], name="snapshot_vote_unique")]


class VoteChangeAction(models.TextChoices):
    UNDO = "undo", "undo"
    REVISE = "revise", "revise"


class VoteChange(models.Model):
    """One change an annotator made to their own vote (the audit trail): who, when, what it was
    (``before``) and what it became (``after``; empty for an undo). Both in stored terms (a/b)
    with ``shown_left``, as ``vote_frozen_fields`` writes them. ``vote_ref`` keeps the vote's id
    after an undo deleted it."""

    vote = models.ForeignKey(Vote, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes")
    vote_ref = models.PositiveBigIntegerField(db_index=True)
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="vote_changes")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="vote_changes")
    at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=10, choices=VoteChangeAction.choices)
    before = models.JSONField()
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(action__in=VoteChangeAction.values), name="vote_change_action_valid"),
        ]

    def __str__(self) -> str:
        return f"Vote {self.vote_ref} {self.action} at {self.at:%Y-%m-%d %H:%M:%S}"


def vote_frozen_fields(vote: Vote) -> dict:
    """A vote's fields as JSON (stored terms: ``choice`` a/b/tie/both_bad, ``shown_left``): what a
    snapshot freezes and what an audit row keeps before and after a change."""
    return {
        "id": vote.pk,
        "comparison": vote.comparison_id,
        "annotator": vote.annotator_id,
        "choice": vote.choice,
        "strength": vote.strength,
        "rationale": vote.rationale,
        **{aspect: getattr(vote, aspect) for aspect in Vote.ASPECTS},
        "shown_left": vote.shown_left,
        "source": vote.source,
        "created_at": vote.created_at.isoformat() if vote.created_at else None,
        # An AI vote says so, and which judge (people's votes keep the shape they always had).
        **({"origin": vote.origin, "judge": vote.judge, "judge_template": vote.judge_template,
            "constitution": vote.constitution} if vote.origin == VoteOrigin.AI else {}),
    }


class SnapshotDemonstration(models.Model):
    """One demonstration used by one SFT snapshot (PROTECT, like votes)."""

    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.CASCADE, related_name="+")
    demonstration = models.ForeignKey(Demonstration, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "demonstration"], name="snapshot_demonstration_unique")]


class CompletionScore(models.Model):
    """A reward model's scalar score for one completion (higher is better), named by the reward
    checkpoint's name as completions name their writer."""

    completion = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="scores")
    reward_model = models.CharField(max_length=200)
    score = models.FloatField()
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["completion", "reward_model"], name="score_one_per_reward_model"),
            models.CheckConstraint(condition=~Q(reward_model=""), name="score_reward_model_set"),
        ]
        indexes = [models.Index(fields=["reward_model", "completion"], name="score_by_reward_model")]

    def __str__(self) -> str:
        return f"{self.reward_model}: {self.score:.3f} for completion {self.completion_id}"


EXPORT_FORMATS = tuple(EXPORT_FORMAT_REGISTRY)
EXPORT_FILE_TYPES = EXPORT_FILE_TYPE_NAMES


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class Export(models.Model):
    """A dataset export (``feedback.exports``): what was asked, how far it got, and the file it wrote.

    ``file_path`` is relative to ``ARBITER_DATA_DIR`` (``exports/<id>-<random>-<format>.<ext>``; a
    directory for ``hf-dataset``), set only once the file is complete (written to a temporary name,
    then renamed). ``checksum`` is the SHA-256 of the file (of the directory's ``sha256sum`` listing
    for ``hf-dataset``). ``votes_total`` is how many votes matched the filters when it was created;
    ``votes_read`` and ``progress_rows`` grow as it runs.
    """

    format = models.CharField(max_length=20, choices=[(f, f) for f in EXPORT_FORMATS])
    file_type = models.CharField(max_length=12, choices=[(t, t) for t in EXPORT_FILE_TYPES])
    filters = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    inline = models.BooleanField(default=False, help_text="Ran in the request that created it, not in the worker.")
    vote_id_max = models.PositiveBigIntegerField(default=0, help_text="Votes with a larger id (cast later) are not exported.")
    votes_total = models.PositiveBigIntegerField(default=0)
    votes_read = models.PositiveBigIntegerField(default=0)
    progress_rows = models.PositiveBigIntegerField(default=0)
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    checksum = models.CharField(max_length=64, blank=True, default="")
    file_path = models.CharField(max_length=500, blank=True, default="")
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last progress while running.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ExportStatus.values), name="export_status_valid"),
            models.CheckConstraint(condition=Q(format__in=EXPORT_FORMATS), name="export_format_valid"),
            models.CheckConstraint(condition=Q(file_type__in=EXPORT_FILE_TYPES), name="export_file_type_valid"),
        ]

    def __str__(self) -> str:
        return f"Export {self.pk} ({self.format}, {self.file_type}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (ExportStatus.SUCCEEDED, ExportStatus.FAILED)

    @property
    def quality_notes(self) -> list[str]:
        """Votes the quality filters left out, by reason, in words (``feedback.quality.rules.quality_notes``)."""
        from .quality.rules import quality_notes

        return quality_notes(self.counts or {})

    @property
    def eval_set_note(self) -> str:
        """Comparisons left out because their prompts are in an eval set, in words
        (``feedback.evalsets.exclusion.eval_set_note`` of ``counts["eval_set_excluded"]``; ``""``: none)."""
        from .evalsets.exclusion import eval_set_note

        return eval_set_note((self.counts or {}).get("eval_set_excluded") or 0)

    @property
    def vote_choice(self) -> str:
        """Whose votes it exported, in words (``feedback.vote_origins.vote_choice_words``)."""
        from .vote_origins import vote_choice_words

        return vote_choice_words(self.filters or {})

    @property
    def percent(self) -> int:
        """Votes read as a share of the votes matched at creation, 0-100 (100 once succeeded)."""
        if self.status == ExportStatus.SUCCEEDED:
            return 100
        return min(99, int(100 * self.votes_read / self.votes_total)) if self.votes_total else 0


from feedback.tokens.models import ApiToken  # noqa: E402,F401  (API tokens live in their own package)
from feedback.campaigns.models import (  # noqa: E402,F401  (campaigns live in their own package)
    Campaign,
    CampaignAnnotatorPause,
    CampaignStatus,
    GuidelineAcknowledgement,
    GuidelineVersion,
    RationaleMode,
)


class ImportJobStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class ImportJob(models.Model):
    """A preference import too large to run in the request (``feedback.import_jobs``): the uploaded
    file kept under ``ARBITER_DATA_DIR`` (``file_path``, relative; removed once it has run), the
    ``preferences_import`` options, and the outcome: ``summary`` (``ImportSummary.as_dict()`` plus
    ``unit``, ``refusals`` and ``report``) or ``error`` with ``problems`` (lines) and ``limit``
    (``{setting, limit, unit, number}`` when an import limit refused the file)."""

    format = models.CharField(max_length=20)
    options = models.JSONField(default=dict, blank=True)
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_path = models.CharField(max_length=500, blank=True, default="")
    size_bytes = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=ImportJobStatus.choices, default=ImportJobStatus.QUEUED)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    problems = models.JSONField(default=list, blank=True)
    limit = models.JSONField(default=dict, blank=True)
    task_id = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ImportJobStatus.values), name="import_job_status_valid"),
        ]

    @property
    def finished(self) -> bool:
        return self.status in (ImportJobStatus.SUCCEEDED, ImportJobStatus.FAILED)


from feedback.quality.models import QualityReport, QualityReportStatus  # noqa: E402,F401  (quality reports live in their own package)
from feedback.identity.models import (  # noqa: E402,F401  (identity leaks live in their own package)
    IdentityMatch,
    IdentityPattern,
    IdentityScan,
    IdentityScanStatus,
    PatternKind,
)
from feedback.evalsets.models import EvalSet, EvalSetItem, PromptKey  # noqa: E402,F401  (eval sets live in their own package)
from feedback.governance.models import (  # noqa: E402,F401  (data governance lives in its own package)
    AuditEvent,
    DataPolicy,
    PersonalDataFinding,
    PersonalDataScan,
    RedactedOriginal,
    SnapshotPolicy,
)
