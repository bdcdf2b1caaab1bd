"""feedback.constitutional: revisions stored as completions with lineage, revision-over-original
pairs with an AI vote, and demonstrations; never mistaken for a person's work."""
from __future__ import annotations

import random

import pytest
from django.contrib.auth import get_user_model

from feedback.constitutional import Revision, judge_user, responses_to_revise, revisions_record
from feedback.models import Comparison, Completion, Demonstration, Vote
from tests.factories import CompletionFactory, PromptFactory

pytestmark = pytest.mark.django_db
C = "hhh@1"
T = "critique-revise@1"


def _revision(original, text, reviser="policy-1", critique="Too terse."):
    return Revision(completion_id=original.pk, principle="Is it helpful?", critique=critique, revision=text,
                    reviser=reviser, params={"temperature": 0.7})


def test_a_revision_becomes_a_completion_with_its_lineage_a_pair_with_an_ai_vote_and_a_demonstration():
    original = CompletionFactory(model_name="policy-1", text="Paris.")
    summary = revisions_record(revisions=[_revision(original, "Paris, the capital of France.")],
                               constitution=C, template=T, job_id=7)
    assert summary.as_dict() == {"revisions": 1, "pairs": 1, "demonstrations": 1, "skipped_empty": 0, "skipped_unchanged": 0}
    revised = Completion.objects.get(model_name="policy-1+cai")
    assert revised.prompt_id == original.prompt_id
    assert {k: revised.generation_params[k] for k in ("constitution", "template", "principle", "critique",
                                                       "original_completion", "reviser", "job", "temperature")} == {
        "constitution": C, "template": T, "principle": "Is it helpful?", "critique": "Too terse.",
        "original_completion": original.pk, "reviser": "policy-1", "job": 7, "temperature": 0.7}
    comparison = Comparison.objects.get()
    assert {comparison.completion_a_id, comparison.completion_b_id} == {revised.pk, original.pk}
    assert comparison.status == "open" and comparison.vote_count == 0  # the AI vote takes no person's slot
    vote = Vote.objects.get()
    assert vote.origin == "ai" and vote.judge == "cai-revision:policy-1"
    assert (vote.judge_template, vote.constitution, vote.rationale) == (T, C, "Too terse.")
    chosen = comparison.completion_a_id if vote.choice == "a" else comparison.completion_b_id
    assert chosen == revised.pk  # the revision is preferred over the original, whichever side it is on
    assert vote.annotator.username == "judge:cai-revision:policy-1" and not vote.annotator.is_active
    assert not vote.annotator.has_usable_password() and not vote.annotator.groups.exists()
    demo = Demonstration.objects.get()
    assert (demo.text, demo.source, demo.comparison_id, demo.annotator_id) == (revised.text, "cai:hhh@1", comparison.pk, None)


def test_the_revision_lands_on_either_side_so_the_letter_says_nothing():
    originals = [CompletionFactory(model_name="policy-1") for _ in range(40)]
    revisions_record(revisions=[_revision(o, f"Better answer {i}.") for i, o in enumerate(originals)],
                     constitution=C, template=T, rng=random.Random(3))
    choices = list(Vote.objects.values_list("choice", flat=True))
    assert len(choices) == 40 and 10 < choices.count("a") < 30


def test_empty_and_unchanged_revisions_are_stored_and_counted_but_never_paired_or_taught():
    a, b, c = (CompletionFactory(model_name="policy-1", text=t) for t in ("One.", "Two  words.", "Three."))
    summary = revisions_record(revisions=[_revision(a, "  "), _revision(b, "Two words.\n"), _revision(c, "Three, better.")],
                               constitution=C, template=T)
    assert summary.as_dict() == {"revisions": 3, "pairs": 1, "demonstrations": 1, "skipped_empty": 1, "skipped_unchanged": 1}
    assert Completion.objects.filter(model_name="policy-1+cai").count() == 3  # the record of what the reviser wrote is whole


def test_pairs_only_or_demonstrations_only():
    a, b = CompletionFactory(model_name="p"), CompletionFactory(model_name="p")
    revisions_record(revisions=[_revision(a, "A better one.", reviser="p")], constitution=C, template=T, demonstrations=False)
    revisions_record(revisions=[_revision(b, "B better one.", reviser="p")], constitution=C, template=T, pairs=False)
    assert Comparison.objects.count() == 1 and Vote.objects.count() == 1
    assert Demonstration.objects.get().comparison_id is None


def test_a_batch_naming_a_missing_completion_stores_nothing():
    good = CompletionFactory(model_name="policy-1")
    bad = Revision(completion_id=10**9, principle="p", critique="c", revision="r", reviser="policy-1")
    with pytest.raises(ValueError, match="no such completion"):
        revisions_record(revisions=[_revision(good, "Fine."), bad], constitution=C, template=T)
    assert not Completion.objects.filter(model_name="policy-1+cai").exists() and not Vote.objects.exists()


def test_responses_to_revise_skips_empty_ones_and_those_this_reviser_already_revised_under_this_constitution():
    prompt = PromptFactory(split="train")
    done = CompletionFactory(model_name="policy-1", prompt=prompt)
    todo = CompletionFactory(model_name="policy-1", prompt=PromptFactory(split="eval"))
    CompletionFactory(model_name="policy-1", text="", is_empty=True)
    CompletionFactory(model_name="someone-else")
    revisions_record(revisions=[_revision(done, "Revised.")], constitution=C, template=T)
    left = responses_to_revise(model_name="policy-1", constitution=C, reviser="policy-1")
    assert [r.completion_id for r in left] == [todo.pk]
    assert left[0].messages == todo.prompt.messages and left[0].text == todo.text
    assert len(responses_to_revise(model_name="policy-1", constitution="hhh@2", reviser="policy-1")) == 2
    assert [r.completion_id for r in responses_to_revise(model_name="policy-1", constitution="hhh@2", reviser="policy-1",
                                                         split="train")] == [done.pk]
    with pytest.raises(ValueError):
        responses_to_revise(model_name="policy-1", constitution=C, reviser="policy-1", limit=-1)


def test_the_judge_user_is_made_once():
    first, again = judge_user("cai-revision:x"), judge_user("cai-revision:x")
    assert first.pk == again.pk and get_user_model().objects.filter(username="judge:cai-revision:x").count() == 1


def test_in_a_campaign_that_counts_ai_votes_the_revision_vote_fills_the_slot():
    from tests.campaign_support import campaign_make

    counting = campaign_make("Counts AI", ai_votes_count=True)
    original = CompletionFactory(model_name="policy-1")
    revisions_record(revisions=[_revision(original, "A fuller answer.")], constitution=C, template=T,
                     campaign_id=counting.pk)
    comparison = Comparison.objects.get()
    assert comparison.status == "complete" and comparison.vote_count == 0  # people's count stays people's
