"""Services: creating prompts, completions and comparisons; claiming (the queue); skipping; voting."""
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from feedback import services
from feedback.errors import ComparisonClosed, ItemChanged, LeaseExpired, NotAssigned, VoteConflict
from feedback.messages import messages_sha256
from feedback.models import Assignment, Comparison, Completion, Prompt, Vote
from feedback.selectors import annotator_progress, assignment_display, lease_is_live
from tests.factories import ComparisonFactory, CompletionFactory, PromptFactory, UserFactory

pytestmark = pytest.mark.django_db

USER_HI = [{"role": "user", "content": "Hi?"}]


def counts():
    return {m.__name__: m.objects.count() for m in (Prompt, Completion, Comparison, Assignment, Vote)}


class FixedSide:
    """An rng stand-in whose ``choice`` always returns the given side."""

    def __init__(self, side):
        self.side = side

    def choice(self, options):
        assert self.side in options
        return self.side


def aged(comparison, *, minutes_ago):
    """Backdate ``created_at`` (auto_now_add) so queue age is under the test's control."""
    Comparison.objects.filter(pk=comparison.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return comparison


def claim_and_vote(user, now=None, choice="a"):
    assignment = services.assignment_claim(annotator=user, now=now)
    assert assignment is not None
    vote, created = services.vote_submit(annotator=user, comparison_id=assignment.comparison_id, choice=choice, now=now)
    assert created
    return assignment.comparison_id


# --- prompts --------------------------------------------------------------------------------------
def test_prompt_create_bulk_stores_in_order_with_hash_and_cleaned_tags():
    prompts = services.prompt_create_bulk(
        prompts=[
            {"messages": USER_HI, "source": "hh", "tags": [" coding ", "coding", "math"], "split": "eval"},
            {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "Second"}]},
        ]
    )
    assert [p.pk is not None for p in prompts] == [True, True]
    first, second = (Prompt.objects.get(pk=p.pk) for p in prompts)
    assert first.messages == USER_HI
    assert first.messages_sha256 == messages_sha256(USER_HI)
    assert (first.source, first.tags, first.split) == ("hh", ["coding", "math"], "eval")
    assert (second.source, second.tags, second.split) == ("", [], "train")
    assert second.messages[1]["content"] == "Second"


def test_prompt_create_bulk_is_all_or_nothing_and_names_each_bad_item():
    with pytest.raises(ValidationError) as caught:
        services.prompt_create_bulk(
            prompts=[
                {"messages": USER_HI},
                {"messages": [{"role": "assistant", "content": "x"}]},
                {"messages": USER_HI, "split": "test"},
                {"messages": USER_HI, "colour": "red"},
                {"messages": USER_HI, "tags": "a,b"},
            ]
        )
    errors = caught.value.message_dict
    assert set(errors) == {"1", "2", "3", "4"}
    assert errors["1"] == ["messages: the last message must be the user's (the completion answers it)"]
    assert errors["2"] == ["split: must be one of train, eval"]
    assert "colour" in str(errors["3"])
    assert "tags" in str(errors["4"])
    assert Prompt.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"messages": USER_HI, "tags": ["x" * 101]}, "tags"),
        ({"messages": USER_HI, "tags": [""]}, "tags"),
        ({"messages": USER_HI, "tags": [str(i) for i in range(51)]}, "tags"),
        ({"messages": USER_HI, "source": "s" * 101}, "source"),
        ({"messages": "Hi?"}, "messages"),
    ],
)
def test_prompt_build_refuses_bad_fields(fields, field):
    with pytest.raises(ValidationError) as caught:
        services.prompt_build(**fields)
    assert list(caught.value.message_dict) == [field]


# --- completions ----------------------------------------------------------------------------------
def test_completion_create_bulk_derives_is_empty_and_accepts_ids_or_instances():
    prompt = PromptFactory()
    made = services.completion_create_bulk(
        completions=[
            {"prompt": prompt.pk, "model_name": " gpt-x ", "text": "Hello", "generation_params": {"temperature": 0.7}},
            {"prompt": prompt, "model_name": "ckpt-1", "text": "  \n ", "is_truncated": True},
        ]
    )
    first, second = (Completion.objects.get(pk=c.pk) for c in made)
    assert (first.prompt_id, first.model_name, first.text, first.is_empty) == (prompt.pk, "gpt-x", "Hello", False)
    assert first.generation_params == {"temperature": 0.7}
    assert (second.is_empty, second.is_truncated, second.text) == (True, True, "  \n ")


def test_completion_create_bulk_is_all_or_nothing():
    prompt = PromptFactory()
    with pytest.raises(ValidationError) as caught:
        services.completion_create_bulk(
            completions=[
                {"prompt": prompt.pk, "model_name": "m", "text": "fine"},
                {"prompt": 999_999, "model_name": "m", "text": "no prompt"},
                {"prompt": prompt.pk, "model_name": "  ", "text": "no model"},
                {"prompt": prompt.pk, "model_name": "m", "text": "nul\x00"},
                {"prompt": prompt.pk, "model_name": "m", "text": 5},
                {"prompt": prompt.pk, "model_name": "m", "text": "x", "generation_params": [1]},
            ]
        )
    errors = caught.value.message_dict
    assert set(errors) == {"1", "2", "3", "4", "5"}
    assert errors["1"] == ["prompt: no such prompt"]
    assert "model_name" in str(errors["2"])
    assert "NUL" in str(errors["3"])
    assert "text" in str(errors["4"])
    assert "generation_params" in str(errors["5"])
    assert Completion.objects.count() == 0


# --- comparisons ----------------------------------------------------------------------------------
@pytest.fixture
def pair():
    prompt = PromptFactory()
    return CompletionFactory(prompt=prompt, text="one"), CompletionFactory(prompt=prompt, text="two")


def test_comparison_create_stores_the_pair(pair):
    a, b = pair
    comparison = services.comparison_create(completion_a=a, completion_b=b, votes_required=3, priority=5, gold_choice="b")
    comparison.refresh_from_db()
    assert (comparison.prompt_id, comparison.completion_a_id, comparison.completion_b_id) == (a.prompt_id, a.pk, b.pk)
    assert (comparison.votes_required, comparison.priority, comparison.gold_choice) == (3, 5, "b")
    assert (comparison.status, comparison.vote_count) == ("open", 0)


def test_comparison_create_refuses_a_pair_that_exists_in_either_order(pair):
    a, b = pair
    first = services.comparison_create(completion_a=a, completion_b=b)
    for x, y in ((a, b), (b, a)):
        with pytest.raises(ValidationError, match=f"already exists as comparison {first.pk}"):
            services.comparison_create(completion_a=x, completion_b=y)
    assert Comparison.objects.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"votes_required": 0}, "votes_required", "from 1 to 100"),
        ({"votes_required": 101}, "votes_required", "from 1 to 100"),
        ({"votes_required": "2"}, "votes_required", "from 1 to 100"),
        ({"priority": 1_000_001}, "priority", "integer"),
        ({"gold_choice": "left"}, "gold_choice", "must be empty or one of"),
    ],
)
def test_comparison_create_refuses_bad_settings(pair, kwargs, field, fragment):
    a, b = pair
    with pytest.raises(ValidationError) as caught:
        services.comparison_create(completion_a=a, completion_b=b, **kwargs)
    assert fragment in " ".join(caught.value.message_dict[field])
    assert Comparison.objects.count() == 0


def test_comparison_create_refuses_same_completion_other_prompt_or_same_text():
    a = CompletionFactory(text="same")
    other_prompt = CompletionFactory(text="different")
    same_text = CompletionFactory(prompt=a.prompt, text="same")
    cases = [(a, "must differ"), (other_prompt, "same prompt"), (same_text, "same text")]
    for b, fragment in cases:
        with pytest.raises(ValidationError, match=fragment):
            services.comparison_create(completion_a=a, completion_b=b)
    assert Comparison.objects.count() == 0


def test_comparison_create_inline_writes_prompt_completions_and_comparison():
    comparison = services.comparison_create_inline(
        prompt={"messages": USER_HI, "tags": ["demo"], "split": "eval"},
        completion_a={"model_name": "writer-1", "text": "Hello!"},
        completion_b={"model_name": "writer-2", "text": "Hi.", "is_truncated": True},
        votes_required=2,
    )
    comparison.refresh_from_db()
    assert comparison.prompt.messages == USER_HI
    assert (comparison.prompt.tags, comparison.prompt.split) == (["demo"], "eval")
    assert (comparison.completion_a.model_name, comparison.completion_a.text) == ("writer-1", "Hello!")
    assert (comparison.completion_b.model_name, comparison.completion_b.is_truncated) == ("writer-2", True)
    assert comparison.completion_a.prompt_id == comparison.completion_b.prompt_id == comparison.prompt_id
    assert comparison.votes_required == 2
    assert counts() == {"Prompt": 1, "Completion": 2, "Comparison": 1, "Assignment": 0, "Vote": 0}


def test_comparison_create_inline_with_an_existing_prompt():
    prompt = PromptFactory()
    comparison = services.comparison_create_inline(
        prompt=prompt, completion_a={"model_name": "m1", "text": "x"}, completion_b={"model_name": "m2", "text": "y"}
    )
    assert comparison.prompt_id == prompt.pk
    assert Prompt.objects.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prompt": {"messages": []}}, "prompt"),
        ({"completion_b": {"model_name": "", "text": "y"}}, "completion_b"),
        ({"completion_b": {"model_name": "m2", "text": "x"}}, "completion_b"),  # same text as A
        ({"votes_required": 0}, "votes_required"),
        ({"gold_choice": "nope"}, "gold_choice"),
    ],
)
def test_comparison_create_inline_writes_nothing_when_anything_is_wrong(kwargs, field):
    fields = {
        "prompt": {"messages": USER_HI},
        "completion_a": {"model_name": "m1", "text": "x"},
        "completion_b": {"model_name": "m2", "text": "y"},
        **kwargs,
    }
    before = counts()
    with pytest.raises(ValidationError) as caught:
        services.comparison_create_inline(**fields)
    assert field in caught.value.message_dict
    assert counts() == before


def test_retired_comparison_is_not_served_and_keeps_its_votes(annotator, other_annotator):
    comparison = ComparisonFactory(votes_required=2)
    claim_and_vote(annotator)
    services.comparison_retire(comparison=comparison)
    assert comparison.status == "retired"
    assert services.assignment_claim(annotator=other_annotator) is None
    assert comparison.votes.count() == 1


# --- claiming -------------------------------------------------------------------------------------
def test_claim_returns_none_on_an_empty_queue(annotator):
    assert services.assignment_claim(annotator=annotator) is None
    assert Assignment.objects.count() == 0


def test_claim_leases_for_ten_minutes_by_default(annotator):
    comparison = ComparisonFactory()
    now = timezone.now()
    assignment = services.assignment_claim(annotator=annotator, now=now)
    assignment.refresh_from_db()
    assert (assignment.comparison_id, assignment.annotator_id, assignment.status) == (comparison.pk, annotator.pk, "leased")
    assert assignment.leased_at == now
    assert assignment.expires_at - assignment.leased_at == timedelta(minutes=10)
    assert lease_is_live(assignment, now + timedelta(minutes=9, seconds=59))
    assert not lease_is_live(assignment, now + timedelta(minutes=10))


def test_lease_length_follows_the_setting(annotator, settings):
    settings.ARBITER_LEASE_SECONDS = 90
    ComparisonFactory()
    assignment = services.assignment_claim(annotator=annotator)
    assert assignment.expires_at - assignment.leased_at == timedelta(seconds=90)


def test_a_live_lease_is_resumed_not_doubled(annotator):
    ComparisonFactory.create_batch(3)
    now = timezone.now()
    first = services.assignment_claim(annotator=annotator, now=now)
    again = services.assignment_claim(annotator=annotator, now=now + timedelta(minutes=9))
    assert again.pk == first.pk
    assert again.expires_at == first.expires_at  # resuming does not extend the lease
    assert Assignment.objects.filter(annotator=annotator).count() == 1


def test_own_expired_lease_is_renewed_with_the_same_side(annotator):
    comparison = ComparisonFactory()
    t0 = timezone.now()
    first = services.assignment_claim(annotator=annotator, now=t0, rng=FixedSide("b"))
    later = t0 + timedelta(minutes=15)
    renewed = services.assignment_claim(annotator=annotator, now=later, rng=FixedSide("a"))
    renewed.refresh_from_db()
    assert renewed.pk == first.pk
    assert renewed.comparison_id == comparison.pk
    assert (renewed.leased_at, renewed.expires_at) == (later, later + timedelta(minutes=10))
    assert renewed.shown_left == "b"


def test_claim_serves_highest_priority_then_oldest(annotator):
    old_low = aged(ComparisonFactory(priority=0), minutes_ago=60)
    new_low = aged(ComparisonFactory(priority=0), minutes_ago=5)
    mid_low = aged(ComparisonFactory(priority=0), minutes_ago=30)
    new_high = aged(ComparisonFactory(priority=10), minutes_ago=1)
    negative = aged(ComparisonFactory(priority=-5), minutes_ago=120)
    served = [claim_and_vote(annotator) for _ in range(5)]
    assert served == [new_high.pk, old_low.pk, mid_low.pk, new_low.pk, negative.pk]
    assert services.assignment_claim(annotator=annotator) is None


def test_same_age_and_priority_served_by_id(annotator):
    made = ComparisonFactory.create_batch(3)
    Comparison.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert [claim_and_vote(annotator) for _ in made] == sorted(c.pk for c in made)


def test_claim_never_serves_what_the_annotator_voted_on_or_skipped(annotator):
    voted, skipped, fresh = (aged(ComparisonFactory(votes_required=3), minutes_ago=m) for m in (30, 20, 10))
    assert claim_and_vote(annotator) == voted.pk
    assert services.assignment_claim(annotator=annotator).comparison_id == skipped.pk
    services.assignment_skip(annotator=annotator, comparison_id=skipped.pk)
    assert services.assignment_claim(annotator=annotator).comparison_id == fresh.pk
    services.assignment_skip(annotator=annotator, comparison_id=fresh.pk)
    assert services.assignment_claim(annotator=annotator) is None
    # ...even after every lease has long expired
    assert services.assignment_claim(annotator=annotator, now=timezone.now() + timedelta(days=1)) is None


def test_overlap_serves_a_comparison_to_votes_required_annotators_and_no_more():
    comparison = ComparisonFactory(votes_required=3)
    users = [UserFactory(role="annotator") for _ in range(4)]
    served = [services.assignment_claim(annotator=u) for u in users]
    assert [a.comparison_id for a in served[:3]] == [comparison.pk] * 3
    assert served[3] is None
    assert comparison.assignments.count() == 3


def test_leases_and_votes_together_fill_the_slots():
    comparison = ComparisonFactory(votes_required=2)
    one, two, three = (UserFactory(role="annotator") for _ in range(3))
    claim_and_vote(one)  # a vote holds a slot for good
    assert services.assignment_claim(annotator=two).comparison_id == comparison.pk  # the second slot, leased
    assert services.assignment_claim(annotator=three) is None


def test_an_expired_lease_frees_its_slot(annotator, other_annotator):
    comparison = ComparisonFactory(votes_required=1)
    t0 = timezone.now()
    services.assignment_claim(annotator=annotator, now=t0)
    assert services.assignment_claim(annotator=other_annotator, now=t0 + timedelta(minutes=9, seconds=59)) is None
    taken = services.assignment_claim(annotator=other_annotator, now=t0 + timedelta(minutes=10, seconds=1))
    assert taken is not None and taken.comparison_id == comparison.pk


def test_a_skip_frees_the_slot_for_someone_else(annotator, other_annotator):
    comparison = ComparisonFactory(votes_required=1)
    services.assignment_claim(annotator=annotator)
    assert services.assignment_claim(annotator=other_annotator) is None
    services.assignment_skip(annotator=annotator, comparison_id=comparison.pk)
    assert services.assignment_claim(annotator=other_annotator).comparison_id == comparison.pk


def test_a_lease_on_a_retired_comparison_is_dropped_for_the_next_one(annotator):
    first = aged(ComparisonFactory(), minutes_ago=10)
    second = ComparisonFactory()
    assert services.assignment_claim(annotator=annotator).comparison_id == first.pk
    services.comparison_retire(comparison=first)
    assert services.assignment_claim(annotator=annotator).comparison_id == second.pk


def test_side_is_drawn_per_assignment_and_shown_accordingly(annotator, other_annotator):
    comparison = ComparisonFactory(votes_required=2, completion_a__text="AAA", completion_b__text="BBB")
    left_a = services.assignment_claim(annotator=annotator, rng=FixedSide("a"))
    left_b = services.assignment_claim(annotator=other_annotator, rng=FixedSide("b"))
    assert (left_a.shown_left, left_b.shown_left) == ("a", "b")
    shown_a, shown_b = assignment_display(assignment=left_a), assignment_display(assignment=left_b)
    assert (shown_a.left.text, shown_a.right.text, shown_a.item) == ("AAA", "BBB", left_a.token)
    assert (shown_b.left.text, shown_b.right.text, shown_b.item) == ("BBB", "AAA", left_b.token)
    assert len({left_a.token, left_b.token}) == 2 and len(left_a.token) == 16
    assert comparison.assignments.count() == 2


def test_side_is_random_without_an_rng():
    ComparisonFactory(votes_required=100)
    sides = {services.assignment_claim(annotator=UserFactory(role="annotator")).shown_left for _ in range(40)}
    assert sides == {"a", "b"}  # all 40 the same has probability 2**-39


def test_the_shown_side_is_copied_to_the_vote_and_choice_stays_in_comparison_terms(annotator):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator, rng=FixedSide("b"))
    vote, _ = services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice="a", strength="strong")
    vote.refresh_from_db()
    assert (vote.shown_left, vote.choice, vote.strength) == ("b", "a", "strong")


@pytest.mark.parametrize(("shown_left", "choice", "stored"), [("a", "left", "a"), ("a", "right", "b"), ("b", "left", "b"), ("b", "right", "a")])
def test_screen_sides_are_mapped_to_the_stored_completions_by_the_assignment(annotator, shown_left, choice, stored):
    comparison = ComparisonFactory()
    assignment = services.assignment_claim(annotator=annotator, rng=FixedSide(shown_left))
    vote, created = services.vote_submit(
        annotator=annotator, item=assignment.token, choice=choice, strength="clear", aspects={"honesty": choice, "helpfulness": "tie"}
    )
    assert created and (vote.comparison_id, vote.choice, vote.honesty, vote.helpfulness) == (comparison.pk, stored, stored, "tie")
    # The same vote again (a plain form posted twice) stores nothing more.
    assert services.vote_submit(annotator=annotator, item=assignment.token, choice=choice, strength="clear",
                                aspects={"honesty": choice, "helpfulness": "tie"}) == (vote, False)


def test_a_vote_for_an_item_no_longer_on_screen_is_refused_and_writes_nothing(annotator, other_annotator):
    first, second = ComparisonFactory(), ComparisonFactory(votes_required=2)
    shown = services.assignment_claim(annotator=annotator)
    services.vote_submit(annotator=annotator, item=shown.token, choice="left")
    following = services.assignment_claim(annotator=annotator)
    assert following.comparison_id == second.pk
    theirs = services.assignment_claim(annotator=other_annotator)
    for item, comparison_id in [
        (shown.token, None),  # voted on already (a second tab), differently
        ("no-such-token", None),
        (theirs.token, None),  # another annotator's item
        (following.token, first.pk),  # token and comparison disagree
    ]:
        with pytest.raises(ItemChanged, match="no longer the one on your screen"):
            services.vote_submit(annotator=annotator, item=item, comparison_id=comparison_id, choice="right")
    services.assignment_skip(annotator=annotator, comparison_id=second.pk)
    with pytest.raises(ItemChanged):
        services.vote_submit(annotator=annotator, item=following.token, choice="right")
    assert Vote.objects.count() == 1 and Comparison.objects.get(pk=second.pk).vote_count == 0


# --- skipping -------------------------------------------------------------------------------------
def test_skip_without_an_assignment_is_refused(annotator):
    comparison = ComparisonFactory()
    with pytest.raises(NotAssigned):
        services.assignment_skip(annotator=annotator, comparison_id=comparison.pk)


def test_skip_twice_is_harmless_and_skip_after_vote_is_refused(annotator):
    comparison = ComparisonFactory(votes_required=2)
    services.assignment_claim(annotator=annotator)
    first = services.assignment_skip(annotator=annotator, comparison_id=comparison.pk)
    again = services.assignment_skip(annotator=annotator, comparison_id=comparison.pk)
    assert first.pk == again.pk and again.status == "skipped" and again.finished_at == first.finished_at
    voted = claim_and_vote(UserFactory(role="annotator"))
    voter = Vote.objects.get(comparison_id=voted).annotator
    with pytest.raises(VoteConflict):
        services.assignment_skip(annotator=voter, comparison_id=voted)
    assert Assignment.objects.get(annotator=voter).status == "voted"


# --- voting ---------------------------------------------------------------------------------------
def test_vote_is_stored_with_every_field(annotator):
    comparison = ComparisonFactory(votes_required=2)
    now = timezone.now()
    services.assignment_claim(annotator=annotator, now=now, rng=FixedSide("a"))
    vote, created = services.vote_submit(
        annotator=annotator,
        comparison_id=comparison.pk,
        choice="b",
        strength="slight",
        rationale="B cites a source.",
        aspects={"helpfulness": "b", "harmlessness": "tie", "honesty": ""},
        ms_on_item=1234,
        now=now + timedelta(seconds=5),
    )
    assert created
    vote.refresh_from_db()
    assert (vote.annotator_id, vote.comparison_id, vote.choice, vote.strength) == (annotator.pk, comparison.pk, "b", "slight")
    assert (vote.helpfulness, vote.harmlessness, vote.honesty) == ("b", "tie", "")
    assert (vote.rationale, vote.ms_on_item, vote.source, vote.shown_left) == ("B cites a source.", 1234, "annotator", "a")
    assignment = Assignment.objects.get(annotator=annotator)
    assert (assignment.status, assignment.finished_at) == ("voted", now + timedelta(seconds=5))
    comparison.refresh_from_db()
    assert (comparison.vote_count, comparison.status) == (1, "open")


def test_time_on_item_falls_back_to_time_since_the_lease_began(annotator):
    comparison = ComparisonFactory()
    t0 = timezone.now()
    services.assignment_claim(annotator=annotator, now=t0)
    vote, _ = services.vote_submit(
        annotator=annotator, comparison_id=comparison.pk, choice="tie", now=t0 + timedelta(seconds=42, milliseconds=500)
    )
    assert vote.ms_on_item == 42_500


def test_given_time_on_item_wins_over_the_fallback(annotator):
    comparison = ComparisonFactory()
    t0 = timezone.now()
    services.assignment_claim(annotator=annotator, now=t0)
    vote, _ = services.vote_submit(
        annotator=annotator, comparison_id=comparison.pk, choice="tie", ms_on_item=0, now=t0 + timedelta(seconds=42)
    )
    assert vote.ms_on_item == 0


def test_the_same_vote_twice_is_stored_once(annotator):
    comparison = ComparisonFactory(votes_required=2)
    services.assignment_claim(annotator=annotator)
    first, created = services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice="a", strength="clear")
    again, created_again = services.vote_submit(
        annotator=annotator, comparison_id=comparison.pk, choice="a", strength="clear", ms_on_item=99
    )
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Vote.objects.count() == 1
    comparison.refresh_from_db()
    assert comparison.vote_count == 1


@pytest.mark.parametrize(
    "change",
    [{"choice": "b"}, {"strength": "strong"}, {"rationale": "changed my mind"}, {"aspects": {"honesty": "a"}}],
)
def test_a_different_vote_is_a_conflict_and_changes_nothing(annotator, change):
    comparison = ComparisonFactory(votes_required=2)
    services.assignment_claim(annotator=annotator)
    first, _ = services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice="a", strength="clear")
    with pytest.raises(VoteConflict) as caught:
        services.vote_submit(
            annotator=annotator, comparison_id=comparison.pk, **{"choice": "a", "strength": "clear", **change}
        )
    assert caught.value.status == 409
    assert caught.value.vote.pk == first.pk
    stored = Vote.objects.get()
    assert (stored.choice, stored.strength, stored.rationale, stored.honesty) == ("a", "clear", "", "")
    comparison.refresh_from_db()
    assert comparison.vote_count == 1


def test_vote_without_an_assignment_is_refused(annotator, other_annotator):
    comparison = ComparisonFactory(votes_required=2)
    services.assignment_claim(annotator=other_annotator)
    for comparison_id in (comparison.pk, 999_999):
        with pytest.raises(NotAssigned):
            services.vote_submit(annotator=annotator, comparison_id=comparison_id, choice="a")
    assert Vote.objects.count() == 0


@pytest.mark.parametrize("comparison_id", [0, -1, 2**63, 10**30])
def test_ids_that_cannot_exist_are_not_assigned(annotator, comparison_id):
    ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    with pytest.raises(NotAssigned):
        services.vote_submit(annotator=annotator, comparison_id=comparison_id, choice="a")
    with pytest.raises(NotAssigned):
        services.assignment_skip(annotator=annotator, comparison_id=comparison_id)
    assert Vote.objects.count() == 0


def test_vote_after_skipping_is_refused(annotator):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    services.assignment_skip(annotator=annotator, comparison_id=comparison.pk)
    with pytest.raises(NotAssigned):
        services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice="a")
    assert Vote.objects.count() == 0


def test_late_vote_is_accepted_while_nobody_took_the_slot(annotator):
    comparison = ComparisonFactory()
    t0 = timezone.now()
    services.assignment_claim(annotator=annotator, now=t0)
    vote, created = services.vote_submit(
        annotator=annotator, comparison_id=comparison.pk, choice="a", now=t0 + timedelta(hours=2)
    )
    assert created and vote.pk is not None
    comparison.refresh_from_db()
    assert comparison.status == "complete"


def test_late_vote_is_refused_when_another_annotator_leased_the_slot(annotator, other_annotator):
    comparison = ComparisonFactory()
    t0 = timezone.now()
    services.assignment_claim(annotator=annotator, now=t0)
    later = t0 + timedelta(minutes=11)
    assert services.assignment_claim(annotator=other_annotator, now=later).comparison_id == comparison.pk
    with pytest.raises(LeaseExpired) as caught:
        services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice="a", now=later)
    assert caught.value.status == 409
    assert Vote.objects.count() == 0
    # the new holder's vote goes in
    services.vote_submit(annotator=other_annotator, comparison_id=comparison.pk, choice="b", now=later)
    assert list(Vote.objects.values_list("annotator_id", flat=True)) == [other_annotator.pk]


def test_late_vote_is_refused_when_another_annotator_voted_in_the_slot(annotator, other_annotator):
    comparison = ComparisonFactory()
    t0 = timezone.now()
    services.assignment_claim(annotator=annotator, now=t0)
    later = t0 + timedelta(minutes=11)
    claim_and_vote(other_annotator, now=later)
    with pytest.raises(LeaseExpired):
        services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice="a", now=later)
    comparison.refresh_from_db()
    assert (comparison.vote_count, Vote.objects.count()) == (1, 1)


def test_late_vote_is_accepted_when_overlap_leaves_a_slot(annotator, other_annotator):
    comparison = ComparisonFactory(votes_required=2)
    t0 = timezone.now()
    services.assignment_claim(annotator=annotator, now=t0)
    later = t0 + timedelta(minutes=11)
    services.assignment_claim(annotator=other_annotator, now=later)
    _, created = services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice="a", now=later)
    assert created


def test_vote_on_a_retired_comparison_is_refused(annotator):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    services.comparison_retire(comparison=comparison)
    with pytest.raises(ComparisonClosed):
        services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice="a")
    assert Vote.objects.count() == 0


def test_comparison_completes_when_votes_reach_votes_required():
    comparison = ComparisonFactory(votes_required=3)
    users = [UserFactory(role="annotator") for _ in range(4)]
    for index, user in enumerate(users[:3], start=1):
        claim_and_vote(user)
        comparison.refresh_from_db()
        assert comparison.vote_count == index
        assert comparison.status == ("complete" if index == 3 else "open")
    assert services.assignment_claim(annotator=users[3]) is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"choice": "middle"}, "choice"),
        ({"choice": ""}, "choice"),
        ({"choice": "tie", "strength": "clear"}, "strength"),
        ({"choice": "both_bad", "strength": "slight"}, "strength"),
        ({"choice": "a", "strength": "huge"}, "strength"),
        ({"choice": "a", "rationale": "x" * 10_001}, "rationale"),
        ({"choice": "a", "rationale": 5}, "rationale"),
        ({"choice": "a", "aspects": {"style": "a"}}, "style"),
        ({"choice": "a", "aspects": {"honesty": "centre"}}, "honesty"),
        ({"choice": "a", "ms_on_item": -1}, "ms_on_item"),
        ({"choice": "a", "ms_on_item": True}, "ms_on_item"),
        ({"choice": "a", "ms_on_item": 1.5}, "ms_on_item"),
        ({"choice": "a", "ms_on_item": 24 * 3600 * 1000 + 1}, "ms_on_item"),
    ],
)
def test_malformed_vote_is_refused_and_nothing_is_written(annotator, fields, field):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    with pytest.raises(ValidationError) as caught:
        services.vote_submit(annotator=annotator, comparison_id=comparison.pk, **fields)
    assert field in caught.value.message_dict
    assert Vote.objects.count() == 0
    assert Assignment.objects.get().status == "leased"


def test_progress_counts(annotator):
    ComparisonFactory.create_batch(4)
    claim_and_vote(annotator)
    claim_and_vote(annotator)
    skipped = services.assignment_claim(annotator=annotator)
    services.assignment_skip(annotator=annotator, comparison_id=skipped.comparison_id)
    assert annotator_progress(annotator=annotator) == {"voted": 2, "skipped": 1, "remaining": 1}
