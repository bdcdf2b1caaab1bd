"""API tokens: kept as a digest and a prefix, shown in full once, rotated by their owner (page, API,
command), revoked by admins without reading them, optionally expiring; old plain tokens migrated."""
import importlib
import io
import re
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from feedback.tokens.models import ApiToken
from feedback.tokens.services import api_token_issue, token_digest
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
KEY = re.compile(r"\b[0-9a-f]{40}\b")


def _get(key: str, path: str = "/api/votes/"):
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Token {key}")


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- storage and authentication ----------------------------------------------------------------
def test_the_key_is_not_stored_only_its_digest_and_prefix(annotator):
    token, key = api_token_issue(user=annotator)
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert key not in str(row)
    assert row["digest"] == token_digest(key) and row["prefix"] == key[:8]
    assert _get(key).status_code == 200


def test_an_expired_token_is_refused_with_a_readable_message(annotator):
    token, key = api_token_issue(user=annotator, expires_in_days=30)
    assert _get(key).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = _get(key)
    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("Token expired.")


def test_logging_in_again_works_while_still_sending_the_expired_token(annotator):
    token, key = api_token_issue(user=annotator, expires_in_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(days=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    answer = client.post("/api/auth/token/", {"username": annotator.username, "password": PASSWORD}, format="json")
    assert answer.status_code == 200
    assert _get(answer.json()["token"]).status_code == 200


def test_the_server_default_lifetime_applies_and_caps_what_users_ask_for(annotator, settings):
    settings.ARBITER_TOKEN_TTL_DAYS = 90
    api = APIClient()
    issued = api.post("/api/auth/token/", {"username": annotator.username, "password": PASSWORD}, format="json")
    expires = ApiToken.objects.get(user=annotator).expires_at
    assert issued.status_code == 200 and expires is not None
    assert timedelta(days=89) < expires - timezone.now() <= timedelta(days=90)
    for too_long in (None, 365):
        answer = api.post("/api/auth/token/", {"username": annotator.username, "password": PASSWORD,
                                               "expires_in_days": too_long}, format="json")
        assert answer.status_code == 400
        assert answer.json() == {"expires_in_days": ["Tokens on this server expire within 90 days."]}
    assert _get(issued.json()["token"]).status_code == 200  # a refused request changes nothing


# --- the API: log in, rotate, revoke -----------------------------------------------------------
def test_rotating_through_the_api_retires_the_old_token(annotator):
    _, old = api_token_issue(user=annotator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    rotated = client.post("/api/auth/token/rotate/", {"expires_in_days": "7"})  # a form post, as with curl -d
    assert rotated.status_code == 200 and rotated["Cache-Control"] == "no-store"
    body = rotated.json()
    assert body["prefix"] == body["token"][:8] and body["expires_at"]
    assert _get(old).status_code == 401
    assert _get(body["token"]).status_code == 200


def test_rotating_needs_a_signed_in_caller_and_a_sane_lifetime(annotator):
    assert APIClient().post("/api/auth/token/rotate/").status_code == 401
    client = APIClient()
    client.force_authenticate(annotator)
    bad = client.post("/api/auth/token/rotate/", {"expires_in_days": 0}, format="json")
    assert bad.status_code == 400 and "expires_in_days" in bad.json()
    assert not ApiToken.objects.exists()


def test_deleting_revokes_your_own_token(annotator, other_annotator):
    _, mine = api_token_issue(user=annotator)
    _, theirs = api_token_issue(user=other_annotator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {mine}")
    assert client.delete("/api/auth/token/").status_code == 204
    assert _get(mine).status_code == 401
    assert _get(theirs).status_code == 200
    assert APIClient().delete("/api/auth/token/").status_code == 401


# --- the account page ------------------------------------------------------------------------
def test_the_account_page_shows_a_new_key_once_then_only_its_prefix(annotator):
    client = _signed_in(annotator)
    empty = client.get("/account/token/")
    assert empty.status_code == 200 and b"You have no API token." in empty.content
    made = client.post("/account/token/", {"action": "rotate", "expires_in_days": "30"})
    assert made.status_code == 200 and "no-store" in made["Cache-Control"]
    key = re.search(r'<code id="token-key">([0-9a-f]{40})</code>', made.content.decode()).group(1)
    assert _get(key).status_code == 200
    later = client.get("/account/token/").content.decode()
    assert key not in later and f"<code>{key[:8]}…</code>" in later
    assert not KEY.search(later)
    replaced = client.post("/account/token/", {"action": "rotate", "expires_in_days": ""})
    new_key = KEY.search(replaced.content.decode()).group(0)
    assert new_key != key and _get(key).status_code == 401 and _get(new_key).status_code == 200
    assert ApiToken.objects.get(user=annotator).expires_at is None


def test_the_account_page_revokes_and_refuses_a_lifetime_over_the_server_cap(annotator, settings):
    client = _signed_in(annotator)
    _, key = api_token_issue(user=annotator, expires_in_days=None)
    revoked = client.post("/account/token/", {"action": "revoke"}, follow=True)
    assert b"Token revoked." in revoked.content and b"You have no API token." in revoked.content
    assert _get(key).status_code == 401
    settings.ARBITER_TOKEN_TTL_DAYS = 30
    refused = client.post("/account/token/", {"action": "rotate", "expires_in_days": "365"})
    assert refused.status_code == 400 and not ApiToken.objects.exists()
    assert Client().get("/account/token/").status_code == 302  # to the log-in page


# --- the command -------------------------------------------------------------------------------
def test_rotate_token_command_prints_a_working_key_and_can_revoke(annotator):
    _, old = api_token_issue(user=annotator)
    out = io.StringIO()
    call_command("rotate_token", annotator.username, "--expires-in-days", "10", stdout=out)
    key = KEY.search(out.getvalue()).group(0)
    assert out.getvalue().startswith(f"token {key} (expires ")
    assert _get(old).status_code == 401 and _get(key).status_code == 200
    call_command("rotate_token", annotator.username, "--revoke", stdout=io.StringIO())
    assert _get(key).status_code == 401
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("rotate_token", "nobody")


def test_create_user_with_token_prints_a_working_key():
    out = io.StringIO()
    call_command("create_user", "carol", "--role", "annotator", "--password", "x-Tq9!mvP2w", "--token", stdout=out)
    assert _get(KEY.search(out.getvalue()).group(0)).status_code == 200


# --- the Django admin ------------------------------------------------------------------------
def test_admins_list_and_revoke_tokens_but_never_see_or_make_one(admin_user, annotator):
    token, key = api_token_issue(user=annotator)
    admin = _signed_in(admin_user)
    listing = admin.get("/admin/feedback/apitoken/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert f"{key[:8]}…" in page and key not in page and token.digest not in page
    assert "Revoke selected tokens" in page and "/admin/feedback/apitoken/add/" not in page
    detail = admin.get(f"/admin/feedback/apitoken/{token.pk}/change/").content.decode()
    assert key[:8] in detail and key not in detail and token.digest not in detail
    assert admin.get("/admin/feedback/apitoken/add/").status_code == 403
    assert admin.post(f"/admin/feedback/apitoken/{token.pk}/change/", {"expires_at_0": ""}).status_code == 403
    assert admin.get("/admin/authtoken/").status_code == 404  # DRF's plain-key token admin is gone
    revoked = admin.post("/admin/feedback/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}, follow=True)
    assert b"Revoked 1 token." in revoked.content
    assert _get(key).status_code == 401


def test_annotators_have_no_token_admin(annotator):
    assert _signed_in(annotator).get("/admin/feedback/apitoken/").status_code == 302  # not staff: to the admin log-in


# --- the migration from DRF's plain tokens ---------------------------------------------------
def test_the_data_migration_hashes_existing_plain_tokens_which_keep_working(annotator):
    migration = importlib.import_module("feedback.migrations.0006_api_tokens")
    key = "0123456789abcdef0123456789abcdef01234567"
    created = "timestamp with time zone" if connection.vendor == "postgresql" else "datetime"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, created {created} NOT NULL, '
                       "user_id integer NOT NULL)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [key, "2026-01-02 03:04:05", annotator.pk])

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection
    migration.hash_legacy_tokens(django_apps, editor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0  # no plain key left behind
    token = ApiToken.objects.get(user=annotator)
    assert (token.prefix, token.expires_at, token.created.year) == (key[:8], None, 2026)
    assert _get(key).status_code == 200
