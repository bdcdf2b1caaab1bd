"""Usernames made outside Django's forms (manage.py create_user, the system account an import
writes its votes as) pass the same validation as the forms' (letters, digits, @.+-_; 150 chars)."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from feedback.imports import hh_rlhf_import
from feedback.models import Prompt, Vote
from tests.shared_data import HH_RLHF_SAMPLE, shared_data_path

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("username", ["bad name", "<script>alert(1)</script>", "x" * 151, "tab\there", ""])
def test_create_user_refuses_an_invalid_username_in_one_line(username):
    with pytest.raises(CommandError) as caught:
        call_command("create_user", username, "--role", "annotator", "--password", "a long passphrase 42",
                     stdout=io.StringIO())
    message = str(caught.value)
    assert "\n" not in message and ("valid username" in message or "at most 150" in message or "required" in message)
    assert not get_user_model().objects.exists()


def test_create_user_takes_a_valid_username_normalised():
    out = io.StringIO()
    call_command("create_user", "ａnna.b-c_d@example", "--role", "annotator", "--password", "a long passphrase 42",
                 stdout=out)
    assert out.getvalue().strip() == "created annotator anna.b-c_d@example"  # NFKC: full-width a -> a
    assert get_user_model().objects.get().username == "anna.b-c_d@example"


def test_an_import_whose_source_is_not_a_valid_username_writes_nothing():
    with pytest.raises(ValueError, match="valid username"):
        hh_rlhf_import(path=shared_data_path(HH_RLHF_SAMPLE), limit=3, source="my team's import")
    assert not get_user_model().objects.exists()
    assert not Prompt.objects.exists() and not Vote.objects.exists()
    hh_rlhf_import(path=shared_data_path(HH_RLHF_SAMPLE), limit=3, source="team-import")
    assert get_user_model().objects.get().username == "team-import"
