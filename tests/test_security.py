"""Settings and headers a deployer relies on: secret key, check --deploy, headers, login throttling."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, env_extra: dict[str, str], drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


SECRET_KEY_LINE = ("ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local "
                   "development).\n")


@pytest.mark.parametrize("args", [("check",), ("migrate", "--help"), ("--help",), ("help",), ("no_such_command",)])
def test_without_secret_key_any_command_says_so_in_one_line_and_exits_non_zero(args):
    result = _manage(*args, env_extra={"DEBUG": "0"}, drop=("SECRET_KEY",))
    assert result.returncode != 0
    assert result.stderr == SECRET_KEY_LINE  # that line alone: no traceback
    assert result.stdout == ""


def test_with_the_settings_in_place_help_still_works():
    result = _manage("migrate", "--help", env_extra={"DEBUG": "0", "SECRET_KEY": "x"})
    assert result.returncode == 0 and "usage: manage.py migrate" in result.stdout, result.stderr


def test_check_deploy_is_clean_with_production_settings():
    env = {"DEBUG": "0", "SECRET_KEY": "a" * 20 + "Zq8!kP2#vL9@xW4$mN7^bR5&tY1*uI3(oE6)", "HTTPS": "1"}
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_extra=env, drop=("ARBITER_PLAIN_STATIC",))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_security_headers_on_pages(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


@pytest.mark.django_db
def test_login_attempts_are_throttled(client, settings, annotator):
    settings.AXES_ENABLED = True
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/accounts/login/", {"username": annotator.username, "password": "wrong"})
        assert response.status_code == 200  # the form again, with an error
    assert client.post("/accounts/login/", {"username": annotator.username, "password": "wrong"}).status_code == 429
    locked = client.post("/accounts/login/", {"username": annotator.username, "password": "correct-horse-battery"})
    assert locked.status_code == 429
    assert b"locked" in locked.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_token_endpoint_gives_a_token_for_good_credentials(client, annotator):
    response = client.post("/api/auth/token/", {"username": annotator.username, "password": "correct-horse-battery"})
    assert response.status_code == 200
    token = response.json()["token"]
    assert client.post("/api/assignments/next/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 204


@pytest.mark.django_db
def test_token_endpoint_is_throttled_too(client, settings, annotator):
    settings.AXES_ENABLED = True
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/api/auth/token/", {"username": annotator.username, "password": "nope"}).status_code == 400
    assert client.post("/api/auth/token/", {"username": annotator.username, "password": "nope"}).status_code == 429
    response = client.post("/api/auth/token/", {"username": annotator.username, "password": "correct-horse-battery"})
    assert response.status_code == 429
    assert "token" not in response.content.decode()


def test_htmx_is_served_from_the_npm_package_not_committed():
    found = finders.find("vendor/htmx/htmx.min.js")
    assert found and "node_modules" in found
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [path for path in tracked if "htmx" in Path(path).name and path.endswith(".js")]


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        ("ARBITER_PROXY_HOPS", "two", "ARBITER_PROXY_HOPS must be a whole number from 0 to 16 (proxies in front of "
                                      "the app); it is 'two'."),
        ("ARBITER_MAX_BODY_BYTES", "0", "ARBITER_MAX_BODY_BYTES must be a whole number from 1 up (bytes); it is '0'."),
        ("ARBITER_TOKEN_TTL_DAYS", "-5", "ARBITER_TOKEN_TTL_DAYS must be a whole number from 1 to 3650 (days); it is '-5'."),
    ],
)
def test_a_bad_limit_in_the_environment_is_one_readable_line(name, value, line):
    result = _manage("check", env_extra={"DEBUG": "0", "SECRET_KEY": "x", name: value})
    assert result.returncode != 0
    assert result.stderr == f"ImproperlyConfigured: {line}\n"
