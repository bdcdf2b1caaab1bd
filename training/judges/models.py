"""AI judges, constitutions, and what a judging job asked and got (issue 16).

Registered through ``training.models`` (app label ``training``). Judges and constitutions are
versioned by rows: ``(name, version)`` is unique and a row is never edited in a way that changes
what it judges; a change is a new row with the next version, so every AI vote's
``judge``/``constitution`` ("name@version") names exactly what produced it.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Constitution(models.Model):
    """A named, versioned list of principles, each a question such as "Which response is less harmful?"."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    principles = models.JSONField(help_text="A list of questions, each asked of the judge about the pair.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="constitution_name_version_unique"),
            models.CheckConstraint(condition=~Q(name=""), name="constitution_name_set"),
            models.CheckConstraint(condition=Q(version__gte=1), name="constitution_version_positive"),
        ]

    def __str__(self) -> str:
        return self.ref

    @property
    def ref(self) -> str:
        """``"name@version"``, as AI votes record it."""
        return f"{self.name}@{self.version}"


class JudgeKind(models.TextChoices):
    LOCAL_LM = "local_lm", "local language model (checkpoint)"
    REWARD_MODEL = "reward_model", "reward model (checkpoint)"
    OPENAI = "openai", "OpenAI-compatible endpoint"


class Judge(models.Model):
    """A registered judge at one version. ``options`` holds its numbers (see
    ``training.judges.options.JudgeOptions``); ``api_key_env`` is the *name* of the
    environment variable holding an endpoint's key, never the key."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    kind = models.CharField(max_length=20, choices=JudgeKind.choices)
    checkpoint = models.ForeignKey(
        "training.Checkpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="judges",
        help_text="The local model or reward model (local_lm, reward_model).",
    )
    base_url = models.CharField(max_length=500, blank=True, default="", help_text="e.g. http://127.0.0.1:8000/v1 (openai).")
    model_name = models.CharField(max_length=200, blank=True, default="", help_text="The endpoint's model name (openai).")
    api_key_env = models.CharField(
        max_length=100, blank=True, default="", help_text="Name of the environment variable holding the key (openai); empty: no key.",
    )
    template = models.CharField(max_length=100, blank=True, default="", help_text='Prompt template "name@version" (not for reward models).')
    constitution = models.ForeignKey(
        Constitution, null=True, blank=True, on_delete=models.PROTECT, related_name="judges",
        help_text="Asked principle by principle (the template must have {principle}); empty: one overall question.",
    )
    options = models.JSONField(default=dict, blank=True, help_text="Numbers: timeouts, retries, concurrency, tie band, ...")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="judge_name_version_unique"),
            models.CheckConstraint(condition=~Q(name=""), name="judge_name_set"),
            models.CheckConstraint(condition=Q(kind__in=JudgeKind.values), name="judge_kind_valid"),
            models.CheckConstraint(
                condition=(Q(kind=JudgeKind.OPENAI) & ~Q(base_url="") & ~Q(model_name="") & Q(checkpoint__isnull=True))
                | (~Q(kind=JudgeKind.OPENAI) & Q(checkpoint__isnull=False) & Q(base_url="") & Q(api_key_env="")),
                name="judge_kind_fields",
            ),
        ]

    def __str__(self) -> str:
        return self.ref

    @property
    def ref(self) -> str:
        """``"name@version"``, as AI votes record it."""
        return f"{self.name}@{self.version}"


class CallStatus(models.TextChoices):
    OK = "ok", "verdict"
    UNPARSED = "unparsed", "no verdict in the answer"
    FAILED = "failed", "failed"


class JudgeCall(models.Model):
    """One question to a judge: a comparison in one order (``ab``: completion a shown as Response
    A), on one principle (``principle_index`` into the constitution; None: the overall question).
    ``label`` is the answer about the pair as shown (A/B/tie), ``choice`` the same about the
    comparison's sides (a/b/tie); both empty unless ``status`` is ok. ``seconds``: wall time (a
    batched local call's share of its batch)."""

    job = models.ForeignKey("training.Job", on_delete=models.CASCADE, related_name="judge_calls")
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="calls")
    comparison_id = models.PositiveBigIntegerField(db_index=True)
    order = models.CharField(max_length=2)
    principle_index = models.PositiveSmallIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=CallStatus.choices)
    label = models.CharField(max_length=3, blank=True, default="")
    choice = models.CharField(max_length=3, blank=True, default="")
    raw_output = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(order__in=["ab", "ba"]), name="judge_call_order_valid"),
            models.CheckConstraint(condition=Q(status__in=CallStatus.values), name="judge_call_status_valid"),
            models.CheckConstraint(
                condition=(Q(status=CallStatus.OK) & Q(choice__in=["a", "b", "tie"])) | (~Q(status=CallStatus.OK) & Q(choice="")),
                name="judge_call_choice_with_verdict",
            ),
        ]
        indexes = [models.Index(fields=["job", "comparison_id"], name="judge_call_by_job")]

    def __str__(self) -> str:
        return f"call {self.pk}: comparison {self.comparison_id} {self.order} ({self.status})"


class JudgeVerdict(models.Model):
    """A judging job's verdict on one comparison: each order's choice (``choice_ab``,
    ``choice_ba``; "" when that order gave none), the combined ``choice`` ("" when no vote was
    possible), ``inconsistent`` (the choice flipped with the order: recorded as a tie), and per
    principle ``principles``: ``[{"principle", "ab", "ba", "choice", "inconsistent"}, ...]``."""

    job = models.ForeignKey("training.Job", on_delete=models.CASCADE, related_name="judge_verdicts")
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="verdicts")
    comparison_id = models.PositiveBigIntegerField(db_index=True)
    choice = models.CharField(max_length=3, blank=True, default="")
    choice_ab = models.CharField(max_length=3, blank=True, default="")
    choice_ba = models.CharField(max_length=3, blank=True, default="")
    inconsistent = models.BooleanField(default=False)
    principles = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["job", "comparison_id"], name="judge_verdict_one_per_job")]

    def __str__(self) -> str:
        return f"verdict on comparison {self.comparison_id}: {self.choice or 'none'}"
