from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Checkpoints, training runs, generation jobs and the leaderboard (built in later issues)."""

    name = "training"
    default_auto_field = "django.db.models.BigAutoField"
