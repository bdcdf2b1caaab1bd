"""For the key-leak checks of jobs that call an endpoint (judging, server generation): a child
process environment that reaches the test's database, and every database row as text to search."""
from __future__ import annotations

import pytest
from django.db import connection

from tests.model_fixtures import child_database_url


@pytest.fixture
def child_env(monkeypatch, tmp_path, settings):
    """Children reach this test's database and a fresh data directory (for job logs)."""
    settings.ARBITER_DATA_DIR = tmp_path
    monkeypatch.setenv("ARBITER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", child_database_url())
    monkeypatch.setenv("ARBITER_HEARTBEAT_INTERVAL", "0.5")


def all_text_in_the_database() -> str:
    """Every row of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)
