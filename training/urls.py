from django.urls import path

from . import views

urlpatterns = [
    path("manage/checkpoints/", views.checkpoint_list, name="manage-checkpoints"),
    path("manage/checkpoints/<int:pk>/", views.checkpoint_detail, name="manage-checkpoint-detail"),
    path("manage/generate/", views.generate, name="manage-generate"),
    path("manage/train/reward/", views.train_reward, name="manage-train-reward"),
    path("manage/score/", views.score, name="manage-score"),
    path("manage/jobs/", views.job_list, name="manage-jobs"),
    path("manage/jobs/<int:pk>/", views.job_detail, name="manage-job-detail"),
    path("manage/jobs/<int:pk>/cancel/", views.job_cancel, name="manage-job-cancel"),
    path("manage/leaderboard/", views.leaderboard, name="manage-leaderboard"),
]
