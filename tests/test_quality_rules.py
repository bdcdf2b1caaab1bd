"""Quality rules in snapshots and exports (issue 15 items 5 and 7): low-gold, low-kappa and flagged
annotators and fast votes left out and counted by reason; Dawid-Skene labels instead of majority."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from feedback import interface, snapshots
from feedback.models import SnapshotVote, Vote
from feedback.quality.selectors import bias_for
from feedback.quality.rules import quality_notes
from tests.factories import ComparisonFactory, UserFactory, VoteFactory
from tests.quality_support import votes_seed
from tests.test_training_runs import world  # noqa: F401  (fixture for the reward form test)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def arbiter_data(settings, tmp_path) -> Path:
    settings.ARBITER_DATA_DIR = tmp_path
    return tmp_path


def used_annotators(snapshot) -> set[int]:
    return {frozen["annotator"] for frozen in SnapshotVote.objects.filter(snapshot=snapshot).values_list("frozen", flat=True)}


def votes_of(user) -> int:
    return Vote.objects.filter(annotator=user).count()


def read_rows(snapshot) -> list[dict]:
    train, _ = snapshots.snapshot_paths(snapshot)
    return [json.loads(line) for line in train.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def gold_voted():
    """Six gold items (answer a) and six plain ones. ``good1``/``good2`` answer a everywhere;
    ``bad`` answers b on every gold item (0 of 6) and a elsewhere; ``newbie`` gets both of their
    two gold votes wrong (too few to judge with min_gold_votes=5)."""
    users = {name: UserFactory(username=name, role="annotator") for name in ("good1", "good2", "bad", "newbie")}
    gold = [ComparisonFactory(gold_choice="a") for _ in range(6)]
    plain = [ComparisonFactory() for _ in range(6)]
    for comparison in gold + plain:
        for name in ("good1", "good2"):
            VoteFactory(comparison=comparison, annotator=users[name], choice="a")
        VoteFactory(comparison=comparison, annotator=users["bad"], choice="b" if comparison in gold else "a")
    for comparison in gold[:2]:
        VoteFactory(comparison=comparison, annotator=users["newbie"], choice="b")
    return users


def test_min_gold_accuracy_leaves_out_the_low_gold_annotator_and_counts_their_votes(gold_voted):
    snapshot = snapshots.snapshot_create(rules={"min_gold_accuracy": 0.7, "min_gold_votes": 5})
    assert snapshot.counts["left_out_low_gold"] == votes_of(gold_voted["bad"]) == 12
    assert gold_voted["bad"].pk not in used_annotators(snapshot)
    assert gold_voted["newbie"].pk in used_annotators(snapshot)  # 2 gold votes: not judged
    assert snapshot.rules["min_gold_accuracy"] == 0.7
    assert "12 votes left out: annotators below the gold accuracy threshold" in quality_notes(snapshot.counts)
    # Without the rule nothing is left out and the counts keep their old keys.
    plain = snapshots.snapshot_create(rules={})
    assert "left_out_low_gold" not in plain.counts and "min_gold_accuracy" not in plain.rules
    assert gold_voted["bad"].pk in used_annotators(plain)


def test_min_gold_votes_zero_judges_the_newbie_too(gold_voted):
    snapshot = snapshots.snapshot_create(rules={"min_gold_accuracy": 0.7, "min_gold_votes": 0})
    assert snapshot.counts["left_out_low_gold"] == votes_of(gold_voted["bad"]) + votes_of(gold_voted["newbie"])


@pytest.fixture
def seeded():
    campaign = ComparisonFactory().campaign
    Vote.objects.all().delete()
    return votes_seed(campaign, items=60, honest=4)


def test_min_kappa_leaves_out_the_random_annotator_and_keeps_the_honest(seeded):
    snapshot = snapshots.snapshot_create(rules={"min_kappa": 0.3})
    used = used_annotators(snapshot)
    assert seeded["clicker"].pk not in used
    assert all(seeded[f"honest{i}"].pk in used for i in range(4))
    left_out = [user for user in seeded.values() if user.pk not in used]
    assert snapshot.counts["left_out_low_kappa"] == sum(votes_of(user) for user in left_out)


def test_exclude_flagged_leaves_out_the_always_left_annotator(seeded):
    flagged = {row["annotator"] for row in bias_for()["per_annotator"] if row["flags"]}
    assert seeded["lefty"].pk in flagged and seeded["honest0"].pk not in flagged
    snapshot = snapshots.snapshot_create(rules={"exclude_flagged": True})
    assert snapshot.counts["left_out_flagged_annotator"] == Vote.objects.filter(annotator_id__in=flagged).count()
    assert seeded["lefty"].pk not in used_annotators(snapshot)
    assert seeded["honest0"].pk in used_annotators(snapshot)


def test_min_ms_on_item_leaves_out_only_the_fast_votes(seeded):
    snapshot = snapshots.snapshot_create(rules={"min_ms_on_item": 1000})
    assert snapshot.counts["left_out_fast_votes"] == votes_of(seeded["speedy"]) == 60
    assert seeded["speedy"].pk not in used_annotators(snapshot)
    assert seeded["lefty"].pk in used_annotators(snapshot)


@pytest.fixture
def fooled():
    """20 comparisons; truth is a on the first 10 and b on the rest. Three careful annotators give
    the truth; four spammers always answer a, so majority says a everywhere."""
    careful = [UserFactory(username=f"careful{i}", role="annotator") for i in range(3)]
    spammers = [UserFactory(username=f"spammer{i}", role="annotator") for i in range(4)]
    comparisons = [ComparisonFactory() for _ in range(20)]
    for n, comparison in enumerate(comparisons):
        truth = "a" if n < 10 else "b"
        for user in careful:
            VoteFactory(comparison=comparison, annotator=user, choice=truth)
        for user in spammers:
            VoteFactory(comparison=comparison, annotator=user, choice="a")
    return {"careful": careful, "spammers": spammers, "comparisons": comparisons}


def test_dawid_skene_follows_the_careful_annotators_and_counts_the_differences(fooled):
    majority = snapshots.snapshot_create(rules={})
    ds = snapshots.snapshot_create(rules={"aggregation": "dawid_skene"})
    b_won = {c.pk: c.completion_b.text for c in fooled["comparisons"][10:]}

    def chosen(snapshot):
        return {row["comparison_id"]: row["chosen"][0]["content"] for row in read_rows(snapshot)}

    assert all(chosen(majority)[pk] != text for pk, text in b_won.items())
    assert all(chosen(ds)[pk] == text for pk, text in b_won.items())
    assert ds.counts["dawid_skene_differs"] == 10
    assert "10 comparisons labelled differently by Dawid-Skene than by majority" in quality_notes(ds.counts)
    reliability = ds.counts["annotator_reliability"]
    assert min(reliability[str(u.pk)] for u in fooled["careful"]) > max(reliability[str(u.pk)] for u in fooled["spammers"])
    assert "annotator_reliability" not in majority.counts
    ref = interface.snapshot_create(rules={"aggregation": "dawid_skene"})
    assert ref.counts["dawid_skene_differs"] == 10


@pytest.mark.parametrize("rules, field, message", [
    ({"min_gold_accuracy": 1.5}, "min_gold_accuracy", "must be a number from 0 to 1"),
    ({"min_kappa": -0.1}, "min_kappa", "must be a number from 0 to 1"),
    ({"min_gold_votes": -1}, "min_gold_votes", "at least 0"),
    ({"min_ms_on_item": -5}, "min_ms_on_item", "at least 0"),
    ({"aggregation": "mean"}, "aggregation", "must be one of majority, dawid_skene"),
    ({"exclude_flagged": "yes"}, "exclude_flagged", "must be true or false"),
])
def test_bad_quality_rules_are_refused_with_the_field_named(rules, field, message):
    with pytest.raises(ValidationError) as caught:
        snapshots.rules_parse(rules)
    [text] = caught.value.message_dict["rules"]
    assert text.startswith(f"{field}:") and message in text


# --- exports with the same rules ---------------------------------------------------------------


def export_with(tmp_path, filters):
    from feedback.exports.services import export_request_check, export_write

    request = export_request_check(format="raw-votes", file_type="jsonl", filters=filters)
    path = tmp_path / f"out-{len(list(tmp_path.iterdir()))}.jsonl"
    _, counts = export_write(request=request, path=path, salt=b"s" * 32)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()], counts


def test_an_export_with_min_gold_accuracy_leaves_out_and_counts_the_low_gold_votes(gold_voted, tmp_path):
    everything, plain_counts = export_with(tmp_path, {})
    rows, counts = export_with(tmp_path, {"min_gold_accuracy": 0.7, "min_gold_votes": 5})
    assert counts["left_out_low_gold"] == 12
    assert len(everything) - len(rows) == 12
    assert "left_out_low_gold" not in plain_counts


def test_an_export_leaves_out_fast_votes_and_low_kappa_annotators(seeded, tmp_path):
    everything, _ = export_with(tmp_path, {})
    rows, counts = export_with(tmp_path, {"min_ms_on_item": 1000})
    assert counts["left_out_fast_votes"] == 60 and len(everything) - len(rows) == 60
    snapshot = snapshots.snapshot_create(rules={"min_kappa": 0.3})
    rows, counts = export_with(tmp_path, {"min_kappa": 0.3})
    assert counts["left_out_low_kappa"] == snapshot.counts["left_out_low_kappa"]
    assert len(everything) - len(rows) == counts["left_out_low_kappa"]


def test_an_export_by_dawid_skene_follows_the_careful_annotators_and_counts_the_differences(fooled, tmp_path):
    from feedback.exports.services import export_request_check, export_write

    b_won = {c.completion_b.text for c in fooled["comparisons"][10:]}
    for filters, chosen_b, differs in (({}, 0, None), ({"aggregation": "dawid_skene"}, 10, 10)):
        request = export_request_check(format="trl-preference", file_type="jsonl", filters=filters)
        path = tmp_path / f"pairs-{chosen_b}.jsonl"
        _, counts = export_write(request=request, path=path, salt=b"s" * 32)
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert len(rows) == 20
        assert sum(row["chosen"][0]["content"] in b_won for row in rows) == chosen_b
        assert counts.get("dawid_skene_differs") == differs


def test_an_export_with_exclude_flagged_matches_the_snapshot(seeded, tmp_path):
    snapshot = snapshots.snapshot_create(rules={"exclude_flagged": True})
    _, counts = export_with(tmp_path, {"exclude_flagged": True})
    assert counts["left_out_flagged_annotator"] == snapshot.counts["left_out_flagged_annotator"] >= 60


@pytest.mark.parametrize("filters, field, words", [
    ({"min_gold_accuracy": 2}, "min_gold_accuracy", "from 0 to 1"),
    ({"min_gold_votes": -3}, "min_gold_votes", "at least 0"),
    ({"min_ms_on_item": 1.5}, "min_ms_on_item", "whole number"),
    ({"aggregation": "mean"}, "aggregation", "must be one of majority, dawid_skene"),
])
def test_bad_export_quality_filters_are_field_errors(filters, field, words):
    from feedback.exports.services import export_create

    with pytest.raises(ValidationError) as caught:
        export_create(format="raw-votes", file_type="jsonl", filters=filters)
    assert words in " ".join(caught.value.message_dict[field])


def test_the_exports_page_says_how_many_votes_the_quality_filters_left_out(gold_voted, settings, tmp_path):
    from django.test import Client

    from feedback.exports.services import export_create

    settings.ARBITER_DATA_DIR = tmp_path / "data"
    admin = UserFactory(username="boss", role="admin")
    export_create(format="trl-preference", file_type="jsonl", filters={"min_gold_accuracy": 0.7}, created_by=admin,
                  mode="inline")
    client = Client()
    client.force_login(admin)
    page = client.get("/manage/exports/").content.decode()
    assert "12 votes left out: annotators below the gold accuracy threshold" in page


def test_the_run_page_names_what_the_quality_rules_left_out(gold_voted):
    snapshot = snapshots.snapshot_create(rules={"min_gold_accuracy": 0.7})
    ref = interface.snapshot_get(snapshot_id=snapshot.pk)
    assert ref.quality_notes == ["12 votes left out: annotators below the gold accuracy threshold"]


# --- the reward run form --------------------------------------------------------------------------


def test_the_reward_form_sends_the_quality_rules_and_shows_bad_thresholds_by_field(world, django_capture_on_commit_callbacks):
    from tests.test_training_runs import REWARD_FORM, client_as, field_error
    from training.models import Job

    admin = client_as(world["admin"])
    page = admin.get("/manage/train/reward/").content.decode()
    assert 'name="min_gold_accuracy"' in page and 'value="dawid_skene"' in page
    bad = admin.post("/manage/train/reward/", {**REWARD_FORM, "min_gold_accuracy": "1.5", "min_gold_votes": "5"})
    assert bad.status_code == 400
    assert "must be a number from 0 to 1" in field_error(bad.content.decode(), "min_gold_accuracy")
    assert Job.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post("/manage/train/reward/", {
            **REWARD_FORM, "aggregation": "dawid_skene", "min_ms_on_item": "500", "min_gold_votes": "5"})
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.snapshot.rules["aggregation"] == "dawid_skene" and job.snapshot.rules["min_ms_on_item"] == 500
    assert "min_gold_votes" not in job.snapshot.rules  # only with a gold threshold
    assert "dawid_skene_differs" in job.snapshot.counts


def test_when_the_quality_rules_leave_nothing_the_refusal_says_why(gold_voted):
    with pytest.raises(ValidationError) as caught:
        snapshots.snapshot_create(rules={
            "min_gold_accuracy": 0.7, "min_gold_votes": 0,
            "exclude_annotators": [gold_voted["good1"].pk, gold_voted["good2"].pk]})
    [text] = caught.value.message_dict["snapshot"]
    assert text.endswith("all 38 votes are left out: 24 by excluded annotators and "
                         "14 by annotators below the gold accuracy threshold")


def test_the_run_page_says_how_many_votes_the_gold_rule_left_out(world, gold_voted, django_capture_on_commit_callbacks):
    from tests.test_training_runs import REWARD_FORM, client_as
    from training.models import Job

    admin = client_as(world["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post("/manage/train/reward/", {**REWARD_FORM, "min_gold_accuracy": "0.7", "min_gold_votes": "5"})
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.snapshot.counts["left_out_low_gold"] == 12
    page = admin.get(f"/manage/jobs/{job.pk}/").content.decode()
    assert "12 votes left out: annotators below the gold accuracy threshold" in page
