"""What generation needs of the OpenAI-compatible client, against the fake server: per-call sampling
settings sent as given, finish_reason, the reported model and the matched stop string in the result,
streamed answers (server-sent events up to [DONE]), and readable failures: empty choices, a wrong
model name (404), malformed chunks, a stream cut before [DONE]."""
import pytest

from tests.judge_server import FakeChatServer
from training.backends.openai_client import ChatClient, EndpointSettings, api_key_read

MESSAGES = [{"role": "user", "content": "Name a colour."}]
FAST = {"timeout_s": 2.0, "max_retries": 1, "backoff_s": 0.001, "backoff_max_s": 0.002}


@pytest.fixture
def server():
    with FakeChatServer(reported_model="org/served-model") as fake:
        yield fake


def _client(url: str, model: str, *, stream: bool = False, key: str = "", **settings) -> ChatClient:
    return ChatClient(EndpointSettings(base_url=url, model=model, stream=stream, **{**FAST, **settings}), key,
                      sleep=lambda seconds: None)


@pytest.mark.parametrize("stream", [False, True])
def test_sampling_is_sent_per_call_and_the_result_says_how_the_answer_ended(server, stream):
    sampling = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 32, "seed": 11, "stop": ["\n\nHuman:"]}
    with _client(server.base_url, "gen", stream=stream) as client:
        result = client.complete(MESSAGES, sampling)
    sent = server.bodies[0]
    assert {k: sent[k] for k in sampling} == sampling and sent["model"] == "gen"
    assert sent.get("stream", False) is stream
    assert result.text == "Reply to Name a colour. (seed 11, temperature 0.7)"
    assert (result.finish_reason, result.model, result.stop_reason, result.error) == ("stop", "org/served-model", None, "")
    assert result.completion_tokens == 9  # words, as the fake counts tokens


@pytest.mark.parametrize("stream", [False, True])
def test_a_stop_string_the_server_matched_is_reported(server, stream):
    with _client(server.base_url, "marker", stream=stream) as client:
        result = client.complete(MESSAGES, {"stop": ["\n\nHuman:"]})
    assert (result.text, result.finish_reason, result.stop_reason) == ("Sure thing.", "stop", "\n\nHuman:")


@pytest.mark.parametrize("stream", [False, True])
def test_length_is_reported(server, stream):
    with _client(server.base_url, "length", stream=stream) as client:
        result = client.complete(MESSAGES)
    assert (result.text, result.finish_reason) == ("A reply that was cut", "length")


@pytest.mark.parametrize("stream", [False, True])
def test_an_empty_choices_list_is_a_readable_failure(server, stream):
    with _client(server.base_url, "empty", stream=stream) as client:
        result = client.complete(MESSAGES)
    assert result.text is None and result.attempts == 1
    assert result.error == f"no answer from {server.base_url}/chat/completions: the choices list is empty"


@pytest.mark.parametrize("stream", [False, True])
def test_a_wrong_model_name_is_a_404_naming_it(stream):
    with FakeChatServer(served_models={"real-model"}) as fake, _client(fake.base_url, "wrong-model", stream=stream) as client:
        result = client.complete(MESSAGES)
    assert result.text is None and fake.requests == 1
    assert result.error == (f"HTTP 404 from {fake.base_url}/chat/completions: not found: check the base URL and the "
                            "model name ('wrong-model')")


def test_a_malformed_stream_chunk_fails_without_a_partial_answer(server):
    with _client(server.base_url, "malformed", stream=True) as client:
        result = client.complete(MESSAGES)
    assert result.text is None and result.error.endswith("a stream chunk is not JSON") and server.requests == 1


def test_a_stream_cut_before_done_is_retried_then_fails(server):
    with _client(server.base_url, "cut", stream=True, max_retries=2) as client:
        result = client.complete(MESSAGES)
    assert result.text is None and server.requests == 3
    assert result.error == f"the stream from {server.base_url}/chat/completions ended before [DONE] (gave up after 3 attempts)"


@pytest.mark.parametrize("stream", [False, True])
def test_retryable_statuses_and_timeouts_when_streaming(server, stream):
    with _client(server.base_url, "status:503", stream=stream, max_retries=1) as client:
        assert client.complete(MESSAGES).error.endswith("HTTP 503 from " + server.base_url + "/chat/completions (gave up after 2 attempts)")
    with _client(server.base_url, "slow:5", stream=stream, timeout_s=0.05, max_retries=0) as client:
        assert "within 0.05 s" in client.complete(MESSAGES).error
    with _client(server.base_url, "status:401", stream=stream) as client:
        assert client.complete(MESSAGES).error.endswith("unauthorized: check the key")


def test_a_streamed_answer_that_echoes_the_key_is_redacted(server):
    key = "sk-stream-secret-42"
    with _client(server.base_url, "echo-auth", stream=True, key=key) as client:
        result = client.complete(MESSAGES)
    assert result.text == "Bearer ***" and key not in result.raw


def test_submit_runs_calls_concurrently_up_to_the_limit():
    with FakeChatServer(delay_s=0.02) as fake, _client(fake.base_url, "gen", max_concurrency=4) as client:
        futures = [client.submit(MESSAGES, {"seed": i}) for i in range(12)]
        texts = [f.result().text for f in futures]
    assert texts == [f"Reply to Name a colour. (seed {i}, temperature 0.0)" for i in range(12)]
    assert fake.in_flight_max == 4


def test_unknown_sampling_settings_are_refused(server):
    with _client(server.base_url, "gen") as client, pytest.raises(ValueError, match="unknown sampling settings: n"):
        client.complete(MESSAGES, {"n": 2})


def test_api_key_read_names_the_owner_and_the_variable(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(LookupError, match="server 'vllm''s key variable NO_SUCH_KEY_VAR is not set"):
        api_key_read("NO_SUCH_KEY_VAR", owner="server 'vllm'")
    monkeypatch.setenv("NO_SUCH_KEY_VAR", "k")
    assert api_key_read("NO_SUCH_KEY_VAR", owner="x") == "k" and api_key_read("", owner="x") == ""
