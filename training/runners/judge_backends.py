"""What a judging job asks a judge (``JudgeRequest``), what comes back (``JudgeAnswer``), and the
endpoint backend (no torch here; the local-model backends are in ``judge_local``).

A backend answers a batch of requests in one go (a thread pool of HTTP calls, or batched forward
passes) and never raises for one bad call: the answer says ``failed`` (with the reason) or
``unparsed`` (the raw text had no verdict). It raises only when it cannot start at all.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from training.backends.openai_client import ChatClient, EndpointSettings
from training.backends.openai_client import api_key_read as _api_key_read
from training.judges.config import JudgeOptions
from training.judges.prompt_templates import PromptTemplate
from training.judges.verdicts import verdict_parse

OK, UNPARSED, FAILED = "ok", "unparsed", "failed"


@dataclass(frozen=True)
class JudgeRequest:
    """One question: comparison ``comparison_id`` shown in ``order`` (``"ab"``: a as Response A),
    on constitution principle ``principle_index`` (None: the overall question). ``messages`` is
    the chat sent to a generative judge (the rendered template as one user turn); a reward model
    reads ``prompt_messages`` with ``first`` and ``second`` instead."""

    comparison_id: int
    order: str
    principle_index: int | None
    messages: list[dict[str, str]]
    prompt_messages: list[dict[str, str]]
    first: str
    second: str


@dataclass(frozen=True)
class JudgeAnswer:
    """``status`` ok/unparsed/failed; ``label`` A/B/tie about the pair as shown (None unless ok);
    ``raw`` the judge's output (text, or label probabilities / scores as JSON); ``error`` why a
    call failed; tokens of the prompt and the answer; ``seconds`` of wall time."""

    status: str
    label: str | None = None
    raw: str = ""
    error: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = 0.0


class Backend(Protocol):
    def answer(self, requests: Sequence[JudgeRequest]) -> list[JudgeAnswer]: ...

    def close(self) -> None: ...


def text_answer(text: str, labels: Sequence[str], **fields) -> JudgeAnswer:
    """An answer from a judge's text: ok with the parsed label, or unparsed."""
    label = verdict_parse(text, labels)
    return JudgeAnswer(OK if label else UNPARSED, label, text, **fields)


def api_key_read(env_name: str) -> str:
    """The key from the environment variable ``env_name`` ("" when no variable is named).

    Raises:
        LookupError: the variable is named but not set in this (the worker's) environment.
    """
    return _api_key_read(env_name, owner="the judge")


class EndpointBackend:
    """An OpenAI-compatible chat endpoint (``ChatClient``), ``options.max_concurrency`` calls at a time."""

    def __init__(self, *, base_url: str, model: str, api_key_env: str, options: JudgeOptions, template: PromptTemplate,
                 client: ChatClient | None = None):
        self.labels = template.labels
        settings = EndpointSettings(
            base_url=base_url, model=model, timeout_s=options.timeout_s, max_retries=options.max_retries,
            backoff_s=options.backoff_s, backoff_max_s=options.backoff_max_s, max_concurrency=options.max_concurrency,
            max_tokens=options.max_tokens,
        )
        self.client = client or ChatClient(settings, api_key_read(api_key_env))

    def answer(self, requests: Sequence[JudgeRequest]) -> list[JudgeAnswer]:
        answers = []
        for result in self.client.complete_many([r.messages for r in requests]):
            fields = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                      "seconds": result.seconds}
            if result.text is None:
                answers.append(JudgeAnswer(FAILED, None, result.raw, result.error, **fields))
            else:
                answers.append(text_answer(result.text, self.labels, **fields))
        return answers

    def close(self) -> None:
        self.client.close()
