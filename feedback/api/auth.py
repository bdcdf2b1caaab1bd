"""API tokens for API clients: log in for one (throttled by django-axes like the log-in page),
rotate your own, revoke it. The key is in the answer that issues it and nowhere else afterwards."""
from __future__ import annotations

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.tokens.services import DEFAULT, api_token_issue, api_token_revoke


class TokenLifetimeSerializer(serializers.Serializer):
    expires_in_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=3650,
        help_text="Lifetime in days; null for no expiry; left out: the server's default (ARBITER_TOKEN_TTL_DAYS).",
    )


class TokenLoginSerializer(TokenLifetimeSerializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)

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


class TokenIssuedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The key for 'Authorization: Token <key>'. Shown this once only.")
    prefix = serializers.CharField(help_text="The key's first characters, as pages and the admin show it.")
    expires_at = serializers.DateTimeField(allow_null=True)


def _issued(user, data: dict) -> Response:
    try:
        token, key = api_token_issue(user=user, expires_in_days=data.get("expires_in_days", DEFAULT))
    except DjangoValidationError as error:
        raise serializers.ValidationError(error.message_dict) from None
    body = TokenIssuedSerializer({"token": key, "prefix": token.prefix, "expires_at": token.expires_at}).data
    return Response(body, headers={"Cache-Control": "no-store"})


class TokenLoginView(APIView):
    """POST username and password: a new token (replacing the user's previous one). 400 for bad
    credentials, 429 when locked out. DELETE (signed in): revoke your token (204)."""

    throttle_classes = ()

    def get_authenticators(self):
        # Logging in takes a password only: a stale or expired token still sent along must not
        # stand in the way (401) of getting a new one.
        request = getattr(self, "request", None)  # None while drf-spectacular builds the schema
        return [] if request is not None and request.method == "POST" else super().get_authenticators()

    def get_permissions(self):
        return [permissions.IsAuthenticated()] if self.request.method == "DELETE" else [permissions.AllowAny()]

    @extend_schema(request=TokenLoginSerializer, auth=[], responses={
        200: TokenIssuedSerializer,
        (429, "text/html"): OpenApiResponse(
            OpenApiTypes.STR, description="Locked out after too many failed log-ins (django-axes' page)."
        ),
    },
                   summary="Log in for a new API token (replaces your previous one)")
    def post(self, request: Request) -> Response:
        serializer = TokenLoginSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        return _issued(serializer.validated_data["user"], serializer.validated_data)

    @extend_schema(request=None, responses={204: OpenApiResponse(description="Revoked (or there was none).")},
                   summary="Revoke your API token")
    def delete(self, request: Request) -> Response:
        api_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRotateView(APIView):
    """POST (signed in, by token or session): a new token for you; the one you had stops working."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=TokenLifetimeSerializer, responses={200: TokenIssuedSerializer},
                   summary="Rotate your API token")
    def post(self, request: Request) -> Response:
        serializer = TokenLifetimeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _issued(request.user, serializer.validated_data)
