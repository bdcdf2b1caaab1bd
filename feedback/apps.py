from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _roles_after_migrate(sender, **kwargs):
    # Permissions are created by a post_migrate handler of contrib.auth, so the groups that hold
    # them are made (or repaired) here rather than in a data migration.
    from .roles import roles_ensure

    roles_ensure()


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "Human feedback"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # After every app (training's permissions come after feedback's); cheap and idempotent.
        post_migrate.connect(_roles_after_migrate, dispatch_uid="feedback_roles")
        from .governance import signals as governance_signals

        governance_signals.connect()  # audit events for role changes and user deletions
