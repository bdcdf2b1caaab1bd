"""The loop's campaign: the settings page lets an admin pick it, each round's new-vs-parent
generation job carries it, and ``feedback.interface.pairs_record`` puts the pairs there."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from feedback import interface
from feedback.campaigns import services as campaigns
from feedback.campaigns.models import default_campaign_id
from feedback.interface import CandidatePair, GeneratedText
from feedback.models import Comparison
from tests.factories import PromptFactory
from tests.test_loop import LOOP_FORM, client_as, enable, finish, world  # noqa: F401  (fixture)
from training import loop
from training.models import CheckpointKind, Job, LoopSettings
from training.services import generation_job_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(db):
    return campaigns.campaign_create(values={"name": "Loop pairs"})


def _pairs(count: int) -> list[CandidatePair]:
    return [
        CandidatePair(PromptFactory().pk, GeneratedText("new", f"New answer {n}.", {}), GeneratedText("old", f"Old answer {n}.", {}))
        for n in range(count)
    ]


def test_pairs_go_to_the_campaign_named_or_to_default(campaign):
    assert interface.pairs_record(pairs=_pairs(2), campaign_id=campaign.pk).paired == 2
    interface.pairs_record(pairs=_pairs(1))
    assert Comparison.objects.filter(campaign=campaign).count() == 2
    assert Comparison.objects.filter(campaign_id=default_campaign_id()).count() == 1


def test_pairs_for_a_missing_or_closed_campaign_are_refused_and_nothing_is_written(campaign):
    with pytest.raises(ValueError, match="no campaign with id 98765"):
        interface.pairs_record(pairs=_pairs(1), campaign_id=98765)
    campaigns.campaign_close(campaign=campaign)
    with pytest.raises(ValueError, match="is closed"):
        interface.pairs_record(pairs=_pairs(1), campaign_id=campaign.pk)
    assert not Comparison.objects.exists()


def test_a_rounds_generation_job_carries_the_loops_campaign(world, campaign, django_capture_on_commit_callbacks):
    enable(campaign=campaign.pk, generation_config={"limit": 2})
    with django_capture_on_commit_callbacks(execute=True):
        loop_round = loop.loop_round_start(trigger="manual")
    finish(loop_round.reward_job, output_kind=CheckpointKind.REWARD)
    loop_round.refresh_from_db()
    finish(loop_round.policy_job, output_kind=CheckpointKind.POLICY)
    loop_round.refresh_from_db()
    assert loop_round.generation_job.config["campaign_id"] == campaign.pk


def test_loop_settings_refuse_a_closed_or_missing_campaign(world, campaign):
    campaigns.campaign_close(campaign=campaign)
    for value, words in ((campaign.pk, "is closed"), (424242, "no campaign with id 424242")):
        with pytest.raises(ValidationError) as caught:
            enable(campaign=value)
        assert words in caught.value.message_dict["campaign"][0]


def test_the_loop_page_lets_an_admin_pick_the_campaign(world, campaign):
    admin = client_as(world["admin"])
    page = admin.get("/manage/loop/").content.decode()
    assert f'<option value="{campaign.pk}">Loop pairs</option>' in page
    assert admin.post("/manage/loop/", {**LOOP_FORM, "campaign": str(campaign.pk)}).status_code == 302
    assert LoopSettings.objects.get().campaign == campaign
    assert f'<option value="{campaign.pk}" selected>Loop pairs</option>' in admin.get("/manage/loop/").content.decode()
    assert admin.post("/manage/loop/", {**LOOP_FORM, "campaign": ""}).status_code == 302
    assert LoopSettings.objects.get().campaign is None
    assert admin.post("/manage/loop/", {**LOOP_FORM, "campaign": "999999"}).status_code == 400


def test_a_generation_job_for_a_missing_or_closed_campaign_is_refused_before_it_is_queued(world, campaign):
    PromptFactory(split="eval")
    config = {"checkpoints": ["smol"], "campaign_id": campaign.pk}
    assert generation_job_create(config=config).config["campaign_id"] == campaign.pk
    campaigns.campaign_close(campaign=campaign)
    for value, words in ((campaign.pk, "is closed"), (424242, "no campaign with id 424242")):
        with pytest.raises(ValidationError) as caught:
            generation_job_create(config={**config, "campaign_id": value})
        assert words in caught.value.message_dict["campaign_id"][0]
    assert Job.objects.count() == 1
