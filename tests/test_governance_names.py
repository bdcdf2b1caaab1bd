"""Person names in the personal-data scan (issue 18 item 2): presidio-analyzer over a local spaCy
model (``ARBITER_NAME_MODEL``) in a child process. The model here is a tiny pipeline built in the
test (``spacy.blank("en")`` and an ``entity_ruler`` with PERSON patterns), saved to a folder; no
model is fetched. Without a usable model the scan says, in one line, that names were not scanned."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from feedback.governance import scan
from feedback.governance.detectors import detect
from feedback.governance.models import PersonalDataFinding
from feedback.governance.names import NamesUnavailable, name_recogniser_open
from feedback.models import Completion, Prompt
from tests.factories import CompletionFactory, PromptFactory

ASKED = "Please ask Alice Johnson about it."
MAILED = "Write to jane.roe@example.org today."
UNSET = "names not scanned: ARBITER_NAME_MODEL is not set (a spaCy model name or folder; see README, Data governance)"


@pytest.fixture(scope="module")
def name_model(tmp_path_factory) -> Path:
    """A spaCy pipeline tagging "Alice Johnson" and (as a statistical model may) an e-mail address as PERSON."""
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": [{"LOWER": "alice"}, {"LOWER": "johnson"}]},
                        {"label": "PERSON", "pattern": [{"LIKE_EMAIL": True}]}])
    folder = tmp_path_factory.mktemp("models") / "names"
    nlp.to_disk(folder)
    return folder


def scan_output() -> str:
    out = io.StringIO()
    call_command("personal_data_scan", stdout=out)
    return out.getvalue()


def test_name_spans_become_masked_findings_and_other_detectors_win_overlaps():
    text = "Alice Johnson wrote from jane.roe@example.org"
    found = detect(text, names=[(0, 13), (25, 45)])  # the second span is the e-mail address
    assert [(f.detector, f.start, f.end, f.excerpt) for f in found] == [("name", 0, 13, "A*** J***"), ("email", 25, 45, "j***@e***.org")]
    assert detect(text) == [found[1]]
    with pytest.raises(ValueError, match="not inside"):
        detect(text, names=[(40, 60)])


@pytest.mark.django_db
def test_a_scan_with_a_name_model_finds_alice_johnson_and_redacts_her(settings, name_model, admin_user):
    settings.ARBITER_NAME_MODEL = str(name_model)
    prompt = PromptFactory(messages=[{"role": "user", "content": ASKED}])
    mailed = CompletionFactory(prompt=prompt, text=MAILED)
    done = scan.personal_data_scan_run()
    assert done.status == "succeeded" and done.names_scanned
    assert done.names.startswith(f'names scanned with spaCy model "{name_model}"') and "presidio-analyzer 2.2.366" in done.names
    assert set(PersonalDataFinding.objects.values_list("row_kind", "row_id", "field", "detector", "start", "end", "excerpt")) == {
        ("prompt", prompt.pk, "messages.0.content", "name", 11, 24, "A*** J***"),
        ("completion", mailed.pk, "text", "email", 9, 29, "j***@e***.org"),  # tagged as a name too: the e-mail wins
    }
    assert "Alice" not in str(list(PersonalDataFinding.objects.values()))
    assert scan.row_redact(row_kind="prompt", row_id=prompt.pk, user=admin_user) == 1
    assert Prompt.objects.get(pk=prompt.pk).messages[0]["content"] == "Please ask [NAME] about it."
    assert Completion.objects.get(pk=mailed.pk).text == MAILED


@pytest.mark.django_db
def test_unset_the_scan_says_names_were_not_scanned_on_the_page_and_the_command_line(settings, client, admin_user):
    settings.ARBITER_NAME_MODEL = ""
    CompletionFactory(text=MAILED)
    out = scan_output()
    assert out.splitlines()[-1] == UNSET and "1 findings" in out.splitlines()[0]
    client.force_login(admin_user)
    page = client.get("/manage/governance/findings/").content.decode()
    assert 'data-testid="pd-scan-names" class="warning">Names not scanned: ARBITER_NAME_MODEL is not set' in page


@pytest.mark.django_db
@pytest.mark.parametrize("model, reason", [
    ("/nowhere/names-model", 'ARBITER_NAME_MODEL "/nowhere/names-model" is not a folder'),
    ("en_core_web_lg", 'no spaCy model "en_core_web_lg" is installed (python -m spacy download en_core_web_lg, or give a folder)'),
])
def test_a_model_that_is_not_there_is_one_line_and_the_other_detectors_still_run(settings, model, reason):
    settings.ARBITER_NAME_MODEL = model
    CompletionFactory(text=f"{MAILED} {ASKED}")
    done = scan.personal_data_scan_run()
    assert done.status == "succeeded" and done.names == f"names not scanned: {reason}"
    assert list(PersonalDataFinding.objects.values_list("detector", flat=True)) == ["email"]


def test_a_folder_that_is_no_name_model_is_refused_in_one_line(tmp_path):
    import spacy

    (tmp_path / "empty").mkdir()
    spacy.blank("en").to_disk(tmp_path / "blank")  # loads, but tags nothing
    for folder, reason in ((tmp_path / "empty", "did not load: [E053] Could not read meta.json"),
                           (tmp_path / "blank", "tags no person names (no PERSON or PER entity label)")):
        with pytest.raises(NamesUnavailable) as refused:
            name_recogniser_open(str(folder))
        assert str(refused.value).startswith(f'names not scanned: spaCy model "{folder}" ') and reason in str(refused.value)
        assert "\n" not in str(refused.value)


def test_the_scan_loads_no_language_library_in_the_worker_or_the_web_process():
    code = ("import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup(); "
            "import config.urls, feedback.tasks, feedback.governance.scan; "
            "print(sorted(m for m in ('torch', 'spacy', 'presidio_analyzer', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
