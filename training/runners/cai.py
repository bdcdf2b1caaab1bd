"""The Constitutional AI critique-revise runner (supervised stage; Bai et al. 2022, section 3.1).

For each stored response of ``CaiConfig.source_model``: draw a principle of the constitution, ask
the reviser for a critique of the response by that principle, then for a revision; both in one
batched ``generate`` call per batch of responses (``generation.sample_batch``). Each batch's
revisions (completions, revision-over-original comparisons with their AI votes, demonstrations)
and the job's progress commit together through ``feedback.interface.revisions_record``, so a
killed job keeps whole batches and ``progress_done`` says how far it got.
"""
from __future__ import annotations

from django.db import transaction

from feedback import interface as feedback
from training.constitutional.config import CaiConfig
from training.constitutional.prompts import principle_draw, template_load
from training.models import Checkpoint

from .generation import sample_batch
from .loading import checkpoint_policy_load
from .progress import Reporter, Stopwatch

REVISION_SEED_OFFSET = 1_000_003  # the revision call of batch i samples with seed + i + this


def run_cai(job, reporter: Reporter) -> dict:
    """Run a critique-revise job (see ``CaiConfig``); returns the job summary.

    Summary keys: ``responses`` (done), ``revisions``, ``pairs``, ``demonstrations``,
    ``skipped_empty``, ``skipped_unchanged`` (revision the same text as the original up to
    whitespace), ``truncated`` (revisions that hit ``max_new_tokens``), ``critiques_truncated``,
    ``principles`` (how often each was drawn), ``new_tokens``, ``seconds``, ``tokens_per_s``.
    """
    config = CaiConfig.from_dict(job.config)
    template = template_load(config.template)
    responses = feedback.responses_to_revise(
        model_name=config.source_model, constitution=config.constitution, reviser=config.reviser,
        split=config.split or None, limit=config.limit,
    )
    policy = checkpoint_policy_load(Checkpoint.objects.select_related("parent").get(name=config.reviser))
    sampling = {"max_new_tokens": config.max_new_tokens, "temperature": config.temperature, "top_p": config.top_p}
    clock, summary, done, new_tokens = Stopwatch(), feedback.RevisionSummary(), 0, 0
    cuts = {"truncated": 0, "critiques_truncated": 0}
    drawn: dict[str, int] = {}
    reporter.progress(done=0, total=len(responses))
    for batch_index, start in enumerate(range(0, len(responses), config.batch_size)):
        if reporter.stop_requested():
            reporter.halted = True
            break
        batch = responses[start:start + config.batch_size]
        seed = config.seed + batch_index
        principles = [principle_draw(config.principles, seed=config.seed, completion_id=r.completion_id) for r in batch]
        critiques = sample_batch(
            policy, [template.critique_turns(r.messages, r.text, p) for r, p in zip(batch, principles)],
            seed=seed, **sampling,
        )
        revisions = sample_batch(
            policy,
            [template.revision_turns(r.messages, r.text, p, c[0].text) for r, p, c in zip(batch, principles, critiques)],
            seed=seed + REVISION_SEED_OFFSET, **sampling,
        )
        records = []
        for response, principle, (critique,), (revision,) in zip(batch, principles, critiques, revisions):
            new_tokens += critique.new_tokens + revision.new_tokens
            cuts["truncated"] += revision.is_truncated
            cuts["critiques_truncated"] += critique.is_truncated
            drawn[principle] = drawn.get(principle, 0) + 1
            records.append(feedback.Revision(
                completion_id=response.completion_id, principle=principle, critique=critique.text,
                revision=revision.text, reviser=config.reviser, is_truncated=revision.is_truncated,
                params={**sampling, "seed": seed, "revision_seed": seed + REVISION_SEED_OFFSET,
                        "stop_strings": list(policy.stop_strings)},
            ))
        elapsed = clock.elapsed()
        with transaction.atomic():  # the batch's rows and the progress that counts them commit together
            summary.add(feedback.revisions_record(
                revisions=records, constitution=config.constitution, template=template.ref, job_id=job.pk,
                campaign_id=config.campaign_id, votes_required=config.votes_required, priority=config.priority,
                pairs=config.pairs, demonstrations=config.demonstrations,
            ))
            done += len(batch)
            reporter.progress(
                done=done, total=len(responses), tokens_per_s=new_tokens / elapsed if elapsed else None,
                summary={**summary.as_dict(), **cuts, "responses": done},
            )
    elapsed = clock.elapsed()
    return {
        **summary.as_dict(), **cuts, "responses": done, "principles": drawn, "new_tokens": new_tokens,
        "seconds": round(elapsed, 3), "tokens_per_s": round(new_tokens / elapsed, 2) if elapsed else None,
    }
