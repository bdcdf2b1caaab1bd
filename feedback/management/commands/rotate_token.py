"""manage.py rotate_token NAME [--expires-in-days N | --no-expiry] [--revoke]"""
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from feedback.tokens.services import DEFAULT, api_token_issue, api_token_revoke


class Command(BaseCommand):
    help = "Give a user a new API token and print it (the old one stops working), or revoke it."

    def add_arguments(self, parser):
        parser.add_argument("username")
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument("--expires-in-days", type=int, help="Default: ARBITER_TOKEN_TTL_DAYS (empty: never).")
        lifetime.add_argument("--no-expiry", action="store_true", help="A token that never expires.")
        lifetime.add_argument("--revoke", action="store_true", help="Only revoke the user's token; print nothing.")

    def handle(self, *args, username, expires_in_days, no_expiry, revoke, **options):
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if revoke:
            revoked = api_token_revoke(user=user)
            self.stdout.write(f"revoked the token of {username}" if revoked else f"{username} had no token")
            return
        days = None if no_expiry else DEFAULT if expires_in_days is None else expires_in_days
        try:
            token, key = api_token_issue(user=user, expires_in_days=days)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        expiry = f" (expires {token.expires_at:%Y-%m-%d %H:%M} UTC)" if token.expires_at else ""
        self.stdout.write(f"token {key}{expiry}")
