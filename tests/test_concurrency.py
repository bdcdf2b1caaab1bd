"""Many annotators claiming and voting at once, through the services, on real transactions.

Run on SQLite (claims serialised by IMMEDIATE transactions) and on PostgreSQL (SELECT ... FOR
UPDATE SKIP LOCKED); the invariants are the same: no comparison ever holds more live leases plus
votes than ``votes_required``, no annotator votes twice on one comparison, and every vote a
caller was told was stored is in the database.
"""
from __future__ import annotations

import random
import threading
import time
import traceback
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from feedback import services
from feedback.errors import LeaseExpired, VoteConflict
from feedback.models import Assignment, Comparison, Vote
from tests.factories import ComparisonFactory, UserFactory

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]

JOIN_TIMEOUT_S = 300  # a guard against a hung test, not a speed assertion


def run_together(target, argument_lists):
    """Run ``target(*args)`` in one thread per argument list, all released at once.

    Returns the results in order; fails the test with every thread's traceback if any raised or hung.
    """
    barrier = threading.Barrier(len(argument_lists))
    results: list = [None] * len(argument_lists)
    errors: list[str] = []

    def body(index, args):
        try:
            barrier.wait()
            results[index] = target(*args)
        except BaseException:  # noqa: BLE001 - reported below with its traceback
            errors.append(traceback.format_exc())
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i, args), daemon=True) for i, args in enumerate(argument_lists)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert not errors, "\n".join(errors)
    return results


def overfilled(now):
    """Comparisons whose live leases plus votes exceed votes_required, read in one statement (one snapshot)."""
    live = (
        Assignment.objects.filter(comparison=OuterRef("pk"), status="leased", expires_at__gt=now)
        .order_by()
        .values("comparison")
        .annotate(n=Count("id"))
        .values("n")
    )
    votes = Vote.objects.filter(comparison=OuterRef("pk")).order_by().values("comparison").annotate(n=Count("id")).values("n")
    return list(
        Comparison.objects.annotate(n_live=Coalesce(Subquery(live), Value(0)), n_votes=Coalesce(Subquery(votes), Value(0)))
        .filter(votes_required__lt=F("n_live") + F("n_votes"))
        .values_list("id", "votes_required", "n_live", "n_votes")
    )


class Watcher:
    """A thread that checks the slot invariant over and over while the annotators work."""

    def __init__(self):
        self.stop = threading.Event()
        self.samples = 0
        self.violations: list = []
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        try:
            while not self.stop.is_set():
                self.violations += overfilled(timezone.now())
                self.samples += 1
                time.sleep(0.002)
        except BaseException:  # noqa: BLE001
            self.errors.append(traceback.format_exc())
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(JOIN_TIMEOUT_S)


def assert_counters_consistent():
    """vote_count matches the stored votes; status is complete exactly when the slots are filled."""
    stored = Counter(Vote.objects.values_list("comparison_id", flat=True))
    for comparison in Comparison.objects.all():
        assert comparison.vote_count == stored[comparison.pk], comparison.pk
        assert comparison.vote_count <= comparison.votes_required, comparison.pk
        assert (comparison.status == "complete") == (comparison.vote_count == comparison.votes_required), comparison.pk
    duplicates = Vote.objects.values("comparison", "annotator").annotate(n=Count("id")).filter(n__gt=1)
    assert list(duplicates) == []


# --- many annotators at once -----------------------------------------------------------------------
ANNOTATORS = 16
COMPARISONS = 40
VOTES_REQUIRED = 3


def annotate_until_empty(annotator, seed):
    """Claim and vote until the queue is empty for this annotator; return the votes it was told were stored."""
    rng = random.Random(seed)
    stored = []
    while True:
        assignment = services.assignment_claim(annotator=annotator, rng=rng)
        if assignment is None:
            return stored
        choice = rng.choice(["a", "b", "tie", "both_bad"])
        vote, created = services.vote_submit(annotator=annotator, comparison_id=assignment.comparison_id, choice=choice)
        assert created
        stored.append((vote.pk, assignment.comparison_id, annotator.pk, choice))


def test_many_annotators_fill_every_slot_exactly_once():
    users = [UserFactory(role="annotator") for _ in range(ANNOTATORS)]
    for index in range(COMPARISONS):
        ComparisonFactory(votes_required=VOTES_REQUIRED, priority=index % 3)

    with Watcher() as watcher:
        per_thread = run_together(annotate_until_empty, [(user, seed) for seed, user in enumerate(users)])
    assert not watcher.errors, watcher.errors
    assert watcher.samples > 0
    assert watcher.violations == []  # zero double assignments, at any moment

    # On PostgreSQL a claim skips rows another claim has locked, so near the end of the queue a
    # thread can be told "nothing left" while a slot is about to free up; a quiet second pass
    # picks up any such slot (and must find the rest full).
    told_stored = [vote for votes in per_thread for vote in votes]
    for seed, user in enumerate(users):
        told_stored += annotate_until_empty(user, 1000 + seed)
    in_db = set(Vote.objects.values_list("id", "comparison_id", "annotator_id", "choice"))
    assert set(told_stored) == in_db  # zero lost votes and nothing extra
    assert len(told_stored) == len(in_db) == COMPARISONS * VOTES_REQUIRED  # every slot filled once
    assert_counters_consistent()
    assert set(Comparison.objects.values_list("status", flat=True)) == {"complete"}
    assert Assignment.objects.exclude(status="voted").count() == 0  # every lease became a vote
    assert overfilled(timezone.now()) == []


def annotate_skip_or_walk_away(annotator, seed):
    """Claim until empty; vote on most, skip some, and leave some leases to expire (from the others' view)."""
    rng = random.Random(seed)
    outcomes = []
    while True:
        assignment = services.assignment_claim(annotator=annotator, rng=rng)
        if assignment is None:
            return outcomes
        roll = rng.random()
        if roll < 0.2:
            services.assignment_skip(annotator=annotator, comparison_id=assignment.comparison_id)
            outcomes.append(("skipped", assignment.comparison_id))
        else:
            vote, created = services.vote_submit(annotator=annotator, comparison_id=assignment.comparison_id, choice="a")
            assert created
            outcomes.append(("voted", vote.pk))


def test_skips_free_slots_without_ever_overfilling():
    users = [UserFactory(role="annotator") for _ in range(ANNOTATORS)]
    ComparisonFactory.create_batch(24, votes_required=2)

    with Watcher() as watcher:
        per_thread = run_together(annotate_skip_or_walk_away, [(user, 100 + i) for i, user in enumerate(users)])
    assert not watcher.errors, watcher.errors
    assert watcher.samples > 0
    assert watcher.violations == []

    outcomes = [outcome for results in per_thread for outcome in results]
    voted = {pk for kind, pk in outcomes if kind == "voted"}
    skipped = [pk for kind, pk in outcomes if kind == "skipped"]
    assert set(Vote.objects.values_list("id", flat=True)) == voted
    assert Assignment.objects.filter(status="skipped").count() == len(skipped) > 0
    assert Assignment.objects.filter(status="leased").count() == 0
    assert_counters_consistent()


def test_many_annotators_race_for_one_slot():
    comparison = ComparisonFactory(votes_required=1)
    users = [UserFactory(role="annotator") for _ in range(ANNOTATORS)]
    results = run_together(lambda user: services.assignment_claim(annotator=user), [(u,) for u in users])
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].comparison_id == comparison.pk
    assert Assignment.objects.count() == 1


def test_many_annotators_race_for_a_few_slots():
    comparison = ComparisonFactory(votes_required=5)
    users = [UserFactory(role="annotator") for _ in range(ANNOTATORS)]
    results = run_together(lambda user: services.assignment_claim(annotator=user), [(u,) for u in users])
    winners = sorted(r.annotator_id for r in results if r is not None)
    # Never more than the slots; on PostgreSQL fewer is possible (a claim skips a row another holds locked).
    assert 1 <= len(winners) <= 5
    assert sorted(comparison.assignments.values_list("annotator_id", flat=True)) == winners
    # Asked again one by one, the others fill exactly the remaining slots.
    later = [services.assignment_claim(annotator=u) for u in users if u.pk not in winners]
    assert len([a for a in later if a is not None]) == 5 - len(winners)
    assert comparison.assignments.count() == 5


# --- one annotator submitting twice at once ----------------------------------------------------------
SUBMITTERS = 8


def test_the_same_vote_submitted_concurrently_is_stored_once():
    annotator = UserFactory(role="annotator")
    comparisons = ComparisonFactory.create_batch(5, votes_required=2)
    now = timezone.now()  # one live lease on each, so every comparison takes this annotator's vote
    Assignment.objects.bulk_create(
        [
            Assignment(comparison=c, annotator=annotator, shown_left="a", leased_at=now, expires_at=now + timedelta(minutes=10))
            for c in comparisons
        ]
    )

    def submit(comparison_id):
        return services.vote_submit(annotator=annotator, comparison_id=comparison_id, choice="b", strength="slight")

    for comparison in comparisons:
        results = run_together(submit, [(comparison.pk,)] * SUBMITTERS)
        assert sum(created for _, created in results) == 1
        assert len({vote.pk for vote, _ in results}) == 1
        comparison.refresh_from_db()
        assert comparison.vote_count == 1
        assert comparison.votes.count() == 1
    assert_counters_consistent()


def test_different_votes_submitted_concurrently_keep_exactly_one():
    annotator = UserFactory(role="annotator")
    comparison = ComparisonFactory(votes_required=2)
    services.assignment_claim(annotator=annotator)
    choices = ["a", "b", "tie", "both_bad"] * (SUBMITTERS // 4)

    def submit(choice):
        try:
            vote, created = services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice=choice)
        except VoteConflict as conflict:
            return ("conflict", choice, conflict.vote.choice)
        return ("created" if created else "same", choice, vote.choice)

    results = run_together(submit, [(c,) for c in choices])
    stored = Vote.objects.get()
    assert [r for r in results if r[0] == "created"] == [("created", stored.choice, stored.choice)]
    for kind, choice, answered in results:
        assert answered == stored.choice
        assert kind == "conflict" if choice != stored.choice else kind in ("created", "same")
    comparison.refresh_from_db()
    assert comparison.vote_count == 1


# --- a late vote racing a claim for the freed slot ---------------------------------------------------
HOLD_S = 0.5  # how long the first transaction stays open; only ordering depends on it, never a verdict


def test_late_vote_racing_a_claim_of_its_slot_never_overfills():
    """The late voter's lease expired; another annotator claims the slot while the vote is in flight."""
    late, claimer = UserFactory(role="annotator"), UserFactory(role="annotator")
    comparison = ComparisonFactory(votes_required=1)
    t0 = timezone.now() - timedelta(minutes=30)
    services.assignment_claim(annotator=late, now=t0)
    claimed = threading.Event()

    def claim_and_hold():
        from django.db import transaction

        with transaction.atomic():
            assignment = services.assignment_claim(annotator=claimer)
            claimed.set()
            time.sleep(HOLD_S)  # the claim is not committed yet while the late vote arrives
        return assignment

    def vote_late():
        assert claimed.wait(JOIN_TIMEOUT_S)
        try:
            services.vote_submit(annotator=late, comparison_id=comparison.pk, choice="a")
        except LeaseExpired:
            return "refused"
        return "stored"

    assignment, verdict = run_together(lambda f: f(), [(claim_and_hold,), (vote_late,)])
    assert assignment is not None and assignment.comparison_id == comparison.pk
    assert verdict == "refused"
    assert Vote.objects.count() == 0
    assert overfilled(timezone.now()) == []


def test_claim_racing_a_late_vote_in_flight_never_overfills():
    """The late vote's transaction is open when another annotator asks for work."""
    late, claimer = UserFactory(role="annotator"), UserFactory(role="annotator")
    comparison = ComparisonFactory(votes_required=1)
    t0 = timezone.now() - timedelta(minutes=30)
    services.assignment_claim(annotator=late, now=t0)
    voting = threading.Event()

    def vote_and_hold():
        from django.db import transaction

        with transaction.atomic():
            _, created = services.vote_submit(annotator=late, comparison_id=comparison.pk, choice="a")
            voting.set()
            time.sleep(HOLD_S)
        return created

    def claim():
        assert voting.wait(JOIN_TIMEOUT_S)
        return services.assignment_claim(annotator=claimer)

    created, assignment = run_together(lambda f: f(), [(vote_and_hold,), (claim,)])
    assert created is True
    assert assignment is None
    comparison.refresh_from_db()
    assert (comparison.vote_count, comparison.status) == (1, "complete")
    assert overfilled(timezone.now()) == []
