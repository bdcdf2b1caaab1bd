"""manage.py import_model on untrusted folders: a pickle that would run code and a model that needs
its own Python code are each refused in one line, nothing runs, and nobody is asked at the terminal."""
from __future__ import annotations

import io
import json
import os
import pickle

import pytest
from django.core.management import CommandError, call_command

from training.models import Checkpoint

pytestmark = pytest.mark.django_db


def tiny_model_folder(directory):
    """A 1-layer Llama (hidden 8) with a 4-word tokenizer, saved as a Hugging Face folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({"[UNK]": 0, "[PAD]": 1, "a": 2, "b": 3}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    config = LlamaConfig(vocab_size=4, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)
    LlamaForCausalLM(config).save_pretrained(directory)
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(directory)


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def no_questions(monkeypatch):
    asked = []
    monkeypatch.setattr("builtins.input", lambda *args: asked.append(args) or "y")
    return asked


def refusal(settings, tmp_path, folder) -> str:
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    with pytest.raises(CommandError) as caught:
        call_command("import_model", "--path", str(folder), stdout=io.StringIO())
    message = str(caught.value)
    assert message.strip() and "\n" not in message.strip(), message
    assert not Checkpoint.objects.exists()
    assert not (tmp_path / "data" / "checkpoints" / folder.name).exists()
    return message


def test_pickled_weights_that_would_run_code_are_refused_in_one_line(settings, tmp_path, no_questions):
    folder = tmp_path / "pickled"
    tiny_model_folder(folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    marker = tmp_path / "code-ran"
    with open(folder / "pytorch_model.bin", "wb") as handle:
        pickle.dump({"model.embed_tokens.weight": RunsCode(marker)}, handle)
    message = refusal(settings, tmp_path, folder)
    assert "pickle" in message and "safetensors" in message
    assert not marker.exists()


def test_a_model_that_needs_its_own_code_is_refused_without_asking(settings, tmp_path, no_questions):
    folder = tmp_path / "custom"
    tiny_model_folder(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="arbiter_custom", auto_map={
        "AutoConfig": "modeling_custom.CustomConfig", "AutoModelForCausalLM": "modeling_custom.CustomModel",
    })
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "code-ran"
    (folder / "modeling_custom.py").write_text(
        f"import os\nos.mkdir({str(marker)!r})\n"
        "from transformers import LlamaConfig as CustomConfig, LlamaForCausalLM as CustomModel\n"
    )
    message = refusal(settings, tmp_path, folder)
    assert "trust_remote_code=False" in message
    assert no_questions == [] and not marker.exists()
