from django.urls import include, path
from rest_framework.routers import SimpleRouter

from training.backends.api import ModelServerViewSet
from training.evaluation.api import EvaluationViewSet
from training.judges.api import JudgeViewSet

from . import views

# SimpleRouter: no API root view here, so feedback's router keeps answering /api/.
router = SimpleRouter()
router.register("checkpoints", views.CheckpointViewSet, basename="checkpoint")
router.register("jobs", views.JobViewSet, basename="job")
router.register("judges", JudgeViewSet, basename="judge")
router.register("servers", ModelServerViewSet, basename="model-server")
router.register("evaluations", EvaluationViewSet, basename="evaluation")

urlpatterns = [
    path("", include(router.urls)),
    path("leaderboard/", views.LeaderboardView.as_view(), name="api-leaderboard"),
]
