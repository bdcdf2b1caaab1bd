"""``CaiConfig``: the settings of a Constitutional AI critique-revise job. Pure code (no Django)."""
from __future__ import annotations

from dataclasses import dataclass, field

from training.config import ConfigError, _FromDict, _is_int, placement_fields_check, sampling_fields_check

from .prompts import DEFAULT_TEMPLATE

MAX_PRINCIPLES = 100
MAX_PRINCIPLE_CHARS = 1000


@dataclass
class CaiConfig(_FromDict):
    """Critique and revise responses against a constitution (Bai et al. 2022, section 3.1).

    ``reviser``: the policy checkpoint that writes critiques and revisions. ``responses_of``: the
    model whose stored responses are revised (default: the reviser, i.e. the policy revises its
    own answers). ``constitution``: "name@version"; ``principles``: its questions, copied onto the
    job when it is queued (one is drawn per response, fixed by ``seed``). ``template``: the
    critique-revise template ("name@version", ``training/constitutional/templates``).
    Selection: ``split`` (train/eval), ``limit``; responses already revised by this reviser under
    this constitution are skipped. Sampling as ``GenerationConfig``. Output: ``pairs`` (revision
    over original as a comparison with an AI vote) and ``demonstrations`` (the revision, for SFT),
    placed in ``campaign_id`` (None: Default) with ``votes_required`` and ``priority``.
    """

    reviser: str
    constitution: str
    principles: list[str] = field(default_factory=list)
    responses_of: str = ""
    template: str = DEFAULT_TEMPLATE
    split: str | None = None
    limit: int | None = None
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    batch_size: int = 8
    seed: int = 0
    pairs: bool = True
    demonstrations: bool = True
    votes_required: int = 1
    priority: int = 0
    campaign_id: int | None = None

    REQUIRED = {"reviser": "required: the policy checkpoint that critiques and revises",
                "constitution": 'required: the constitution, "name@version" or a name (its latest version)'}

    def validate(self) -> None:
        """Check every field; raise ConfigError with all problems at once."""
        errors: dict[str, str] = {}
        for name in ("reviser", "constitution", "template"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                errors[name] = "must be a non-empty string"
        if not isinstance(self.responses_of, str):
            errors["responses_of"] = "must be a model name (empty: the reviser)"
        p = self.principles
        if not isinstance(p, list) or len(p) > MAX_PRINCIPLES or not all(
            isinstance(x, str) and x.strip() and len(x) <= MAX_PRINCIPLE_CHARS for x in p
        ):
            errors["principles"] = f"must be a list of at most {MAX_PRINCIPLES} non-empty questions of at most {MAX_PRINCIPLE_CHARS} characters"
        if self.split not in (None, "", "train", "eval"):
            errors["split"] = "must be train or eval"
        if self.limit is not None and (not _is_int(self.limit) or self.limit < 1):
            errors["limit"] = "must be a positive integer"
        errors.update(sampling_fields_check(self))
        for name in ("pairs", "demonstrations"):
            if not isinstance(getattr(self, name), bool):
                errors[name] = "must be true or false"
        if self.pairs is False and self.demonstrations is False:
            errors["pairs"] = "pairs and demonstrations are both off: the job would store nothing"
        errors.update(placement_fields_check(self))
        if errors:
            raise ConfigError(errors)

    @property
    def source_model(self) -> str:
        """The model whose responses are revised."""
        return self.responses_of or self.reviser
