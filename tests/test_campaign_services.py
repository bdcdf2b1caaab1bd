"""Campaign services: create and edit, guidelines versions (also two admins at once), comparisons
by rules, activate, pause, close (which releases live leases), and every refusal naming its field."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone

from feedback.campaigns import services
from feedback.campaigns.models import Campaign, CampaignStatus, GuidelineVersion, default_campaign_id
from feedback.models import Assignment, Comparison
from tests.factories import AssignmentFactory, ComparisonFactory, CompletionFactory, PromptFactory, UserFactory, VoteFactory
from tests.test_concurrency import run_together

pytestmark = pytest.mark.django_db


def _refused(call, **kwargs) -> dict:
    with pytest.raises(ValidationError) as caught:
        call(**kwargs)
    return caught.value.message_dict


@pytest.fixture
def campaign(db):
    return services.campaign_create(values={"name": "Safety sweep", "votes_required": 3})


# --- create and edit ----------------------------------------------------------------------------------
def test_create_makes_a_draft_with_a_slug_and_pool(annotator, admin_user):
    group = Group.objects.create(name="raters")
    created = services.campaign_create(
        values={"name": "Code review", "annotators": [annotator.username], "groups": ["raters"],
                "aspects": [{"name": "honesty", "label": "Is it true?"}], "rationale": "required", "target_votes": 500},
        created_by=admin_user,
    )
    assert (created.status, created.slug, created.created_by) == ("draft", "code-review", admin_user)
    assert list(created.annotators.all()) == [annotator] and list(created.groups.all()) == [group]
    assert created.aspects == [{"name": "honesty", "label": "Is it true?"}]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "votes_required": 0}, "votes_required"),
        ({"name": "x", "votes_required": 101}, "votes_required"),
        ({"name": "x", "target_votes": -5}, "target_votes"),
        ({"name": "x", "slug": "has spaces"}, "slug"),
        ({"name": "x", "rationale": "sometimes"}, "rationale"),
        ({"name": "x", "aspects": [{"name": "wit", "label": "Funny?"}]}, "aspects"),
        ({"name": "x", "aspects": ["honesty", "honesty"]}, "aspects"),
        ({"name": "x", "annotators": ["nobody-here"]}, "annotators"),
        ({"name": "x", "groups": ["no-such-group"]}, "groups"),
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": "x", "ask_strength": "yes"}, "ask_strength"),
    ],
)
def test_create_refuses_bad_input_by_field(values, field):
    errors = _refused(services.campaign_create, values=values)
    assert field in errors
    assert not Campaign.objects.exclude(slug="default").exists()


def test_create_refuses_a_past_deadline_and_a_taken_name(campaign):
    assert "deadline" in _refused(services.campaign_create, values={"name": "y", "deadline": timezone.now() - timedelta(days=1)})
    errors = _refused(services.campaign_create, values={"name": "Safety sweep"})
    assert "name" in errors or "slug" in errors


def test_unknown_users_are_named(campaign):
    errors = _refused(services.campaign_update, campaign=campaign, values={"annotators": ["ghost", "phantom"]})
    assert errors["annotators"] == ["no such user: ghost, phantom"]


def test_update_changes_only_the_given_fields(campaign, annotator):
    services.campaign_update(campaign=campaign, values={"description": "Find harms.", "annotators": [annotator.username]})
    campaign.refresh_from_db()
    assert (campaign.name, campaign.description, campaign.votes_required) == ("Safety sweep", "Find harms.", 3)
    assert list(campaign.annotators.all()) == [annotator]
    assert "status" in _refused(services.campaign_update, campaign=campaign, values={"status": "active"})


def test_the_default_campaign_keeps_its_slug():
    default = Campaign.objects.get(pk=default_campaign_id())
    assert "slug" in _refused(services.campaign_update, campaign=default, values={"slug": "renamed"})


# --- guidelines ----------------------------------------------------------------------------------------
def test_guidelines_add_numbered_versions_and_never_change_one(campaign, admin_user):
    first = services.guidelines_edit(campaign=campaign, text="# Pick the kinder answer", created_by=admin_user)
    second = services.guidelines_edit(campaign=campaign, text="# Pick the safer answer", created_by=admin_user)
    same = services.guidelines_edit(campaign=campaign, text="# Pick the safer answer")
    assert (first.number, second.number, same.pk) == (1, 2, second.pk)
    assert GuidelineVersion.objects.get(pk=first.pk).text == "# Pick the kinder answer"
    assert "text" in _refused(services.guidelines_edit, campaign=campaign, text="   ")


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_two_admins_saving_guidelines_at_once_both_keep_their_version():
    campaign = services.campaign_create(values={"name": "Race"})
    texts = [f"Version written by admin {n}" for n in range(4)]
    saved = run_together(lambda text: services.guidelines_edit(campaign=campaign, text=text), [(t,) for t in texts])
    stored = GuidelineVersion.objects.filter(campaign=campaign)
    assert sorted(v.number for v in stored) == [1, 2, 3, 4]
    assert sorted(v.text for v in stored) == sorted(texts)
    assert sorted(v.number for v in saved) == [1, 2, 3, 4]


# --- comparisons by rules ----------------------------------------------------------------------------
def _comparison(*, source="hh", tags=(), split="train", model="model-a", **kwargs) -> Comparison:
    prompt = PromptFactory(source=source, tags=list(tags), split=split)
    return ComparisonFactory(
        prompt=prompt, completion_a=CompletionFactory(prompt=prompt, model_name=model),
        completion_b=CompletionFactory(prompt=prompt, model_name="base"), **kwargs,
    )


def test_comparisons_move_by_every_rule_and_take_the_campaigns_votes_required(campaign):
    wanted = _comparison(source="hh", tags=["safety"], split="eval", model="smol-dpo-1")
    _comparison(source="hh", tags=["safety"], split="train", model="smol-dpo-1")  # wrong split
    _comparison(source="arena", tags=["safety"], split="eval", model="smol-dpo-1")  # wrong source
    _comparison(source="hh", tags=["code"], split="eval", model="smol-dpo-1")  # wrong tag
    _comparison(source="hh", tags=["safety"], split="eval", model="other")  # wrong model
    rules = {"sources": ["hh"], "tags": ["safety", "medical"], "splits": ["eval"], "model_names": ["smol-dpo-1"]}
    assert services.campaign_comparisons_add(campaign=campaign, rules=rules) == 1
    wanted.refresh_from_db()
    assert (wanted.campaign, wanted.votes_required) == (campaign, 3)
    assert Comparison.objects.filter(campaign=campaign).count() == 1
    campaign.refresh_from_db()
    assert campaign.rules == rules | {"tags": ["medical", "safety"]}


def test_a_completed_comparison_reopens_when_it_needs_more_votes(campaign):
    done = _comparison(status="complete", vote_count=1)
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [done.pk]})
    done.refresh_from_db()
    assert (done.status, done.votes_required) == ("open", 3)


def test_ids_that_do_not_exist_are_named_and_nothing_moves(campaign):
    real = _comparison()
    errors = _refused(services.campaign_comparisons_add, campaign=campaign, rules={"ids": [real.pk, 99998, 99999]})
    assert errors == {"ids": ["no such comparison: 99998, 99999"]}
    real.refresh_from_db()
    assert real.campaign_id == default_campaign_id()


@pytest.mark.parametrize(
    ("rules", "field"),
    [({}, "rules"), ({"colour": ["red"]}, "colour"), ({"splits": ["test"]}, "splits"), ({"ids": ["seven"]}, "ids"),
     ({"ids": [True]}, "ids"), ("hh", "rules"), ({"sources": [""]}, "sources")],
)
def test_bad_rules_are_refused_by_field(campaign, rules, field):
    assert field in _refused(services.campaign_comparisons_add, campaign=campaign, rules=rules)


# --- activate, pause, close ------------------------------------------------------------------------
def test_activation_is_refused_with_every_reason_while_pool_or_comparisons_are_empty(campaign, annotator):
    errors = _refused(services.campaign_activate, campaign=campaign)
    assert set(errors) == {"pool", "comparisons"}
    services.campaign_update(campaign=campaign, values={"groups": [Group.objects.create(name="empty-group").name]})
    assert "no members" in _refused(services.campaign_activate, campaign=campaign)["pool"][0]
    services.campaign_update(campaign=campaign, values={"annotators": [annotator.username]})
    assert set(_refused(services.campaign_activate, campaign=campaign)) == {"comparisons"}
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [_comparison().pk]})
    assert services.campaign_activate(campaign=campaign).status == CampaignStatus.ACTIVE


def test_a_group_with_members_is_a_pool(campaign, annotator):
    services.campaign_update(campaign=campaign, values={"groups": ["annotators"]})
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [_comparison().pk]})
    assert services.campaign_activate(campaign=campaign).status == "active"


@pytest.fixture
def active(campaign, annotator):
    services.campaign_update(campaign=campaign, values={"annotators": [annotator.username]})
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [_comparison().pk, _comparison().pk]})
    return services.campaign_activate(campaign=campaign)


def test_pause_and_resume(active):
    assert services.campaign_pause(campaign=active).status == "paused"
    assert "status" in _refused(services.campaign_pause, campaign=active)
    assert services.campaign_activate(campaign=active).status == "active"


def test_closing_releases_every_live_lease_on_its_comparisons(active):
    mine = list(active.comparisons.all())
    live = [AssignmentFactory(comparison=mine[0]), AssignmentFactory(comparison=mine[1])]
    past = timezone.now() - timedelta(hours=1)
    AssignmentFactory(comparison=mine[0], leased_at=past - timedelta(minutes=10), expires_at=past)  # already expired
    VoteFactory(comparison=mine[1])
    elsewhere = AssignmentFactory()  # a lease in another campaign stays
    assert services.campaign_close(campaign=active) == 2
    now = timezone.now()
    assert not Assignment.objects.filter(pk__in=[a.pk for a in live], expires_at__gt=now).exists()
    assert Assignment.objects.get(pk=elsewhere.pk).expires_at > now
    active.refresh_from_db()
    assert active.status == "closed"
    assert "status" in _refused(services.campaign_close, campaign=active)
    assert "status" in _refused(services.campaign_activate, campaign=active)
    assert "status" in _refused(services.campaign_comparisons_add, campaign=active, rules={"sources": ["hh"]})


def test_the_default_campaign_cannot_be_closed():
    default = Campaign.objects.get(pk=default_campaign_id())
    assert "Default" in _refused(services.campaign_close, campaign=default)["status"][0]


def test_a_user_made_inactive_leaves_the_pool(campaign):
    user = UserFactory(role="annotator")
    services.campaign_update(campaign=campaign, values={"annotators": [user.username]})
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [_comparison().pk]})
    user.is_active = False
    user.save()
    assert "pool" in _refused(services.campaign_activate, campaign=campaign)
