"""Admin pages for policy runs and the loop: launch DPO / RL / SFT, and the Loop page (settings,
start a round, the history of rounds with live status). Same conventions as ``training.views``."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from feedback import interface as feedback

from . import loop, selectors, services
from .forms import LoopForm, PolicyRunForm
from .judges.models import Judge
from .views import STOP_POLLING, _require_run_jobs

CREATE = {"dpo": services.dpo_run_create, "rl": services.rl_run_create, "sft": services.sft_run_create}


def _messages_of(error: ValidationError) -> dict[str, list[str]]:
    return error.message_dict if hasattr(error, "error_dict") else {"config": error.messages}


@login_required
@require_http_methods(["GET", "POST"])
def train_policy(request: HttpRequest) -> HttpResponse:
    """Admins: launch a DPO, online-RL (RLOO/GRPO) or SFT run. Errors show by field (400), nothing queued."""
    _require_run_jobs(request)
    choices = {
        "checkpoint_names": selectors.policy_checkpoint_names(),
        "reward_names": selectors.reward_checkpoint_names(),
        "snapshots": [(ref.id, f"snapshot {ref.id} ({ref.kind}): {ref.train_rows} train / {ref.eval_rows} eval rows")
                      for ref in feedback.snapshots_recent(limit=50)],
    }
    if request.method == "GET":
        initial = {key: request.GET[key] for key in ("kind", "base") if request.GET.get(key)}
        return render(request, "training/train_policy.html", {"form": PolicyRunForm(initial=initial, **choices)})
    form = PolicyRunForm(request.POST, **choices)
    if form.is_valid():
        kind, config = form.config()
        try:
            job = CREATE[kind](config=config, created_by=request.user, **form.governance())
        except ValidationError as error:
            form.add_service_errors(_messages_of(error))
        else:
            messages.success(request, f"{job.get_kind_display()} run {job.pk} queued on snapshot {job.snapshot_id}.")
            return redirect("manage-job-detail", pk=job.pk)
    return render(request, "training/train_policy.html", {"form": form}, status=400)


def _loop_context(settings) -> dict:
    rounds = list(selectors.loop_rounds()[:50])
    board = selectors.leaderboard_compute(rounds=100) if rounds else None
    ratings = {row.model: row for row in board.rows} if board else {}
    reports = []
    for loop_round in rounds:
        report = loop.round_report(loop_round)
        new, parent = ratings.get(report["checkpoint"]), ratings.get(report["parent"])
        report["rating_delta"] = round(new.rating - parent.rating, 1) if new and parent else None
        report["head_to_head_votes"] = board.pair_votes.get(report["checkpoint"], {}).get(report["parent"], 0) if board else 0
        reports.append({"round": loop_round, "report": report})
    pending = loop.loop_votes_pending(settings)
    return {
        "settings": settings,
        "base_models": selectors.base_policy_names() if settings.policy is None else [],
        "pending": pending,
        "votes_status": votes_status(
            enabled=settings.enabled, pending=pending, votes_per_round=settings.votes_per_round,
            running=loop.loop_round_running(), last_round=rounds[0] if rounds else None,
            switched_on_before=settings.last_vote_id > 0,
        ),
        "running": any(r["round"].status == "running" for r in reports),
        "reports": reports,
    }


def votes_status(
    *, enabled: bool, pending: int, votes_per_round: int, running, last_round, switched_on_before: bool
) -> str:
    """The Loop page's line about new votes (those after ``LoopSettings.last_vote_id``).

    Off: that the loop is off and how many votes arrived since the last round (or since it was
    last switched on, or in all), without "of K": no round is counting towards. On: ``N of K new
    votes for the next round``, or, at K or more, that a round is running or starts with the next vote.
    """
    votes = f"{pending:,} new vote{'' if pending == 1 else 's'}"
    if not enabled:
        if last_round is not None:
            since = f"since round {last_round.pk} started"
        elif switched_on_before:
            since = "since the loop was switched on"
        else:
            since = "so far"
        return f"The loop is off: {votes} {since}. Switch it on to start a round every {votes_per_round:,} votes."
    if running is not None:
        if pending >= votes_per_round:
            return (f"Round {running.pk} is running; {votes} since it started, enough for the next round, "
                    "which starts with the first vote after it ends.")
        return f"Round {running.pk} is running; {pending:,} of {votes_per_round:,} new votes for the next round."
    if pending >= votes_per_round:
        return (f"{votes}, enough for a round (every {votes_per_round:,}): one starts with the next vote, "
                "or start it now.")
    return f"{pending:,} of {votes_per_round:,} new votes for the next round."


@login_required
@require_http_methods(["GET", "POST"])
def loop_page(request: HttpRequest) -> HttpResponse:
    """Admins: the loop's settings, votes pending for the next round, and every round's report
    (votes used, reward-model accuracy, policy metrics, new checkpoint, its rating against its parent).

    For an htmx poll of ``#loop-rounds``: the rounds table alone, 286 once no round is running.
    """
    _require_run_jobs(request)
    settings = loop.loop_settings()
    names = selectors.policy_checkpoint_names()
    campaigns = feedback.campaign_choices()
    judges = [judge.ref for judge in Judge.objects.order_by("name", "-version")]
    eval_sets = feedback.eval_set_choices()
    if request.method == "POST":
        form = LoopForm(request.POST, checkpoint_names=names, campaigns=campaigns, judges=judges, eval_sets=eval_sets)
        if form.is_valid():
            try:
                loop.loop_settings_update(**form.cleaned_data)
            except ValidationError as error:
                form.add_service_errors(_messages_of(error))
            else:
                messages.success(request, "Loop settings saved.")
                return redirect("manage-loop")
        return render(request, "training/loop.html", {"form": form, **_loop_context(settings)}, status=400)
    initial = {
        "enabled": settings.enabled, "votes_per_round": settings.votes_per_round, "method": settings.method,
        "policy": settings.policy.name if settings.policy else "", "rules": settings.rules,
        "reward_config": settings.reward_config, "policy_config": settings.policy_config,
        "generation_config": settings.generation_config, "campaign": settings.campaign_id or "",
        "judge": settings.judge.ref if settings.judge else "",
        "gate_eval_set": settings.gate_eval_set_id or "", "gate_margin": settings.gate_margin,
    }
    form = LoopForm(initial=initial, checkpoint_names=names, campaigns=campaigns, judges=judges, eval_sets=eval_sets)
    context = {"form": form, **_loop_context(settings)}
    if request.htmx and request.htmx.target == "loop-rounds":
        return render(request, "training/loop.html#rounds", context, status=200 if context["running"] else STOP_POLLING)
    return render(request, "training/loop.html", context)


@login_required
@require_POST
def loop_round_start(request: HttpRequest) -> HttpResponse:
    """Admins: start a round now (whatever the vote count); the reason shows when it cannot start."""
    _require_run_jobs(request)
    try:
        loop_round = loop.loop_round_start(trigger="manual", created_by=request.user)
    except ValidationError as error:
        for key, texts in _messages_of(error).items():
            for text in texts:
                text = text if key in ("loop", "snapshot", "policy") else f"{key}: {text}"
                messages.error(request, f"No round started: {text}")
    else:
        messages.success(request, f"Round {loop_round.pk} started: reward run {loop_round.reward_job_id} queued.")
    return redirect("manage-loop")
