"""The API answers as /api/schema/ says: schemathesis fuzzes every operation, as an admin and as an
annotator, against the WSGI app in-process (inside the test's transaction, on seeded data).

Each operation gets a few schema-valid requests (positive) and a few schema-violating ones
(negative); every answer must be documented (status code, content type, body schema), must not be a
5xx, and a schema-violating request must be refused (4xx). Hypothesis runs derandomized with no
example database, so CI sees the same requests every time.

State-changing operations (POST: create prompts, completions, comparisons, votes, exports and jobs;
skip; cancel; lease the next assignment) run after the read-only ones, so the reads see the seeded
rows; everything they write is rolled back with the test. Nothing trains: a created job is queued
with ``transaction.on_commit``, which never fires inside the test's transaction, and the test checks
that no task was enqueued. Exports run inline into a temporary ``ARBITER_DATA_DIR``.

``POST /api/assignments/next/`` takes no input, so it has no negative requests (hypothesis cannot
make one); it still gets its positive requests.
"""
from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, connection
from django_tasks_db.models import DBTaskResult
from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from feedback.tokens.services import api_token_issue
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from feedback.exports.services import export_create
from tests.factories import AssignmentFactory, ComparisonFactory, UserFactory, VoteFactory
from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobMetric, JobStatus

pytestmark = [
    pytest.mark.django_db,
    # The schema and the answers do not depend on the database; one run keeps CI's budget (about a
    # minute for both roles on two cores).
    pytest.mark.skipif(connection.vendor != "sqlite", reason="schema fuzzing runs once, on SQLite"),
]

EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 3}
CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    GenerationMode.NEGATIVE: [
        not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
        negative_data_rejection,
    ],
}
SAFE = {"GET", "HEAD", "OPTIONS"}


@pytest.fixture
def wsgi_in_test_transaction():
    """Keep Django from closing the test's connection at each request's start and end (as its test client does)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield application
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(settings, tmp_path):
    """A few of everything, so list and detail endpoints answer with real rows (ids 1..n)."""
    settings.ARBITER_DATA_DIR = tmp_path
    admin, annotator = UserFactory(role="admin"), UserFactory(role="annotator")
    comparisons = ComparisonFactory.create_batch(4)
    AssignmentFactory(comparison=comparisons[0], annotator=annotator)
    VoteFactory(comparison=comparisons[1], annotator=annotator, strength="clear", rationale="clearer")
    VoteFactory(comparison=comparisons[2], annotator=annotator)  # no strength or aspects: blank enums
    smol = Checkpoint.objects.create(name="smol", hub_id="x/smol", metadata={"param_count": 134_515_008})
    Checkpoint.objects.create(name="smol-rm", hub_id="x/smol-rm", kind=CheckpointKind.REWARD, parent=smol)
    Job.objects.create(kind=JobKind.GENERATION, config={"checkpoints": ["smol"]})
    trained = Job.objects.create(kind=JobKind.REWARD, status=JobStatus.FAILED, config={"base": "smol"}, error="boom")
    JobMetric.objects.create(job=trained, step=1, epoch=0.5, values={"loss": 0.69})
    export_create(format="raw-votes", file_type="jsonl", created_by=admin)
    return {"admin": admin, "annotator": annotator}


def _operations(schema):
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(operations, key=lambda op: op.method.upper() not in SAFE)  # reads first, stable otherwise


def _fuzz(operation, mode: GenerationMode, headers: dict) -> str | None:
    """Run ``operation`` for ``EXAMPLES[mode]`` requests; the failure report, or None."""

    @hypothesis_settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        case.call_and_validate(headers=headers, checks=CHECKS[mode])

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (an operation without input): no negative requests
        return None if mode == GenerationMode.NEGATIVE else f"{operation.label}: no requests could be made"
    except (Exception, BaseExceptionGroup) as failure:  # schemathesis' FailureGroup is a BaseExceptionGroup
        return f"{operation.label} ({mode.value}): {failure}"
    return None


@pytest.mark.parametrize("role", ["admin", "annotator"])
def test_api_answers_as_its_schema_says(role, seeded, wsgi_in_test_transaction):
    _, key = api_token_issue(user=seeded[role])
    headers = {"Authorization": f"Token {key}"}
    # The schema as this role sees it (comparisons are described with model names for admins only).
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_in_test_transaction, headers=headers)
    # A body over the size limit is refused with 413 before it is read (config.middleware): that is
    # a rejection too (negative cases can exceed maxLength by megabytes).
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    operations = _operations(schema)
    assert len(operations) >= 25, [op.label for op in operations]

    failures = [
        report
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (report := _fuzz(operation, mode, headers)) is not None
    ]

    assert not failures, "\n\n".join(failures)
    assert not DBTaskResult.objects.exists()  # no job or export was handed to a worker
    assert not Job.objects.filter(status=JobStatus.RUNNING).exists()
