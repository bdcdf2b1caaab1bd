"""REST endpoint of the annotator side of campaigns: acknowledge a campaign's guidelines.

Votes in a campaign with guidelines are refused (409 ``guidelines_unread``) until the caller has
acknowledged the latest version, through the API as on the page; ``POST /api/assignments/next/``
says per item whether that is needed (``campaign.guidelines``).
"""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.permissions import IsAnnotator
from feedback.api.serializers import GuidelinesAcknowledgedSerializer, GuidelinesAcknowledgeSerializer

from .guidelines import guidelines_acknowledge
from .models import Campaign


class GuidelinesAcknowledgeView(APIView):
    """Say you have read a campaign's guidelines (the latest version unless ``version`` is given).
    Answers 200 with the acknowledgement (the same one when it was already stored)."""

    permission_classes = [IsAnnotator]

    @extend_schema(
        request=GuidelinesAcknowledgeSerializer,
        responses={
            200: GuidelinesAcknowledgedSerializer,
            403: OpenApiResponse(description="You are not in the campaign's pool (not_in_pool)."),
            404: OpenApiResponse(description="No campaign has that slug."),
        },
    )
    def post(self, request):
        serializer = GuidelinesAcknowledgeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        campaign = Campaign.objects.filter(slug=data["campaign"]).first()
        if campaign is None:
            raise NotFound(f"No campaign named {data['campaign']!r}.")
        acknowledgement = guidelines_acknowledge(campaign=campaign, annotator=request.user, number=data.get("version"))
        return Response(GuidelinesAcknowledgedSerializer(acknowledgement).data, status=status.HTTP_200_OK)
