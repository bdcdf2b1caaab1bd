"""Signals other apps may listen to (feedback never imports them).

``vote_recorded``: sent after the transaction that stored a new vote commits, with ``vote_id``
and ``created_at``. The training app's loop counts votes with it.

``comparisons_deleted``: sent by a deletion (``feedback.governance.deletion``: a source, given rows,
retention) with ``comparison_ids`` (a sorted list) and ``delete``. With ``delete=False`` (while the
plan is made, for its preview) a receiver counts what it keeps about those comparisons; with
``delete=True`` (inside the deletion's transaction, after the comparisons are gone) it deletes it.
Either way it returns ``{name: rows}``, which join the deletion's counts (preview, result, audit
event). The training app's judge calls and verdicts are such rows: a judge's answer may quote the
deleted texts. An exception rolls the whole deletion back.
"""
from django.dispatch import Signal

vote_recorded = Signal()
comparisons_deleted = Signal()
