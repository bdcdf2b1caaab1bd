"""Database constraints: rows that would corrupt the preference data are refused by the database
itself, even when written straight through the ORM or ``bulk_create`` (no service, no validation).

Each refused write runs in its own savepoint so PostgreSQL can go on after the error.
"""
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from feedback.models import Assignment, Comparison, Completion, Prompt, Vote
from tests.factories import (
    AssignmentFactory,
    ComparisonFactory,
    CompletionFactory,
    PromptFactory,
    UserFactory,
    VoteFactory,
)

pytestmark = pytest.mark.django_db


def refused(write):
    """Run ``write`` in a savepoint and assert the database refuses it."""
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


# --- prompts and completions --------------------------------------------------------------------
def test_prompt_with_an_unknown_split_is_refused():
    refused(lambda: PromptFactory(split="test"))
    assert Prompt.objects.count() == 0


def test_prompt_without_a_hash_is_refused():
    refused(lambda: Prompt.objects.create(messages=[{"role": "user", "content": "hi"}], messages_sha256=""))


def test_prompt_in_either_split_is_stored():
    PromptFactory(split="train")
    PromptFactory(split="eval")
    assert sorted(Prompt.objects.values_list("split", flat=True)) == ["eval", "train"]


def test_completion_without_a_model_name_is_refused():
    prompt = PromptFactory()
    refused(lambda: Completion.objects.create(prompt=prompt, model_name="", text="x"))
    refused(lambda: Completion.objects.bulk_create([Completion(prompt=prompt, model_name="", text="x")]))
    assert Completion.objects.count() == 0


# --- comparisons ---------------------------------------------------------------------------------
def test_comparison_of_a_completion_with_itself_is_refused():
    completion = CompletionFactory()
    refused(
        lambda: Comparison.objects.create(prompt=completion.prompt, completion_a=completion, completion_b=completion)
    )
    assert Comparison.objects.count() == 0


def test_the_same_pair_twice_is_refused():
    comparison = ComparisonFactory()
    refused(
        lambda: Comparison.objects.create(
            prompt=comparison.prompt, completion_a=comparison.completion_a, completion_b=comparison.completion_b
        )
    )
    assert Comparison.objects.count() == 1


def test_the_same_pair_twice_in_one_bulk_insert_is_refused_whole():
    prompt = PromptFactory()
    a, b = CompletionFactory(prompt=prompt), CompletionFactory(prompt=prompt)
    rows = [Comparison(prompt=prompt, completion_a=a, completion_b=b) for _ in range(2)]
    refused(lambda: Comparison.objects.bulk_create(rows))
    assert Comparison.objects.count() == 0


@pytest.mark.parametrize("votes_required", [0, -1])
def test_votes_required_below_one_is_refused(votes_required):
    refused(lambda: ComparisonFactory(votes_required=votes_required))
    assert Comparison.objects.count() == 0


def test_votes_required_one_is_stored():
    assert ComparisonFactory(votes_required=1).votes_required == 1


def test_unknown_comparison_status_is_refused():
    refused(lambda: ComparisonFactory(status="paused"))


def test_unknown_gold_choice_is_refused_and_empty_or_known_is_stored():
    refused(lambda: ComparisonFactory(gold_choice="left"))
    assert ComparisonFactory(gold_choice="").gold_choice == ""
    assert ComparisonFactory(gold_choice="both_bad").gold_choice == "both_bad"


def test_negative_vote_count_is_refused():
    comparison = ComparisonFactory()
    refused(lambda: Comparison.objects.filter(pk=comparison.pk).update(vote_count=-1))


# --- votes ---------------------------------------------------------------------------------------
def test_unknown_choice_is_refused():
    refused(lambda: VoteFactory(choice="left"))
    refused(lambda: VoteFactory(choice=""))
    assert Vote.objects.count() == 0


@pytest.mark.parametrize("choice", ["tie", "both_bad"])
def test_strength_with_a_tie_or_both_bad_is_refused(choice):
    refused(lambda: VoteFactory(choice=choice, strength="clear"))
    assert Vote.objects.count() == 0


@pytest.mark.parametrize("choice", ["a", "b"])
@pytest.mark.parametrize("strength", ["", "slight", "clear", "strong"])
def test_strength_with_a_preference_is_stored(choice, strength):
    vote = VoteFactory(choice=choice, strength=strength)
    vote.refresh_from_db()
    assert (vote.choice, vote.strength) == (choice, strength)


def test_unknown_strength_is_refused():
    refused(lambda: VoteFactory(choice="a", strength="very"))


@pytest.mark.parametrize("aspect", ["helpfulness", "harmlessness", "honesty"])
def test_unknown_aspect_value_is_refused(aspect):
    refused(lambda: VoteFactory(**{aspect: "x"}))
    assert VoteFactory(**{aspect: "tie"}).pk is not None


def test_unknown_side_on_a_vote_is_refused():
    refused(lambda: VoteFactory(shown_left="c"))


def test_negative_time_on_item_is_refused():
    refused(lambda: VoteFactory(ms_on_item=-1))


def test_second_vote_by_the_same_annotator_is_refused():
    vote = VoteFactory()
    refused(lambda: VoteFactory(comparison=vote.comparison, annotator=vote.annotator, choice="b"))
    refused(
        lambda: Vote.objects.bulk_create(
            [Vote(comparison=vote.comparison, annotator=vote.annotator, choice="tie", shown_left="a")]
        )
    )
    assert Vote.objects.count() == 1


def test_two_annotators_may_vote_on_one_comparison_and_one_annotator_on_two():
    first = VoteFactory()
    VoteFactory(comparison=first.comparison)
    VoteFactory(annotator=first.annotator)
    assert Vote.objects.count() == 3


def test_an_annotator_with_votes_cannot_be_deleted():
    vote = VoteFactory()
    with pytest.raises(ProtectedError):
        vote.annotator.delete()
    assert Vote.objects.filter(pk=vote.pk).exists()


# --- assignments ---------------------------------------------------------------------------------
def test_second_assignment_of_one_comparison_to_one_annotator_is_refused():
    assignment = AssignmentFactory()
    refused(lambda: AssignmentFactory(comparison=assignment.comparison, annotator=assignment.annotator))
    now = timezone.now()
    refused(
        lambda: Assignment.objects.bulk_create(
            [
                Assignment(
                    comparison=assignment.comparison,
                    annotator=assignment.annotator,
                    shown_left="b",
                    leased_at=now,
                    expires_at=now + timedelta(minutes=1),
                )
            ]
        )
    )
    assert Assignment.objects.count() == 1


def test_one_comparison_may_be_assigned_to_several_annotators():
    first = AssignmentFactory()
    AssignmentFactory(comparison=first.comparison)
    assert first.comparison.assignments.count() == 2


@pytest.mark.parametrize("length", [timedelta(0), timedelta(seconds=-1)])
def test_lease_that_ends_before_it_starts_is_refused(length):
    now = timezone.now()
    refused(lambda: AssignmentFactory(leased_at=now, expires_at=now + length))


def test_unknown_assignment_status_or_side_is_refused():
    refused(lambda: AssignmentFactory(status="done"))
    refused(lambda: AssignmentFactory(shown_left="c"))
    assert Assignment.objects.count() == 0


def test_deleting_a_comparison_takes_its_votes_and_assignments_with_it():
    vote = VoteFactory()
    AssignmentFactory(comparison=vote.comparison, annotator=vote.annotator, status="voted")
    vote.comparison.delete()
    assert (Vote.objects.count(), Assignment.objects.count()) == (0, 0)


def test_str_names_are_readable():
    comparison = ComparisonFactory(completion_a__text="x", completion_b__text="y")
    assert str(comparison) == f"Comparison {comparison.pk}"
    assert str(comparison.completion_a) == f"Completion {comparison.completion_a.pk} by model-a"
    assert str(comparison.prompt).startswith(f"Prompt {comparison.prompt.pk}: Question number")
    user = UserFactory()
    assert str(VoteFactory(comparison=comparison, annotator=user, choice="tie")).endswith(": tie")
