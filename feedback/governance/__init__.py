"""Data governance (issue 18): data-use policies and their enforcement, the personal-data scan and
its review, and the append-only audit trail. Models live in ``models.py`` (imported by
``feedback.models``, one migration history)."""
