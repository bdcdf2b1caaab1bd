"""Generation stops where a turn ends: a reply that goes on to write the next turn is cut and flagged.

The model is the tiny Llama ``tiny-x`` with a forward hook that forces, row by row, the tokens of a
scripted reply (``Script``), so ``model.generate`` runs for real (its stopping criteria included)
while what the "model" writes is known: a reply that writes a fake ``\\n\\nHuman:`` turn, one that
ends its turn properly, and one that runs to the length limit.
"""
from __future__ import annotations

import io

import pytest
import torch
from django.core.management import CommandError, call_command
from django.test import Client

from feedback.models import Completion
from tests.factories import PromptFactory
from training.config import DEFAULT_STOP_STRINGS
from training.models import Checkpoint, Job, JobKind, JobStatus
from training.services import checkpoint_register, generation_job_create

MARKER_REPLY = "Paris is the capital.\n\nHuman: And Germany?\n\nAssistant: Berlin."
ENDED_REPLY = "Hello! How can I help?<|im_end|>"
FILLER = "word"  # a script goes on with " word" once it has run out
LIMIT = 24


@pytest.fixture(scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Script:
    """A forward hook making a causal LM write ``replies[row % len(replies)]``, token by token.

    Each forward call of one ``generate`` is one step (the first is the prompt's); the hook replaces
    the last position's logits with a one-hot choice of the row's next scripted token.
    """

    def __init__(self, tokenizer, replies: list[str]):
        self.tokens = [tokenizer.encode(reply, add_special_tokens=False) for reply in replies]
        [self.filler] = tokenizer.encode(" " + FILLER, add_special_tokens=False)
        self.step = 0
        self.calls = 0

    def __call__(self, module, args, output):
        logits = output.logits
        forced = torch.full_like(logits[:, -1, :], -1e9)
        for row in range(logits.shape[0]):
            script = self.tokens[row % len(self.tokens)]
            forced[row, script[self.step] if self.step < len(script) else self.filler] = 0.0
        logits[:, -1, :] = forced
        self.step += 1
        self.calls += 1
        return output

    def restart(self) -> None:
        self.step = 0


def scripted(policy, replies: list[str]) -> Script:
    script = Script(policy.tokenizer, replies)
    policy.model.register_forward_hook(script)
    return script


def policy_with(model_store, stop_strings, replies):
    from training.runners.loading import policy_load

    policy = policy_load("tiny-x", str(model_store.data_dir / "checkpoints" / "tiny-x"), stop_strings=stop_strings)
    return policy, scripted(policy, replies)


def generate(policy, script, count: int, **options):
    from training.runners.generation import sample_batch

    script.restart()
    settings = {"max_new_tokens": LIMIT, "temperature": 0, "top_p": 1.0, "seed": 0, **options}
    conversations = [[{"role": "user", "content": f"Question {i}?"}] for i in range(count)]
    return [samples[0] for samples in sample_batch(policy, conversations, **settings)]


# --- sample_batch ---------------------------------------------------------------------------------


def test_a_reply_that_writes_the_next_turn_is_cut_before_the_marker_and_flagged(model_store, one_torch_thread):
    policy, script = policy_with(model_store, DEFAULT_STOP_STRINGS, [MARKER_REPLY, ENDED_REPLY, FILLER + " " + FILLER])
    tokenizer = policy.tokenizer
    cut, ended, running = generate(policy, script, 3)

    assert cut.text == "Paris is the capital."
    assert (cut.truncated_at_role_marker, cut.is_truncated) == (True, False)
    # Tokens generated through the marker's last token ("Human", ":"), not the rest of the batch's run.
    through_marker = tokenizer.encode("Paris is the capital.\n\nHuman:", add_special_tokens=False)
    assert cut.new_tokens == len(through_marker)
    # Replies without a marker are untouched: one ends its turn, one runs to the limit.
    assert (ended.text, ended.truncated_at_role_marker, ended.is_truncated) == ("Hello! How can I help?", False, False)
    assert (running.truncated_at_role_marker, running.is_truncated, running.new_tokens) == (False, True, LIMIT)
    assert running.text == " ".join([FILLER] * LIMIT)


def test_a_stop_string_stops_generation_early(model_store, one_torch_thread):
    """Alone in its batch, the marker reply's ``generate`` ends at the marker, not at the limit."""
    policy, script = policy_with(model_store, DEFAULT_STOP_STRINGS, [MARKER_REPLY])
    [cut] = generate(policy, script, 1)
    assert cut.truncated_at_role_marker
    assert script.calls == cut.new_tokens < LIMIT


def test_the_stop_string_criteria_is_built_once_per_policy_and_stops_every_batch(model_store, one_torch_thread, monkeypatch):
    """Building it reads the whole vocabulary: once per loaded policy, not once per batch."""
    from transformers import StopStringCriteria

    from training.runners import generation

    built = []

    class Counted(StopStringCriteria):
        def __init__(self, **kwargs):
            built.append(kwargs["stop_strings"])
            super().__init__(**kwargs)

    monkeypatch.setattr(generation, "StopStringCriteria", Counted)
    policy, script = policy_with(model_store, DEFAULT_STOP_STRINGS, [MARKER_REPLY])
    for batch in range(3):
        calls = script.calls
        [cut] = generate(policy, script, 1)
        assert cut.truncated_at_role_marker and script.calls - calls == cut.new_tokens < LIMIT, batch
    assert built == [list(DEFAULT_STOP_STRINGS)]


def test_a_marker_that_ends_inside_a_token_still_cuts_the_text_before_it(model_store, one_torch_thread):
    policy, script = policy_with(model_store, ["\n\nHu"], [MARKER_REPLY])  # "Human" is one token
    [cut] = generate(policy, script, 1)
    assert (cut.text, cut.truncated_at_role_marker) == ("Paris is the capital.", True)
    assert cut.new_tokens == len(policy.tokenizer.encode("Paris is the capital.\n\nHuman", add_special_tokens=False))


def test_a_marker_that_is_a_special_token_is_matched_by_its_id(model_store, one_torch_thread):
    """``<|im_start|>`` vanishes from the decoded text, so it is stopped on as a token."""
    policy, script = policy_with(model_store, ["<|im_start|>"], ["Sure thing.<|im_start|>user\nAnother question?"])
    [cut] = generate(policy, script, 1)
    assert (cut.text, cut.truncated_at_role_marker, cut.is_truncated) == ("Sure thing.", True, False)
    assert script.calls == cut.new_tokens == len(policy.tokenizer.encode("Sure thing.<|im_start|>", add_special_tokens=False))


def test_without_stop_strings_the_reply_is_kept_whole(model_store, one_torch_thread):
    policy, script = policy_with(model_store, [], [MARKER_REPLY])
    [whole] = generate(policy, script, 1, max_new_tokens=64)
    assert whole.text.startswith(MARKER_REPLY) and not whole.truncated_at_role_marker


def test_two_samples_of_one_prompt_are_cut_each_on_its_own(model_store, one_torch_thread):
    from training.runners.generation import sample_batch

    policy, script = policy_with(model_store, DEFAULT_STOP_STRINGS, [MARKER_REPLY, ENDED_REPLY])
    [[first, second]] = sample_batch(
        policy, [[{"role": "user", "content": "Hi"}]], max_new_tokens=LIMIT, temperature=1.0, top_p=1.0, seed=0,
        num_samples=2,
    )
    assert (first.text, first.truncated_at_role_marker) == ("Paris is the capital.", True)
    assert (second.text, second.truncated_at_role_marker) == ("Hello! How can I help?", False)


# --- whole jobs: stored completions, the summary, the job page --------------------------------------


@pytest.fixture
def scripted_loading(monkeypatch):
    """Every policy a generation job loads writes the given replies (``replies[name]``)."""
    from training.runners import generation

    real = generation.checkpoint_policy_load
    replies: dict[str, list[str]] = {}

    def load(checkpoint):
        policy = real(checkpoint)
        scripted_policy = scripted(policy, replies[checkpoint.name])
        original = policy.model.generate

        def generate_from_the_start(*args, **kwargs):
            scripted_policy.restart()
            return original(*args, **kwargs)

        policy.model.generate = generate_from_the_start
        return policy

    monkeypatch.setattr(generation, "checkpoint_policy_load", load)
    return replies


@pytest.mark.django_db
def test_a_generation_job_stores_cut_completions_flagged_and_counts_them(tiny_checkpoints, scripted_loading, one_torch_thread):
    from training.runners.generation import run_generation
    from training.runners.progress import Reporter

    scripted_loading["tiny-x"] = [MARKER_REPLY, ENDED_REPLY]  # per prompt: sample 0 writes a fake turn
    prompts = PromptFactory.create_batch(3)
    job = generation_job_create(config={
        "checkpoints": ["tiny-x"], "max_new_tokens": LIMIT, "batch_size": 2, "temperature": 1.0, "top_p": 1.0,
    })
    summary = run_generation(job, Reporter(job.pk))

    completions = Completion.objects.filter(generation_params__job=job.pk)
    assert completions.count() == 6
    for prompt in prompts:
        cut = completions.get(prompt=prompt, generation_params__sample_index=0)
        kept = completions.get(prompt=prompt, generation_params__sample_index=1)
        assert (cut.text, cut.truncated_at_role_marker, cut.is_truncated) == ("Paris is the capital.", True, False)
        assert (kept.text, kept.truncated_at_role_marker, kept.is_truncated) == ("Hello! How can I help?", False, False)
        assert cut.generation_params["stop_strings"] == list(DEFAULT_STOP_STRINGS)
    assert not completions.filter(text__contains="Human:").exists()
    assert (summary["truncated_at_role_marker"], summary["truncated"], summary["paired"]) == (3, 0, 3)
    job.refresh_from_db()
    assert job.summary["truncated_at_role_marker"] == 3  # the progress summary of the last batch


@pytest.mark.django_db
def test_the_loops_new_versus_parent_job_cuts_with_each_checkpoints_own_markers(data_dir, scripted_loading, one_torch_thread):
    """The loop's follow-up is a head_to_head generation job; a trained checkpoint inherits its
    parent's stop strings, and each side is cut by them."""
    from training.runners.generation import run_generation
    from training.runners.progress import Reporter

    parent = checkpoint_register(name="tiny-x", weights_dir="checkpoints/tiny-x", stop_strings=["\n\nUser:"])
    child = checkpoint_register(name="tiny-x-dpo", weights_dir="checkpoints/tiny-y", parent=parent)
    assert child.stop_strings == ["\n\nUser:"]
    scripted_loading["tiny-x-dpo"] = ["Fine, thanks.\n\nUser: And you?"]
    scripted_loading["tiny-x"] = ["Not bad.\n\nHuman: Great."]  # not one of its markers: kept whole
    PromptFactory.create_batch(2)
    job = generation_job_create(config={
        "checkpoints": ["tiny-x-dpo", "tiny-x"], "strategy": "head_to_head", "temperature": 0, "max_new_tokens": 12,
    })
    summary = run_generation(job, Reporter(job.pk))
    new = Completion.objects.filter(model_name="tiny-x-dpo")
    old = Completion.objects.filter(model_name="tiny-x")
    assert set(new.values_list("text", "truncated_at_role_marker")) == {("Fine, thanks.", True)}
    assert all(text.startswith("Not bad.\n\nHuman: Great.") for text in old.values_list("text", flat=True))
    assert not old.filter(truncated_at_role_marker=True).exists()
    assert summary["truncated_at_role_marker"] == 2


@pytest.mark.django_db
def test_the_job_page_shows_how_many_completions_were_cut_at_a_role_marker(admin_user):
    job = Job.objects.create(
        kind=JobKind.GENERATION, status=JobStatus.SUCCEEDED, config={"checkpoints": ["x"]},
        summary={"prompts": 4, "paired": 3, "completions": 8, "truncated": 1, "truncated_at_role_marker": 2},
    )
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/manage/jobs/{job.pk}/").content.decode()
    assert "completions cut at a role marker" in page
    row = page[page.index("completions cut at a role marker"):]
    assert row[:row.index("</tr>")].rstrip().endswith("2</td>")


# --- per-checkpoint configuration ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_checkpoint_page_shows_its_stop_strings_with_visible_escapes(admin_user, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    checkpoint = Checkpoint.objects.create(name="hh-policy", hub_id="x/hh")
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/manage/checkpoints/{checkpoint.pk}/").content.decode()
    section = page[page.index('id="stop-strings"'):]
    assert "<code>\\n\\nHuman:</code>, <code>\\n\\nAssistant:</code>" in section[:section.index("</dd>")]
    assert f"/admin/training/checkpoint/{checkpoint.pk}/change/" in section[:section.index("</dd>")]


@pytest.mark.django_db
def test_the_admin_edits_stop_strings_and_refuses_a_bad_list_saving_nothing(admin_user, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    checkpoint = Checkpoint.objects.create(name="hh-policy", hub_id="x/hh")
    client = Client()
    client.force_login(admin_user)
    url = f"/admin/training/checkpoint/{checkpoint.pk}/change/"
    assert client.get(url).status_code == 200

    response = client.post(url, {"stop_strings": '["\\n\\n"]', "_save": "Save"})
    assert response.status_code == 200
    assert "whitespace only" in response.content.decode()
    checkpoint.refresh_from_db()
    assert checkpoint.stop_strings == list(DEFAULT_STOP_STRINGS)

    response = client.post(url, {"stop_strings": '["\\n\\nUser:", "<|im_start|>"]', "_save": "Save"})
    assert response.status_code == 302
    checkpoint.refresh_from_db()
    assert checkpoint.stop_strings == ["\n\nUser:", "<|im_start|>"]
    assert client.get("/admin/training/checkpoint/add/").status_code == 403


@pytest.mark.django_db
def test_checkpoint_register_refuses_unusable_stop_strings(data_dir):
    from django.core.exceptions import ValidationError

    for bad, words in ((["x"] * 2, "twice"), ("\n\nHuman:", "must be a list"), ([" "], "whitespace only"), ([7], "only strings")):
        with pytest.raises(ValidationError) as caught:
            checkpoint_register(name="tiny-x", weights_dir="checkpoints/tiny-x", stop_strings=bad)
        assert words in caught.value.message_dict["stop_strings"][0]
    assert not Checkpoint.objects.exists()
    assert checkpoint_register(name="tiny-x", weights_dir="checkpoints/tiny-x", stop_strings=[]).stop_strings == []


def import_error(*args) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("import_model", *args, stdout=io.StringIO())
    message = str(caught.value)
    assert message.strip() and "\n" not in message.strip(), message
    return message


@pytest.mark.django_db
def test_import_model_takes_stop_strings_as_json_and_refuses_bad_ones_in_one_line(model_store, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    source = str(model_store.tiny_source)
    assert "is not JSON" in import_error("--path", source, "--stop-strings", "\\n\\nHuman:")
    assert "--stop-strings lists a stop string twice" in import_error("--path", source, "--stop-strings", '["a", "a"]')
    assert not Checkpoint.objects.exists() and not (tmp_path / "checkpoints").exists()

    call_command("import_model", "--path", source, "--name", "hh", "--stop-strings", '["\\n\\nUser:"]', stdout=io.StringIO())
    assert Checkpoint.objects.get(name="hh").stop_strings == ["\n\nUser:"]
    assert "already imported with stop strings" in import_error("--path", source, "--name", "hh", "--stop-strings", "[]")
    call_command("import_model", "--path", source, "--name", "plain", stdout=io.StringIO())
    assert Checkpoint.objects.get(name="plain").stop_strings == list(DEFAULT_STOP_STRINGS)
