"""Person names for the personal-data scan, where a maintained recogniser can run offline:
presidio-analyzer over a local spaCy model, in a child process (``name_runner``).

``ARBITER_NAME_MODEL`` (a spaCy package name such as ``en_core_web_lg``, or a model folder) turns
names on; it is empty by default, since no spaCy language model can be installed from the package
registries (``python -m spacy download en_core_web_lg`` on a machine with network, then point the
setting at the package or at a folder copied from it). When it is unset or the model does not
load, ``name_recogniser_open`` raises ``NamesUnavailable`` with the one line the scan records
("names not scanned: ..."), instead of skipping names silently.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings

NOT_SCANNED = "names not scanned: "


class NamesUnavailable(Exception):
    """Names cannot be scanned; ``str()`` is one line starting ``names not scanned: ``."""

    def __init__(self, reason: str):
        super().__init__(NOT_SCANNED + reason)


def _looks_like_a_path(model: str) -> bool:
    return any(mark in model for mark in ("/", "\\")) or model.startswith((".", "~"))


def _precheck(model: str) -> str:
    """The model argument for the child (a folder made absolute), or NamesUnavailable without starting it."""
    if not model:
        raise NamesUnavailable("ARBITER_NAME_MODEL is not set (a spaCy model name or folder; see README, Data governance)")
    if importlib.util.find_spec("presidio_analyzer") is None:
        raise NamesUnavailable("presidio-analyzer is not installed")
    if _looks_like_a_path(model):
        folder = Path(model).expanduser()
        if not folder.is_dir():
            raise NamesUnavailable(f'ARBITER_NAME_MODEL "{model}" is not a folder')
        return str(folder.resolve())
    try:
        installed = importlib.util.find_spec(model) is not None
    except (ImportError, ValueError):
        installed = False
    if not installed:
        raise NamesUnavailable(f'no spaCy model "{model}" is installed (python -m spacy download {model}, or give a folder)')
    return model


class NameRecogniser:
    """A running ``name_runner`` child. Use ``name_recogniser_open``; close it (or use ``with``)."""

    def __init__(self, process: subprocess.Popen, stderr, description: str):
        self._process, self._stderr, self.description = process, stderr, description

    def spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """The person names in each text: ``[[(start, end), ...], ...]`` (character offsets, one list a text).

        Raises:
            RuntimeError: the child stopped (its last output in the message).
        """
        if not texts:
            return []
        try:
            self._process.stdin.write(json.dumps({"texts": list(texts)}) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise RuntimeError(f"the name recogniser stopped: {self._tail()}")
        return [[(start, end) for start, end in spans] for spans in json.loads(line)["spans"]]

    def _tail(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().strip().splitlines()
        return lines[-1][:300] if lines else f"exit code {self._process.poll()}"

    def close(self) -> None:
        """End the child (stdin closed: it exits; killed if it has not within 10 s)."""
        if self._process.stdin and not self._process.stdin.closed:
            try:
                self._process.stdin.close()
            except OSError:
                pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> NameRecogniser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def name_recogniser_open(model: str | None = None) -> NameRecogniser:
    """Start the recogniser on ``model`` (default ``settings.ARBITER_NAME_MODEL``) and wait until it is loaded.

    Returns: the running recogniser (``description``: what it loaded, in words).
    Raises:
        NamesUnavailable: unset, presidio-analyzer missing, no such model or folder, a model that
            does not load or tags no person names; one line, e.g. ``names not scanned:
            ARBITER_NAME_MODEL is not set (...)``.
    """
    argument = _precheck((settings.ARBITER_NAME_MODEL if model is None else model).strip())
    stderr = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "feedback.governance.name_runner", argument], cwd=settings.BASE_DIR,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, encoding="utf-8",
    )
    recogniser = NameRecogniser(process, stderr, description="")
    first = process.stdout.readline()
    try:
        message = json.loads(first) if first else {"error": f"the recogniser stopped: {recogniser._tail()}"}
    except json.JSONDecodeError:
        message = {"error": f"the recogniser said {first.strip()[:200]!r}"}
    if "ready" not in message:
        recogniser.close()
        raise NamesUnavailable(message.get("error", "the recogniser did not start"))
    recogniser.description = message["ready"]
    return recogniser
