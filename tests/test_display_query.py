"""feedback.display_query: the annotator page's hand-written one-query read of an item gives the same
instances the ORM would, with relations cached, and the campaign's latest guidelines."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feedback.campaigns.guidelines import guidelines_acknowledge
from feedback.display_query import item_row
from feedback.models import Campaign, Comparison
from tests.campaign_support import campaign_make, guidelines_write
from tests.factories import ComparisonFactory, UserFactory

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_item_row_matches_the_orm_field_for_field_in_one_query():
    annotator = UserFactory()
    campaign = campaign_make("Alpha", annotators=[annotator], aspects=[{"name": "helpfulness", "label": "Más útil"}],
                             deadline=timezone.now() + timedelta(days=3), gold_min_accuracy=0.75)
    comparison = ComparisonFactory(campaign=campaign, gold_choice="a")
    comparison.prompt.tags = ["x", "ü"]
    comparison.prompt.messages = [{"role": "system", "content": "sé breve"}, {"role": "user", "content": "مرحبا"}]
    comparison.prompt.save()
    with CaptureQueriesContext(connection) as queries:
        row = item_row(comparison_id=comparison.pk, annotator_id=annotator.pk)
        loaded = row.comparison
        related = (loaded.prompt, loaded.completion_a, loaded.completion_b, loaded.campaign)
    assert len(queries) == 1  # the relations come cached with the row
    orm = Comparison.objects.select_related("prompt", "completion_a", "completion_b", "campaign").get(pk=comparison.pk)
    assert _fields(loaded) == _fields(orm)
    for mine, theirs in zip(related, (orm.prompt, orm.completion_a, orm.completion_b, orm.campaign)):
        assert _fields(mine) == _fields(theirs)
    assert loaded.prompt.messages[1]["content"] == "مرحبا"
    assert loaded.campaign.aspects == [{"name": "helpfulness", "label": "Más útil"}]
    assert not loaded._state.adding  # a loaded row: saving it updates, never inserts
    assert row.guidelines_id is None and row.guidelines_read is False


def test_item_row_gives_the_latest_guidelines_and_whether_this_annotator_acknowledged_them():
    reader, other = UserFactory(), UserFactory()
    campaign = campaign_make("Beta", annotators=[reader, other], comparisons=1)
    comparison = campaign.comparisons.get()
    guidelines_write(campaign, "first")
    guidelines_acknowledge(campaign=campaign, annotator=reader)
    row = item_row(comparison_id=comparison.pk, annotator_id=reader.pk)
    assert (row.guidelines_number, row.guidelines_text, row.guidelines_read) == (1, "first", True)
    assert item_row(comparison_id=comparison.pk, annotator_id=other.pk).guidelines_read is False
    latest = guidelines_write(campaign, "second")
    row = item_row(comparison_id=comparison.pk, annotator_id=reader.pk)
    assert (row.guidelines_id, row.guidelines_text, row.guidelines_read) == (latest.pk, "second", False)


def test_item_row_of_a_missing_comparison_raises_does_not_exist():
    with pytest.raises(Comparison.DoesNotExist):
        item_row(comparison_id=10**9, annotator_id=UserFactory().pk)
    assert Campaign.objects.exists()  # the Default campaign the migration made is still there
