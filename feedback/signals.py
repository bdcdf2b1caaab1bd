"""Signals other apps may listen to (feedback never imports them).

``vote_recorded``: sent after the transaction that stored a new vote commits, with ``vote_id``
and ``created_at``. The training app's loop counts votes with it.
"""
from django.dispatch import Signal

vote_recorded = Signal()
