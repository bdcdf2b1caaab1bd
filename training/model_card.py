"""Model cards (issue 18): every checkpoint a training run registers gets a ``README.md`` in its
folder, in the Hugging Face model card format (YAML metadata, then Markdown sections): base
model and licence, data sources and their data-use policies, vote and annotator counts (counts
only: no annotator is named), the run's settings, evaluation results, known limitations, and the
run's justification. Data facts come through ``feedback.interface`` (the snapshot's record)."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from django.conf import settings

from feedback import interface as feedback

from .models import Checkpoint, Job

logger = logging.getLogger(__name__)
CARD_FILE = "README.md"
TRAINERS = {"reward": "RewardTrainer", "dpo": "DPOTrainer", "rl": "RLOOTrainer / GRPOTrainer", "sft": "SFTTrainer"}


def _root(checkpoint: Checkpoint) -> Checkpoint:
    node = checkpoint
    while node.parent is not None:
        node = node.parent
    return node


def _yaml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def _metrics(checkpoint: Checkpoint, job: Job) -> dict[str, Any]:
    metrics = dict((checkpoint.metadata or {}).get("metrics") or {})
    for key, value in (job.summary or {}).items():
        if key.startswith("eval_") and isinstance(value, (int, float)):
            metrics.setdefault(key, value)
    return {key: value for key, value in sorted(metrics.items()) if value is not None}


def _data_section(snapshot) -> list[str]:
    if snapshot is None:
        return ["No dataset snapshot is recorded for this run."]
    unit = "demonstration rows" if snapshot.kind == "sft" else "preference pairs"
    lines = [
        f"Dataset snapshot {snapshot.id} ({snapshot.kind}): {snapshot.train_rows} train and {snapshot.eval_rows} eval "
        f"{unit}, from {snapshot.vote_count} votes by {snapshot.annotator_count} annotators (counted, not named); "
        f"content sha256 `{snapshot.content_hash}`.",
        "",
        "| Data | Allowed uses | Basis | Review | Retention (days) | Rows |",
        "|---|---|---|---|---|---|",
    ]
    for group in snapshot.policy_summary.get("groups", []):
        rows = ", ".join(f"{count} {use}" for use, count in sorted(group.get("rows", {}).items()))  # jsonb reorders keys
        lines.append(
            f"| {group['label']} | {', '.join(group.get('allowed_uses') or []) or 'none'} | {group.get('basis') or '—'} "
            f"| {group.get('review') or 'no policy'} | {group.get('retention_days') or '—'} | {rows} |"
        )
    return lines


def _limitations(snapshot, metrics: dict[str, Any]) -> list[str]:
    items = ["Trained on the preferences of a small group of annotators; it reflects their judgement and the prompts they saw.",
             "Evaluated only on the held-out split named above; no safety, bias or robustness evaluation is recorded here."]
    if snapshot is not None:
        items += list(snapshot.quality_notes)
        if snapshot.policy_override:
            refused = "; ".join(snapshot.policy_summary.get("refused", []))
            items.append(f"Built against its data-use policies ({refused}), overridden by an admin: \"{snapshot.policy_override}\"")
        if not snapshot.eval_rows:
            items.append("The snapshot has no eval rows: nothing was held out.")
    if not metrics:
        items.append("No evaluation results were recorded.")
    return [f"- {item}" for item in items]


def model_card_text(checkpoint: Checkpoint) -> str:
    """The card of a checkpoint registered by a training run (``checkpoint.run``), as Markdown
    with YAML metadata (``license``, ``base_model``, ``library_name``, ``tags``, ``datasets``)."""
    job = checkpoint.run
    root = _root(checkpoint)
    snapshot = None
    if job is not None and job.snapshot_id:
        try:
            snapshot = feedback.snapshot_get(snapshot_id=job.snapshot_id)
        except LookupError:
            snapshot = None
    licence = (root.metadata or {}).get("license") or "other"
    base = root.hub_id or root.name
    kind = job.kind if job else "import"
    metrics = _metrics(checkpoint, job) if job else {}
    config = json.dumps(job.config if job else {}, indent=2, sort_keys=True, default=str)
    lines = [
        "---",
        f"license: {_yaml_string(licence)}",
        f"base_model: {_yaml_string(base)}",
        "library_name: transformers",
        f"tags: [arbiter, trl, {kind}]",
        f"datasets: [{_yaml_string(f'arbiter-snapshot-{snapshot.id}')}]" if snapshot else "datasets: []",
        "---",
        "",
        f"# {checkpoint.name}",
        "",
        f"A {checkpoint.get_kind_display()} checkpoint trained by Arbiter with TRL's {TRAINERS.get(kind, kind)} "
        f"from `{checkpoint.parent.name if checkpoint.parent else base}`{' (LoRA adapter)' if checkpoint.is_adapter else ''}.",
        "",
        "## Base model and licence",
        "",
        f"- Base model: `{base}` (licence: {licence}); parent checkpoint: `{checkpoint.parent.name if checkpoint.parent else '—'}`.",
        "",
        "## Why this model was trained",
        "",
        (job.justification if job and job.justification else "No justification was given when the run was launched."),
        "",
        "## Training data",
        "",
        *_data_section(snapshot),
        "",
        "## Training settings",
        "",
        f"Run {job.pk if job else '—'} ({kind}).",
        "",
        "```json",
        config,
        "```",
        "",
        "## Evaluation results",
        "",
        *([f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}" for key, value in metrics.items()]
          or ["None recorded."]),
        "",
        "## Known limitations",
        "",
        *_limitations(snapshot, metrics),
        "",
    ]
    return "\n".join(lines)


def model_card_write(checkpoint: Checkpoint) -> Path | None:
    """Write ``README.md`` into a run's checkpoint folder (not for hub checkpoints or imports).
    Returns its path, or None when there is no folder or run. A card that cannot be written is
    logged, not raised: the checkpoint stays registered."""
    if not checkpoint.weights_dir or checkpoint.run_id is None:
        return None
    path = Path(settings.ARBITER_DATA_DIR) / checkpoint.weights_dir / CARD_FILE
    try:
        path.write_text(model_card_text(checkpoint), encoding="utf-8")
    except OSError:
        logger.exception("could not write the model card of checkpoint %s", checkpoint.pk)
        return None
    return path
