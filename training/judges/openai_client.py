"""A small client for OpenAI-compatible chat endpoints (vLLM, TGI, llama.cpp servers, hosted APIs), on httpx.

No Django and no torch here. ``ChatClient.complete_many`` sends one request per conversation,
at most ``max_concurrency`` at a time (a thread pool over one pooled ``httpx.Client``), each with
``timeout_s`` and up to ``max_retries`` retries with exponential backoff (and the server's
``Retry-After``, capped) on 429, 5xx, timeouts and connection errors. Any other status (401,
400, 404) fails at once. A call never raises: it returns a ``ChatResult`` whose ``error`` says
in one line why it failed.

The API key is held in memory only: it is sent in the ``Authorization`` header and removed from
every text this module returns (errors, raw bodies), in case a server echoes it back.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

RAW_LIMIT = 4000  # characters of a response body kept with a call
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class EndpointSettings:
    """Where and how to call. ``base_url`` ends before ``/chat/completions`` (e.g.
    ``http://127.0.0.1:8000/v1``); seconds for ``timeout_s``, ``backoff_s`` (first retry's wait,
    doubled each retry) and ``backoff_max_s``; ``max_tokens`` caps the answer's length."""

    base_url: str
    model: str
    timeout_s: float = 30.0
    max_retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    max_concurrency: int = 8
    max_tokens: int = 16
    temperature: float = 0.0

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class ChatResult:
    """One call's outcome. ``text`` is the answer (None when the call failed, then ``error`` says
    why); ``prompt_tokens``/``completion_tokens`` from the response's ``usage`` (None if absent);
    ``seconds`` of wall time including retries; ``attempts`` made; ``raw`` the last response body
    (at most ``RAW_LIMIT`` characters, key removed)."""

    text: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = 0.0
    attempts: int = 1
    error: str = ""
    raw: str = ""


class _Retry(Exception):
    def __init__(self, reason: str, raw: str = "", retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.raw, self.retry_after = reason, raw, retry_after


class ChatClient:
    """Calls one endpoint; reuse it for a whole job (it pools connections). ``close()`` when done.

    Args:
        settings: the endpoint (see ``EndpointSettings``).
        api_key: the key, read from the environment by the caller; "" or None sends none.
        sleep: waits between retries (tests pass a recorder).
        transport: an httpx transport (tests).
    """

    def __init__(self, settings: EndpointSettings, api_key: str | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self._key = api_key or ""
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        limits = httpx.Limits(max_connections=settings.max_concurrency, max_keepalive_connections=settings.max_concurrency)
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(settings.timeout_s), limits=limits, transport=transport)
        self._pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="judge-call")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()

    def __enter__(self) -> "ChatClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        return text.replace(self._key, "***") if self._key else text

    def complete_many(self, conversations: Sequence[list[dict[str, str]]]) -> list[ChatResult]:
        """``complete`` for each conversation, ``max_concurrency`` at a time; results in input order."""
        return list(self._pool.map(self.complete, conversations))

    def complete(self, messages: list[dict[str, str]]) -> ChatResult:
        """One chat completion with retries. Never raises; see ``ChatResult``."""
        started = time.perf_counter()
        body = {"model": self.settings.model, "messages": messages, "max_tokens": self.settings.max_tokens,
                "temperature": self.settings.temperature}
        attempts, last = 0, ""
        for attempt in range(self.settings.max_retries + 1):
            attempts = attempt + 1
            try:
                return self._once(body, started, attempts)
            except _Retry as retry:
                last = retry.reason
                if attempt == self.settings.max_retries:
                    return ChatResult(None, seconds=time.perf_counter() - started, attempts=attempts, raw=retry.raw,
                                      error=self.redact(f"{retry.reason} (gave up after {attempts} attempts)"))
                self._sleep(self._delay(attempt, retry.retry_after))
            except _Fail as fail:
                return ChatResult(None, seconds=time.perf_counter() - started, attempts=attempts, raw=fail.raw,
                                  error=self.redact(fail.reason))
        return ChatResult(None, seconds=time.perf_counter() - started, attempts=attempts, error=self.redact(last))  # pragma: no cover

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.settings.backoff_max_s, self.settings.backoff_s * 2 ** attempt) * (0.5 + random.random() / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.settings.backoff_max_s))
        return delay

    def _once(self, body: dict, started: float, attempts: int) -> ChatResult:
        url = self.settings.url
        try:
            response = self._http.post(url, json=body)
        except httpx.TimeoutException:
            raise _Retry(f"no answer from {url} within {self.settings.timeout_s:g} s") from None
        except httpx.TransportError as error:
            raise _Retry(f"cannot reach {url}: {type(error).__name__}") from None
        raw = self.redact(response.text[:RAW_LIMIT])
        if response.status_code in RETRY_STATUSES:
            raise _Retry(f"HTTP {response.status_code} from {url}", raw, _retry_after(response))
        if response.status_code != 200:
            reason = {401: "unauthorized: check the key", 403: "forbidden", 404: "not found: check the base URL and model"}
            words = reason.get(response.status_code, raw[:200].strip() or response.reason_phrase)
            raise _Fail(f"HTTP {response.status_code} from {url}: {words}", raw)
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not text")
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise _Fail(f"malformed answer from {url}: {type(error).__name__}", raw) from None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return ChatResult(
            self.redact(text), _int_or_none(usage.get("prompt_tokens")), _int_or_none(usage.get("completion_tokens")),
            time.perf_counter() - started, attempts, "", raw,
        )


class _Fail(Exception):
    def __init__(self, reason: str, raw: str = ""):
        super().__init__(reason)
        self.reason, self.raw = reason, raw


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

