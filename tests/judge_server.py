"""A fake OpenAI-compatible chat server for judge tests and ``bench/judge.py`` (no network beyond 127.0.0.1).

``FakeChatServer()`` listens on a random port (``base_url`` ends in ``/v1``) and answers
``POST /v1/chat/completions`` according to the request's ``model``:

- ``answer:<text>``: 200 with ``<text>`` as the answer (after ``delay_s``);
- ``prefer:<word>``: answers "A" when Response A's fence holds ``<word>``, "B" when only B's does, else "tie";
- ``malformed``: 200 with a body that is not JSON;
- ``status:<code>``: that status (429, 500, 401, ...) with a short JSON error;
- ``slow:<seconds>``: waits that long (or until the server stops), then answers "A";
- ``flaky:<n>``: the first ``n`` requests get 429 (``Retry-After: 0``), later ones "A";
- ``echo-auth``: answers with the request's ``Authorization`` header (a server that leaks the key).

``requests`` counts requests; ``authorizations`` lists the ``Authorization`` headers received.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        fake = self.server.fake
        with fake.lock:
            fake.requests += 1
            fake.authorizations.append(self.headers.get("authorization", ""))
            count = fake.requests
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": "not found"})
        model = str(body.get("model", ""))
        mode, _, arg = model.partition(":")
        if fake.delay_s:
            time.sleep(fake.delay_s)
        if mode == "malformed":
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
        return self._answer(arg if mode == "answer" else "A", body)

    def _answer(self, text: str, body: dict) -> None:
        prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        self._send(200, {
            "id": "fake", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()), "total_tokens": 0},
        })

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


class FakeChatServer:
    """Start on creation; ``stop()`` (or use as a context manager) when done."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.requests = 0
        self.authorizations: list[str] = []
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
