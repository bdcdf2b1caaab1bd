"""Pure checks of a model server's settings (no Django): the URL, the NAME of the key's
environment variable (never the key), and the numbers. Each returns readable messages by field."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

# Environment variables a server (or judge) may never name as its key: an endpoint chosen by an
# admin would receive their values.
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
ENV_FORBIDDEN = ("SECRET_KEY", "DATABASE_URL")
ENV_FORBIDDEN_PREFIXES = ("DJANGO_", "ARBITER_", "PG", "AWS_")
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_URL_CHARS = 500


def api_key_env_problem(name: str) -> str | None:
    """Why ``name`` cannot name a key's environment variable (None when it can; "" is "no key")."""
    if name == "":
        return None
    if not isinstance(name, str) or not ENV_NAME.match(name):
        return "must be an environment variable's name (capitals, digits, _), not the key itself"
    if name in ENV_FORBIDDEN or name.startswith(ENV_FORBIDDEN_PREFIXES):
        return f"{name} holds the platform's own secrets; name a variable that holds only the endpoint's key"
    return None


def base_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable base URL (None when it is): http(s), a host, at most 500
    characters, no credentials, query or fragment (a key pasted into the URL would be stored and shown)."""
    hint = "must be an http(s) URL such as http://127.0.0.1:8000/v1"
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS or any(c.isspace() or not c.isprintable() for c in url):
        return hint
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return hint
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return hint
    if parts.username or parts.password:
        return "must not hold a user name or password: put the key in an environment variable and name it"
    if parts.query or parts.fragment:
        return "must not have a query or fragment (it ends before /chat/completions)"
    return None


def model_server_problems(
    *, name: str, base_url: str, model_name: str, api_key_env: str, max_concurrency: int, timeout_s: float,
    max_retries: int, backoff_s: float, stream: bool,
) -> dict[str, str]:
    """Every problem with a model server's settings, by field (empty when they are fine).

    Ranges: ``max_concurrency`` 1-256 requests at once, ``timeout_s`` 0.01-3600 seconds per
    request (for streamed answers, per wait for the next chunk), ``max_retries`` 0-10,
    ``backoff_s`` 0-60 seconds (the first retry's wait, doubled each retry).
    """
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not SERVER_NAME.match(name):
        errors["name"] = "must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
    problem = base_url_problem(base_url)
    if problem:
        errors["base_url"] = problem
    if not isinstance(model_name, str) or not model_name.strip() or len(model_name) > 200 or "\x00" in model_name:
        errors["model_name"] = "must be the served model's name (1-200 characters), as the server's /v1/models lists it"
    problem = api_key_env_problem(api_key_env)
    if problem:
        errors["api_key_env"] = problem
    for field, value, low, high, kind in (
        ("max_concurrency", max_concurrency, 1, 256, int), ("max_retries", max_retries, 0, 10, int),
        ("timeout_s", timeout_s, 0.01, 3600, float), ("backoff_s", backoff_s, 0, 60, float),
    ):
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or (kind is int and not isinstance(value, int)) or not low <= value <= high:
            errors[field] = f"must be {'an integer' if kind is int else 'a number'} from {low:g} to {high:g}"
    if not isinstance(stream, bool):
        errors["stream"] = "must be true or false"
    return errors
