"""Reads for the feedback app, each scoped to what the asking user may see."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField, Case, Count, Exists, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When,
)
from django.db.models.functions import Abs, Coalesce
from django.utils import timezone

from .models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    ComparisonStatus,
    Completion,
    CompletionScore,
    Demonstration,
    Prompt,
    Side,
    Vote,
    VoteChange,
    VoteOrigin,
)
from .campaigns.guidelines import Guidelines
from .display_query import item_row
from .campaigns.pool import campaigns_in_pool
from .campaigns.questions import Questions, questions_of
from .queue import choice_on_screen
from .roles import is_feedback_admin


@dataclass(frozen=True)
class Display:
    """An assignment as the annotator sees it: the prompt, then the completions by screen side, the
    campaign it belongs to with its questions, and the campaign's latest guidelines (None: none)."""

    assignment: Assignment
    comparison: Comparison
    messages: list[dict[str, str]]
    left: Completion
    right: Completion
    questions: Questions | None = None
    guidelines: Guidelines | None = None

    @property
    def item(self) -> str:
        """The opaque token a vote on this screen carries (says nothing about the sides)."""
        return self.assignment.token

    @property
    def item_short(self) -> str:
        """The first 6 characters of the item token: what the page shows as the item's name, to quote."""
        return self.assignment.token[:6]

    @property
    def lease_seconds_left(self) -> int:
        """Whole seconds until the lease runs out (0 once it has); no query."""
        return max(0, int((self.assignment.expires_at - timezone.now()).total_seconds()))

    @property
    def campaign(self):
        return self.comparison.campaign


def campaign_questions(campaign) -> Questions:
    """The questions ``campaign`` asks with each vote (``feedback.campaigns.questions``)."""
    return questions_of(
        ask_strength=campaign.ask_strength, aspects=campaign.aspects, rationale=campaign.rationale,
        ask_demonstration=campaign.ask_demonstration,
    )


def assignment_display(*, assignment: Assignment) -> Display:
    """Load what the annotator page shows for an assignment: the comparison with its prompt,
    completions and campaign, and the campaign's latest guidelines with whether this annotator
    acknowledged them (one query)."""
    row = item_row(comparison_id=assignment.comparison_id, annotator_id=assignment.annotator_id)
    comparison = row.comparison
    a, b = comparison.completion_a, comparison.completion_b
    left, right = (a, b) if assignment.shown_left == Side.A else (b, a)
    campaign = comparison.campaign
    guidelines = None
    if row.guidelines_id is not None:
        guidelines = Guidelines(
            campaign.slug, campaign.name, row.guidelines_id, row.guidelines_number, row.guidelines_text,
            row.guidelines_read,
        )
    return Display(assignment, comparison, comparison.prompt.messages, left, right, campaign_questions(campaign), guidelines)


def assignment_by_item(*, annotator, item: str) -> Assignment | None:
    """The annotator's assignment whose token is ``item``, or None (someone else's token, or junk)."""
    if not item:
        return None
    return Assignment.objects.filter(annotator=annotator, token=item).first()


def vote_on_item(*, annotator, item: str) -> dict[str, str] | None:
    """The annotator's stored vote on the comparison of their assignment ``item``, in screen terms
    (``choice`` left/right/tie/both_bad, ``strength``, ``rationale``, each aspect left/right/tie/""),
    or None (no such assignment, or no vote on it)."""
    assignment = assignment_by_item(annotator=annotator, item=item)
    if assignment is None:
        return None
    vote = Vote.objects.filter(comparison_id=assignment.comparison_id, annotator=annotator).first()
    if vote is None:
        return None
    said = {"choice": choice_on_screen(vote.choice, vote.shown_left), "strength": vote.strength,
            "rationale": vote.rationale}
    for aspect in Vote.ASPECTS:
        said[aspect] = choice_on_screen(getattr(vote, aspect), vote.shown_left) if getattr(vote, aspect) else ""
    return said


def annotator_progress(*, annotator, campaign=None) -> dict[str, int]:
    """Counts for the annotator's progress line: ``voted`` (all time), ``skipped``, ``remaining``.

    ``remaining`` is the number of open comparisons this annotator has neither voted on nor skipped
    in ``campaign``, or (without one) in the active campaigns whose pool holds them (an upper bound
    on what they can still be served; slots held by others are not subtracted). Gold items of a
    campaign that mixes them in (``gold_rate`` > 0) are not counted: they are served beside the
    other items, never instead of them. With ``campaign``, ``voted`` and ``skipped`` count that
    campaign's comparisons only.
    """
    mine = Assignment.objects.filter(annotator=annotator)
    if campaign is not None:
        mine = mine.filter(comparison__campaign=campaign)
    done = Assignment.objects.filter(
        annotator=annotator, comparison=OuterRef("pk"), status__in=[AssignmentStatus.VOTED, AssignmentStatus.SKIPPED]
    )
    # voted and skipped in one pass over the annotator's assignments (one query, not two)
    counts = mine.aggregate(
        voted=Count("pk", filter=Q(status=AssignmentStatus.VOTED)),
        skipped=Count("pk", filter=Q(status=AssignmentStatus.SKIPPED)),
    )
    open_ = Comparison.objects.filter(status=ComparisonStatus.OPEN).exclude(~Q(gold_choice="") & Q(campaign__gold_rate__gt=0))
    if campaign is not None:
        open_ = open_.filter(campaign=campaign)
    else:
        open_ = open_.filter(campaign__in=campaigns_in_pool(user=annotator).values("pk"))
    return {
        "voted": counts["voted"],
        "skipped": counts["skipped"],
        "remaining": open_.filter(~Exists(done)).count(),
    }


def comparison_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Comparison]:
    """Comparisons the user may see: all for admins, those assigned to them for annotators (each
    annotated with ``shown_left``, the completion their screen showed on the left).

    Filters (all optional): ``status``, ``prompt``, ``model_name`` (either side; admins only, since
    it would tell an annotator which model wrote a response), ``identity_leak`` (``flagged`` or
    ``clean``; admins only, as the flag names the reason), ``identity_pattern`` (a pattern id: the
    comparisons it matches; admins only), ``tag``, ``split``,
    ``created_after``/``created_before`` (datetimes).
    """
    filters = filters or {}
    qs = Comparison.objects.select_related("prompt", "completion_a", "completion_b")
    if not is_feedback_admin(user):
        # An annotator's rows carry the side they were shown on the left (``shown_left``), so the
        # API can give the texts in screen order without saying which stored side is which.
        mine = Assignment.objects.filter(comparison=OuterRef("pk"), annotator=user)
        qs = qs.filter(Exists(mine)).annotate(shown_left=Subquery(mine.values("shown_left")[:1]))
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("prompt"):
        qs = qs.filter(prompt_id=filters["prompt"])
    if filters.get("split"):
        qs = qs.filter(prompt__split=filters["split"])
    if filters.get("model_name") and is_feedback_admin(user):
        name = filters["model_name"]
        qs = qs.filter(Exists(Completion.objects.filter(pk=OuterRef("completion_a"), model_name=name))) | qs.filter(
            Exists(Completion.objects.filter(pk=OuterRef("completion_b"), model_name=name))
        )
    if filters.get("identity_leak") in ("flagged", "clean") and is_feedback_admin(user):
        qs = qs.filter(identity_leak=filters["identity_leak"] == "flagged")
    if filters.get("identity_pattern") and is_feedback_admin(user):
        qs = qs.filter(identity_matches__pattern_id=filters["identity_pattern"])
    if filters.get("tag"):
        qs = qs.filter(prompt__in=prompts_with_tag(filters["tag"]))
    if filters.get("created_after"):
        qs = qs.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before"):
        qs = qs.filter(created_at__lt=filters["created_before"])
    return qs


class _ArrayHolds(Func):
    """SQLite: ``EXISTS (SELECT 1 FROM json_each(<json array>) AS t WHERE t.value = <value>)``.

    The column is compiled by Django, so it carries whatever alias the query gives the table (a
    prompt subquery inside a comparison or vote query is aliased ``U0``, not ``feedback_prompt``).
    """

    output_field = BooleanField()
    conditional = True

    def as_sql(self, compiler, connection, **extra):
        array_sql, array_params = compiler.compile(self.source_expressions[0])
        value_sql, value_params = compiler.compile(self.source_expressions[1])
        sql = f"EXISTS (SELECT 1 FROM json_each({array_sql}) AS t WHERE t.value = {value_sql})"
        return sql, (*array_params, *value_params)


def prompts_with_tag(tag: str) -> QuerySet[Prompt]:
    """Prompts whose ``tags`` list holds ``tag`` exactly (JSON containment on PostgreSQL, json_each on SQLite).

    Safe to use as a subquery (``prompt__in=prompts_with_tag(t).values("pk")``) on both backends.
    """
    if connection.vendor == "sqlite":
        return Prompt.objects.filter(_ArrayHolds(F("tags"), Value(tag)))
    return Prompt.objects.filter(tags__contains=[tag])


def _choice_lookup(choice: str) -> Q:
    """A filter for a stored choice (a, b, tie, both_bad) or a screen side (left, right)."""
    if choice == "left":
        return Q(choice=F("shown_left"))
    if choice == "right":
        return Q(choice__in=[Side.A, Side.B]) & ~Q(choice=F("shown_left"))
    return Q(choice=choice)


def vote_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Vote]:
    """Votes the user may see: all for admins, their own for annotators.

    Filters: ``comparison``, ``annotator`` (id; admins only), ``choice``, ``created_after``, ``created_before``.
    """
    filters = filters or {}
    qs = Vote.objects.select_related("annotator")
    if not is_feedback_admin(user):
        qs = qs.filter(annotator=user)
    elif filters.get("annotator"):
        qs = qs.filter(annotator_id=filters["annotator"])
    if filters.get("comparison"):
        qs = qs.filter(comparison_id=filters["comparison"])
    if filters.get("choice"):
        qs = qs.filter(_choice_lookup(filters["choice"]))
    if filters.get("created_after"):
        qs = qs.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before"):
        qs = qs.filter(created_at__lt=filters["created_before"])
    return qs


def comparison_demonstrations(*, comparison: Comparison) -> QuerySet[Demonstration]:
    """The demonstrations (better responses) written on a comparison's page, oldest first, with
    their writers (one query). Admins only: annotators never see each other's work."""
    return comparison.demonstrations.select_related("annotator").order_by("created_at", "id")


def lease_is_live(assignment: Assignment, now: datetime | None = None) -> bool:
    """True while the assignment is a lease that has not expired."""
    return assignment.status == AssignmentStatus.LEASED and assignment.expires_at > (now or timezone.now())


# --- reward model scores (admins only: annotators never see scores or margins) ---------------
COMPARISON_ORDERS = {"": "newest first", "least_sure": "least sure first"}


def _scores_of_both_sides() -> QuerySet[CompletionScore]:
    """The outer comparison's A-side scores from reward models that also scored its B side, most
    recent A-side score first, each with ``score_b`` and ``margin`` (A - B).

    Recency is the A-side score's time, not the later of both sides: SQLite cannot see the outer
    comparison's columns from a subquery's ORDER BY (``no such column``), and a reward model scores
    both sides of a pair in one ``scores_record`` call.
    """
    b_side = CompletionScore.objects.filter(completion=OuterRef(OuterRef("completion_b")), reward_model=OuterRef("reward_model"))
    return (
        CompletionScore.objects.filter(completion=OuterRef("completion_a"))
        .annotate(score_b=Subquery(b_side.values("score")[:1]))
        .filter(score_b__isnull=False)
        .annotate(margin=F("score") - F("score_b"))
        .order_by("-created_at", "-id")
    )


def comparisons_with_reward_margin(queryset: QuerySet[Comparison]) -> QuerySet[Comparison]:
    """``queryset`` with ``margin_reward_model`` (str) and ``reward_margin`` (float, score_a - score_b)
    annotated from the reward model that most recently scored both completions (by the time of its
    A-side score); both None when no reward model scored both. Two correlated subqueries on the (completion, reward_model) index: no
    query per row. For admin pages only.
    """
    latest = _scores_of_both_sides()
    return queryset.annotate(
        margin_reward_model=Subquery(latest.values("reward_model")[:1]),
        reward_margin=Subquery(latest.values("margin")[:1]),
    )


def comparisons_with_vote_origins(queryset: QuerySet[Comparison]) -> QuerySet[Comparison]:
    """``queryset`` with what a comparison's campaign counts toward ``votes_required``
    (``feedback.ai_votes``): ``ai_vote_count`` (int, AI judges' votes; ``vote_count`` stays
    people's), ``ai_votes_counted`` (bool, the campaign's ``ai_votes_count``) and ``votes_counted``
    (int: people's votes, plus the AI votes where they count). One correlated count on the
    (comparison, annotator) index and the campaign's column: no query per row. For admin pages only.
    """
    ai_votes = (
        Vote.objects.filter(comparison=OuterRef("pk"), origin=VoteOrigin.AI)
        .order_by().values("comparison").annotate(n=Count("*")).values("n")
    )
    return queryset.annotate(
        ai_vote_count=Coalesce(Subquery(ai_votes, output_field=IntegerField()), Value(0)),
        ai_votes_counted=F("campaign__ai_votes_count"),
    ).annotate(
        votes_counted=F("vote_count") + Case(When(ai_votes_counted=True, then=F("ai_vote_count")), default=Value(0)),
    )


def comparisons_order(queryset: QuerySet[Comparison], *, order: str = "") -> QuerySet[Comparison]:
    """Order a ``comparisons_with_reward_margin`` queryset: ``""`` newest first; ``"least_sure"``
    by |reward margin| ascending (the pairs the reward model is least sure of first), comparisons
    without a margin last, newest first among equals.

    Raises:
        ValueError: an order not in ``COMPARISON_ORDERS``.
    """
    if order not in COMPARISON_ORDERS:
        raise ValueError(f"unknown order {order!r}; expected one of {', '.join(map(repr, COMPARISON_ORDERS))}")
    if order == "least_sure":
        return queryset.order_by(Abs("reward_margin").asc(nulls_last=True), "-id")
    return queryset.order_by("-id")


@dataclass(frozen=True)
class RewardScores:
    """One reward model's scores for a comparison's completions (None where it has not scored that side)."""

    reward_model: str
    score_a: float | None
    score_b: float | None
    scored_at: datetime

    @property
    def margin(self) -> float | None:
        """score_a - score_b, or None unless both sides are scored."""
        if self.score_a is None or self.score_b is None:
            return None
        return self.score_a - self.score_b


def comparison_reward_scores(*, comparison: Comparison) -> list[RewardScores]:
    """Every reward model's scores for the comparison's two completions, most recently scored first (one query). Admins only."""
    by_model: dict[str, dict[str, Any]] = {}
    rows = CompletionScore.objects.filter(
        completion_id__in=[comparison.completion_a_id, comparison.completion_b_id]
    ).values_list("reward_model", "completion_id", "score", "created_at")
    for reward_model, completion_id, score, created_at in rows:
        entry = by_model.setdefault(reward_model, {"score_a": None, "score_b": None, "scored_at": created_at})
        entry["score_a" if completion_id == comparison.completion_a_id else "score_b"] = score
        entry["scored_at"] = max(entry["scored_at"], created_at)
    scores = [RewardScores(reward_model=name, **entry) for name, entry in by_model.items()]
    return sorted(scores, key=lambda s: (s.scored_at, s.reward_model), reverse=True)


# --- an annotator's own votes (undo and revisit) -----------------------------------------------
HISTORY_LENGTH = 50


@dataclass(frozen=True)
class HistoryEntry:
    """One of the annotator's votes as they saw it: texts by screen side, choice and aspects in
    screen terms (left/right/tie/both_bad), and whether it may still change (comparison open)."""

    vote: Vote
    messages: list[dict[str, str]]
    left: Completion
    right: Completion
    choice: str
    aspects: dict[str, str]
    changeable: bool


def vote_history(*, annotator, limit: int = HISTORY_LENGTH) -> list[HistoryEntry]:
    """The annotator's ``limit`` most recent votes, newest first, in their screen terms (two queries)."""
    votes = (
        Vote.objects.filter(annotator=annotator)
        .exclude(shown_left="")
        .select_related("comparison__prompt", "comparison__completion_a", "comparison__completion_b")
        .order_by("-created_at", "-id")[:limit]
    )
    entries = []
    for vote in votes:
        comparison = vote.comparison
        a, b = comparison.completion_a, comparison.completion_b
        left, right = (a, b) if vote.shown_left == Side.A else (b, a)
        entries.append(HistoryEntry(
            vote=vote,
            messages=comparison.prompt.messages,
            left=left,
            right=right,
            choice=choice_on_screen(vote.choice, vote.shown_left),
            aspects={aspect: choice_on_screen(getattr(vote, aspect), vote.shown_left) for aspect in Vote.ASPECTS},
            changeable=comparison.status != ComparisonStatus.RETIRED,  # complete: an undo reopens it
        ))
    return entries


def vote_last_undoable(*, annotator) -> Vote | None:
    """The annotator's most recent vote while it is their last action (what the annotate page's
    "Undo last vote" and its key ``u`` withdraw), else None: none when its comparison was retired,
    and none once they skipped or flagged an item after it (``u`` right after a flag must not
    withdraw an older vote they did not have in mind; the vote history still offers it)."""
    later_skip = Assignment.objects.filter(
        annotator=annotator, status=AssignmentStatus.SKIPPED, finished_at__gt=OuterRef("created_at"))
    vote = (
        Vote.objects.filter(annotator=annotator).exclude(shown_left="").select_related("comparison")
        .order_by("-created_at", "-id").annotate(skipped_since=Exists(later_skip)).first()
    )
    if vote is None or vote.comparison.status == ComparisonStatus.RETIRED or vote.skipped_since:
        return None
    return vote


def comparison_vote_changes(*, comparison: Comparison) -> list[VoteChange]:
    """Admins: every change annotators made to their votes on this comparison, oldest first."""
    return list(VoteChange.objects.filter(comparison=comparison).select_related("annotator").order_by("at", "id"))
