"""Constitutional AI critique-revise jobs with a tiny model: queueing checks, whole batches, the
command end to end in a child process, and lineage from each revision back to its constitution."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from feedback.models import Comparison, Completion, Demonstration, Vote
from tests.factories import CompletionFactory
from tests.test_generation import DyingReporter, explain, one_torch_thread  # noqa: F401  (fixture)
from training.constitutional.services import cai_job_create
from training.models import Job, JobStatus
from training.services import checkpoint_register

PRINCIPLES = ["Which response is more helpful?", "Which response is more honest?"]


def _config(**overrides) -> dict:
    return {"reviser": "tiny-x", "constitution": "test-hhh@1", "principles": PRINCIPLES, "max_new_tokens": 4,
            "temperature": 1.0, "batch_size": 2, "seed": 5, **overrides}


@pytest.mark.django_db
def test_queueing_refuses_bad_revisers_constitutions_templates_and_empty_selections(tiny_checkpoints):
    checkpoint_register(name="rm", kind="reward", weights_dir="checkpoints/tiny-x")
    CompletionFactory(model_name="tiny-x")
    cases = [
        ({"reviser": "nobody"}, "reviser", "no checkpoint named 'nobody'"),
        ({"reviser": "rm"}, "reviser", "critique-revise needs a policy"),
        ({"constitution": "nope", "principles": []}, "constitution", "no constitution 'nope'"),
        ({"constitution": "hhh@1"}, "constitution", "registered with other principles"),
        ({"constitution": "hhh"}, "constitution", '"name@version"'),
        ({"template": "critique-revise@7"}, "template", "shipped: critique-revise@1"),
        ({"responses_of": "ghost"}, "responses_of", "no responses of 'ghost' left to revise"),
        ({"campaign_id": 999}, "campaign_id", "999"),
    ]
    for overrides, field, words in cases:
        with pytest.raises(ValidationError) as caught:
            cai_job_create(config=_config(**overrides))
        assert words in " ".join(caught.value.message_dict[field]), (overrides, caught.value.message_dict)
    assert not Job.objects.exists()
    job = cai_job_create(config=_config())
    assert (job.kind, job.progress_total, job.config["principles"]) == ("cai", 1, PRINCIPLES)
    from training.judges.models import Constitution

    registered = cai_job_create(config=_config(constitution="hhh", principles=[]))  # the shipped default, latest version
    assert registered.config["constitution"] == "hhh@1"
    assert registered.config["principles"] == Constitution.objects.get(name="hhh", version=1).principles


@pytest.mark.django_db
def test_a_batch_and_the_progress_that_counts_it_commit_together(tiny_checkpoints, one_torch_thread):  # noqa: F811
    from training.runners.cai import run_cai

    originals = [CompletionFactory(model_name="tiny-x", text=f"Original answer {i}.") for i in range(5)]
    job = cai_job_create(config=_config())
    with pytest.raises(RuntimeError, match="killed"):
        run_cai(job, DyingReporter(job.pk, dies_at=2))
    job.refresh_from_db()
    revised = Completion.objects.filter(model_name="tiny-x+cai")
    assert job.progress_done == 2 and revised.count() == 2  # the first batch only, whole
    assert sorted(r.generation_params["original_completion"] for r in revised) == [o.pk for o in originals[:2]]


@pytest.mark.django_db(transaction=True)
def test_the_command_runs_a_job_whose_revisions_carry_their_lineage(tiny_checkpoints, runner_env, capsys):
    originals = [CompletionFactory(model_name="tiny-x", text=f"Original answer number {i}.") for i in range(3)]
    call_command("cai", "--reviser", "tiny-x", "--constitution", "test-hhh@1", "--principle", PRINCIPLES[0],
                 "--principle", PRINCIPLES[1], "--max-new-tokens", "4", "--temperature", "1.0", "--batch-size", "2",
                 "--wait")
    job = Job.objects.get()
    assert job.status == JobStatus.SUCCEEDED, explain(job)
    assert "queued critique-revise job" in capsys.readouterr().out
    s = job.summary
    assert s["responses"] == job.progress_done == 3 and s["revisions"] == 3
    assert s["pairs"] == s["demonstrations"] == 3 - s["skipped_empty"] - s["skipped_unchanged"]
    assert sum(s["principles"].values()) == 3 and set(s["principles"]) <= set(PRINCIPLES)
    for revised in Completion.objects.filter(model_name="tiny-x+cai"):
        params = revised.generation_params
        assert params["job"] == job.pk and params["constitution"] == "test-hhh@1"
        assert params["template"] == "critique-revise@1" and params["principle"] in PRINCIPLES
        assert params["original_completion"] in {o.pk for o in originals}
    assert Comparison.objects.count() == Vote.objects.filter(origin="ai", constitution="test-hhh@1").count() == s["pairs"]
    assert Demonstration.objects.filter(source="cai:test-hhh@1").count() == s["demonstrations"]
    # A second run finds nothing left to revise under this constitution: one readable line.
    with pytest.raises(CommandError, match="responses_of: no responses of 'tiny-x' left to revise under test-hhh@1"):
        call_command("cai", "--reviser", "tiny-x", "--constitution", "test-hhh@1", "--principle", PRINCIPLES[0])


@pytest.mark.django_db
def test_the_api_queues_a_critique_revise_job_and_names_bad_fields(tiny_checkpoints, admin_user, annotator, client):
    from tests.conftest import api_as

    CompletionFactory(model_name="tiny-x")
    bad = api_as(admin_user).post("/api/jobs/", {"kind": "cai", "config": {"reviser": "tiny-x", "temperature": 9}},
                                  format="json")
    assert bad.status_code == 400
    assert set(bad.json()) == {"constitution", "temperature"}
    assert api_as(annotator).post("/api/jobs/", {"kind": "cai", "config": _config()}, format="json").status_code == 403
    made = api_as(admin_user).post("/api/jobs/", {"kind": "cai", "config": _config()}, format="json")
    assert made.status_code == 201 and made.json()["kind"] == "cai" and made.json()["progress_total"] == 1
    client.force_login(admin_user)
    page = client.get(f"/manage/jobs/{made.json()['id']}/")
    assert page.status_code == 200
    assert '<span class="num">0/1</span> responses' in page.content.decode()


@pytest.mark.django_db
def test_the_critique_revise_page_queues_a_job_and_shows_refusals_by_field(tiny_checkpoints, admin_user, annotator, client):
    CompletionFactory(model_name="tiny-x")
    client.force_login(annotator)
    assert client.get("/manage/cai/").status_code == 403
    client.force_login(admin_user)
    page = client.get("/manage/cai/").content.decode()
    assert '<option value="hhh@1">hhh@1</option>' in page and '<option value="tiny-x">tiny-x</option>' in page
    form = {"reviser": "tiny-x", "constitution": "hhh@1", "limit": "5", "max_new_tokens": "8", "temperature": "0.7",
            "batch_size": "2", "pairs": "on", "demonstrations": "on"}
    refused = client.post("/manage/cai/", {**form, "responses_of": "ghost"})
    assert refused.status_code == 400 and "no responses of &#x27;ghost&#x27; left to revise" in refused.content.decode()
    assert not Job.objects.exists()
    made = client.post("/manage/cai/", form)
    job = Job.objects.get()
    assert made.status_code == 302 and made["Location"] == f"/manage/jobs/{job.pk}/"
    assert (job.kind, job.config["constitution"], job.config["limit"], job.progress_total) == ("cai", "hhh@1", 5, 1)
