"""HTML forms: shape only. The config dataclasses and the create services hold the rules."""
from __future__ import annotations

import json
from typing import Any

from django import forms

from .config import (
    BACKENDS, MAX_BATCH_SIZE, MAX_NEW_TOKENS_LIMIT, ON_FAILURE, QUANTIZATIONS, STRATEGIES, GenerationConfig, RewardConfig,
)
from .models import LoopMethod

DEFAULTS = GenerationConfig(checkpoints=[], limit=20)
SPLITS = [("", "any split"), ("train", "train"), ("eval", "eval")]
STRATEGY_LABELS = {"two_samples": "two samples of A", "head_to_head": "A against B"}
STRATEGY_CHOICES = [(name, STRATEGY_LABELS.get(name, name)) for name in STRATEGIES]
BACKEND_LABELS = {"transformers": "in the worker (transformers)", "server": "each checkpoint's model server"}
BACKEND_CHOICES = [(name, BACKEND_LABELS.get(name, name)) for name in BACKENDS]
ON_FAILURE_LABELS = {"fail": "fail the job (keep the batches done)", "skip": "skip the prompt and count it"}
ON_FAILURE_CHOICES = [(name, ON_FAILURE_LABELS.get(name, name)) for name in ON_FAILURE]
QUANTIZATION_LABELS = {"": "none", "4bit": "4-bit base (QLoRA: LoRA over NF4, CUDA and bitsandbytes)"}
QUANTIZATION_CHOICES = [(name, QUANTIZATION_LABELS.get(name, name)) for name in QUANTIZATIONS]


def _quantization_field() -> forms.ChoiceField:
    """The base's quantization, one field for every run form (the rules: ``config.quantization_problem``)."""
    return forms.ChoiceField(choices=QUANTIZATION_CHOICES, required=False, initial="", label="Quantization",
                             help_text="QLoRA needs LoRA and a CUDA worker")


def _number(**attrs) -> forms.NumberInput:
    return forms.NumberInput(attrs=attrs)


class _ServiceErrors:
    """Show a service ``ValidationError``'s field messages next to the fields they concern.

    A config key names a form field directly, through ``ERROR_FIELDS``, or as its last part
    (``rules.eval_fraction`` -> ``eval_fraction``); a nested key whose last part is not a field goes
    to its first part (``rules``) prefixed with the rest. Without a ``rules`` field, a ``rules``
    message that starts with a field's name (``"eval_fraction: must be ..."``) goes to that field.
    What fits no field is shown above the form, prefixed with its key (except ``UNPREFIXED`` keys).
    """

    ERROR_FIELDS: dict[str, str] = {}
    UNPREFIXED = {"config", "snapshot"}
    NESTED_IN = ("rules",)  # config keys whose messages may name a field: "name: message"

    def add_service_errors(self, message_dict: dict[str, list[str]]) -> None:
        for key, messages in message_dict.items():
            for message in messages:
                field, text = self._error_place(key, message)
                if field is None and key not in self.UNPREFIXED:
                    text = f"{key}: {text}"
                self.add_error(field, text)

    def _error_place(self, key: str, message: str) -> tuple[str | None, str]:
        """``(form field or None, message)`` for one service error message."""
        field = self.ERROR_FIELDS.get(key, key)
        if field in self.fields:  # e.g. a "rules" JSON field keeps its own messages
            return field, message
        if key in self.NESTED_IN:
            name, sep, rest = message.partition(": ")
            if sep and self.ERROR_FIELDS.get(name, name) in self.fields:
                return self.ERROR_FIELDS.get(name, name), rest
            return None, message
        outer, dot, inner = key.partition(".")
        if dot:
            inner_field = self.ERROR_FIELDS.get(inner, inner)
            if inner_field in self.fields:
                return inner_field, message
            if outer in self.fields:
                return outer, f"{inner}: {message}"
        return None, message


class GenerationForm(_ServiceErrors, forms.Form):
    """Launch a generation job. Defaults suit a CPU laptop: 20 prompts, 128 new tokens, batches of 8."""

    checkpoint = forms.ChoiceField(label="Checkpoint A")
    opponent = forms.ChoiceField(label="Checkpoint B", required=False, help_text="head_to_head only")
    strategy = forms.ChoiceField(choices=STRATEGY_CHOICES, initial=DEFAULTS.strategy)
    backend = forms.ChoiceField(
        choices=BACKEND_CHOICES, initial=DEFAULTS.backend, label="Generate", required=False,
        help_text="a model server answers for each checkpoint that names one",
    )
    on_failure = forms.ChoiceField(
        choices=ON_FAILURE_CHOICES, initial=DEFAULTS.on_failure, label="When a server call fails", required=False,
        help_text="server backend only",
    )
    tag = forms.CharField(required=False, max_length=100)
    split = forms.ChoiceField(choices=SPLITS, required=False)
    max_open_comparisons = forms.IntegerField(
        required=False, label="Only prompts with fewer than N open comparisons", widget=_number(min=1)
    )
    limit = forms.IntegerField(required=False, initial=DEFAULTS.limit, label="At most N prompts", widget=_number(min=1))
    max_new_tokens = forms.IntegerField(
        initial=DEFAULTS.max_new_tokens, widget=_number(min=1, max=MAX_NEW_TOKENS_LIMIT)
    )
    temperature = forms.FloatField(initial=DEFAULTS.temperature, widget=_number(min=0, max=2, step="any"))
    top_p = forms.FloatField(initial=DEFAULTS.top_p, label="Top-p", widget=_number(min=0, max=1, step="any"))
    batch_size = forms.IntegerField(initial=DEFAULTS.batch_size, widget=_number(min=1, max=MAX_BATCH_SIZE))
    seed = forms.IntegerField(initial=DEFAULTS.seed, widget=_number(min=0))
    votes_required = forms.IntegerField(initial=DEFAULTS.votes_required, widget=_number(min=1, max=100))
    priority = forms.IntegerField(initial=DEFAULTS.priority)
    campaign = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Campaign",
        help_text="where the new comparisons go (its guidelines, pool and target)",
    )

    # Error keys of GenerationConfig / generation_job_create that are not field names here.
    ERROR_FIELDS = {"checkpoints": "checkpoint", "campaign_id": "campaign"}
    UNPREFIXED = {"prompts", "config"}  # their messages read well on their own

    def __init__(self, *args, checkpoint_names: list[str], campaigns: list[tuple[int, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(name, name) for name in checkpoint_names]
        self.fields["checkpoint"].choices = choices
        self.fields["opponent"].choices = [("", "—"), *choices]
        self.fields["campaign"].choices = [("", "Default"), *[(pk, name) for pk, name in campaigns if name != "Default"]]

    def config(self) -> dict[str, Any]:
        """The cleaned form as a ``GenerationConfig`` dict (blank optional settings left out)."""
        data = self.cleaned_data
        names = [data["checkpoint"]] + ([data["opponent"]] if data.get("opponent") else [])
        config = {"checkpoints": names, "strategy": data["strategy"], "backend": data.get("backend") or DEFAULTS.backend,
                  "on_failure": data.get("on_failure") or DEFAULTS.on_failure}
        for name in ("tag", "split", "max_open_comparisons", "limit"):
            if data.get(name) not in (None, ""):
                config[name] = data[name]
        for name in ("max_new_tokens", "temperature", "top_p", "batch_size", "seed", "votes_required", "priority"):
            config[name] = data[name]
        if data.get("campaign") is not None:
            config["campaign_id"] = data["campaign"]
        return config


REWARD_DEFAULTS = RewardConfig(base="")
SNAPSHOT_NEW = ""


class _Governance(forms.Form):
    """A run's justification (required where ``ARBITER_RUN_JUSTIFICATION_REQUIRED`` is on) and an
    admin's data-use policy override; ``governance()`` gives them as run-create keywords."""

    justification = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="why this run is warranted: why prompting or retrieval is not enough, which data, who maintains it; "
        "goes into the model card",
    )
    policy_override = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}), label="Data-use policy override",
        help_text="only to train on data its data-use policy refuses: why (20+ characters); recorded on the snapshot",
    )

    def governance(self) -> dict[str, str]:
        return {"justification": self.cleaned_data.get("justification", ""),
                "policy_override": self.cleaned_data.get("policy_override", "")}


class RewardForm(_ServiceErrors, _Governance, forms.Form):
    """Launch a reward-model run. Defaults suit a CPU laptop with SmolLM2-135M: full fine-tune,
    max length 256, batches of 8, one epoch, evaluation every 50 steps."""

    base = forms.ChoiceField(label="Base policy checkpoint")
    snapshot = forms.ChoiceField(required=False, label="Dataset", help_text="a new snapshot freezes the votes as they are now")
    split_by = forms.ChoiceField(
        choices=[("prompt", "the prompt's split field"), ("hash", "a hash of the prompt")], initial="prompt",
        label="Train/eval split by",
    )
    eval_fraction = forms.FloatField(initial=0.1, label="Eval fraction (hash split)", widget=_number(min=0, max=1, step="any"))
    include_margin = forms.BooleanField(required=False, initial=True, label="Use vote strength as a margin")
    include_gold = forms.BooleanField(required=False, initial=True, label="Include gold items")
    exclude_annotators = forms.MultipleChoiceField(required=False, label="Leave out these annotators' votes")
    # Quality rules (feedback.quality.rules); the snapshot's rules check them and name the field.
    aggregation = forms.ChoiceField(
        choices=[("majority", "majority vote"), ("dawid_skene", "Dawid-Skene (weights annotators by estimated reliability)")],
        required=False, initial="majority", label="Label each comparison by",
    )
    min_gold_accuracy = forms.FloatField(
        required=False, label="Leave out annotators below this gold accuracy",
        help_text="0-1, share of gold items answered right; empty: off", widget=_number(step="any"),
    )
    min_gold_votes = forms.IntegerField(
        required=False, initial=5, label="…judged from this many gold votes on", help_text="annotators with fewer are kept",
        widget=_number(),
    )
    min_kappa = forms.FloatField(
        required=False, label="Leave out annotators below this kappa against peers",
        help_text="0-1, Cohen's kappa weighted by shared items; empty: off", widget=_number(step="any"),
    )
    exclude_flagged = forms.BooleanField(
        required=False, label="Leave out flagged annotators' votes", help_text="left bias, too fast, long runs, consensus outlier",
    )
    min_ms_on_item = forms.IntegerField(
        required=False, label="Leave out votes faster than (ms on the item)", help_text="empty or 0: off", widget=_number(),
    )
    # Whose votes (feedback.vote_origins): people's by default; AI judges' only, or both with a weight.
    votes = forms.ChoiceField(
        choices=[("human", "people's votes only"), ("ai", "AI judges' votes only"), ("both", "both, AI votes weighted")],
        required=False, initial="human", label="Votes from",
    )
    ai_weight = forms.FloatField(
        required=False, label="Weight of an AI vote (with both)", help_text="0-1; a person's vote weighs 1; empty: 1",
        widget=_number(step="any"),
    )
    output_name = forms.CharField(required=False, max_length=200, help_text="default: <base>-rm-<run id>")
    lora = forms.BooleanField(required=False, initial=REWARD_DEFAULTS.lora, label="LoRA (merged on save)")
    quantization = _quantization_field()
    learning_rate = forms.FloatField(initial=REWARD_DEFAULTS.learning_rate, widget=_number(min=0, step="any"))
    num_train_epochs = forms.FloatField(initial=REWARD_DEFAULTS.num_train_epochs, label="Epochs", widget=_number(min=0, step="any"))
    max_steps = forms.IntegerField(required=False, label="Max steps", help_text="overrides epochs", widget=_number(min=1))
    per_device_train_batch_size = forms.IntegerField(
        initial=REWARD_DEFAULTS.per_device_train_batch_size, label="Batch size", widget=_number(min=1, max=MAX_BATCH_SIZE)
    )
    max_length = forms.IntegerField(initial=REWARD_DEFAULTS.max_length, label="Max length (tokens)", widget=_number(min=16))
    eval_steps = forms.IntegerField(initial=REWARD_DEFAULTS.eval_steps, label="Evaluate every N steps", widget=_number(min=1))
    seed = forms.IntegerField(initial=REWARD_DEFAULTS.seed, widget=_number(min=0))

    ERROR_FIELDS = {"snapshot_id": "snapshot", "per_device_train_batch_size": "per_device_train_batch_size"}
    RULE_FIELDS = ("split_by", "eval_fraction", "include_margin", "include_gold", "exclude_annotators",
                   "aggregation", "min_gold_accuracy", "min_gold_votes", "min_kappa", "exclude_flagged", "min_ms_on_item",
                   "votes", "ai_weight")

    def __init__(self, *args, checkpoint_names: list[str], snapshots: list[tuple[int, str]], annotators: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base"].choices = [(name, name) for name in checkpoint_names]
        self.fields["snapshot"].choices = [(SNAPSHOT_NEW, "a new snapshot of the current votes"), *snapshots]
        self.fields["exclude_annotators"].choices = annotators

    def config(self) -> dict[str, Any]:
        """The cleaned form as a ``RewardConfig`` dict: an existing snapshot, or rules for a new one."""
        data = self.cleaned_data
        config: dict[str, Any] = {"base": data["base"]}
        if data.get("snapshot"):
            config["snapshot_id"] = int(data["snapshot"])
        else:
            rules = {
                "split_by": data["split_by"], "include_margin": data["include_margin"],
                "include_gold": data["include_gold"],
                "exclude_annotators": sorted(int(i) for i in data.get("exclude_annotators") or []),
            }
            if data["split_by"] == "hash":
                rules["eval_fraction"] = data["eval_fraction"]
            # Quality rules only when set, so a plain run's rules read as before.
            if data.get("aggregation") and data["aggregation"] != "majority":
                rules["aggregation"] = data["aggregation"]
            for name in ("min_gold_accuracy", "min_kappa"):
                if data.get(name) is not None:
                    rules[name] = data[name]
            if data.get("min_gold_accuracy") is not None and data.get("min_gold_votes") is not None:
                rules["min_gold_votes"] = data["min_gold_votes"]
            if data.get("exclude_flagged"):
                rules["exclude_flagged"] = True
            if data.get("min_ms_on_item"):
                rules["min_ms_on_item"] = data["min_ms_on_item"]
            if data.get("votes") and data["votes"] != "human":  # people's votes: the rules read as before
                rules["votes"] = data["votes"]
            if data.get("ai_weight") is not None:  # refused by the rules unless votes is "both"
                rules["ai_weight"] = data["ai_weight"]
            config["rules"] = rules
        if data.get("output_name"):
            config["output_name"] = data["output_name"].strip()
        config["use_margin"] = data["include_margin"]
        for name in ("lora", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                     "max_length", "eval_steps", "seed"):
            if data.get(name) is not None:
                config[name] = data[name]
        if data.get("quantization"):
            config["quantization"] = data["quantization"]
        return config


class ScoringForm(_ServiceErrors, forms.Form):
    """Launch a scoring job: a reward model scores the completions of open (or all) comparisons."""

    reward_model = forms.ChoiceField(label="Reward model")
    scope = forms.ChoiceField(choices=[("open", "open comparisons"), ("all", "all comparisons")], initial="open")
    only_unscored = forms.BooleanField(required=False, initial=True, label="Skip completions this model already scored")
    prioritize_uncertain = forms.BooleanField(
        required=False, initial=False, label="Then serve the pairs it is least sure about first",
    )
    batch_size = forms.IntegerField(initial=16, widget=_number(min=1, max=MAX_BATCH_SIZE))

    def __init__(self, *args, reward_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reward_model"].choices = [(name, name) for name in reward_names]

    def config(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


class JSONObjectField(forms.CharField):
    """A textarea holding a JSON object ({} when blank); a field error names what is wrong."""

    widget = forms.Textarea(attrs={"rows": 2, "class": "code"})

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def prepare_value(self, value):
        return json.dumps(value) if isinstance(value, dict) else value

    def to_python(self, value):
        text = (value or "").strip()
        if not text:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
        if not isinstance(data, dict):
            raise forms.ValidationError('must be a JSON object, e.g. {"beta": 0.1}')
        return data


class LoopForm(_ServiceErrors, forms.Form):
    """The loop's settings: when a round starts, from which policy, and each step's settings."""

    enabled = forms.BooleanField(required=False, label="Loop on")
    votes_per_round = forms.IntegerField(min_value=1, label="Start a round after every N new votes", widget=_number(min=1))
    method = forms.ChoiceField(choices=LoopMethod.choices, label="Policy optimisation",
                               help_text="TRL no longer ships PPO; RLOO (default) and GRPO are its maintained successors.")
    policy = forms.ChoiceField(required=False, label="Policy the next round starts from",
                               help_text="after a round, the loop moves on to the new checkpoint")
    rules = JSONObjectField(label="Snapshot rules", help_text='e.g. {"split_by": "hash", "eval_fraction": 0.2}')
    reward_config = JSONObjectField(label="Reward run settings", help_text='e.g. {"max_length": 256, "max_steps": 50}')
    policy_config = JSONObjectField(label="DPO / RL run settings", help_text='e.g. {"beta": 0.1} or {"algorithm": "grpo"}')
    generation_config = JSONObjectField(label="New-vs-parent generation", help_text='e.g. {"limit": 20, "priority": 100}')
    campaign = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Campaign for new comparisons",
        help_text="where each round's new-vs-parent comparisons go (their guidelines, pool and target)",
    )
    judge = forms.ChoiceField(
        required=False, label="AI judge for each round (RLAIF)",
        help_text="labels each round's new-vs-parent comparisons (people still get them); its votes count toward "
        'the next round. A round trains on AI votes only if its snapshot rules say so ({"votes": "both"}).',
    )
    gate_eval_set = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Regression gate: eval set",
        help_text="promote a round's checkpoint only if it is not worse than its parent on this eval set",
    )
    gate_margin = forms.FloatField(
        required=False, min_value=0, max_value=0.5, initial=0.05, label="Gate margin", widget=_number(min=0, max=0.5, step=0.01),
        help_text="not worse: reward-model win rate against the parent >= 0.5 - margin",
    )

    def __init__(self, *args, checkpoint_names: list[str], campaigns: list[tuple[int, str]] = (),
                 judges: list[str] = (), eval_sets: list[tuple[int, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["policy"].choices = [("", "not set: choose a policy"), *[(name, name) for name in checkpoint_names]]
        self.fields["campaign"].choices = [("", "Default"), *[(pk, name) for pk, name in campaigns if name != "Default"]]
        self.fields["judge"].choices = [("", "none: people only"), *[(ref, ref) for ref in judges]]
        self.fields["gate_eval_set"].choices = [("", "no gate"), *eval_sets]

    def clean_gate_margin(self) -> float:
        """Empty: the default margin, 0.05."""
        value = self.cleaned_data.get("gate_margin")
        return 0.05 if value is None else value

    def add_service_errors(self, message_dict: dict[str, list[str]]) -> None:
        """Nested keys (``policy_config.beta``) are shown on their JSON field, prefixed."""
        for key, messages in message_dict.items():
            field, _, inner = key.partition(".")
            if field in self.fields:
                for message in messages:
                    self.add_error(field, f"{inner}: {message}" if inner else message)
            else:
                for message in messages:
                    self.add_error(None, f"{key}: {message}")


POLICY_KINDS_CHOICES = [("dpo", "DPO on preference pairs"), ("rl", "online RL against a reward model"), ("sft", "SFT on demonstrations")]


class PolicyRunForm(_ServiceErrors, _Governance, forms.Form):
    """Launch a DPO, online-RL or SFT run. Defaults suit a CPU laptop with SmolLM2-135M: LoRA
    (merged on save), batches of 4, short sequences. Settings that do not apply to the chosen
    kind are ignored."""

    kind = forms.ChoiceField(choices=POLICY_KINDS_CHOICES, initial="dpo")
    base = forms.ChoiceField(label="Base policy checkpoint", help_text="also the reference model (DPO, RL)")
    reward_model = forms.ChoiceField(required=False, label="Reward model (RL)")
    algorithm = forms.ChoiceField(
        choices=[("rloo", "RLOO"), ("grpo", "GRPO")], initial="rloo", label="RL algorithm",
        help_text="TRL no longer ships PPO; RLOO and GRPO are its maintained successors.",
    )
    snapshot = forms.ChoiceField(required=False, label="Dataset", help_text="a new snapshot freezes the votes (or demonstrations) as they are now")
    rules = JSONObjectField(label="Rules for a new snapshot", help_text='e.g. {"split_by": "hash", "eval_fraction": 0.2}')
    output_name = forms.CharField(required=False, max_length=200, help_text="default: <base>-<kind>-<run id>")
    beta = forms.FloatField(required=False, label="Beta", help_text="DPO: 0.1 is usual; RL: the KL coefficient, 0.05 by default",
                            widget=_number(min=0, step="any"))
    learning_rate = forms.FloatField(required=False, help_text="blank: the kind's default", widget=_number(min=0, step="any"))
    num_train_epochs = forms.FloatField(initial=1.0, label="Epochs", widget=_number(min=0, step="any"))
    max_steps = forms.IntegerField(required=False, label="Max steps", help_text="overrides epochs", widget=_number(min=1))
    per_device_train_batch_size = forms.IntegerField(initial=4, label="Batch size", widget=_number(min=1, max=MAX_BATCH_SIZE))
    max_length = forms.IntegerField(required=False, label="Max length (tokens, DPO/SFT)", widget=_number(min=16))
    num_generations = forms.IntegerField(initial=4, label="Samples per prompt (RL)", widget=_number(min=2))
    max_completion_length = forms.IntegerField(initial=64, label="Max completion tokens (RL)", widget=_number(min=1))
    lora = forms.BooleanField(required=False, initial=True, label="LoRA")
    save_adapter = forms.BooleanField(required=False, label="Save the adapter only (else merged)")
    quantization = _quantization_field()
    seed = forms.IntegerField(initial=0, widget=_number(min=0))

    ERROR_FIELDS = {"snapshot_id": "snapshot"}
    COMMON = ("output_name", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "lora",
              "save_adapter", "quantization", "seed")
    BY_KIND = {"dpo": ("beta", "max_length"), "rl": ("beta", "num_generations", "max_completion_length"), "sft": ("max_length",)}

    def __init__(self, *args, checkpoint_names: list[str], reward_names: list[str], snapshots: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base"].choices = [(name, name) for name in checkpoint_names]
        self.fields["reward_model"].choices = [("", "—"), *[(name, name) for name in reward_names]]
        self.fields["snapshot"].choices = [(SNAPSHOT_NEW, "a new snapshot"), *snapshots]

    def config(self) -> tuple[str, dict[str, Any]]:
        """``(kind, config)``: the settings that apply to the kind; blanks left to its defaults."""
        data = self.cleaned_data
        kind = data["kind"]
        config: dict[str, Any] = {"base": data["base"]}
        if data.get("snapshot"):
            config["snapshot_id"] = int(data["snapshot"])
        elif data.get("rules"):
            config["rules"] = data["rules"]
        if kind == "rl":
            config["reward_model"] = data.get("reward_model") or ""
            config["algorithm"] = data["algorithm"]
        for name in (*self.COMMON, *self.BY_KIND[kind]):
            value = data.get(name)
            if value not in (None, ""):
                config[name] = value.strip() if isinstance(value, str) else value
        return kind, config
