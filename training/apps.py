from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Checkpoints, training runs, jobs, the loop and the leaderboard."""

    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from feedback.signals import vote_recorded

        from .loop import on_vote_recorded

        vote_recorded.connect(on_vote_recorded, dispatch_uid="training.loop.on_vote_recorded")
