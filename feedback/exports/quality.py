"""Quality rules for an export (``min_gold_accuracy``, ``min_kappa``, ``exclude_flagged``,
``min_ms_on_item``; see ``feedback.quality.rules``): which annotators to leave out, judged once over
every vote the other filters pass, and how many votes each reason leaves out."""
from __future__ import annotations

import dataclasses

from django.db.models import Count, Q

from feedback.quality.rules import quality_screen

from .filters import ExportRequest
from .stream import votes_matching


def export_quality_apply(*, request: ExportRequest, max_vote_id: int | None) -> tuple[ExportRequest, dict[str, int]]:
    """The request to write, with annotators the quality rules leave out added to
    ``exclude_annotators``, and ``{reason: votes left out}`` (only reasons with votes; fast votes
    are those of kept annotators under ``min_ms_on_item``, which the stream itself leaves out).
    With ``aggregation == "dawid_skene"`` the request also carries the Dawid-Skene labels of the
    votes it will write (``ExportRequest.labels``; one more read of those votes).
    The request comes back unchanged, with no counts, when no quality rule is set.
    Queries: one read of the matching votes' (comparison, annotator, choice, gold choice), one
    count per reason; ``exclude_flagged`` adds ``bias_for``'s two queries over every vote."""
    filters = request.filters
    if not (filters.uses_quality or filters.min_ms_on_item or filters.aggregation == "dawid_skene"):
        return request, {}
    # Every vote the other filters pass, fast ones included (as a snapshot judges annotators).
    scope = votes_matching(filters=dataclasses.replace(filters, min_ms_on_item=0), max_vote_id=max_vote_id)
    left_out: dict[int, str] = {}
    if filters.uses_quality:
        rows = list(scope.values_list("comparison_id", "annotator_id", "choice", "comparison__gold_choice"))
        items, annotators, choices, golds = zip(*rows) if rows else ((), (), (), ())
        flagged: set[int] = set()
        if filters.exclude_flagged:
            from feedback.quality.selectors import bias_for

            flagged = {row["annotator"] for row in bias_for()["per_annotator"] if row["flags"]}
        left_out = dict(quality_screen(
            items=items, annotators=annotators, choices=choices, gold_choices=golds,
            min_gold_accuracy=filters.min_gold_accuracy, min_gold_votes=filters.min_gold_votes,
            min_kappa=filters.min_kappa, exclude_flagged=filters.exclude_flagged, flagged_annotators=flagged,
        ).annotators)
    counts: dict[str, int] = {}
    by_annotator = dict(scope.filter(annotator_id__in=list(left_out)).values_list("annotator_id")
                        .annotate(n=Count("id")).values_list("annotator_id", "n")) if left_out else {}
    for annotator, reason in left_out.items():
        if by_annotator.get(annotator):
            counts[reason] = counts.get(reason, 0) + by_annotator[annotator]
    if filters.min_ms_on_item:
        fast = scope.filter(Q(ms_on_item__lt=filters.min_ms_on_item)).exclude(annotator_id__in=list(left_out)).count()
        if fast:
            counts["left_out_fast_votes"] = fast
    excluded = tuple(sorted(set(filters.exclude_annotators) | set(left_out)))
    kept = dataclasses.replace(filters, exclude_annotators=excluded)
    labels = None
    if filters.aggregation == "dawid_skene":
        from feedback.quality.aggregation import dawid_skene

        votes = votes_matching(filters=kept, max_vote_id=max_vote_id)
        if not filters.include_flagged:  # as a snapshot: flagged imports give no row and teach nothing
            votes = votes.filter(comparison__import_flags="")
        rows = list(votes.values_list("comparison_id", "annotator_id", "choice"))
        items, annotators, choices = zip(*rows) if rows else ((), (), ())
        labels = dawid_skene(items, annotators, choices).labels
    return dataclasses.replace(request, filters=kept, labels=labels), counts
