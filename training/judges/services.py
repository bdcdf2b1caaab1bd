"""Writes for AI judges: register a judge (a change is a new version), a constitution's new
version, and a judging job. Errors are ``ValidationError`` (field -> messages), as elsewhere."""
from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from feedback import interface as feedback
from training.config import ConfigError
from training.models import Checkpoint, CheckpointKind, Job, JobKind

from .config import JudgeOptions, JudgingConfig, api_key_env_problem
from .models import Constitution, Judge, JudgeCall, JudgeKind, JudgeVerdict
from .prompt_templates import TemplateError, template_load

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
NAME_RULE = "1-100 characters: lower-case letters, digits, _ . - (starting with a letter or digit)"
MAX_PRINCIPLES, MAX_PRINCIPLE_CHARS = 32, 1000
# What makes a judge what it is: a change to any of these is a new version.
IDENTITY = ("kind", "checkpoint_id", "base_url", "model_name", "api_key_env", "template", "constitution_id", "options")


def _ref_split(ref: str) -> tuple[str, int | None]:
    name, sep, version = ref.partition("@")
    if sep and not version.isdigit():
        raise ValidationError({"judge": f"{ref!r} is not a name or name@version"})
    return name, int(version) if sep else None


def judge_resolve(*, ref: str) -> Judge:
    """``"name"`` (its latest version) or ``"name@version"``. Raises ValidationError when there is none."""
    name, version = _ref_split(ref)
    qs = Judge.objects.filter(name=name).select_related("checkpoint", "constitution")
    judge = qs.filter(version=version).first() if version else qs.order_by("-version").first()
    if judge is None:
        raise ValidationError({"judge": f"no judge {ref!r}"})
    return judge


def constitution_resolve(*, ref: str) -> Constitution:
    """``"name"`` (its latest version) or ``"name@version"``. Raises ValidationError when there is none."""
    name, _, version = ref.partition("@")
    qs = Constitution.objects.filter(name=name)
    found = qs.filter(version=int(version)).first() if version.isdigit() else qs.order_by("-version").first()
    if found is None or (version and not version.isdigit()):
        raise ValidationError({"constitution": f"no constitution {ref!r}"})
    return found


def constitution_save(*, name: str, principles: list[str], created_by=None) -> tuple[Constitution, bool]:
    """Save ``principles`` under ``name``: a new version when they differ from the latest (or the
    first version); the latest itself when they do not. Returns ``(constitution, created)``.

    Raises:
        ValidationError: a bad name, no principles, more than 32, or one empty or over 1,000 characters.
    """
    if not isinstance(name, str) or not NAME.match(name):
        raise ValidationError({"name": NAME_RULE})
    if not isinstance(principles, list) or not principles or len(principles) > MAX_PRINCIPLES:
        raise ValidationError({"principles": f"give 1 to {MAX_PRINCIPLES} principles"})
    cleaned = [p.strip() if isinstance(p, str) else "" for p in principles]
    if not all(0 < len(p) <= MAX_PRINCIPLE_CHARS and "\x00" not in p for p in cleaned):
        raise ValidationError({"principles": f"each principle is a question of 1 to {MAX_PRINCIPLE_CHARS} characters"})
    with transaction.atomic():
        latest = Constitution.objects.select_for_update().filter(name=name).order_by("-version").first()
        if latest is not None and latest.principles == cleaned:
            return latest, False
        version = (latest.version + 1) if latest else 1
        return Constitution.objects.create(name=name, version=version, principles=cleaned, created_by=created_by), True


def judge_save(
    *, name: str, kind: str, checkpoint: str = "", base_url: str = "", model_name: str = "", api_key_env: str = "",
    template: str = "", constitution: str = "", options: dict[str, Any] | None = None, created_by=None,
) -> tuple[Judge, bool]:
    """Register judge ``name``: version 1, or the next version when anything that makes it what it
    is changed (``IDENTITY``); the latest version itself when nothing did. Returns ``(judge, created)``.

    Args:
        kind: ``local_lm`` (``checkpoint``: a policy; ``template``), ``reward_model`` (``checkpoint``:
            a reward model; no template or constitution), ``openai`` (``base_url``, ``model_name``,
            ``api_key_env``: the NAME of the variable holding the key, or ""; ``template``).
        constitution: a constitution name (its latest version) or name@version; the template must
            then ask per principle (``{principle}``), and a per-principle template needs one.
        options: ``JudgeOptions`` settings (missing ones take the defaults).
    Raises:
        ValidationError: every problem, by field.
    """
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not NAME.match(name):
        errors["name"] = NAME_RULE
    if kind not in JudgeKind.values:
        errors["kind"] = f"must be one of {', '.join(JudgeKind.values)}"
    try:
        parsed = JudgeOptions.from_dict(dict(options or {}))
    except ConfigError as error:
        errors.update({f"options.{k}": v for k, v in error.errors.items()})
        parsed = None
    found = None
    if kind in (JudgeKind.LOCAL_LM, JudgeKind.REWARD_MODEL):
        wanted = CheckpointKind.POLICY if kind == JudgeKind.LOCAL_LM else CheckpointKind.REWARD
        found = Checkpoint.objects.filter(name=checkpoint).first() if checkpoint else None
        if found is None:
            errors["checkpoint"] = f"no checkpoint named {checkpoint!r}" if checkpoint else "required for this kind of judge"
        elif found.kind != wanted:
            errors["checkpoint"] = f"{checkpoint!r} is a {found.get_kind_display()}; this judge needs a {CheckpointKind(wanted).label}"
        if base_url or model_name or api_key_env:
            errors["base_url"] = "only an openai judge has an endpoint"
    elif kind == JudgeKind.OPENAI:
        if checkpoint:
            errors["checkpoint"] = "an openai judge has no checkpoint"
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", base_url or "") or len(base_url) > 500:
            errors["base_url"] = "must be an http(s) URL such as http://127.0.0.1:8000/v1"
        if not model_name or len(model_name) > 200:
            errors["model_name"] = "required: the endpoint's model name (at most 200 characters)"
        problem = api_key_env_problem(api_key_env)
        if problem:
            errors["api_key_env"] = problem
    loaded, charter = None, None
    if kind == JudgeKind.REWARD_MODEL:
        if template or constitution:
            errors["template"] = "a reward-model judge reads scores: no template or constitution"
    elif kind in JudgeKind.values:
        try:
            loaded = template_load(template or "pairwise@1")
        except TemplateError as error:
            errors["template"] = str(error)
    if constitution and kind != JudgeKind.REWARD_MODEL:
        try:
            charter = constitution_resolve(ref=constitution)
        except ValidationError as error:
            errors.update(error.message_dict)
    if loaded is not None and "constitution" not in errors:
        if charter is not None and not loaded.per_principle:
            errors["template"] = f"{loaded.ref} asks one overall question; a constitution needs a per-principle template (e.g. principle@1)"
        elif charter is None and loaded.per_principle:
            errors["constitution"] = f"{loaded.ref} asks per principle: choose a constitution (e.g. hhh)"
    if errors:
        raise ValidationError(errors)
    fields = {
        "kind": kind, "checkpoint_id": found.pk if found else None, "base_url": base_url or "", "model_name": model_name or "",
        "api_key_env": api_key_env or "", "template": loaded.ref if loaded else "", "constitution_id": charter.pk if charter else None,
        "options": parsed.as_dict(),
    }
    with transaction.atomic():
        latest = Judge.objects.select_for_update().filter(name=name).order_by("-version").first()
        if latest is not None and all(getattr(latest, key) == value for key, value in fields.items()):
            return latest, False
        version = (latest.version + 1) if latest else 1
        return Judge.objects.create(name=name, version=version, created_by=created_by, **fields), True


def judging_job_create(*, config: dict[str, Any], created_by=None) -> Job:
    """Validate a judging job, fix its judge's version, and queue it.

    ``config["judge"]`` may be a name (its latest version is used and stored) or name@version.
    Raises:
        ValidationError: a bad setting (see ``JudgingConfig``), an unknown judge, a missing or
            closed campaign, or a selection with nothing to judge.
    """
    try:
        parsed = JudgingConfig.from_dict(dict(config))
    except ConfigError as error:
        raise ValidationError(error.errors) from None
    judge = judge_resolve(ref=parsed.judge)
    parsed.judge = judge.ref
    if parsed.campaign_id is not None:
        try:
            feedback.campaign_check(campaign_id=parsed.campaign_id)
        except ValueError as error:
            raise ValidationError({"campaign_id": str(error)}) from None
    items = feedback.comparisons_for_judging(
        campaign_id=parsed.campaign_id, ids=parsed.comparison_ids, limit=parsed.limit,
        skip_judge=judge.ref if parsed.only_unjudged else None,
    )
    if not items:
        where = "those comparisons" if parsed.comparison_ids else "the campaign's open comparisons"
        raise ValidationError({"comparison_ids" if parsed.comparison_ids else "campaign_id": (
            f"nothing to judge: {where} are missing" + (f" or {judge.ref} judged them all already" if parsed.only_unjudged else "")
        )})
    from training.services import _enqueue

    with transaction.atomic():
        job = Job.objects.create(kind=JobKind.JUDGING, config=parsed.as_dict(), created_by=created_by, progress_total=len(items))
        transaction.on_commit(lambda: _enqueue(job))
    return job


def judged_comparisons_forget(sender, comparison_ids: list[int], delete: bool, **kwargs) -> dict[str, int]:
    """The judge calls and verdicts on comparisons a deletion removes (receiver of
    ``feedback.signals.comparisons_deleted``): counted for the preview, deleted (``delete``) inside
    the deletion's transaction, since a call's ``raw_output`` may quote the deleted prompt and
    responses. Returns ``{"judge_calls": n, "judge_verdicts": n}``, only the non-zero counts."""
    counts: dict[str, int] = {}
    for name, model in (("judge_calls", JudgeCall), ("judge_verdicts", JudgeVerdict)):
        n = 0
        for start in range(0, len(comparison_ids), 2000):
            rows = model.objects.filter(comparison_id__in=comparison_ids[start:start + 2000])
            n += rows.delete()[0] if delete else rows.count()
        if n:
            counts[name] = n
    return counts
