"""A job's runner child gets no Hugging Face hub access and no telemetry thread unless the
operator's environment asks for them."""
import json
import sys

import pytest

from training import supervisor
from training.models import Job, JobKind, JobStatus

PROBE = """
import json, os, sys, threading
from huggingface_hub.utils import send_telemetry
send_telemetry("arbiter-probe", library_name="transformers")
names = [t.name for t in threading.enumerate()]
json.dump({"env": {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")},
           "telemetry_thread": any("telemetry" in n for n in names)}, open(sys.argv[1], "w"))
raise SystemExit(3)
"""


def run_probe(monkeypatch, settings, tmp_path) -> dict:
    settings.ARBITER_DATA_DIR = tmp_path
    out = tmp_path / "probe.json"
    monkeypatch.setattr(supervisor, "runner_command", lambda job_id: [sys.executable, "-c", PROBE, str(out)])
    job = Job.objects.create(kind=JobKind.GENERATION, config={"checkpoints": ["smol"]})
    assert supervisor.job_supervise(job_id=job.pk) == JobStatus.FAILED  # the probe exits 3
    return json.loads(out.read_text())


@pytest.mark.django_db
def test_a_runner_has_the_hub_and_its_telemetry_off_by_default(monkeypatch, settings, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY", raising=False)
    probe = run_probe(monkeypatch, settings, tmp_path)
    assert probe == {"env": {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}, "telemetry_thread": False}


@pytest.mark.django_db
def test_the_operators_own_hub_settings_are_kept(monkeypatch, settings, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY", raising=False)
    probe = run_probe(monkeypatch, settings, tmp_path)
    assert probe["env"] == {"HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}
    assert probe["telemetry_thread"] is False


def test_runner_environment_fills_in_only_what_is_unset():
    assert supervisor.runner_environment({"PATH": "/bin"}) == {
        "PATH": "/bin", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    assert supervisor.runner_environment({"HF_HUB_DISABLE_TELEMETRY": "0"})["HF_HUB_DISABLE_TELEMETRY"] == "0"
