"""Registering judges and constitutions: versions on change, the checks, and the admin's edit that
keeps old versions for lineage."""
import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from tests.factories import UserFactory
from training.judges.models import Constitution, Judge
from training.judges.services import constitution_save, judge_resolve, judge_save

URL = "http://127.0.0.1:9/v1"


def endpoint(**fields):
    return judge_save(**{"name": "gpt", "kind": "openai", "base_url": URL, "model_name": "m", **fields})


@pytest.mark.django_db
def test_the_default_constitution_ships_with_three_principles():
    hhh = Constitution.objects.get(name="hhh", version=1)
    assert len(hhh.principles) == 3 and hhh.ref == "hhh@1"


@pytest.mark.django_db
def test_a_judge_gets_a_new_version_only_when_its_settings_change():
    first, created = endpoint()
    assert created and first.ref == "gpt@1" and first.template == "pairwise@1" and first.options["max_retries"] == 4
    same, created = endpoint(options={"max_retries": 4})
    assert not created and same.pk == first.pk
    second, created = endpoint(options={"max_retries": 2})
    assert created and second.ref == "gpt@2"
    assert judge_resolve(ref="gpt").pk == second.pk and judge_resolve(ref="gpt@1").pk == first.pk
    assert Judge.objects.filter(name="gpt").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("fields, field, words", [
    ({"api_key_env": "sk-abc123"}, "api_key_env", "environment variable's name"),
    ({"api_key_env": "SECRET_KEY"}, "api_key_env", "platform's own secrets"),
    ({"api_key_env": "DATABASE_URL"}, "api_key_env", "platform's own secrets"),
    ({"base_url": "file:///etc/passwd"}, "base_url", "http(s) URL"),
    ({"model_name": ""}, "model_name", "required"),
    ({"template": "nosuch@1"}, "template", "no prompt template"),
    ({"constitution": "hhh"}, "template", "per-principle template"),
    ({"template": "principle@1"}, "constitution", "choose a constitution"),
    ({"name": "Has Spaces"}, "name", "lower-case"),
    ({"options": {"timeout_s": 0}}, "options.timeout_s", "from 0.01"),
])
def test_bad_judges_are_refused_by_field(fields, field, words):
    with pytest.raises(ValidationError) as raised:
        endpoint(**fields)
    assert words in " ".join(raised.value.message_dict[field])
    assert not Judge.objects.exists()


@pytest.mark.django_db
def test_a_constitution_edit_is_a_new_version():
    charter, created = constitution_save(name="kind", principles=["Which is kinder?"])
    assert created and charter.version == 1
    again, created = constitution_save(name="kind", principles=[" Which is kinder? "])
    assert not created and again.pk == charter.pk
    newer, created = constitution_save(name="kind", principles=["Which is kinder?", "Which is calmer?"])
    assert created and newer.ref == "kind@2"
    with pytest.raises(ValidationError):
        constitution_save(name="kind", principles=[])


@pytest.mark.django_db
def test_editing_a_constitution_in_the_admin_saves_a_new_version_and_keeps_the_old(settings):
    admin = UserFactory(role="admin", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin)
    hhh = Constitution.objects.get(name="hhh", version=1)
    response = client.post(f"/admin/training/constitution/{hhh.pk}/change/", {
        "name": "hhh", "principles_text": "Which response is more helpful?\nWhich response is less harmful?",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    versions = {c.version: c.principles for c in Constitution.objects.filter(name="hhh")}
    assert versions[1] == hhh.principles
    assert versions[2] == ["Which response is more helpful?", "Which response is less harmful?"]
