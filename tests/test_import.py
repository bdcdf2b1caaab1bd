"""feedback.imports.hh_rlhf_import and ``manage.py import_hh_rlhf``: HH-RLHF pairs as complete, voted comparisons."""
import gzip
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from feedback import services
from feedback.hh_rlhf import HHRLHFFormatError, pair_parse, read_hh_rlhf, transcript_build
from feedback.imports import chosen_is_a, hh_rlhf_import
from feedback.messages import messages_sha256
from feedback.models import Comparison, ComparisonStatus, Completion, Prompt, Vote
from feedback.roles import is_annotator, is_feedback_admin
from tests.factories import PromptFactory, UserFactory
from tests.shared_data import HH_RLHF_SAMPLE, shared_data_path

pytestmark = pytest.mark.django_db


@pytest.fixture
def sample():
    return shared_data_path(HH_RLHF_SAMPLE)


@pytest.fixture
def sample_lines(sample) -> list[str]:
    with gzip.open(sample, "rt", encoding="utf-8") as handle:
        return handle.readlines()


def write_gz(path, lines: list[str]):
    path.write_bytes(gzip.compress("".join(lines).encode("utf-8")))
    return path


def nothing_written():
    return (Prompt.objects.count(), Completion.objects.count(), Comparison.objects.count(), Vote.objects.count()) == (0, 0, 0, 0)


def test_the_sample_imports_as_complete_comparisons_voted_for_the_chosen_response(sample, sample_lines):
    summary = hh_rlhf_import(path=sample, allow_flagged=True)

    assert summary.as_dict() == {
        "lines": 1600, "imported": 1600, "already_present": 0, "duplicate_lines": 0, "identical_responses": 0,
        "refused": 0, "flagged": 1, "diverged_before_last_turn": 1, "prompts_created": 1598, "prompts_reused": 0,
    }
    # The one pair whose transcripts differ before the last turn (line 1255) is marked.
    assert list(Comparison.objects.exclude(import_flags="").values_list("import_flags", flat=True)) == [
        "diverged_before_last_turn"
    ]
    assert (Prompt.objects.count(), Completion.objects.count(), Comparison.objects.count(), Vote.objects.count()) == (
        1598, 3200, 1600, 1600,
    )
    assert set(Completion.objects.values_list("model_name", flat=True)) == {"hh-rlhf"}
    assert set(Prompt.objects.values_list("source", flat=True)) == {"hh-rlhf"}
    assert set(Comparison.objects.values_list("status", "vote_count", "votes_required", "priority")) == {
        (ComparisonStatus.COMPLETE, 1, 1, 0)
    }
    # Nothing was shown to anyone, so no side is recorded.
    assert set(Vote.objects.values_list("source", "strength", "shown_left", "annotator__username")) == {
        ("hh-rlhf", "", "", "hh-rlhf")
    }
    # The chosen response is A for some pairs and B for others, and the vote always points at it:
    # the stored rows give back both original transcripts byte for byte.
    choices = list(Vote.objects.values_list("choice", flat=True))
    assert 600 < choices.count("a") < 1000 and choices.count("a") + choices.count("b") == 1600
    by_id = {c.external_id: c for c in Comparison.objects.select_related("prompt", "completion_a", "completion_b")}
    votes = dict(Vote.objects.values_list("comparison_id", "choice"))
    for line in sample_lines:
        row = json.loads(line)
        pair = pair_parse(row["chosen"], row["rejected"])
        comparison = by_id[pair.external_id]
        chosen, rejected = (
            (comparison.completion_a, comparison.completion_b)
            if votes[comparison.id] == "a" else (comparison.completion_b, comparison.completion_a)
        )
        assert transcript_build(prompt_messages=comparison.prompt.messages, response=chosen.text) == row["chosen"]
        assert transcript_build(prompt_messages=comparison.prompt.messages, response=rejected.text) == row["rejected"]
        assert (votes[comparison.id] == "a") == chosen_is_a(external_id=pair.external_id)
    # The four empty chosen responses are stored empty and flagged.
    assert Completion.objects.filter(is_empty=True).count() == 4


def test_the_system_user_cannot_log_in_and_is_never_an_annotator(sample):
    hh_rlhf_import(path=sample, limit=5)
    user = get_user_model().objects.get(username="hh-rlhf")
    assert not user.is_active and not user.has_usable_password()
    assert not user.groups.exists()
    assert not is_annotator(user) and not is_feedback_admin(user)


def test_imported_comparisons_are_never_served_to_annotators(sample, annotator):
    hh_rlhf_import(path=sample, limit=20)
    assert services.assignment_claim(annotator=annotator) is None


def test_importing_again_adds_nothing(sample):
    hh_rlhf_import(path=sample, limit=50)
    counts = (Prompt.objects.count(), Completion.objects.count(), Comparison.objects.count(), Vote.objects.count())

    again = hh_rlhf_import(path=sample, limit=50)

    assert again.as_dict() == {
        "lines": 50, "imported": 0, "already_present": 50, "duplicate_lines": 0, "identical_responses": 0,
        "refused": 0, "flagged": 0, "diverged_before_last_turn": 0, "prompts_created": 0, "prompts_reused": 0,
    }
    assert (Prompt.objects.count(), Completion.objects.count(), Comparison.objects.count(), Vote.objects.count()) == counts
    assert get_user_model().objects.filter(username="hh-rlhf").count() == 1


def test_offset_and_limit_pick_a_range_and_prompts_of_earlier_imports_are_reused(sample):
    # Lines 251 and 1484 ask the same question ("what are racist words"); 1263 and 1453 share one too.
    first = hh_rlhf_import(path=sample, limit=300)
    assert (first.lines, first.imported, first.prompts_created) == (300, 300, 300)

    second = hh_rlhf_import(path=sample, offset=1400, limit=100)

    assert (second.lines, second.imported, second.already_present) == (100, 100, 0)
    assert (second.prompts_created, second.prompts_reused) == (99, 1)
    assert Prompt.objects.count() == 399 and Comparison.objects.count() == 400
    racist = Prompt.objects.get(messages=[{"role": "user", "content": "what are racist words"}])
    assert racist.comparisons.count() == 2

    overlapping = hh_rlhf_import(path=sample, offset=250, limit=100)
    assert (overlapping.imported, overlapping.already_present) == (50, 50)
    assert hh_rlhf_import(path=sample, offset=5000).as_dict()["lines"] == 0


def test_an_existing_prompt_with_the_same_messages_is_reused_and_keeps_its_split(sample):
    pair = read_hh_rlhf(sample)[0]
    existing = PromptFactory(messages=pair.prompt_messages, split="eval", source="mine")

    summary = hh_rlhf_import(path=sample, limit=1, split="train")

    assert (summary.prompts_created, summary.prompts_reused) == (0, 1)
    comparison = Comparison.objects.get()
    assert comparison.prompt_id == existing.id
    existing.refresh_from_db()
    assert (existing.split, existing.source) == ("eval", "mine")


def test_split_is_by_prompt_hash_unless_given(sample):
    hh_rlhf_import(path=sample, limit=400)
    for prompt in Prompt.objects.all():
        assert prompt.messages_sha256 == messages_sha256(prompt.messages)
        expected = "eval" if int(prompt.messages_sha256[:8], 16) / 2**32 < 0.1 else "train"
        assert prompt.split == expected
    eval_share = Prompt.objects.filter(split="eval").count() / Prompt.objects.count()
    assert 0.05 < eval_share < 0.15

    def splits_of_new_prompts(**kwargs) -> set[str]:
        before = set(Prompt.objects.values_list("id", flat=True))
        hh_rlhf_import(path=sample, limit=100, **kwargs)
        return set(Prompt.objects.exclude(id__in=before).values_list("split", flat=True))

    assert splits_of_new_prompts(offset=400, split="eval") == {"eval"}
    assert splits_of_new_prompts(offset=500, eval_fraction=1.0) == {"eval"}
    assert splits_of_new_prompts(offset=600, eval_fraction=0.0) == {"train"}


def test_duplicate_lines_count_once_and_identical_responses_are_skipped(tmp_path, sample_lines):
    transcript = "\n\nHuman: Same?\n\nAssistant: Same."
    identical = json.dumps({"chosen": transcript, "rejected": transcript}) + "\n"
    path = write_gz(tmp_path / "dups.jsonl.gz", [sample_lines[0], sample_lines[1], sample_lines[0], identical, sample_lines[0]])

    summary = hh_rlhf_import(path=path)

    assert summary.as_dict() == {
        "lines": 5, "imported": 2, "already_present": 0, "duplicate_lines": 2, "identical_responses": 1,
        "refused": 0, "flagged": 0, "diverged_before_last_turn": 0, "prompts_created": 2, "prompts_reused": 0,
    }
    assert Comparison.objects.count() == 2 and Vote.objects.count() == 2


def test_a_bad_line_3_imports_nothing_and_is_named(tmp_path, sample_lines):
    lines = sample_lines[:10]
    lines[2] = '{"chosen": "\\n\\nHuman: hi\\n\\nAssistant: hello"}\n'
    path = write_gz(tmp_path / "bad.jsonl.gz", lines)

    with pytest.raises(HHRLHFFormatError) as caught:
        hh_rlhf_import(path=path)

    assert caught.value.problems == [(3, "missing 'rejected'")]
    assert "line 3: missing 'rejected'" in str(caught.value)
    assert nothing_written()
    assert not get_user_model().objects.filter(username="hh-rlhf").exists()


def test_a_truncated_gzip_file_imports_nothing(tmp_path, sample):
    data = sample.read_bytes()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(HHRLHFFormatError, match="truncated or corrupt"):
        hh_rlhf_import(path=path)
    assert nothing_written()


@pytest.mark.parametrize(
    "kwargs", [{"split": "test"}, {"eval_fraction": 1.5}, {"eval_fraction": -0.1}, {"offset": -1}, {"limit": -1}]
)
def test_bad_arguments_are_refused_before_reading(tmp_path, kwargs):
    with pytest.raises(ValueError):
        hh_rlhf_import(path=tmp_path / "not-read.jsonl", **kwargs)


def test_a_real_account_named_hh_rlhf_is_not_taken_over(sample):
    UserFactory(username="hh-rlhf", role="annotator")
    with pytest.raises(ValueError, match="can log in"):
        hh_rlhf_import(path=sample, limit=3)
    assert nothing_written()


# --- the command ------------------------------------------------------------------------------


def test_the_command_prints_the_summary(sample):
    out = io.StringIO()
    call_command("import_hh_rlhf", str(sample), "--limit", "10", "--split", "eval", stdout=out)
    assert out.getvalue().splitlines() == [
        "10 pairs read: 10 imported, 0 already present, 0 with identical responses (skipped), 0 duplicate lines",
        "0 differ before the last turn",
        "prompts: 10 created, 0 reused",
    ]
    assert set(Prompt.objects.values_list("split", flat=True)) == {"eval"}

    out = io.StringIO()
    call_command("import_hh_rlhf", str(sample), "--offset", "5", "--limit", "10", "--eval-fraction", "0", stdout=out)
    assert out.getvalue().splitlines()[0].startswith("10 pairs read: 5 imported, 5 already present")


def test_the_command_fails_with_the_line_numbers_and_writes_nothing(tmp_path, sample_lines):
    lines = sample_lines[:5]
    lines[2] = "{oops\n"
    lines[4] = json.dumps({"chosen": 1, "rejected": 2}) + "\n"
    path = write_gz(tmp_path / "bad.jsonl.gz", lines)

    with pytest.raises(CommandError) as caught:
        call_command("import_hh_rlhf", str(path))

    message = str(caught.value).splitlines()
    assert message[0] == f"{path}: 2 problems; nothing was read"
    assert message[1].startswith("line 3: not JSON")
    assert message[2] == "line 5: chosen is int, not a string"
    assert nothing_written()


def test_the_command_reports_a_missing_file_and_bad_options(tmp_path):
    with pytest.raises(CommandError, match="cannot read .*nope.jsonl: No such file"):
        call_command("import_hh_rlhf", str(tmp_path / "nope.jsonl"))
    with pytest.raises(CommandError, match="eval_fraction must be a number from 0 to 1"):
        call_command("import_hh_rlhf", str(tmp_path / "nope.jsonl"), "--eval-fraction", "2")
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("import_hh_rlhf", str(tmp_path / "nope.jsonl"), "--split", "test")
