from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from feedback.exports.api import ExportViewSet

from . import views
from .auth import ObtainThrottledAuthToken

router = DefaultRouter()
router.register("prompts", views.PromptViewSet, basename="prompt")
router.register("completions", views.CompletionViewSet, basename="completion")
router.register("comparisons", views.ComparisonViewSet, basename="comparison")
router.register("votes", views.VoteViewSet, basename="vote")
router.register("exports", ExportViewSet, basename="export")

urlpatterns = [
    path("assignments/next/", views.NextAssignmentView.as_view(), name="assignment-next"),
    path("auth/token/", ObtainThrottledAuthToken.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include(router.urls)),
]
