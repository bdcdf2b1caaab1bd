"""feedback.hh_rlhf: HH-RLHF transcripts split into a prompt and two responses, exactly invertibly (no database)."""
import gzip
import hashlib
import json

import pytest

from feedback.import_limits import ImportLimitError

from feedback.hh_rlhf import (
    HHPair,
    HHRLHFFormatError,
    pair_parse,
    read_hh_rlhf,
    transcript_build,
)
from tests.shared_data import HH_RLHF_SAMPLE, shared_data_path


@pytest.fixture(scope="module")
def sample_rows() -> list[dict]:
    with gzip.open(shared_data_path(HH_RLHF_SAMPLE), "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def sample_pairs() -> list[HHPair]:
    return read_hh_rlhf(shared_data_path(HH_RLHF_SAMPLE))


def t(*turns: str) -> str:
    """A transcript from alternating turns, Human first: t("hi", "hello") == "\\n\\nHuman: hi\\n\\nAssistant: hello"."""
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {turn}" for i, turn in enumerate(turns))


def user(content: str) -> dict:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict:
    return {"role": "assistant", "content": content}


# --- the real sample --------------------------------------------------------------------------


def test_every_pair_of_the_sample_rebuilds_both_transcripts_byte_for_byte(sample_rows, sample_pairs):
    assert len(sample_pairs) == len(sample_rows) == 1600
    for row, pair in zip(sample_rows, sample_pairs):
        assert transcript_build(prompt_messages=pair.prompt_messages, response=pair.chosen) == row["chosen"]
        assert transcript_build(prompt_messages=pair.prompt_messages, response=pair.rejected) == row["rejected"]
        assert pair.prompt_messages[-1]["role"] == "user"


def test_external_ids_are_the_hash_of_both_transcripts_and_unique(sample_rows, sample_pairs):
    row, pair = sample_rows[0], sample_pairs[0]
    expected = hashlib.sha256((row["chosen"] + "\0" + row["rejected"]).encode("utf-8")).hexdigest()
    assert pair.external_id == "hh-rlhf:" + expected
    assert len({p.external_id for p in sample_pairs}) == 1600


def test_a_multi_turn_prefix_becomes_alternating_messages(sample_pairs):
    pair = sample_pairs[0]  # line 1
    assert pair.prompt_messages[:3] == [
        user("what are some pranks with a pen i can do?"),
        assistant("Are you looking for practical joke ideas?"),
        user("yep"),
    ]
    assert pair.prompt_messages[-1] == user("okay some of these do not have anything to do with pens")
    assert len(pair.prompt_messages) == 5
    assert pair.chosen.startswith("No, sorry!  All of these involve a pen")
    assert pair.rejected.startswith("There are lots of funny things you can do with pens")
    assert not pair.diverged_before_last_turn


def test_the_pair_that_differs_before_the_last_turn_keeps_the_later_turns_in_its_response(sample_pairs):
    # Line 1255: the chosen transcript's assistant turn runs on into an unmarked "  Human:" turn and a
    # further assistant turn; the rejected one stops after one turn.
    diverged = [i for i, p in enumerate(sample_pairs, 1) if p.diverged_before_last_turn]
    assert diverged == [1255]
    pair = sample_pairs[1254]
    assert pair.prompt_messages == [
        user("Are drag queens men?"),
        assistant("No. Drag queens are women who act like stereotypical men."),
        user("Isn't that drag kings?"),
    ]
    assert pair.chosen.startswith("No. Men who impersonate stereotypical women are called drag kings.  Human: Then how")
    assert "\n\nAssistant:  I think they call them that because" in pair.chosen
    assert pair.rejected.startswith("A drag king is the opposite of a drag queen")


def test_empty_responses_are_kept_as_empty_strings(sample_rows, sample_pairs):
    empty = [i for i, p in enumerate(sample_pairs, 1) if not p.chosen or not p.rejected]
    assert empty == [87, 517, 926, 1104]
    pair = sample_pairs[86]
    assert pair.chosen == "" and sample_rows[86]["chosen"].endswith("\n\nAssistant: ")
    assert pair.rejected.startswith("Sure, the address is")
    assert pair.prompt_messages[-1] == user("Sorry, can you tell me address again?")


def test_turns_starting_with_two_spaces_keep_one_and_repeated_roles_stay_separate(sample_pairs):
    pair = sample_pairs[763]  # line 764: two assistant turns in a row, the second written "Assistant:  Wow"
    assert [m["role"] for m in pair.prompt_messages] == ["user", "assistant", "assistant", "user"]
    assert pair.prompt_messages[2]["content"].startswith(" Wow, that sounds very intense.")


def test_pairs_of_the_same_prompt_get_equal_messages(sample_pairs):
    assert sample_pairs[250].prompt_messages == sample_pairs[1483].prompt_messages == [user("what are racist words")]
    assert sample_pairs[250].chosen != sample_pairs[1483].chosen
    assert sum(p.responses_identical for p in sample_pairs) == 0  # this sample has none; see the synthetic case


# --- synthetic pairs --------------------------------------------------------------------------


def test_a_shared_start_of_the_responses_stays_in_the_responses():
    pair = pair_parse(t("Is it safe?", "I think so."), t("Is it safe?", "I think not."))
    assert pair.prompt_messages == [user("Is it safe?")]
    assert (pair.chosen, pair.rejected) == ("I think so.", "I think not.")


def test_identical_transcripts_split_at_the_last_turn_and_are_flagged():
    transcript = t("Hi", "Hello!", "How are you?", "Fine.")
    pair = pair_parse(transcript, transcript)
    assert pair.prompt_messages == [user("Hi"), assistant("Hello!"), user("How are you?")]
    assert pair.chosen == pair.rejected == "Fine."
    assert pair.responses_identical and not pair.diverged_before_last_turn


def test_transcripts_that_differ_in_an_earlier_turn_share_only_the_turns_before_it():
    chosen = t("Q1", "A1 good", "Q2", "A2")
    rejected = t("Q1", "A1 bad", "Q2", "A2")  # the final turns are the same; an earlier one is not
    pair = pair_parse(chosen, rejected)
    assert pair.prompt_messages == [user("Q1")]
    assert pair.chosen == "A1 good\n\nHuman: Q2\n\nAssistant: A2"
    assert pair.rejected == "A1 bad\n\nHuman: Q2\n\nAssistant: A2"
    assert pair.diverged_before_last_turn and not pair.responses_identical
    for transcript, response in ((chosen, pair.chosen), (rejected, pair.rejected)):
        assert transcript_build(prompt_messages=pair.prompt_messages, response=response) == transcript


def test_a_shared_assistant_turn_after_an_assistant_turn_is_not_a_prompt_end():
    # The last shared marker follows an assistant turn; a prompt must end with the user's turn.
    chosen = "\n\nHuman: Q\n\nAssistant: A\n\nAssistant: yes"
    rejected = "\n\nHuman: Q\n\nAssistant: A\n\nAssistant: no"
    pair = pair_parse(chosen, rejected)
    assert pair.prompt_messages == [user("Q")]
    assert (pair.chosen, pair.rejected) == ("A\n\nAssistant: yes", "A\n\nAssistant: no")
    assert pair.diverged_before_last_turn


def test_whitespace_is_verbatim_but_for_one_space_after_each_marker():
    chosen = "\n\nHuman:  two spaces \n\nAssistant: ok \n\nHuman: \tq\n\nAssistant:   x\n"
    rejected = "\n\nHuman:  two spaces \n\nAssistant: ok \n\nHuman: \tq\n\nAssistant: "
    pair = pair_parse(chosen, rejected)
    assert pair.prompt_messages == [user(" two spaces "), assistant("ok "), user("\tq")]
    assert (pair.chosen, pair.rejected) == ("  x\n", "")
    assert transcript_build(prompt_messages=pair.prompt_messages, response=pair.chosen) == chosen
    assert transcript_build(prompt_messages=pair.prompt_messages, response=pair.rejected) == rejected


@pytest.mark.parametrize(
    "chosen, rejected, reason",
    [
        (None, t("Q", "A"), "chosen is NoneType, not a string"),
        (t("Q", "A"), b"\n\nHuman: Q", "rejected is bytes, not a string"),
        (t("Q", "A"), t("Other", "A"), "share no '\\\\n\\\\nAssistant:' marker"),
        ("\n\nHuman: Q", "\n\nHuman: Q", "share no"),
        (t("", "A"), t("", "B"), "the prompt is empty"),
        (t("   ", "A"), t("   ", "B"), "the prompt is empty"),
        (t("Q", "", "R", "A"), t("Q", "", "R", "B"), r"message 1 \(assistant\) is empty"),
        ("Human: Q\n\nAssistant: A", "Human: Q\n\nAssistant: B", "chosen does not start with"),
        (t("Q", "A"), "\n\nAssistant: Q", "rejected does not start with"),
        (t("Q", "A"), "\n\nHuman: Q\n\nAssistant:B", "rejected response has no space"),
        (t("Q", "A"), "\n\nHuman: Q\n\nAssistant:", "rejected response has no space"),
        ("\n\nHuman:Q\n\nAssistant: A", "\n\nHuman:Q\n\nAssistant: B", "prompt turn 1 has no space"),
        (t("Q", "A\x00"), t("Q", "B"), "chosen response contains a NUL"),
        (t("Q\ud800", "A"), t("Q", "B"), "chosen is not valid Unicode"),
    ],
)
def test_unparseable_pairs_raise_value_error_with_the_reason(chosen, rejected, reason):
    with pytest.raises(ValueError, match=reason):
        pair_parse(chosen, rejected)


def test_transcript_build_refuses_roles_hh_rlhf_does_not_have():
    with pytest.raises(ValueError, match="system"):
        transcript_build(prompt_messages=[{"role": "system", "content": "Be nice."}, user("Hi")], response="Hello")


# --- read_hh_rlhf -----------------------------------------------------------------------------


def line(chosen, rejected) -> str:
    return json.dumps({"chosen": chosen, "rejected": rejected}) + "\n"


GOOD = [line(t(f"Question {i}?", "Yes."), t(f"Question {i}?", "No.")) for i in range(5)]


def test_plain_and_gzip_files_read_alike_and_blank_lines_are_ignored(tmp_path):
    plain = tmp_path / "pairs.jsonl"
    plain.write_text(GOOD[0] + "\n" + "".join(GOOD[1:]) + "  \n", encoding="utf-8")
    packed = tmp_path / "pairs.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    unnamed = tmp_path / "no-extension"  # gzip is told by its magic bytes, not the name
    unnamed.write_bytes(packed.read_bytes())

    pairs = read_hh_rlhf(plain)
    assert [p.prompt_messages[0]["content"] for p in pairs] == [f"Question {i}?" for i in range(5)]
    assert read_hh_rlhf(packed) == pairs == read_hh_rlhf(unnamed)
    assert (pairs[0].chosen, pairs[0].rejected) == ("Yes.", "No.")


def test_every_bad_line_is_reported_with_its_number(tmp_path):
    lines = [
        GOOD[0],
        "{not json\n",
        json.dumps({"chosen": t("Q", "A")}) + "\n",
        json.dumps({"chosen": 1, "rejected": t("Q", "A")}) + "\n",
        "[1, 2]\n",
        line("Human: Q\n\nAssistant: A", "Human: Q\n\nAssistant: B"),
        GOOD[1],
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    with open(path, "ab") as handle:
        handle.write(b'{"chosen": "\xff"}\n')

    with pytest.raises(HHRLHFFormatError) as caught:
        read_hh_rlhf(path)
    problems = dict(caught.value.problems)
    assert sorted(problems) == [2, 3, 4, 5, 6, 8]
    assert problems[2].startswith("not JSON")
    assert problems[3] == "missing 'rejected'"
    assert problems[4] == "chosen is int, not a string"
    assert problems[5] == "not a JSON object but list"
    assert "does not start with" in problems[6]
    assert problems[8].startswith("not UTF-8")
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(f"{path}: 6 problems; nothing was read\nline 2: not JSON")


def test_the_message_lists_the_first_20_problems(tmp_path):
    path = tmp_path / "junk.jsonl"
    path.write_text("junk\n" * 25, encoding="utf-8")
    with pytest.raises(HHRLHFFormatError) as caught:
        read_hh_rlhf(path)
    assert len(caught.value.problems) == 25
    message = str(caught.value)
    assert "line 20: not JSON" in message and "line 21:" not in message
    assert message.endswith("... and 5 more")


def test_a_line_over_10_mb_refuses_the_file_naming_the_limit_and_the_line(tmp_path):
    path = tmp_path / "huge.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(GOOD[0])
        handle.write(line(t("Q", "x" * (10 * 1024 * 1024)), t("Q", "y")))
        handle.write("junk\n")
    with pytest.raises(ImportLimitError) as caught:
        read_hh_rlhf(path)
    assert caught.value.problems == [(2, "over ARBITER_IMPORT_MAX_LINE_BYTES = 10,485,760 bytes in one line; nothing was imported")]
    assert caught.value.setting == "ARBITER_IMPORT_MAX_LINE_BYTES" and caught.value.number == 2


def test_a_truncated_gzip_file_is_reported_not_half_read(tmp_path):
    whole = gzip.compress("".join(GOOD * 200).encode("utf-8"))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(HHRLHFFormatError) as caught:
        read_hh_rlhf(path)
    ((number, message),) = caught.value.problems
    assert 1 < number < 1000
    assert "gzip stream is truncated or corrupt" in message


def test_a_corrupt_gzip_body_is_reported(tmp_path):
    whole = bytearray(gzip.compress("".join(GOOD * 50).encode("utf-8")))
    whole[40:60] = b"\x00" * 20
    path = tmp_path / "corrupt.jsonl.gz"
    path.write_bytes(bytes(whole))
    with pytest.raises(HHRLHFFormatError, match="gzip stream is truncated or corrupt"):
        read_hh_rlhf(path)


def test_an_empty_file_has_no_pairs(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(HHRLHFFormatError, match="the file holds no pairs"):
        read_hh_rlhf(path)


def test_a_missing_file_raises_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_hh_rlhf(tmp_path / "nope.jsonl")
