from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from feedback.exports.api import ExportViewSet

from . import views
from .auth import ObtainThrottledAuthToken
from .imports import PreferenceImportView
from .docs import SwaggerDocsView

router = DefaultRouter()
router.register("prompts", views.PromptViewSet, basename="prompt")
router.register("completions", views.CompletionViewSet, basename="completion")
router.register("comparisons", views.ComparisonViewSet, basename="comparison")
router.register("votes", views.VoteViewSet, basename="vote")
router.register("exports", ExportViewSet, basename="export")

urlpatterns = [
    path("assignments/next/", views.NextAssignmentView.as_view(), name="assignment-next"),
    path("imports/preferences/", PreferenceImportView.as_view(), name="preference-import"),
    path("auth/token/", ObtainThrottledAuthToken.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SwaggerDocsView.as_view(url_name="api-schema"), name="api-docs"),
    # ReDoc is not served (see feedback/api/docs.py); old links land on Swagger UI.
    path("redoc/", RedirectView.as_view(pattern_name="api-docs"), name="api-redoc"),
    path("", include(router.urls)),
]
