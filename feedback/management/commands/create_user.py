"""manage.py create_user NAME --role annotator|admin [--password P] [--token]"""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from feedback.roles import ROLES, user_create
from feedback.tokens.services import api_token_issue


class Command(BaseCommand):
    help = "Create an annotator or admin account (and optionally print its API token)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=sorted(ROLES), required=True)
        parser.add_argument("--password", help="Default: read from the ARBITER_PASSWORD environment variable.")
        parser.add_argument("--email", default="")
        parser.add_argument("--token", action="store_true", help="Create and print an API token (shown this once).")

    def handle(self, *args, username, role, password, email, token, **options):
        import os

        password = password or os.environ.get("ARBITER_PASSWORD")
        if not password:
            raise CommandError("give --password or set ARBITER_PASSWORD")
        try:
            user = user_create(username=username, password=password, role=role, email=email)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(f"created {role} {user.username}")
        if token:
            _, key = api_token_issue(user=user)
            self.stdout.write(f"token {key}")
