from django.urls import include, path
from rest_framework.routers import SimpleRouter

from ..evaluation.api import EvaluationViewSet
from . import views

# SimpleRouter: no API root view here, so feedback's router keeps answering /api/.
router = SimpleRouter()
router.register("checkpoints", views.CheckpointViewSet, basename="checkpoint")
router.register("jobs", views.JobViewSet, basename="job")
router.register("evaluations", EvaluationViewSet, basename="evaluation")

urlpatterns = [
    path("", include(router.urls)),
    path("leaderboard/", views.LeaderboardView.as_view(), name="api-leaderboard"),
]
