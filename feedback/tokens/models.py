"""The API token row. The key itself is never stored: only its SHA-256 digest (to look it up) and
its first characters (to tell tokens apart on pages and in the admin)."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

PREFIX_LENGTH = 8


class ApiToken(models.Model):
    """One user's API token (``Authorization: Token <key>``); issuing a new one replaces it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token")
    prefix = models.CharField(max_length=PREFIX_LENGTH, help_text="The key's first characters, to recognise it.")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the key, hex.")
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")

    class Meta:
        app_label = "feedback"
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())
