"""Queue a Constitutional AI critique-revise job (``cai_job_create``)."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from feedback import interface as feedback
from training.models import CheckpointKind, Job, JobKind
from training.services import _checkpoint_of_kind, _enqueue, _parse

from .config import CaiConfig
from .prompts import template_load


def cai_job_create(*, config: dict[str, Any], created_by=None) -> Job:
    """Validate a critique-revise config (``CaiConfig``) against the registry, the constitution
    and the stored responses, then queue the job; its ``progress_total`` is the number of responses.

    The constitution's principles are copied onto the job (``principles``), so a later edit of the
    constitution does not change what a queued or finished job used.

    Raises:
        ValidationError: by field: any bad setting, an unknown or non-policy reviser, an unknown
            constitution or template, a missing or closed campaign, or no responses to revise.
    """
    parsed = _parse(CaiConfig, config)
    _checkpoint_of_kind(parsed.reviser, CheckpointKind.POLICY, field="reviser", purpose="critique-revise")
    ref, principles = constitution_resolve(parsed.constitution, parsed.principles)
    parsed.constitution, parsed.principles = ref, principles
    try:
        template_load(parsed.template)
    except ValueError as error:
        raise ValidationError({"template": str(error)}) from None
    if parsed.campaign_id is not None:
        try:
            feedback.campaign_check(campaign_id=parsed.campaign_id)
        except ValueError as error:
            raise ValidationError({"campaign_id": str(error)}) from None
    responses = feedback.responses_to_revise(
        model_name=parsed.source_model, constitution=ref, reviser=parsed.reviser,
        split=parsed.split or None, limit=parsed.limit,
    )
    if not responses:
        raise ValidationError({"responses_of": (
            f"no responses of {parsed.source_model!r} left to revise under {ref}"
            f"{' in the ' + parsed.split + ' split' if parsed.split else ''}"
        )})
    with transaction.atomic():
        job = Job.objects.create(kind=JobKind.CAI, config=parsed.as_dict(), created_by=created_by,
                                 progress_total=len(responses))
        transaction.on_commit(lambda: _enqueue(job))
    return job


def constitution_resolve(ref: str, principles: list[str]) -> tuple[str, list[str]]:
    """``(name@version, principles)`` of the constitution named ``ref``: from the registry
    (``training.judges``: a name means its latest version), or, with ``principles`` given, the
    caller's own record of them under ``ref`` (which must then be "name@version" and not clash
    with a registered version holding other principles).

    Raises ValidationError naming the constitution field.
    """
    from training.judges.services import constitution_resolve as registered

    if principles:
        if "@" not in ref:
            raise ValidationError({"constitution": 'with principles given, name the constitution as "name@version"'})
        try:
            known = registered(ref=ref)
        except ValidationError:
            return ref, list(principles)
        if list(known.principles) != list(principles):
            raise ValidationError({"constitution": f"{ref} is registered with other principles; leave principles out to use them"})
        return ref, list(principles)
    found = registered(ref=ref)
    return found.ref, list(found.principles)
