"""A small client for OpenAI-compatible chat endpoints (vLLM, TGI, llama.cpp, SGLang, hosted APIs), on httpx.

No Django and no torch here. ``ChatClient.complete`` sends one chat completion (per-call sampling
settings: ``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``stop``) with ``timeout_s`` and up to
``max_retries`` retries with exponential backoff (and the server's ``Retry-After``, capped) on
429, 5xx, timeouts, connection errors and streams cut before ``[DONE]``. Any other status (401,
400, 404), a body that is not the expected JSON, or an empty ``choices`` list fails at once.
``submit``/``complete_many`` run calls on a pool of ``max_concurrency`` threads over one pooled
``httpx.Client``. A call never raises: it returns a ``ChatResult`` whose ``error`` says in one line
why it failed, and then ``text`` is None (a partial answer is never returned as text).

``EndpointSettings.stream`` asks for server-sent events (``stream: true``): ``data:`` lines up to
``data: [DONE]``, the answer being the concatenated ``choices[0].delta.content``.

The API key is held in memory only: it is sent in the ``Authorization`` header and removed from
every text this module returns (errors, raw bodies, answers), in case a server echoes it back.
"""
from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import httpx

RAW_LIMIT = 4000  # characters of a response body kept with a call
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
SAMPLING_KEYS = frozenset({"temperature", "top_p", "max_tokens", "seed", "stop"})


@dataclass(frozen=True)
class EndpointSettings:
    """Where and how to call. ``base_url`` ends before ``/chat/completions`` (e.g.
    ``http://127.0.0.1:8000/v1``); seconds for ``timeout_s`` (per request; per wait for the next
    chunk when streaming), ``backoff_s`` (first retry's wait, doubled each retry) and
    ``backoff_max_s``; ``max_tokens`` and ``temperature`` are defaults a call's sampling overrides;
    ``stream`` asks for server-sent events."""

    base_url: str
    model: str
    timeout_s: float = 30.0
    max_retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    max_concurrency: int = 8
    max_tokens: int = 16
    temperature: float = 0.0
    stream: bool = False

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class ChatResult:
    """One call's outcome. ``text`` is the answer (None when the call failed, then ``error`` says
    why); ``prompt_tokens``/``completion_tokens`` from the response's ``usage`` (None if absent);
    ``seconds`` of wall time including retries; ``attempts`` made; ``raw`` the last response body
    (at most ``RAW_LIMIT`` characters, key removed); ``finish_reason`` as the server gave it
    (``"stop"``, ``"length"``, ...; None if absent); ``model`` the model name the server reported;
    ``stop_reason`` the stop string that ended the answer where the server says so (vLLM), else None."""

    text: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = 0.0
    attempts: int = 1
    error: str = ""
    raw: str = ""
    finish_reason: str | None = None
    model: str = ""
    stop_reason: str | None = None


class _Retry(Exception):
    def __init__(self, reason: str, raw: str = "", retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.raw, self.retry_after = reason, raw, retry_after


class _Fail(Exception):
    def __init__(self, reason: str, raw: str = ""):
        super().__init__(reason)
        self.reason, self.raw = reason, raw


def api_key_read(env_name: str, *, owner: str) -> str:
    """The key from the environment variable ``env_name`` ("" when no variable is named).

    Raises:
        LookupError: the variable is named but not set in this (the worker's) environment;
            the message names ``owner`` (e.g. "the judge", "server 'vllm-1'") and the variable.
    """
    if not env_name:
        return ""
    value = os.environ.get(env_name, "")
    if not value:
        raise LookupError(f"{owner}'s key variable {env_name} is not set in the worker's environment")
    return value


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
        self._pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="chat-call")

    def close(self, *, cancel: bool = False) -> None:
        """Wait for the calls under way (``cancel``: drop those not started yet), then close the connections."""
        self._pool.shutdown(wait=True, cancel_futures=cancel)
        self._http.close()

    def __enter__(self) -> "ChatClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close(cancel=exc[0] is not None)

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        return text.replace(self._key, "***") if self._key else text

    def submit(self, messages: list[dict[str, str]], sampling: Mapping | None = None) -> "Future[ChatResult]":
        """``complete`` on the client's pool (at most ``max_concurrency`` at a time); a future of its result."""
        return self._pool.submit(self.complete, messages, sampling)

    def complete_many(self, conversations: Sequence[list[dict[str, str]]],
                      samplings: Sequence[Mapping | None] | None = None) -> list[ChatResult]:
        """``complete`` for each conversation (with ``samplings[i]``), ``max_concurrency`` at a time; results in input order."""
        samplings = samplings if samplings is not None else [None] * len(conversations)
        return list(self._pool.map(self.complete, conversations, samplings))

    def body(self, messages: list[dict[str, str]], sampling: Mapping | None = None) -> dict:
        """The request body: model, messages, the defaults' ``max_tokens``/``temperature``, then
        ``sampling`` (keys from ``SAMPLING_KEYS``; a None value is left out), and ``stream``.

        Raises:
            ValueError: a sampling key outside ``SAMPLING_KEYS``.
        """
        unknown = set(sampling or {}) - SAMPLING_KEYS
        if unknown:
            raise ValueError(f"unknown sampling settings: {', '.join(sorted(unknown))}")
        body = {"model": self.settings.model, "messages": messages, "max_tokens": self.settings.max_tokens,
                "temperature": self.settings.temperature}
        body.update({k: v for k, v in (sampling or {}).items() if v is not None})
        if self.settings.stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return body

    def complete(self, messages: list[dict[str, str]], sampling: Mapping | None = None) -> ChatResult:
        """One chat completion with retries. Never raises for the server's doings; see ``ChatResult``."""
        started = time.perf_counter()
        body = self.body(messages, sampling)
        attempts, last = 0, ""
        for attempt in range(self.settings.max_retries + 1):
            attempts = attempt + 1
            try:
                return self._once_streamed(body, started, attempts) if self.settings.stream else self._once(body, started, attempts)
            except _Retry as retry:
                last = retry.reason
                if attempt == self.settings.max_retries:
                    return ChatResult(None, seconds=time.perf_counter() - started, attempts=attempts, raw=self.redact(retry.raw),
                                      error=self.redact(f"{retry.reason} (gave up after {attempts} attempts)"))
                self._sleep(self._delay(attempt, retry.retry_after))
            except _Fail as fail:
                return ChatResult(None, seconds=time.perf_counter() - started, attempts=attempts, raw=self.redact(fail.raw),
                                  error=self.redact(fail.reason))
        return ChatResult(None, seconds=time.perf_counter() - started, attempts=attempts, error=self.redact(last))  # pragma: no cover

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.settings.backoff_max_s, self.settings.backoff_s * 2 ** attempt) * (0.5 + random.random() / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.settings.backoff_max_s))
        return delay

    def _status_check(self, response: httpx.Response, raw: str) -> None:
        """Raise ``_Retry`` for a retryable status, ``_Fail`` for any other non-200 one."""
        url = self.settings.url
        if response.status_code in RETRY_STATUSES:
            raise _Retry(f"HTTP {response.status_code} from {url}", raw, _retry_after(response))
        if response.status_code != 200:
            reason = {401: "unauthorized: check the key", 403: "forbidden",
                      404: f"not found: check the base URL and the model name ({self.settings.model!r})"}
            words = reason.get(response.status_code, raw[:200].strip() or response.reason_phrase)
            raise _Fail(f"HTTP {response.status_code} from {url}: {words}", raw)

    def _once(self, body: dict, started: float, attempts: int) -> ChatResult:
        url = self.settings.url
        try:
            response = self._http.post(url, json=body)
        except httpx.TimeoutException:
            raise _Retry(f"no answer from {url} within {self.settings.timeout_s:g} s") from None
        except httpx.TransportError as error:
            raise _Retry(f"cannot reach {url}: {type(error).__name__}") from None
        raw = self.redact(response.text[:RAW_LIMIT])
        self._status_check(response, raw)
        try:
            data = response.json()
            choices = data["choices"]
            if not isinstance(choices, list):
                raise TypeError("choices is not a list")
            if not choices:
                raise _Fail(f"no answer from {url}: the choices list is empty", raw)
            choice = choices[0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not text")
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise _Fail(f"malformed answer from {url}: {type(error).__name__}", raw) from None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return ChatResult(
            self.redact(text), _int_or_none(usage.get("prompt_tokens")), _int_or_none(usage.get("completion_tokens")),
            time.perf_counter() - started, attempts, "", raw, _str_or_none(choice.get("finish_reason")),
            _str_or_none(data.get("model")) or "", _str_or_none(choice.get("stop_reason")),
        )

    def _once_streamed(self, body: dict, started: float, attempts: int) -> ChatResult:
        url = self.settings.url
        parts: list[str] = []
        raw, done, saw_choice = "", False, False
        finish = model = stop_reason = None
        usage: dict = {}
        try:
            with self._http.stream("POST", url, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    self._status_check(response, self.redact(response.text[:RAW_LIMIT]))
                for line in response.iter_lines():
                    if len(raw) < RAW_LIMIT:
                        raw += line[:RAW_LIMIT - len(raw)] + "\n"
                    if not line.startswith("data:"):
                        continue  # blank separators, ": comments", "event:" lines
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                        break
                    chunk = _chunk_parse(payload, url, self.redact(raw))
                    model = _str_or_none(chunk.get("model")) or model
                    if isinstance(chunk.get("usage"), dict):
                        usage = chunk["usage"]
                    choices = chunk.get("choices")
                    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
                        continue  # e.g. the final usage chunk has no choices
                    saw_choice = True
                    delta = choices[0].get("delta") if isinstance(choices[0].get("delta"), dict) else {}
                    if isinstance(delta.get("content"), str):
                        parts.append(delta["content"])
                    finish = _str_or_none(choices[0].get("finish_reason")) or finish
                    stop_reason = _str_or_none(choices[0].get("stop_reason")) or stop_reason
        except httpx.TimeoutException:
            raise _Retry(f"no answer from {url} within {self.settings.timeout_s:g} s", self.redact(raw)) from None
        except httpx.TransportError as error:
            raise _Retry(f"cannot reach {url}: {type(error).__name__}", self.redact(raw)) from None
        raw = self.redact(raw)
        if not done:
            raise _Retry(f"the stream from {url} ended before [DONE]", raw)
        if not saw_choice:
            raise _Fail(f"no answer from {url}: the choices list is empty", raw)
        return ChatResult(
            self.redact("".join(parts)), _int_or_none(usage.get("prompt_tokens")), _int_or_none(usage.get("completion_tokens")),
            time.perf_counter() - started, attempts, "", raw, finish, model or "", stop_reason,
        )


def _chunk_parse(payload: str, url: str, raw: str) -> dict:
    """One ``data:`` line's JSON object. Raises ``_Fail`` when it is not one or carries an ``error``."""
    try:
        chunk = json.loads(payload)
    except ValueError:
        raise _Fail(f"malformed answer from {url}: a stream chunk is not JSON", raw) from None
    if not isinstance(chunk, dict):
        raise _Fail(f"malformed answer from {url}: a stream chunk is not an object", raw)
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise _Fail(f"error in the stream from {url}: {str(message)[:200]}", raw)
    return chunk


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value) -> str | None:
    return value if isinstance(value, str) and value else None
