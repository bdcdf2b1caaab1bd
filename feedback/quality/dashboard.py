"""Admins' quality dashboards, served from the stored report (never computed per request):
``/manage/quality/`` (all votes) and ``/manage/campaigns/<id>/quality/``.

Each look costs two queries for freshness (the stored report, the scope's newest vote id); when the
report misses a vote it asks for one background recompute (``services.quality_report_request``,
debounced) and the page polls with htmx until fresh, then is answered 286 (stop polling). After a
failed recompute the page does not ask again by itself until ``services.PENDING_EXPIRES`` has passed
(no retry loop while the page polls); "Recompute now" (a plain form POST) asks at once.
``?sort=<column>`` (``-`` for descending) orders the per-annotator table; ``?format=csv`` downloads it.
"""
from __future__ import annotations

import csv
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from feedback.models import Campaign
from feedback.roles import is_feedback_admin

from .charts import alpha_over_time_chart, left_rate_chart, time_histogram_chart
from .report import FLAG_TEXT, SORT_KEYS, columns_shown, sort_rows, table_rows
from .selectors import newest_vote_id, quality_report_get, quality_report_is_stale
from .models import QualityReportStatus
from .services import PENDING_EXPIRES, quality_report_request

STOP_POLLING = 286
AGREEMENT_FIGURES = (
    ("percent_agreement", "Percent agreement"),
    ("percent_agreement_without_ties", "Percent agreement without ties"),
    ("fleiss_kappa", "Fleiss' kappa"),
    ("krippendorff_alpha_nominal", "Krippendorff's alpha (nominal)"),
    ("krippendorff_alpha_ordinal", "Krippendorff's alpha (ordinal)"),
)
CSV_INJECTION = ("=", "+", "-", "@", "\t", "\r")


def _failed_recently(report) -> bool:
    return (report is not None and report.status == QualityReportStatus.FAILED and report.queued_at is not None
            and timezone.now() - report.queued_at < PENDING_EXPIRES)


@login_required
@require_http_methods(["GET", "POST"])
def manage_quality(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """The quality dashboard of campaign ``pk`` (None: all votes), from the stored report (GET);
    POST: queue a recompute now (debounced) and come back to the page."""
    if not is_feedback_admin(request.user):
        raise PermissionDenied("Your account does not have this role.")
    campaign = get_object_or_404(Campaign, pk=pk) if pk is not None else None
    if request.method == "POST":
        quality_report_request(campaign=campaign)
        return redirect(request.path)
    report = quality_report_get(campaign=campaign)
    stale = quality_report_is_stale(report, newest_vote_id(campaign=campaign))
    if stale and (report is None or not report.pending) and not _failed_recently(report):
        report, _ = quality_report_request(campaign=campaign)
    figures = report.figures if report is not None and report.computed else {}
    rows, has_gold = table_rows(figures)
    sort = request.GET.get("sort", "")
    sort = sort if sort.lstrip("-") in SORT_KEYS else ""
    rows = sort_rows(rows, sort) if sort else rows
    if request.GET.get("format") == "csv":
        return _csv(rows, has_gold, "reliability" in figures, campaign)
    context = _context(campaign=campaign, report=report, figures=figures, rows=rows, has_gold=has_gold,
                       sort=sort, stale=stale)
    template = "feedback/manage_quality.html"
    if request.htmx and request.htmx.target == "quality-report":
        response = render(request, template + "#report", context)
        if not context["recomputing"]:
            response.status_code = STOP_POLLING
        return response
    return render(request, template, context)


def _context(*, campaign, report, figures, rows, has_gold, sort, stale) -> dict[str, Any]:
    columns = columns_shown(figures)
    headers = [{"key": key, "header": header, "sort": f"-{key}" if sort == key else key,
                "aria_sort": "ascending" if sort == key else "descending" if sort == f"-{key}" else "none"}
               for key, header in columns]
    agreement = figures.get("agreement", {})
    bias = figures.get("bias", {})
    return {
        "campaign": campaign, "report": report, "figures": figures, "rows": rows, "has_gold": has_gold,
        "has_reliability": "reliability" in figures,
        "fast_ms": bias.get("parameters", {}).get("fast_ms"), "fast_share": bias.get("parameters", {}).get("fast_share"),
        "headers": headers, "sort": sort, "flag_text": FLAG_TEXT, "stale": stale,
        "recomputing": report is not None and report.pending,
        "agreement": [(label, agreement.get(key)) for key, label in AGREEMENT_FIGURES if key in agreement],
        "agreement_summary": agreement, "bias": bias, "judges": figures.get("judges", {}),
        "over_time": alpha_over_time_chart(figures.get("over_time", {})),
        "left_rates": left_rate_chart(rows),
        "histogram": time_histogram_chart(bias.get("time", {}).get("histogram", []),
                                          bias.get("parameters", {}).get("histogram_edges_ms", [])),
    }


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("value") if value.get("defined") else None
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    return "'" + text if text.startswith(CSV_INJECTION) else text


def _csv(rows: list[dict[str, Any]], has_gold: bool, has_reliability: bool, campaign: Campaign | None) -> HttpResponse:
    """The per-annotator table as CSV; undefined figures are empty cells. ``gold_accuracy`` and
    ``reliability_dawid_skene`` columns only when the report holds those figures."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = campaign.slug if campaign else "all"
    response["Content-Disposition"] = f'attachment; filename="quality-{name}.csv"'
    writer = csv.writer(response)
    header = ["annotator", "votes", "votes_per_hour", "median_ms", "kappa_vs_peers", "agreement_with_consensus",
              "left_rate", "left_rate_low", "left_rate_high", "left_p_holm", "flags"]
    header += (["gold_accuracy"] if has_gold else []) + (["reliability_dawid_skene"] if has_reliability else [])
    writer.writerow(header)
    for row in rows:
        left = row["left_rate"]
        cells = [row["username"], row["votes"], row["votes_per_hour"], row["median_ms"], row["kappa_peers"],
                 row["consensus_agreement"], left, left.get("low") if left.get("defined") else None,
                 left.get("high") if left.get("defined") else None,
                 left.get("p_adjusted") if left.get("defined") else None, ";".join(row["flags"])]
        cells += ([row.get("gold")] if has_gold else []) + ([row.get("reliability")] if has_reliability else [])
        writer.writerow([_cell(cell) for cell in cells])
    return response
