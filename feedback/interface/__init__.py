"""What the training app may read from and write to the feedback app. Nothing else crosses over.

Plain dataclasses in and out, so runner processes never handle feedback's model instances.

One module per concern (``pairs``: generation's prompts and rows; ``eval_sets``; ``scoring``;
``snapshot_refs``; ``leaderboard``; ``judges``; ``governance``); the package re-exports their
public names, so callers use ``feedback.interface`` alone.
"""
# What a judge reads and how its votes are written (issue 16), and the supervised stage of
# Constitutional AI (training.runners.cai): responses to revise and their revisions.
from ..ai_judging import AiVerdict, JudgingItem, ai_votes_record, comparisons_for_judging, judge_username  # noqa: F401
from ..constitutional import ResponseRef, Revision, RevisionSummary, responses_to_revise, revisions_record  # noqa: F401
from .pairs import (  # noqa: F401
    CandidatePair,
    GeneratedText,
    PairingSummary,
    PromptRef,
    completions_record,
    pairs_record,
    prompts_select,
)
from .eval_sets import (  # noqa: F401
    EvalCompletion,
    EvalSetRef,
    campaign_check,
    campaign_choices,
    campaign_name,
    campaign_votes,
    completion_count,
    eval_set_choices,
    eval_set_completions,
    eval_set_get,
    eval_set_prompts,
    evaluation_completions,
    human_campaign_create,
    prompt_count,
)
from .scoring import (  # noqa: F401
    MAX_PRIORITY,
    SCORING_SCOPES,
    ScoringItem,
    UNCERTAIN_PRIORITY_RANGE,
    comparisons_prioritize_uncertain,
    completions_to_score,
    scores_record,
    uncertainty_priority,
)
from .snapshot_refs import (  # noqa: F401
    EVAL_FILE_MISSING,
    SnapshotRef,
    agreement_ceiling,
    annotator_choices,
    demonstration_count,
    preference_rules_check,
    sft_snapshot_create,
    snapshot_create,
    snapshot_files_discard,
    snapshot_get,
    snapshot_verify,
    snapshot_votes_summary,
    snapshots_recent,
    snapshots_with_deleted_data,
)
from .leaderboard import (  # noqa: F401
    HeadToHead,
    head_to_head_votes,
    vote_count_after,
    vote_last_id,
)
from .judges import (  # noqa: F401
    comparisons_complete_counted,
    comparisons_of_job,
    judge_agreement,
    judge_agreement_of,
)
from .governance import (  # noqa: F401
    audit_record,
    snapshot_policy_recheck,
)
