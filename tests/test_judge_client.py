"""The OpenAI-compatible client against a fake server: success, malformed JSON, 429, 500, 401, slow
answers, timeouts, unreachable endpoints, a concurrency limit, and the key kept out of every text."""
import socket

import pytest

from tests.judge_server import FakeChatServer
from training.judges.openai_client import ChatClient, EndpointSettings

MESSAGES = [{"role": "user", "content": "Which is better?"}]


@pytest.fixture
def server():
    with FakeChatServer() as fake:
        yield fake


def _client(server_url: str, model: str, *, waits: list | None = None, key: str = "", **settings) -> ChatClient:
    defaults = {"timeout_s": 2.0, "max_retries": 2, "backoff_s": 0.001, "backoff_max_s": 0.01}
    recorder = waits.append if waits is not None else (lambda seconds: None)
    return ChatClient(EndpointSettings(base_url=server_url, model=model, **{**defaults, **settings}), key, sleep=recorder)


def test_an_answer_with_usage(server):
    with _client(server.base_url, "answer:B") as client:
        result = client.complete(MESSAGES)
    assert (result.text, result.error, result.attempts) == ("B", "", 1)
    assert result.prompt_tokens == 3 and result.completion_tokens == 1 and result.seconds > 0


def test_malformed_json_fails_without_retrying(server):
    with _client(server.base_url, "malformed") as client:
        result = client.complete(MESSAGES)
    assert result.text is None and result.error.startswith("malformed answer from") and server.requests == 1
    assert result.raw == "{not json"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_statuses_retry_with_growing_backoff_then_fail(server, status):
    waits = []
    with _client(server.base_url, f"status:{status}", waits=waits, max_retries=3) as client:
        result = client.complete(MESSAGES)
    assert result.text is None and server.requests == 4 and result.attempts == 4
    assert result.error == f"HTTP {status} from {server.base_url}/chat/completions (gave up after 4 attempts)"
    assert len(waits) == 3 and waits[0] <= 0.001 and waits[2] <= 0.004  # 0.001 * 2**i, halved by jitter at most


def test_a_429_that_clears_up_succeeds(server):
    with _client(server.base_url, "flaky:2") as client:
        result = client.complete(MESSAGES)
    assert (result.text, result.attempts, server.requests) == ("A", 3, 3)


def test_401_fails_at_once_with_a_readable_reason(server):
    with _client(server.base_url, "status:401") as client:
        result = client.complete(MESSAGES)
    assert result.error.endswith("HTTP 401 from " + server.base_url + "/chat/completions: unauthorized: check the key")
    assert server.requests == 1


def test_a_slow_answer_within_the_timeout_is_kept(server):
    with _client(server.base_url, "slow:0.05", timeout_s=2.0) as client:
        assert client.complete(MESSAGES).text == "A"


def test_a_timeout_retries_then_fails(server):
    with _client(server.base_url, "slow:5", timeout_s=0.05, max_retries=1) as client:
        result = client.complete(MESSAGES)
    assert result.text is None and result.error.startswith("no answer from") and "within 0.05 s" in result.error
    assert result.attempts == 2


def test_an_unreachable_endpoint_fails_readably():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _client(f"http://127.0.0.1:{port}/v1", "answer:A", max_retries=1) as client:
        result = client.complete(MESSAGES)
    assert result.text is None and result.error.startswith(f"cannot reach http://127.0.0.1:{port}/v1/chat/completions: ConnectError")


def test_many_calls_keep_order_and_the_key_is_sent_but_never_returned(server):
    key = "sk-test-unique-0123456789"
    with _client(server.base_url, "echo-auth", key=key, max_concurrency=4) as client:
        results = client.complete_many([MESSAGES] * 6)
    assert server.authorizations == [f"Bearer {key}"] * 6
    assert all(r.text == "Bearer ***" and key not in r.raw for r in results)
