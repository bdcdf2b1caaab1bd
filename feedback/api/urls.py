from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from feedback.campaigns.annotator_api import GuidelinesAcknowledgeView
from feedback.campaigns.api import CampaignViewSet
from feedback.evalsets.api import EvalSetViewSet
from feedback.exports.api import ExportViewSet
from feedback.governance.api import AuditEventViewSet, DataPolicyViewSet, FindingViewSet
from feedback.governance.deletion_views import DeletionView
from feedback.identity.api import IdentityPatternViewSet
from feedback.quality.api import FlagViewSet, QualityReportView

from . import views
from .auth import TokenLoginView, TokenRotateView
from .imports import ImportJobView, PreferenceImportView
from .docs import SwaggerDocsView



@csrf_exempt  # a POST to no endpoint is a 404 too, not a CSRF failure page
def api_not_found(request, *args, **kwargs):
    """An /api/ address that names no endpoint (``/api/jobs/abc/``, say): the API's JSON 404, as the
    schema documents, rather than the site's HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)


router = DefaultRouter()
router.register("prompts", views.PromptViewSet, basename="prompt")
router.register("completions", views.CompletionViewSet, basename="completion")
router.register("comparisons", views.ComparisonViewSet, basename="comparison")
router.register("votes", views.VoteViewSet, basename="vote")
router.register("exports", ExportViewSet, basename="export")
router.register("flags", FlagViewSet, basename="flag")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("identity-patterns", IdentityPatternViewSet, basename="identity-pattern")
router.register("eval-sets", EvalSetViewSet, basename="eval-set")
router.register("governance/policies", DataPolicyViewSet, basename="data-policy")
router.register("governance/audit", AuditEventViewSet, basename="audit-event")
router.register("governance/findings", FindingViewSet, basename="personal-data-finding")

urlpatterns = [
    path("governance/deletions/", DeletionView.as_view(), name="governance-deletion"),
    path("assignments/next/", views.NextAssignmentView.as_view(), name="assignment-next"),
    path("guidelines/acknowledge/", GuidelinesAcknowledgeView.as_view(), name="guidelines-acknowledge"),
    path("imports/preferences/", PreferenceImportView.as_view(), name="preference-import"),
    path("imports/jobs/<int:pk>/", ImportJobView.as_view(), name="import-job"),
    path("auth/token/", TokenLoginView.as_view(), name="api-token"),
    path("auth/token/rotate/", TokenRotateView.as_view(), name="api-token-rotate"),
    path("quality/", QualityReportView.as_view(), name="quality-report"),
    path("campaigns/<int:pk>/quality/", QualityReportView.as_view(), name="campaign-quality-report"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SwaggerDocsView.as_view(url_name="api-schema"), name="api-docs"),
    # ReDoc is not served (see feedback/api/docs.py); old links land on Swagger UI.
    path("redoc/", RedirectView.as_view(pattern_name="api-docs"), name="api-redoc"),
    path("", include(router.urls)),
    # Last: only with the slash, so CommonMiddleware still redirects /api/votes to /api/votes/.
    re_path(r"^.*/$", api_not_found),
]
