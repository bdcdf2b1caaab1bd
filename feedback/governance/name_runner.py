"""The name recogniser's child process: ``python -m feedback.governance.name_runner MODEL``.

Loads presidio-analyzer's analyzer with one recogniser only, ``SpacyRecognizer`` for ``PERSON``,
over the spaCy pipeline ``MODEL`` (an installed package name such as ``en_core_web_lg``, or a
folder written by ``nlp.to_disk``); no other presidio recogniser is built, so nothing else loads.
Runs in a child process (``feedback.governance.names``) because a language model is a model: the
web process and the worker never load one. torch and transformers are kept out of the child
(``main`` marks them absent; presidio and spaCy's thinc import them only if present): only
``training/runners`` imports torch, and the child starts in seconds. So spaCy's statistical
pipelines (``en_core_web_sm``/``md``/``lg``) work and its transformer ones (``_trf``) do not.
Nothing here reaches the network: a model that is neither an installed package nor a folder is
refused before presidio's ``SpacyNlpEngine.load`` could try to download it, and the one
presidio recogniser built (``SpacyRecognizer``) needs nothing else (its e-mail recogniser's
tldextract, which may fetch a suffix list, is never built).

Protocol, one JSON object a line. First out: ``{"ready": "<what is loaded>"}`` or
``{"error": "<one line>"}`` (then exit 1). Then, for each ``{"texts": [str, ...]}`` in, one
``{"spans": [[[start, end], ...], ...]}`` out: the person names in each text, as character spans.
No Django import.
"""
from __future__ import annotations

import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ENTITY = "PERSON"
PERSON_LABELS = {"PERSON", "PER"}  # presidio's default mapping of spaCy labels to PERSON


class NameModelError(Exception):
    """The model cannot be used for names (message: one readable line)."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def _meta(model: str) -> dict:
    """The model's ``meta.json`` (lang, name, version) without loading it; ``{}`` when unreadable."""
    import spacy

    try:
        path = Path(model) if Path(model).is_dir() else spacy.util.get_package_path(model)
        return spacy.util.load_meta(path / "meta.json")
    except Exception:  # a meta we cannot read: the language defaults to English
        return {}


def analyzer_load(model: str):
    """``(analyze, description)``: ``analyze(text) -> [(start, end), ...]`` and what was loaded, in words.

    Raises:
        NameModelError: presidio-analyzer or spaCy missing, no such model, a model that does not
            load, or one with no person-name label.
    """
    os.environ.setdefault("PRESIDIO_DEVICE", "cpu")  # no CUDA probe: names are tagged on the CPU
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer
    except ImportError as error:
        raise NameModelError(f"presidio-analyzer is not installed ({_first_line(error)})") from None
    if not (Path(model).is_dir() or spacy.util.is_package(model)):
        raise NameModelError(f'no spaCy model "{model}": not an installed package nor a folder')
    meta = _meta(model)
    lang = meta.get("lang") or "en"
    engine = SpacyNlpEngine(models=[{"lang_code": lang, "model_name": model}])
    try:
        engine.load()
    except Exception as error:
        raise NameModelError(f'spaCy model "{model}" did not load: {_first_line(error)}') from None
    labels = {label for _, pipe_labels in engine.nlp[lang].pipe_labels.items() for label in pipe_labels}
    if not labels & PERSON_LABELS:
        raise NameModelError(f'spaCy model "{model}" tags no person names (no PERSON or PER entity label)')
    registry = RecognizerRegistry(recognizers=[SpacyRecognizer(supported_language=lang, supported_entities=[ENTITY])],
                                  supported_languages=[lang])
    analyzer = AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=[lang])

    def analyze(text: str) -> list[tuple[int, int]]:
        if not text.strip():
            return []
        return sorted((r.start, r.end) for r in analyzer.analyze(text=text, language=lang, entities=[ENTITY]))

    try:
        presidio = version("presidio-analyzer")
    except PackageNotFoundError:
        presidio = "?"
    package = f" ({lang}_{meta['name']} {meta.get('version', '?')})" if meta.get("name") else ""
    return analyze, f'spaCy model "{model}"{package} through presidio-analyzer {presidio}'


KEPT_OUT = ("torch", "transformers")


def main(argv: list[str]) -> int:
    for name in KEPT_OUT:  # ``import torch`` raises ImportError from here on: both libraries treat it as absent
        sys.modules.setdefault(name, None)
    if len(argv) != 2:
        print(json.dumps({"error": "usage: python -m feedback.governance.name_runner MODEL"}), flush=True)
        return 2
    try:
        analyze, description = analyzer_load(argv[1])
    except NameModelError as error:
        print(json.dumps({"error": str(error)}), flush=True)
        return 1
    print(json.dumps({"ready": description}), flush=True)
    for line in sys.stdin:
        texts = json.loads(line)["texts"]
        print(json.dumps({"spans": [analyze(text) for text in texts]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
