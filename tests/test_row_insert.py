"""feedback.row_insert: the hand-written INSERT stores exactly what Model.save() would."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from feedback.models import Vote
from feedback.row_insert import instance_insert
from tests.factories import ComparisonFactory, UserFactory

pytestmark = pytest.mark.django_db


def _fields(vote: Vote) -> dict:
    return {f.attname: getattr(vote, f.attname) for f in Vote._meta.concrete_fields if f.attname not in ("id", "created_at")}


def test_an_inserted_vote_reads_back_as_the_orm_would_have_written_it():
    comparison, annotator = ComparisonFactory(), UserFactory()
    vote = instance_insert(Vote(comparison=comparison, annotator=annotator, choice="a", strength="clear",
                                rationale="مفيد — clearer", helpfulness="b", shown_left="b", ms_on_item=1234, blind=False))
    assert vote.pk and not vote._state.adding and vote.created_at is not None  # auto_now_add ran
    stored = Vote.objects.get(pk=vote.pk)
    assert _fields(stored) == _fields(vote)
    assert stored.created_at == vote.created_at
    other = Vote.objects.create(comparison=ComparisonFactory(), annotator=annotator, choice="a", strength="clear",
                                rationale="مفيد — clearer", helpfulness="b", shown_left="b", ms_on_item=1234, blind=False)
    assert {k: v for k, v in _fields(Vote.objects.get(pk=other.pk)).items() if k != "comparison_id"} == {
        k: v for k, v in _fields(stored).items() if k != "comparison_id"}
    vote.rationale = "changed"
    vote.save()  # a loaded row: save updates it
    assert Vote.objects.get(pk=vote.pk).rationale == "changed" and Vote.objects.count() == 2


def test_constraints_still_hold():
    comparison, annotator = ComparisonFactory(), UserFactory()
    instance_insert(Vote(comparison=comparison, annotator=annotator, choice="a"))
    with pytest.raises(IntegrityError), transaction.atomic():
        instance_insert(Vote(comparison=comparison, annotator=annotator, choice="b"))
    with pytest.raises(IntegrityError), transaction.atomic():
        instance_insert(Vote(comparison=ComparisonFactory(), annotator=annotator, choice="tie", strength="clear"))
