"""AI votes for the feedback-side tests of issue 16, written straight to the database (the judging
side writes them through ``feedback.interface``): a judge's inactive system user and its votes."""
from __future__ import annotations

from django.contrib.auth import get_user_model

from feedback.models import Comparison, Vote, VoteOrigin


def judge_user(judge: str = "tiny@1"):
    """The inactive system user of ``judge`` ("name@version"): username ``judge:<judge>``."""
    user, _ = get_user_model().objects.get_or_create(username=f"judge:{judge}", defaults={"is_active": False})
    return user


def ai_vote(comparison: Comparison, choice: str = "a", *, judge: str = "tiny@1", template: str = "pairwise@1",
            constitution: str = "") -> Vote:
    """An AI vote by ``judge`` on ``comparison`` (``vote_count`` untouched: it counts people's votes)."""
    return Vote.objects.create(
        comparison=comparison, annotator=judge_user(judge), choice=choice, shown_left="",
        origin=VoteOrigin.AI, judge=judge, judge_template=template, constitution=constitution,
    )
