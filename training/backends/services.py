"""Writes for model servers: create or update one, and name the server that serves a checkpoint.

Keyword-only; errors are ``django.core.exceptions.ValidationError`` by field, as elsewhere.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from training.models import Checkpoint, CheckpointKind

from .config import model_server_problems
from .models import ModelServer

SETTINGS = ("name", "base_url", "model_name", "api_key_env", "max_concurrency", "timeout_s", "max_retries", "backoff_s", "stream")


def model_server_save(*, server: ModelServer | None = None, **settings) -> ModelServer:
    """Create a server (``server`` None) or change ``server``; settings left out keep their
    current (or default) values. Settings: ``SETTINGS`` (see ``ModelServer``).

    Raises:
        ValidationError: by field: a bad name, URL, model name, key variable name (it must be a
            variable's NAME: a pasted key is refused) or number; a name already taken.
        TypeError: a setting outside ``SETTINGS``.
    """
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise TypeError(f"unknown model server settings: {', '.join(sorted(unknown))}")
    target = server or ModelServer()
    values = {name: settings.get(name, getattr(target, name)) for name in SETTINGS}
    values["name"] = values["name"] or ""
    if isinstance(values["timeout_s"], int) and not isinstance(values["timeout_s"], bool):
        values["timeout_s"] = float(values["timeout_s"])
    errors = model_server_problems(**values)
    if "name" not in errors and ModelServer.objects.filter(name=values["name"]).exclude(pk=target.pk).exists():
        errors["name"] = f"a server named {values['name']!r} exists"
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        for name, value in values.items():
            setattr(target, name, value)
        target.save()
    return target


def checkpoint_server_set(*, checkpoint: Checkpoint, server: ModelServer | None) -> Checkpoint:
    """Name the server that serves ``checkpoint`` (None: no server; generation then runs in process).
    A loop round waiting for this checkpoint's server queues its new-vs-parent generation.

    Raises:
        ValidationError: ``checkpoint`` is a reward model (servers answer chats: policies only).
    """
    if server is not None and checkpoint.kind != CheckpointKind.POLICY:
        raise ValidationError({"server": f"{checkpoint.name!r} is a reward model; only a policy can be served for generation"})
    checkpoint.server = server
    checkpoint.save(update_fields=["server"])
    if server is not None:
        from training.loop import round_server_ready

        round_server_ready(checkpoint=checkpoint)  # a loop round waiting for this checkpoint's server goes on
    return checkpoint
