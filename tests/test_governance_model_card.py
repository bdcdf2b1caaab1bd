"""Justified runs and model cards (issue 18 item 4): the justification setting, and the card a DPO
checkpoint gets in its folder (Hugging Face format) with data, policies, counts, settings, results."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from feedback.governance.models import DataPolicy, ReviewStatus
from tests.conftest import api_as
from tests.factories import ComparisonFactory, PromptFactory, UserFactory, VoteFactory
from training import services
from training.models import Checkpoint, Job

pytestmark = pytest.mark.django_db
WHY = "Prompting alone misses our support tone; the vendor votes are licensed for this; team A maintains it."


@pytest.fixture
def world(settings, tmp_path, admin_user):
    settings.ARBITER_DATA_DIR = tmp_path
    Checkpoint.objects.create(name="smol", hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", metadata={"license": "apache-2.0"})
    annotators = [UserFactory(role="annotator") for _ in range(2)]
    for index in range(6):
        prompt = PromptFactory(source="vendor", split="eval" if index % 3 == 0 else "train")
        VoteFactory(comparison=ComparisonFactory(prompt=prompt), annotator=annotators[index % 2], choice="a" if index % 2 else "b")
    DataPolicy.objects.create(source="vendor", basis="vendor contract 12", retention_days=365,
                              review_status=ReviewStatus.REVIEWED_CLEAN, review_required=True)
    return {"admin": admin_user, "annotators": annotators}


def test_a_justification_is_optional_unless_the_setting_requires_it(world, settings):
    assert services.dpo_run_create(config={"base": "smol"}).justification == ""
    settings.ARBITER_RUN_JUSTIFICATION_REQUIRED = True
    with pytest.raises(ValidationError) as caught:
        services.dpo_run_create(config={"base": "smol", "output_name": "x"}, justification="because")
    assert "why this run is warranted" in caught.value.message_dict["justification"][0]
    assert services.dpo_run_create(config={"base": "smol", "output_name": "y"}, justification=WHY).justification == WHY
    response = api_as(world["admin"]).post("/api/jobs/", {"kind": "dpo", "config": {"base": "smol", "output_name": "z"}}, format="json")
    assert response.status_code == 400 and "justification" in response.json()


def test_a_dpo_checkpoint_gets_a_model_card_with_its_data_policies_counts_settings_and_results(world, settings, client):
    job = services.dpo_run_create(config={"base": "smol", "beta": 0.2}, created_by=world["admin"], justification=WHY)
    folder = settings.ARBITER_DATA_DIR / "checkpoints" / "smol-dpo"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0")
    checkpoint = services.checkpoint_register(
        name="smol-dpo", weights_dir="checkpoints/smol-dpo", parent=Checkpoint.objects.get(name="smol"), run=job,
        metadata={"metrics": {"eval_reward_accuracy": 0.75, "train_loss": 0.6931}},
    )
    card = (folder / "README.md").read_text()
    head, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert 'license: "apache-2.0"' in head and 'base_model: "HuggingFaceTB/SmolLM2-135M-Instruct"' in head
    assert "tags: [arbiter, trl, dpo]" in head and f'datasets: ["arbiter-snapshot-{job.snapshot_id}"]' in head
    assert f"# {checkpoint.name}" in body and "TRL's DPOTrainer" in body
    assert WHY in body
    assert "4 train and 2 eval preference pairs, from 6 votes by 2 annotators" in body
    assert '| source "vendor" | annotation, evaluation, training | vendor contract 12 | reviewed clean | 365 | 2 evaluation, 4 training |' in body
    assert '"beta": 0.2' in body
    assert "- eval_reward_accuracy: 0.75" in body and "- train_loss: 0.6931" in body
    assert "## Known limitations" in body
    for annotator in world["annotators"]:
        assert annotator.username not in card
    client.force_login(world["admin"])
    for url in (f"/manage/jobs/{job.pk}/", f"/manage/checkpoints/{checkpoint.pk}/"):
        page = client.get(url).content.decode()
        assert 'data-testid="run-justification"' in page and "team A maintains it" in page


def test_an_overridden_snapshot_is_named_in_the_cards_limitations(world, settings):
    DataPolicy.objects.filter(source="vendor").update(allow_training=False)
    job = services.dpo_run_create(config={"base": "smol"}, policy_override="A one-off, approved by legal in ticket 9.")
    folder = settings.ARBITER_DATA_DIR / "checkpoints" / "c"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0")
    services.checkpoint_register(name="c", weights_dir="checkpoints/c", parent=Checkpoint.objects.get(name="smol"), run=job)
    card = (folder / "README.md").read_text()
    assert 'overridden by an admin: "A one-off, approved by legal in ticket 9."' in card
    assert "No evaluation results were recorded." in card and "No justification was given" in card
    assert Job.objects.get(pk=job.pk).justification == ""
