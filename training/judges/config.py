"""A judge's numbers (``JudgeOptions``, stored on ``Judge.options``) and a judging job's settings
(``JudgingConfig``, stored on ``Job.config``). Pure code: ``from_dict`` raises ``ConfigError``
naming each bad field, as the other job configs do."""
from __future__ import annotations

from dataclasses import dataclass

from training.backends.config import (  # noqa: F401 - shared with model servers
    ENV_FORBIDDEN, ENV_FORBIDDEN_PREFIXES, ENV_NAME, api_key_env_problem,
)
from training.config import MAX_BATCH_SIZE, ConfigError, _FromDict, _is_int, _is_number


@dataclass
class JudgeOptions(_FromDict):
    """A judge's numbers.

    Endpoints (openai): ``timeout_s`` per request (0.01-600 s), ``max_retries`` (0-10) with
    backoff from ``backoff_s`` doubling up to ``backoff_max_s``, ``max_concurrency`` requests at
    once (1-256), ``max_tokens`` of the answer (1-4096).
    Local LMs: ``label_mass_min``: when the next-token probability of all the labels together is
    below it, the model writes an answer (up to ``max_tokens``) that is parsed instead;
    ``batch_size`` prompts per forward pass; ``max_length`` tokens per prompt (longer ones lose
    their start). Reward models: ``tie_band``: a score difference at most this is a tie.
    """

    timeout_s: float = 30.0
    max_retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    max_concurrency: int = 8
    max_tokens: int = 16
    label_mass_min: float = 0.05
    batch_size: int = 8
    max_length: int = 2048
    tie_band: float = 0.1

    def validate(self) -> None:
        errors: dict[str, str] = {}
        ranges = {
            "timeout_s": (0.01, 600.0), "backoff_s": (0.0, 60.0), "backoff_max_s": (0.0, 600.0),
            "label_mass_min": (0.0, 1.0), "tie_band": (0.0, 1e6),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not _is_number(value) or not low <= value <= high:
                errors[name] = f"must be a number from {low:g} to {high:g}"
        ints = {"max_retries": (0, 10), "max_concurrency": (1, 256), "max_tokens": (1, 4096),
                "batch_size": (1, MAX_BATCH_SIZE), "max_length": (64, 32768)}
        for name, (low, high) in ints.items():
            value = getattr(self, name)
            if not _is_int(value) or not low <= value <= high:
                errors[name] = f"must be an integer from {low} to {high}"
        if errors:
            raise ConfigError(errors)


@dataclass
class JudgingConfig(_FromDict):
    """A judging job: ``judge`` (``"name@version"``, fixed when the job is queued) judges the open
    comparisons of ``campaign_id``, or the comparisons ``comparison_ids`` (any status; with a
    campaign too, those of it), at most ``limit``, ``batch_size`` comparisons per committed batch.
    ``only_unjudged`` skips comparisons this judge version already voted on (a rerun after a
    cancel picks up where the last one stopped)."""

    judge: str
    campaign_id: int | None = None
    comparison_ids: list[int] | None = None
    limit: int | None = None
    batch_size: int = 8
    only_unjudged: bool = True

    REQUIRED = {"judge": "required: the judge (name or name@version)"}

    def validate(self) -> None:
        errors: dict[str, str] = {}
        if not isinstance(self.judge, str) or not self.judge.strip():
            errors["judge"] = "must be a judge name or name@version"
        if self.campaign_id is not None and (not _is_int(self.campaign_id) or self.campaign_id < 1):
            errors["campaign_id"] = "must be a campaign id"
        if self.comparison_ids is not None and (
            not isinstance(self.comparison_ids, list) or not self.comparison_ids
            or not all(_is_int(i) and i > 0 for i in self.comparison_ids) or len(self.comparison_ids) > 100_000
        ):
            errors["comparison_ids"] = "must be a non-empty list of comparison ids (at most 100,000)"
        if self.campaign_id is None and self.comparison_ids is None and "campaign_id" not in errors:
            errors["campaign_id"] = "give a campaign (its open comparisons) or comparison ids"
        if self.limit is not None and (not _is_int(self.limit) or self.limit < 1):
            errors["limit"] = "must be a positive integer"
        if not _is_int(self.batch_size) or not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            errors["batch_size"] = f"must be an integer from 1 to {MAX_BATCH_SIZE}"
        if not isinstance(self.only_unjudged, bool):
            errors["only_unjudged"] = "must be true or false"
        if errors:
            raise ConfigError(errors)
