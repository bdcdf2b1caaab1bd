"""The model-server registry (issue 19): OpenAI-compatible servers that generation can call.

Registered through ``training.models`` (app label ``training``). A checkpoint names the server
that serves it (``Checkpoint.server``); a generation job with ``backend: "server"`` sends each
checkpoint's requests to its server. ``api_key_env`` is the *name* of the worker's environment
variable holding the key, never the key: the key is read by the runner and lives in its memory only.
"""
from __future__ import annotations

from django.db import models
from django.db.models import Q


class ModelServer(models.Model):
    """An OpenAI-compatible chat endpoint (vLLM, TGI, llama.cpp, SGLang, a hosted API).

    ``base_url`` ends before ``/chat/completions`` (``http://host:8000/v1``); ``model_name`` is
    the name the server serves the model under (its ``/v1/models``). Calls: at most
    ``max_concurrency`` at once, each waiting ``timeout_s`` seconds (streamed: per chunk), retried
    up to ``max_retries`` times on 429/5xx/timeouts with backoff from ``backoff_s`` seconds
    (doubled each retry, capped at 30 s); ``stream`` asks for server-sent events.
    Checks: ``training.backends.config.model_server_problems``.
    """

    name = models.CharField(max_length=100, unique=True)
    base_url = models.CharField(max_length=500, help_text="e.g. http://127.0.0.1:8000/v1 (the part before /chat/completions).")
    model_name = models.CharField(max_length=200, help_text="The served model's name, as the server's /v1/models lists it.")
    api_key_env = models.CharField(
        max_length=100, blank=True, default="",
        help_text="NAME of the worker's environment variable holding the key (never the key); empty: no key.",
    )
    max_concurrency = models.PositiveIntegerField(default=8, help_text="Requests at once (1-256).")
    timeout_s = models.FloatField(default=60.0, help_text="Seconds to wait for an answer (streamed: for each chunk).")
    max_retries = models.PositiveIntegerField(default=4, help_text="Retries on 429, 5xx and timeouts (0-10).")
    backoff_s = models.FloatField(default=0.5, help_text="Seconds before the first retry, doubled each retry.")
    stream = models.BooleanField(default=False, help_text="Ask for streamed answers (server-sent events).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="model_server_name_set"),
            models.CheckConstraint(condition=Q(max_concurrency__gte=1) & Q(max_concurrency__lte=256),
                                   name="model_server_concurrency_range"),
        ]

    def __str__(self) -> str:
        return self.name
