"""Token log-in for API clients, throttled by django-axes like the log-in page."""
from __future__ import annotations

from django.contrib.auth import authenticate
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken


class ThrottledAuthTokenSerializer(AuthTokenSerializer):
    def validate(self, attrs):
        request = self.context["request"]
        # Hand axes the Django request itself, so its middleware sees a lockout and answers 429.
        user = authenticate(
            request=getattr(request, "_request", request), username=attrs.get("username"), password=attrs.get("password")
        )
        if user is None:
            raise serializers.ValidationError({"non_field_errors": ["Unable to log in with those credentials."]})
        attrs["user"] = user
        return attrs


class ObtainThrottledAuthToken(ObtainAuthToken):
    """POST username and password; answers ``{"token": ...}``, 400 for bad credentials, 429 when locked out."""

    serializer_class = ThrottledAuthTokenSerializer
