"""Request bodies over the limits are refused from their declared length, before anything reads
them (config/middleware.py): 413 with a readable message, JSON under /api/, HTML elsewhere."""
import asyncio
import json
import socket

import pytest
from django.core.files.uploadhandler import FileUploadHandler
from django.test import Client

from feedback.tokens.services import api_token_issue
from tests.factories import UserFactory

RECEIVED: list[int] = []  # bytes that reached an upload handler


class CountingUploadHandler(FileUploadHandler):
    """Records every chunk of an uploaded file that Django reads from the request."""

    def receive_data_chunk(self, raw_data, start):
        RECEIVED.append(len(raw_data))
        return raw_data

    def file_complete(self, file_size):
        return None


@pytest.fixture
def limits(settings):
    RECEIVED.clear()
    settings.FILE_UPLOAD_HANDLERS = ["tests.test_body_limits.CountingUploadHandler"]
    settings.ARBITER_ANONYMOUS_MAX_BODY_BYTES = 64 * 1024
    settings.ARBITER_MAX_BODY_BYTES = 8 * 1024 * 1024
    return settings


def _upload(size: int) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"file": SimpleUploadedFile("votes.jsonl", b"x" * size)}


@pytest.mark.django_db
def test_an_anonymous_upload_over_the_anonymous_limit_is_refused_before_a_byte_is_read(limits):
    response = Client().post("/manage/imports/", _upload(3 * 1024 * 1024))
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"at most 64.0\xc2\xa0KB is accepted without logging in" in response.content
    assert RECEIVED == []  # no byte of the file reached an upload handler (memory or temporary file)


@pytest.mark.django_db
def test_a_declared_length_alone_decides_nothing_of_the_body_is_read(limits):
    """The test client's payload raises if read past what was sent; the answer comes first."""
    client = Client()
    page = client.generic("POST", "/accounts/login/", b"x" * 10, "application/x-www-form-urlencoded",
                          CONTENT_LENGTH=str(300 * 1024 * 1024))
    assert page.status_code == 413 and b"300.0\xc2\xa0MB" in page.content
    api = client.generic("POST", "/api/auth/token/", b"{}", "application/json", CONTENT_LENGTH=str(300 * 1024 * 1024))
    assert api.status_code == 413
    assert api.json() == {"detail": "The request body is 300.0\xa0MB; at most 8.0\xa0MB is accepted."}


@pytest.mark.django_db
def test_small_anonymous_posts_still_work(limits, annotator):
    response = Client().post("/accounts/login/", {"username": annotator.username, "password": "correct-horse-battery"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_signed_in_user_may_send_up_to_the_full_limit_but_not_more(limits, admin_user):
    client = Client()
    client.force_login(admin_user)
    accepted = client.post("/manage/imports/", _upload(1024 * 1024))
    assert accepted.status_code != 413
    assert sum(RECEIVED) == 1024 * 1024  # the form read the file
    RECEIVED.clear()
    refused = client.post("/manage/imports/", _upload(9 * 1024 * 1024))
    assert refused.status_code == 413 and b"at most 8.0\xc2\xa0MB is accepted." in refused.content
    assert RECEIVED == []


@pytest.mark.django_db
def test_an_api_token_counts_as_signed_in_and_a_bad_one_does_not(limits, admin_user):
    body = json.dumps({"prompts": [{"text": "x" * 100_000}]})
    _, token = api_token_issue(user=admin_user)
    bad = Client().post("/api/prompts/", body, "application/json", HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert bad.status_code == 413 and "without logging in" in bad.json()["detail"]
    good = Client().post("/api/prompts/", body, "application/json", HTTP_AUTHORIZATION=f"Token {token}")
    assert good.status_code != 413


@pytest.mark.django_db
def test_a_chunked_body_without_content_length_is_refused_under_wsgi(limits):
    response = Client().generic("POST", "/api/auth/token/", b"", "application/json", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]


def _raw(url: str, head: str, body: bytes = b"") -> bytes:
    """Send ``head`` (request line and headers) and ``body`` on a socket; answer the whole response."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head.encode() + b"\r\n" + body)
        answer = b""
        while not _complete(answer):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return bool(lengths) and len(body) >= int(lengths[0])


@pytest.mark.django_db(transaction=True)
def test_a_live_server_answers_413_before_the_body_is_sent(limits, live_server):
    """A real socket: 4 MB (then 300 MB) declared, 1 KB sent; the answer arrives without the rest."""
    head = (
        "POST /manage/imports/ HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
    )
    anonymous = _raw(live_server.url, head + f"Content-Length: {4 * 1024 * 1024}\r\n", b"x" * 1024)
    assert anonymous.startswith(b"HTTP/1.1 413"), anonymous[:200]
    assert b"without logging in" in anonymous
    too_large = _raw(live_server.url, head + f"Content-Length: {300 * 1024 * 1024}\r\n", b"x" * 1024)
    assert too_large.startswith(b"HTTP/1.1 413") and b"at most 8.0\xc2\xa0MB is accepted." in too_large
    assert RECEIVED == []


@pytest.mark.django_db(transaction=True)
def test_a_live_server_lets_a_signed_in_users_larger_body_through_to_the_csrf_check(limits, live_server):
    user = UserFactory(role="admin")
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    body = b"a=" + b"x" * (200 * 1024)
    head = (
        "POST /manage/imports/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Cookie: sessionid={session}\r\nContent-Length: {len(body)}\r\n"
    )
    assert _raw(live_server.url, head, body).startswith(b"HTTP/1.1 403")  # read, then refused for its missing CSRF token
    assert _raw(live_server.url, head.replace(f"sessionid={session}", "sessionid=forged"), body).startswith(b"HTTP/1.1 413")


# --- ASGI: the wrapper in config/asgi.py stops Django spooling the body ---------------------------------
def _asgi(path: str, headers: list, chunks: list[bytes], method: str = "POST") -> tuple[int, bytes, int]:
    """Run config.asgi.application on one request; answer (status, body, chunks read)."""
    from config.asgi import application

    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    read = 0
    sent: list[dict] = []

    async def receive():
        nonlocal read
        if read < len(messages):
            read += 1
            return messages[read - 1]
        await asyncio.sleep(3600)  # the client waits for the answer

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"host", b"localhost"), *headers], "scheme": "http", "server": ("localhost", 80),
             "client": ("127.0.0.1", 5000), "asgi": {"version": "3.0"}, "http_version": "1.1", "root_path": ""}
    asyncio.run(asyncio.wait_for(application(scope, receive, send), 30))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"), read


def test_asgi_refuses_a_declared_length_over_the_limit_without_reading(limits):
    status, body, read = _asgi("/api/auth/token/", [(b"content-length", str(300 * 1024 * 1024).encode())], [b"x"])
    assert (status, read) == (413, 0)
    assert json.loads(body)["detail"].startswith("The request body is 300.0\xa0MB")


def test_asgi_stops_reading_a_chunked_body_past_the_anonymous_limit(limits):
    chunks = [b"x" * 16 * 1024] * 64  # 1 MiB, no content-length
    status, body, read = _asgi("/healthz", [], chunks)
    assert status == 413 and b"Request too large" in body
    assert read == 5  # 80 KiB read, then no more


def test_asgi_serves_a_small_chunked_body(limits):
    status, body, read = _asgi("/healthz", [], [b"x" * 1024] * 3, method="GET")
    assert (status, body, read) == (200, b"ok", 3)


# --- gunicorn, as deployed (README): the same answers from a real server ---------------------------
@pytest.fixture
def gunicorn_url(tmp_path):
    """gunicorn serving config.wsgi on a socket made here (``--bind fd://``), so connections queue
    until it is ready, no polling. Its database is never opened by these requests (anonymous, no
    session cookie, no token), so it is left unmigrated."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "test-only", "HTTPS": "0", "ARBITER_PLAIN_STATIC": "1",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}", "ARBITER_MAX_BODY_BYTES": str(8 * 1024 * 1024)}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"fd://{listener.fileno()}", "--workers", "1"],
        cwd=Path(__file__).resolve().parent.parent, env=env, pass_fds=[listener.fileno()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        listener.close()


def test_gunicorn_refuses_a_large_anonymous_body_and_a_chunked_one_without_reading_them(gunicorn_url):
    server = gunicorn_url
    head = "POST /manage/imports/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    anonymous = _raw(server, head + f"Content-Length: {4 * 1024 * 1024}\r\n", b"x" * 1024)
    assert anonymous.startswith(b"HTTP/1.1 413") and b"without logging in" in anonymous, anonymous[:300]
    too_large = _raw(server, head + f"Content-Length: {300 * 1024 * 1024}\r\n", b"x" * 1024)
    assert too_large.startswith(b"HTTP/1.1 413") and b"at most 8.0\xc2\xa0MB is accepted." in too_large
    chunked = _raw(server, "POST /api/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           "Transfer-Encoding: chunked\r\n", b"400\r\n" + b"x" * 1024 + b"\r\n")
    assert chunked.startswith(b"HTTP/1.1 411"), chunked[:300]
    assert b"Content-Length" in chunked.partition(b"\r\n\r\n")[2]
