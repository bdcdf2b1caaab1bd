import pytest
from rest_framework.test import APIClient

from tests.factories import ComparisonFactory, UserFactory

# Model and child-process fixtures for the training tests (session-scoped model store).
pytest_plugins = ["tests.model_fixtures", "tests.browser_support"]


@pytest.fixture(autouse=True)
def _no_login_lockouts(settings):
    """Login throttling is tested on its own (tests/test_security.py); elsewhere it stays out of the way."""
    settings.AXES_ENABLED = False


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Factories set a password on every user; the production hasher's 1M PBKDF2 rounds would dominate run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def annotator(db):
    return UserFactory(role="annotator")


@pytest.fixture
def other_annotator(db):
    return UserFactory(role="annotator")


@pytest.fixture
def admin_user(db):
    return UserFactory(role="admin")


@pytest.fixture
def api():
    return APIClient()


def api_as(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def comparisons(db):
    return ComparisonFactory.create_batch(5)
