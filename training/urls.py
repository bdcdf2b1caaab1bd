from django.urls import path

from . import loop_views, views
from .evaluation import views as evaluation_views

urlpatterns = [
    path("manage/checkpoints/", views.checkpoint_list, name="manage-checkpoints"),
    path("manage/checkpoints/<int:pk>/", views.checkpoint_detail, name="manage-checkpoint-detail"),
    path("manage/generate/", views.generate, name="manage-generate"),
    path("manage/train/reward/", views.train_reward, name="manage-train-reward"),
    path("manage/score/", views.score, name="manage-score"),
    path("manage/train/policy/", loop_views.train_policy, name="manage-train-policy"),
    path("manage/loop/", loop_views.loop_page, name="manage-loop"),
    path("manage/loop/start/", loop_views.loop_round_start, name="manage-loop-start"),
    path("manage/jobs/", views.job_list, name="manage-jobs"),
    path("manage/jobs/<int:pk>/", views.job_detail, name="manage-job-detail"),
    path("manage/jobs/<int:pk>/cancel/", views.job_cancel, name="manage-job-cancel"),
    path("manage/leaderboard/", views.leaderboard, name="manage-leaderboard"),
    path("manage/evaluations/", evaluation_views.evaluation_list, name="manage-evaluations"),
    path("manage/evaluations/<int:pk>/", evaluation_views.evaluation_detail, name="manage-evaluation-detail"),
    path("manage/evaluations/<int:pk>/report.<str:fmt>", evaluation_views.evaluation_download,
         name="manage-evaluation-download"),
    path("manage/evaluations/<int:pk>/campaign/", evaluation_views.evaluation_campaign,
         name="manage-evaluation-campaign"),
    path("manage/evaluations/<int:pk>/cancel/", evaluation_views.evaluation_cancel, name="manage-evaluation-cancel"),
]

from .constitutional import views as cai_views  # noqa: E402
from .judges import views as judge_views  # noqa: E402

urlpatterns += [
    path("manage/judges/", judge_views.judge_list, name="manage-judges"),
    path("manage/judges/<int:pk>/", judge_views.judge_detail, name="manage-judge-detail"),
    path("manage/judges/launch/", judge_views.judge_launch, name="manage-judge-launch"),
    path("manage/cai/", cai_views.cai_launch, name="manage-cai"),
]

from .backends import views as backend_views  # noqa: E402

urlpatterns += [
    path("manage/servers/", backend_views.server_list, name="manage-servers"),
    path("manage/checkpoints/<int:pk>/server/", backend_views.checkpoint_server, name="manage-checkpoint-server"),
]
