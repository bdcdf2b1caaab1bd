"""The judging runner: a registered judge labels comparisons, batch by batch, as AI votes.

Every comparison is asked in both orders (``ab``: completion a shown as Response A, then ``ba``)
and, with a constitution, once per principle in each order. Each call is stored (``JudgeCall``:
raw output, parsed label, tokens, seconds); each comparison's verdict (``JudgeVerdict``) follows
``training.judges.verdicts``: a choice that flips with the order is a tie, counted
``inconsistent``. Verdicts become votes through ``feedback.interface.ai_votes_record``. A batch's
calls, verdicts, votes and the progress that counts them commit in one transaction, so a killed
job leaves whole batches and ``progress_done`` says how far it got; a cancel stops between batches.

The judge works one batch ahead: it answers batch i + 1 while batch i is written. A cancel, or a
failure, drops that batch's answers (after they arrive) and records nothing of it.
A job whose calls have all failed so far when a batch ends stops there, failed, with the first
failure's reason (an endpoint that is down, a key that is refused): nothing would come of the rest.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import transaction

from feedback import interface as feedback
from training.judges.config import JudgeOptions, JudgingConfig
from training.judges.models import Judge, JudgeCall, JudgeKind, JudgeVerdict
from training.judges.prompt_templates import PromptTemplate, template_load
from training.judges.verdicts import ORDERS, label_to_choice, majority, orders_combine

from .judge_backends import FAILED, OK, UNPARSED, Backend, EndpointBackend, JudgeAnswer, JudgeRequest
from .progress import Reporter, Stopwatch


class JudgingFailed(RuntimeError):
    """Every call so far failed; the message is the first failure's reason."""


@dataclass(frozen=True)
class Outcome:
    """One comparison's verdict: ``choice`` (None: no vote), each order's choice, whether it
    flipped, and per principle ``{"principle", "ab", "ba", "choice", "inconsistent"}``."""

    comparison_id: int
    choice: str | None
    ab: str | None
    ba: str | None
    inconsistent: bool
    principles: list[dict]


def requests_build(item, template: PromptTemplate | None, principles: Sequence[str | None]) -> list[JudgeRequest]:
    """The calls for one ``feedback.interface.JudgingItem``: each order, each principle (None: overall)."""
    requests = []
    for order in ORDERS:
        first, second = (item.text_a, item.text_b) if order == "ab" else (item.text_b, item.text_a)
        for index, principle in enumerate(principles):
            messages = []
            if template is not None:
                text = template.render(conversation=item.prompt_messages, first=first, second=second, principle=principle or "")
                messages = [{"role": "user", "content": text}]
            requests.append(JudgeRequest(item.comparison_id, order, None if principle is None else index, messages,
                                         item.prompt_messages, first, second))
    return requests


def outcomes_build(requests: Sequence[JudgeRequest], answers: Sequence[JudgeAnswer],
                   principles: Sequence[str | None]) -> list[Outcome]:
    """Per comparison (in first-seen order): each order's majority over principles, combined across orders."""
    by: dict[int, dict[tuple[str, int | None], str | None]] = {}
    for request, answer in zip(requests, answers):
        choice = label_to_choice(answer.label, request.order) if answer.status == OK else None
        by.setdefault(request.comparison_id, {})[(request.order, request.principle_index)] = choice
    outcomes = []
    indexes = [None if p is None else i for i, p in enumerate(principles)]
    for comparison_id, choices in by.items():
        ab = majority([choices.get(("ab", i)) for i in indexes])
        ba = majority([choices.get(("ba", i)) for i in indexes])
        choice, inconsistent = orders_combine(ab, ba)
        rows = []
        for i in indexes:
            if i is None:
                continue
            p_choice, p_flip = orders_combine(choices.get(("ab", i)), choices.get(("ba", i)))
            rows.append({"principle": principles[i], "ab": choices.get(("ab", i)), "ba": choices.get(("ba", i)),
                         "choice": p_choice, "inconsistent": p_flip})
        outcomes.append(Outcome(comparison_id, choice, ab, ba, inconsistent, rows))
    return outcomes


def rationale(outcome: Outcome, judge_ref: str) -> str:
    """The vote's rationale in words: each order's choice, a flip, and each principle's verdict."""
    words = f"AI judge {judge_ref}: shown a first -> {outcome.ab}; shown b first -> {outcome.ba}"
    if outcome.inconsistent:
        words += "; the choice flipped with the order, so it is recorded as a tie"
    for row in outcome.principles:
        words += f"\n- {row['principle']} -> {row['choice'] or 'no verdict'}" + (" (flipped with the order)" if row["inconsistent"] else "")
    return words


def backend_open(judge: Judge, options: JudgeOptions, template: PromptTemplate | None) -> Backend:
    """The judge's backend. Raises LookupError (a key variable not set) or whatever loading a model raises."""
    if judge.kind == JudgeKind.OPENAI:
        return EndpointBackend(base_url=judge.base_url, model=judge.model_name, api_key_env=judge.api_key_env,
                               options=options, template=template)
    from .judge_local import LocalLmBackend, RewardModelBackend  # torch only for local judges

    if judge.kind == JudgeKind.REWARD_MODEL:
        return RewardModelBackend(checkpoint=judge.checkpoint, options=options)
    return LocalLmBackend(checkpoint=judge.checkpoint, options=options, template=template)


def run_judging(job, reporter: Reporter, *, backend: Backend | None = None) -> dict:
    """Run a judging job (see ``JudgingConfig``); returns the job summary.

    Summary keys: ``judge``, ``comparisons`` (to judge), ``judged`` (committed), ``calls``, ``ok``,
    ``unparsed``, ``failed`` (calls), ``inconsistent`` (comparisons whose choice flipped with the
    order), ``ties``, ``no_verdict`` (comparisons without a vote: an order with no verdict),
    ``votes`` (new AI votes), ``prompt_tokens``, ``completion_tokens``, ``seconds``,
    ``comparisons_per_s``, and ``first_error`` when a call failed.
    Raises:
        LookupError: no such judge, or its key variable is not set. JudgingFailed: every call
        failed. Whatever loading a local model raises.
    """
    config = JudgingConfig.from_dict(job.config)
    name, _, version = config.judge.rpartition("@")
    judge = Judge.objects.select_related("checkpoint", "constitution").filter(name=name, version=int(version)).first()
    if judge is None:
        raise LookupError(f"no judge {config.judge}")
    options = JudgeOptions.from_dict(judge.options)
    template = template_load(judge.template) if judge.template else None
    principles: list[str | None] = list(judge.constitution.principles) if judge.constitution and template else [None]
    constitution = judge.constitution.ref if judge.constitution else ""
    items = feedback.comparisons_for_judging(
        campaign_id=config.campaign_id, ids=config.comparison_ids, limit=config.limit,
        skip_judge=judge.ref if config.only_unjudged else None,
    )
    backend = backend or backend_open(judge, options, template)
    counts, tokens, first_error, judged = Counter(), Counter(), "", 0
    clock = Stopwatch()  # after the model is loaded: ``seconds`` is the judging itself
    reporter.progress(done=0, total=len(items), summary=_summary(judge, items, judged, counts, tokens, first_error))
    batches = [items[i:i + config.batch_size] for i in range(0, len(items), config.batch_size)]

    def ask(batch) -> tuple[list[JudgeRequest], list[JudgeAnswer]]:
        requests = [r for item in batch for r in requests_build(item, template, principles)]
        return requests, backend.answer(requests)

    # One batch ahead: the judge answers batch i + 1 while batch i is written, so an endpoint's
    # connections (or the model) never wait on the database. A cancel drops the batch in flight.
    ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-ahead")
    try:
        pending = ahead.submit(ask, batches[0]) if batches else None
        for index, batch in enumerate(batches):
            if reporter.stop_requested():
                reporter.halted = True
                break
            requests, answers = pending.result()
            pending = ahead.submit(ask, batches[index + 1]) if index + 1 < len(batches) else None
            outcomes = outcomes_build(requests, answers, principles)
            batch_error = _count(counts, tokens, answers, outcomes)
            first_error = first_error or batch_error
            with transaction.atomic():  # the batch's calls, verdicts, votes and progress commit together
                JudgeCall.objects.bulk_create([_call_row(job, judge, r, a) for r, a in zip(requests, answers)])
                JudgeVerdict.objects.bulk_create([_verdict_row(job, judge, o) for o in outcomes])
                counts["votes"] += feedback.ai_votes_record(
                    judge=judge.ref, judge_template=judge.template, constitution=constitution,
                    verdicts=[feedback.AiVerdict(o.comparison_id, o.choice, rationale(o, judge.ref)) for o in outcomes if o.choice],
                )
                judged += len(batch)
                elapsed = clock.elapsed()
                reporter.progress(done=judged, total=len(items), tokens_per_s=tokens.total() / elapsed if elapsed else None,
                                  summary=_summary(judge, items, judged, counts, tokens, first_error))
            if counts["calls"] and counts[FAILED] == counts["calls"]:
                raise JudgingFailed(f"every call failed ({counts['calls']} of {counts['calls']}): {first_error}")
    finally:
        ahead.shutdown(wait=True, cancel_futures=True)
        backend.close()
    elapsed = clock.elapsed()
    return {**_summary(judge, items, judged, counts, tokens, first_error), "seconds": round(elapsed, 3),
            "comparisons_per_s": round(judged / elapsed, 3) if elapsed else None}


def _count(counts: Counter, tokens: Counter, answers: Sequence[JudgeAnswer], outcomes: Sequence[Outcome]) -> str:
    """Add a batch's calls and verdicts to the counts; returns its first failure's reason ("" if none)."""
    first_error = ""
    for answer in answers:
        counts["calls"] += 1
        counts[answer.status] += 1
        tokens["prompt_tokens"] += answer.prompt_tokens or 0
        tokens["completion_tokens"] += answer.completion_tokens or 0
        if answer.status == FAILED and not first_error:
            first_error = answer.error
    for outcome in outcomes:
        counts["inconsistent"] += outcome.inconsistent
        counts["ties"] += outcome.choice == "tie"
        counts["no_verdict"] += outcome.choice is None
    return first_error


def _summary(judge, items, judged, counts, tokens, first_error) -> dict:
    summary = {"judge": judge.ref, "comparisons": len(items), "judged": judged,
               **{key: counts[key] for key in ("calls", OK, UNPARSED, FAILED, "inconsistent", "ties", "no_verdict", "votes")},
               **{key: tokens[key] for key in ("prompt_tokens", "completion_tokens")}}
    if first_error:
        summary["first_error"] = first_error
    return summary


def _call_row(job, judge: Judge, request: JudgeRequest, answer: JudgeAnswer) -> JudgeCall:
    ok = answer.status == OK
    return JudgeCall(
        job=job, judge=judge, comparison_id=request.comparison_id, order=request.order, principle_index=request.principle_index,
        status=answer.status, label=answer.label if ok else "", choice=label_to_choice(answer.label, request.order) if ok else "",
        raw_output=answer.raw[:20_000], error=answer.error[:2000], prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens, seconds=answer.seconds,
    )


def _verdict_row(job, judge: Judge, outcome: Outcome) -> JudgeVerdict:
    return JudgeVerdict(
        job=job, judge=judge, comparison_id=outcome.comparison_id, choice=outcome.choice or "", choice_ab=outcome.ab or "",
        choice_ba=outcome.ba or "", inconsistent=outcome.inconsistent, principles=outcome.principles,
    )
