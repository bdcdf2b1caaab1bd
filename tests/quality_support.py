"""Seeded votes for the quality dashboard tests: one campaign, annotators of known habits.

``lefty`` always picks the response shown on the left; ``speedy`` votes like an honest annotator
but 300 ms on each item; ``clicker`` picks any of the four answers at random; ``honest0``... agree
with the item's hidden truth nine times in ten and take 4 to 30 s. Every annotator votes on every
item, so each item has as many votes as there are annotators; votes are spread over three days.
"""
from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from feedback.models import Campaign, Vote
from tests.factories import ComparisonFactory, UserFactory

HABITS = ("lefty", "speedy", "clicker")


def votes_seed(campaign: Campaign, *, items: int = 120, honest: int = 4, seed: int = 7) -> dict[str, object]:
    """Votes of ``HABITS`` plus ``honest`` honest annotators on ``items`` new comparisons of
    ``campaign``; returns the users by username."""
    rng = random.Random(seed)
    users = {name: UserFactory(username=name, role="annotator")
             for name in (*HABITS, *(f"honest{i}" for i in range(honest)))}
    comparisons = [ComparisonFactory(campaign=campaign, votes_required=len(users)) for _ in range(items)]
    start = timezone.now() - timedelta(days=3)
    votes = []
    for index, comparison in enumerate(comparisons):
        truth = rng.choice("ab")
        for name, user in users.items():
            shown_left = rng.choice("ab")
            honest_choice = truth if rng.random() < 0.9 else ("b" if truth == "a" else "a")
            choice, ms = honest_choice, rng.randint(4000, 30000)
            if name == "lefty":
                choice = shown_left
            elif name == "speedy":
                ms = 300
            elif name == "clicker":
                choice = rng.choice(["a", "b", "tie", "both_bad"])
            votes.append(Vote(comparison=comparison, annotator=user, choice=choice, shown_left=shown_left,
                              ms_on_item=ms))
    Vote.objects.bulk_create(votes)
    step = timedelta(days=3) / max(len(votes), 1)
    ids = list(Vote.objects.filter(comparison__campaign=campaign).order_by("id").values_list("id", flat=True))
    Vote.objects.bulk_update([Vote(id=vote_id, created_at=start + step * i) for i, vote_id in enumerate(ids)],
                             ["created_at"])
    return users
