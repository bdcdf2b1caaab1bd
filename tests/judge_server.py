"""A fake OpenAI-compatible chat server for judge and generation tests and for ``bench/judge.py`` and
``bench/generate.py`` (no network beyond 127.0.0.1).

``FakeChatServer()`` listens on a random port (``base_url`` ends in ``/v1``) and answers
``POST /v1/chat/completions`` according to the request's ``model``:

- ``answer:<text>``: 200 with ``<text>`` as the answer (after ``delay_s``);
- ``prefer:<word>``: answers "A" when Response A's fence holds ``<word>``, "B" when only B's does, else "tie";
- ``gen`` (or ``gen:<anything>``): "Reply to <last user turn> (seed <seed>, temperature <t>)": sampled
  text that differs by seed;
- ``marker``: "Sure thing.\\n\\nHuman: and another turn" (a model that writes the next turn);
- ``length``: "A reply that was cut" with ``finish_reason`` "length";
- ``empty``: 200 with an empty ``choices`` list;
- ``malformed``: 200 with a body that is not JSON (streamed: a ``data:`` line that is not JSON);
- ``cut``: streamed only: the stream stops before ``data: [DONE]`` (non-streamed: "A");
- ``status:<code>``: that status (429, 500, 401, ...) with a short JSON error;
- ``slow:<seconds>``: waits that long (or until the server stops), then answers "A";
- ``flaky:<n>``: the first ``n`` requests get 429 (``Retry-After: 0``), later ones "A";
- ``fail-on:<word>``: 500 when the last user turn holds ``<word>``, else as ``gen``;
- ``echo-auth``: answers with the request's ``Authorization`` header (a server that leaks the key).

Like vLLM, every answer honours the request's ``stop`` strings: the text ends before the first one,
and ``stop_reason`` names it. A request with ``"stream": true`` gets server-sent events (one chunk
per word, a usage chunk, ``data: [DONE]``). ``served_models`` (a set) makes every other model
name a 404 (a wrong model name); ``reported_model`` replaces the model name the answers report.

``requests`` counts requests; ``authorizations`` lists the ``Authorization`` headers received;
``bodies`` the request bodies; ``in_flight_max`` the most requests handled at once; ``busy_s``
the request-seconds handled (``GET /stats`` answers these three as JSON).
"""
from __future__ import annotations

import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers do: headers and body go out at once, no delayed-ACK stalls

    def log_message(self, format, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        """``GET /stats``: requests, in_flight_max and busy_s (request-seconds handled), for benches."""
        fake = self.server.fake
        if self.path != "/stats":
            return self._send(404, {"error": "not found"})
        with fake.lock:
            self._send(200, {"requests": fake.requests, "in_flight_max": fake.in_flight_max, "busy_s": fake.busy_s})

    def do_POST(self) -> None:  # noqa: N802
        fake = self.server.fake
        started = time.perf_counter()
        with fake.lock:
            fake.in_flight += 1
            fake.in_flight_max = max(fake.in_flight_max, fake.in_flight)
        try:
            self._post(fake)
        finally:
            with fake.lock:
                fake.in_flight -= 1
                fake.busy_s += time.perf_counter() - started

    def _post(self, fake: "FakeChatServer") -> None:
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        with fake.lock:
            fake.requests += 1
            fake.authorizations.append(self.headers.get("authorization", ""))
            fake.bodies.append(body)
            count = fake.requests
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": "not found"})
        model = str(body.get("model", ""))
        if fake.served_models is not None and model not in fake.served_models:
            return self._send(404, {"error": {"message": f"The model `{model}` does not exist.", "code": 404}})
        mode, _, arg = model.partition(":")
        if fake.delay_s:
            time.sleep(fake.delay_s)
        if mode == "malformed" and not body.get("stream"):
            return self._send(200, b"{not json")
        if mode == "status":
            return self._send(int(arg), {"error": {"message": f"fake status {arg}"}}, {"Retry-After": "0"})
        if mode == "slow":
            fake.stopping.wait(float(arg))
            return self._answer("A", body)
        if mode == "flaky" and count <= int(arg):
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if mode == "echo-auth":
            return self._answer(self.headers.get("authorization", ""), body)
        if mode == "prefer":
            return self._answer(_preferred(body, arg), body)
        last_user = next((m.get("content", "") for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        if mode == "fail-on" and arg in str(last_user):
            return self._send(500, {"error": {"message": "fake failure"}})
        if mode in ("gen", "fail-on"):
            last = next((m.get("content", "") for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
            return self._answer(f"Reply to {last} (seed {body.get('seed')}, temperature {body.get('temperature')})", body)
        if mode == "marker":
            return self._answer("Sure thing.\n\nHuman: and another turn", body)
        if mode == "length":
            return self._answer("A reply that was cut", body, finish="length")
        if mode == "empty":
            return self._answer(None, body)
        return self._answer(arg if mode == "answer" else "A", body)

    def _answer(self, text: str | None, body: dict, finish: str = "stop") -> None:
        fake = self.server.fake
        stop_reason = None
        stops = body.get("stop") or []
        for marker in [stops] if isinstance(stops, str) else stops:
            if text is not None and marker in text:
                text, stop_reason, finish = text[:text.index(marker)], marker, "stop"
        model = fake.reported_model or body.get("model")
        if body.get("stream"):
            return self._stream(text, model, finish, stop_reason, mode=str(body.get("model", "")).partition(":")[0])
        prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        choices = [] if text is None else [{"index": 0, "message": {"role": "assistant", "content": text},
                                            "finish_reason": finish, "stop_reason": stop_reason}]
        self._send(200, {
            "id": "fake", "object": "chat.completion", "model": model, "choices": choices,
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len((text or "").split()), "total_tokens": 0},
        })

    def _stream(self, text: str | None, model: str, finish: str, stop_reason: str | None, mode: str) -> None:
        events = []
        if text is not None:
            words = re.findall(r"\S+\s*|\s+", text) or [""]
            for index, word in enumerate(words):
                last = index == len(words) - 1
                events.append({"model": model, "choices": [{"index": 0, "delta": {"content": word},
                               "finish_reason": finish if last else None, "stop_reason": stop_reason if last else None}]})
        events.append({"model": model, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": len((text or "").split())}})
        lines = [f"data: {json.dumps(event)}\n\n" for event in events]
        if mode == "malformed":
            lines.insert(1, "data: {not json\n\n")
        if mode != "cut":
            lines.append("data: [DONE]\n\n")
        data = ": fake stream\n\n" + "".join(lines)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(data.encode())))
        self.end_headers()
        self.wfile.write(data.encode())

    def _send(self, status: int, payload, headers: dict | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _preferred(body: dict, word: str) -> str:
    prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    fences = re.findall(r"Response (A|B):\n(`{3,})\n(.*?)\n\2", prompt, re.S)
    holding = {label for label, _, text in fences if word in text}
    return holding.pop() if len(holding) == 1 else "tie"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    fake: "FakeChatServer"

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that timed out and hung up is expected
            super().handle_error(request, client_address)


class FakeChatServer:
    """Start on creation; ``stop()`` (or use as a context manager) when done."""

    def __init__(self, delay_s: float = 0.0, *, served_models: set[str] | None = None, reported_model: str = ""):
        self.delay_s = delay_s
        self.served_models = served_models
        self.reported_model = reported_model
        self.requests = 0
        self.in_flight = self.in_flight_max = 0
        self.busy_s = 0.0
        self.authorizations: list[str] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeChatServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
