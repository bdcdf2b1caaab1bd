from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Checkpoints, training runs, jobs, the loop and the leaderboard."""

    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from feedback.signals import comparisons_deleted, vote_recorded

        from .judges.services import judged_comparisons_forget
        from .loop import on_vote_recorded

        vote_recorded.connect(on_vote_recorded, dispatch_uid="training.loop.on_vote_recorded")
        comparisons_deleted.connect(judged_comparisons_forget, dispatch_uid="training.judges.judged_comparisons_forget")
