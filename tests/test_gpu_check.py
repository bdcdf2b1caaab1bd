"""The device check, ``bench/gpu_check.py``, tried here on CPU: its ``--smoke`` run (a tiny Llama
with SmolLM2's tokenizer, 2 steps, tiny batches) goes through every section, the platform's side
and the bare side doing the same work, and ends with one JSON line; without CUDA and without
``--smoke`` it says what to do in one line. (Its figures on CPU say nothing about a GPU.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The check builds its own SQLite store in child processes: the suite's PostgreSQL pass would only
# repeat it (a minute), so it runs once, with the real-model tests.
pytestmark = pytest.mark.real_model

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ["reward", "dpo_lora", "dpo_full", "rloo", "generation_batch_1", "generation_batch_32"]


def check(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "bench/gpu_check.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_smoke_run_goes_through_every_section_and_ends_with_one_json_line(model_store):
    done = check("--smoke", "--model-dir", str(model_store.data_dir / "checkpoints" / "tiny-x"))
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["smoke"] is True and report["device"] == "cpu" and report["failures"] == []
    assert report["sections_run"] == SECTIONS
    assert {"torch", "transformers", "trl", "peft", "model", "sizes", "floors_met", "seconds"} <= report.keys()
    for name in SECTIONS[:4]:  # training: the platform's run beside bare TRL, same steps and rows
        section = report[name]
        platform, bare = section["platform"], section["bare"]
        assert platform["steps"] == bare["steps"] == report["sizes"]["rloo_steps" if name == "rloo" else "steps"]
        assert platform["train_rows"] == bare["train_rows"] > 0 and platform["checkpoint"]
        assert platform["samples_per_s"] > 0 and bare["samples_per_s"] > 0 and section["floor"] == 0.95
        assert section["ratio"] == round(platform["samples_per_s"] / bare["samples_per_s"], 3)
        assert "peak_gpu_mib" in platform and platform["peak_gpu_mib"] is None  # no GPU here
    for name, prompts in (("generation_batch_1", 2), ("generation_batch_32", 32)):
        section = report[name]
        assert section["platform"]["prompts"] == section["bare"]["prompts"] == prompts
        assert section["platform"]["new_tokens"] == section["bare"]["new_tokens"] > 0
        assert section["identical_texts"] is True and section["floor"] == 0.9 and section["ratio"] > 0
    assert report["floors_met"] == all(report[name]["floor_met"] for name in SECTIONS)


def test_without_cuda_the_check_says_how_to_run_it_and_stops():
    done = check(timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith("no CUDA device: bench/gpu_check.py measures the platform on a GPU")
    assert "--smoke" in done.stderr
