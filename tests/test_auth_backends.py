"""The one-query permission backend and token authentication give Django's and DRF's answers."""
import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from feedback.roles import PermissionBackend
from feedback.tokens.services import api_token_issue
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _fresh(user):
    return type(user).objects.get(pk=user.pk)  # no cached permissions


@pytest.mark.parametrize("setup", ["none", "annotator", "admin", "direct", "direct_and_group", "inactive", "superuser"])
def test_permission_backend_matches_model_backend(setup):
    user = UserFactory(role="annotator" if setup in ("annotator", "direct_and_group") else "admin" if setup == "admin" else None)
    if setup in ("direct", "direct_and_group"):
        user.user_permissions.add(Permission.objects.get(codename="view_prompt"))
    if setup == "inactive":
        user.groups.add(Group.objects.get(name="admins"))
        user.is_active = False
        user.save()
    if setup == "superuser":
        user.is_superuser = True
        user.save()
    ours = PermissionBackend().get_all_permissions(_fresh(user))
    django = ModelBackend().get_all_permissions(_fresh(user))
    assert ours == django
    for perm in ("feedback.annotate", "feedback.manage_feedback", "training.run_jobs", "feedback.view_prompt"):
        assert PermissionBackend().has_perm(_fresh(user), perm) == ModelBackend().has_perm(_fresh(user), perm)


def test_token_auth_accepts_a_valid_token_and_refuses_bad_or_inactive():
    user = UserFactory(role="annotator")
    _, key = api_token_issue(user=user)
    client = APIClient()
    assert client.get("/api/votes/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    bad = client.get("/api/votes/", HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert bad.status_code == 401 and bad.json()["detail"] == "Invalid token."
    user.is_active = False
    user.save()
    inactive = client.get("/api/votes/", HTTP_AUTHORIZATION=f"Token {key}")
    assert inactive.status_code == 401 and inactive.json()["detail"] == "User inactive or deleted."
