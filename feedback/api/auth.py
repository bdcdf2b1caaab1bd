"""Token log-in for API clients, throttled by django-axes like the log-in page."""
from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
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


@extend_schema_view(
    post=extend_schema(
        responses={
            200: ThrottledAuthTokenSerializer,
            (429, "text/html"): OpenApiResponse(
                OpenApiTypes.STR, description="Locked out after too many failed log-ins (django-axes' page)."
            ),
        }
    )
)
class ObtainThrottledAuthToken(ObtainAuthToken):
    """POST username and password; answers ``{"token": ...}``, 400 for bad credentials, 429 when locked out."""

    serializer_class = ThrottledAuthTokenSerializer
