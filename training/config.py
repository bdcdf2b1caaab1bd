"""Job configurations: one dataclass per job kind, validated before a job is queued, stored as JSON.

Pure code (no Django): ``GenerationConfig.from_dict`` raises ``ConfigError`` naming each bad field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

STRATEGIES = ("two_samples", "head_to_head")
MAX_NEW_TOKENS_LIMIT = 4096
MAX_BATCH_SIZE = 256


class ConfigError(ValueError):
    """Invalid configuration. ``errors`` maps each bad field to a readable message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass
class GenerationConfig:
    """Sample completions from one or two checkpoints and pair them into comparisons.

    Strategies:
        ``two_samples``: two samples of ``checkpoints[0]`` on each prompt (needs temperature > 0).
        ``head_to_head``: ``checkpoints[0]`` against ``checkpoints[1]`` on each prompt.
    Prompt selection (all given criteria apply): ``prompt_ids``, ``tag``, ``split``,
    ``max_open_comparisons`` (prompts with fewer open comparisons than this), ``limit``.
    Sampling: ``temperature`` 0 means greedy; ``top_p`` in (0, 1]; ``max_new_tokens`` in
    1..4096; ``seed`` makes runs repeatable (batch ``i`` uses ``seed + i``).
    """

    checkpoints: list[str]
    strategy: str = "two_samples"
    prompt_ids: list[int] | None = None
    tag: str | None = None
    split: str | None = None
    max_open_comparisons: int | None = None
    limit: int | None = None
    max_new_tokens: int = 128
    temperature: float = 0.8
    top_p: float = 0.95
    batch_size: int = 8
    seed: int = 0
    votes_required: int = 1
    priority: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GenerationConfig":
        """Build and validate a config from JSON-like data.

        Raises:
            ConfigError: every problem at once, by field: unknown settings, a missing
                ``checkpoints``, and each invalid value (see ``validate``).
        """
        if not isinstance(data, dict):
            raise ConfigError({"config": "must be an object"})
        known = {f.name for f in fields(cls)}
        errors = {str(name): "unknown setting" for name in sorted(set(data) - known, key=str)}
        if "checkpoints" not in data:
            errors["checkpoints"] = "required: one or two checkpoint names"
        config = cls(**{"checkpoints": [], **{k: v for k, v in data.items() if k in known}})
        try:
            config.validate()
        except ConfigError as error:
            for name, message in error.errors.items():
                errors.setdefault(name, message)
        if errors:
            raise ConfigError(errors)
        return config

    def validate(self) -> None:
        """Check every field; raise ConfigError with all problems at once."""
        errors: dict[str, str] = {}

        def is_int(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        names = self.checkpoints
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            errors["checkpoints"] = "must be a list of checkpoint names"
        elif self.strategy == "two_samples" and len(names) != 1:
            errors["checkpoints"] = "two_samples takes exactly one checkpoint"
        elif self.strategy == "head_to_head" and (len(names) != 2 or names[0] == names[1]):
            errors["checkpoints"] = "head_to_head takes two different checkpoints"
        if self.strategy not in STRATEGIES:
            errors["strategy"] = f"must be one of {', '.join(STRATEGIES)}"
        if self.prompt_ids is not None and (
            not isinstance(self.prompt_ids, list) or not self.prompt_ids or not all(is_int(i) and i > 0 for i in self.prompt_ids)
        ):
            errors["prompt_ids"] = "must be a non-empty list of prompt ids"
        if self.split not in (None, "", "train", "eval"):
            errors["split"] = "must be train or eval"
        if self.tag is not None and not isinstance(self.tag, str):
            errors["tag"] = "must be a string"
        if self.max_open_comparisons is not None and (not is_int(self.max_open_comparisons) or self.max_open_comparisons < 1):
            errors["max_open_comparisons"] = "must be a positive integer"
        if self.limit is not None and (not is_int(self.limit) or self.limit < 1):
            errors["limit"] = "must be a positive integer"
        if not is_int(self.max_new_tokens) or not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            errors["max_new_tokens"] = f"must be an integer from 1 to {MAX_NEW_TOKENS_LIMIT}"
        if not is_number(self.temperature) or not 0 <= self.temperature <= 2:
            errors["temperature"] = "must be a number from 0 (greedy) to 2"
        elif self.strategy == "two_samples" and self.temperature == 0:
            errors["temperature"] = "two_samples needs temperature > 0: greedy decoding gives two identical samples"
        if not is_number(self.top_p) or not 0 < self.top_p <= 1:
            errors["top_p"] = "must be a number in (0, 1]"
        if not is_int(self.batch_size) or not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            errors["batch_size"] = f"must be an integer from 1 to {MAX_BATCH_SIZE}"
        if not is_int(self.seed) or self.seed < 0:
            errors["seed"] = "must be a non-negative integer"
        if not is_int(self.votes_required) or not 1 <= self.votes_required <= 100:
            errors["votes_required"] = "must be an integer from 1 to 100"
        if not is_int(self.priority) or abs(self.priority) > 1_000_000:
            errors["priority"] = "must be an integer from -1000000 to 1000000"
        if not isinstance(self.extra, dict):
            errors["extra"] = "must be an object"
        if errors:
            raise ConfigError(errors)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
