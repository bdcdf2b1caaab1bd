"""The leaderboard end to end: head-to-head votes through feedback.interface, the selector over
policy checkpoints, the admin page and the API (who may see them, what they show)."""
import pytest
from django.test import Client

from feedback import interface
from tests.conftest import api_as
from tests.factories import ComparisonFactory, UserFactory, VoteFactory
from training import selectors
from training.models import Checkpoint, CheckpointKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def voter(db):
    return UserFactory(role="annotator")


def duel(voter, model_a: str, model_b: str, choice: str, *, source: str = "annotator"):
    """One comparison of ``model_a``'s completion (A) with ``model_b``'s (B), and one vote on it."""
    comparison = ComparisonFactory(completion_a__model_name=model_a, completion_b__model_name=model_b)
    return VoteFactory(comparison=comparison, annotator=voter, choice=choice, source=source)


@pytest.fixture
def world(voter, annotator, admin_user):
    smol = Checkpoint.objects.create(name="smol", hub_id="x/smol")
    dpo = Checkpoint.objects.create(name="smol-dpo", hub_id="x/smol-dpo", parent=smol)
    sft = Checkpoint.objects.create(name="smol-sft", hub_id="x/smol-sft", parent=smol)
    Checkpoint.objects.create(name="smol-rm", hub_id="x/smol-rm", kind=CheckpointKind.REWARD, parent=smol)
    # smol-dpo against smol, sides mixed: dpo wins 6, loses 2, one tie, one both-bad.
    for _ in range(3):
        duel(voter, "smol-dpo", "smol", "a")
        duel(voter, "smol", "smol-dpo", "b")
    duel(voter, "smol", "smol-dpo", "a")
    duel(voter, "smol-dpo", "smol", "b")
    duel(voter, "smol-dpo", "smol", "tie")
    duel(voter, "smol", "smol-dpo", "both_bad")
    duel(voter, "smol-sft", "smol", "a")
    # Not on the leaderboard: a reward checkpoint, an external model, a checkpoint against itself.
    duel(voter, "smol-rm", "smol", "a")
    duel(voter, "smol-dpo", "gpt-outside", "b", source="hh-rlhf")
    duel(voter, "smol", "smol", "a")
    return {
        "users": {"anonymous": None, "annotator": annotator, "admin": admin_user, "no_role": UserFactory()},
        "checkpoints": {"smol": smol, "dpo": dpo, "sft": sft},
    }


def client_as(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# --- the interface ------------------------------------------------------------------------------


def test_head_to_head_votes_lists_votes_between_different_models_by_id_in_one_query(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        votes = interface.head_to_head_votes()
    assert len(votes) == 13  # 10 + 1 between policies, 1 with the reward model, 1 external; not smol vs smol
    assert [v.vote_id for v in votes] == sorted(v.vote_id for v in votes)
    assert (votes[0].model_a, votes[0].model_b, votes[0].choice) == ("smol-dpo", "smol", "a")
    assert isinstance(votes[0], interface.HeadToHead)
    assert all(v.model_a != v.model_b for v in votes)


def test_head_to_head_votes_filters_by_model_names_and_source(world):
    policies = interface.head_to_head_votes(model_names=["smol", "smol-dpo", "smol-sft"])
    assert len(policies) == 11
    assert {frozenset((v.model_a, v.model_b)) for v in policies} == {frozenset({"smol", "smol-dpo"}), frozenset({"smol", "smol-sft"})}
    assert interface.head_to_head_votes(model_names=["smol-dpo"]) == []  # both sides must be listed
    assert interface.head_to_head_votes(model_names=[]) == []
    imported = interface.head_to_head_votes(sources=["hh-rlhf"])
    assert [(v.model_a, v.model_b, v.choice) for v in imported] == [("smol-dpo", "gpt-outside", "b")]
    assert len(interface.head_to_head_votes(sources=["annotator", "hh-rlhf"])) == 13


# --- the selector -------------------------------------------------------------------------------


def test_leaderboard_compute_rates_policy_checkpoints_only(world):
    board = selectors.leaderboard_compute(rounds=50)
    assert sorted(board.models) == ["smol", "smol-dpo", "smol-sft"]
    rows = {row.model: row for row in board.rows}
    assert (rows["smol-dpo"].votes, rows["smol-dpo"].wins, rows["smol-dpo"].losses, rows["smol-dpo"].ties) == (10, 6, 2, 2)
    assert (rows["smol"].votes, rows["smol"].wins, rows["smol"].losses, rows["smol"].ties) == (11, 2, 7, 2)
    assert board.win_rate["smol-dpo"]["smol"] == pytest.approx(0.7)
    assert board.pair_votes["smol"] == {"smol-dpo": 10, "smol-sft": 1}
    assert rows["smol-dpo"].rating > rows["smol"].rating
    assert selectors.leaderboard_compute(rounds=50) == board  # seeded


def test_leaderboard_compute_can_leave_both_bad_votes_out(world):
    board = selectors.leaderboard_compute(both_bad="exclude", rounds=20)
    dpo = next(row for row in board.rows if row.model == "smol-dpo")
    assert (dpo.votes, dpo.ties, board.both_bad_excluded) == (9, 1, 1)
    assert board.win_rate["smol-dpo"]["smol"] == pytest.approx(6.5 / 9)


# --- the page -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("anonymous", 302), ("annotator", 403), ("no_role", 403), ("admin", 200)])
def test_page_permissions(world, role, status):
    response = client_as(world["users"][role]).get("/manage/leaderboard/")
    assert response.status_code == status
    if role == "anonymous":
        assert response["Location"].startswith("/accounts/login/")


def test_page_shows_ratings_by_rank_with_links_counts_and_the_matrix(world):
    response = client_as(world["users"]["admin"]).get("/manage/leaderboard/")
    assert response.status_code == 200
    board = response.context["board"]
    assert [item["row"].model for item in response.context["rows"]] == board.models
    assert [item["row"].rank for item in response.context["rows"]] == sorted(row.rank for row in board.rows)
    page = response.content.decode()
    dpo_url = f'/manage/checkpoints/{world["checkpoints"]["dpo"].pk}/'
    assert f'<a href="{dpo_url}">smol-dpo</a>' in page
    dpo = next(row for row in board.rows if row.model == "smol-dpo")
    assert f"{dpo.rating:.0f}</td>" in page and f"{dpo.ci_low:.0f} – {dpo.ci_high:.0f}" in page
    assert "6 / 2 / 2" in page
    assert 'title="smol-dpo vs smol">70% <span class="hint">(10)</span>' in page
    assert 'title="smol vs smol-dpo">30% <span class="hint">(10)</span>' in page
    assert 'title="never compared"' in page  # smol-dpo and smol-sft never met
    assert "smol-rm" not in page and "gpt-outside" not in page
    assert "A both-bad vote counts as a tie" in page and "Leaderboard</a>" in page  # the note and the nav link


def test_page_can_leave_both_bad_out(world):
    response = client_as(world["users"]["admin"]).get("/manage/leaderboard/", {"both_bad": "exclude"})
    page = response.content.decode()
    assert response.context["board"].both_bad == "exclude"
    assert "Both-bad votes are left out (1 not counted)" in page
    assert "6 / 2 / 1" in page and '<option value="exclude" selected>' in page
    # An unknown mode falls back to counting both-bad votes as ties.
    assert client_as(world["users"]["admin"]).get("/manage/leaderboard/", {"both_bad": "x"}).context["board"].both_bad == "tie"


def test_page_without_votes_says_so(admin_user):
    Checkpoint.objects.create(name="smol", hub_id="x/smol")
    page = client_as(admin_user).get("/manage/leaderboard/").content.decode()
    assert "No votes between two policy checkpoints yet" in page
    assert 'id="win-rates"' not in page


def test_nav_link_only_for_admins(world):
    assert "/manage/leaderboard/" in client_as(world["users"]["admin"]).get("/manage/jobs/").content.decode()
    assert "/manage/leaderboard/" not in client_as(world["users"]["annotator"]).get("/annotate/").content.decode()


# --- the API ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("annotator", 403), ("no_role", 403), ("admin", 200)])
def test_api_permissions(world, role, status):
    assert api_as(world["users"][role]).get("/api/leaderboard/").status_code == status


def test_api_returns_the_leaderboard_with_checkpoint_ids(world):
    body = api_as(world["users"]["admin"]).get("/api/leaderboard/").json()
    expected = selectors.leaderboard_compute().as_dict()
    ids = {name: world["checkpoints"][key].pk for key, name in (("smol", "smol"), ("dpo", "smol-dpo"), ("sft", "smol-sft"))}
    assert [row["model"] for row in body["models"]] == [row["model"] for row in expected["models"]]
    for row, want in zip(body["models"], expected["models"]):
        assert row == {**want, "checkpoint_id": ids[row["model"]]}
    assert body["win_rate"]["smol-dpo"]["smol"] == pytest.approx(0.7)
    assert body["pair_votes"]["smol-dpo"] == {"smol": 10}
    assert (body["votes"], body["both_bad"], body["rounds"], body["connected"]) == (11, "tie", 200, True)


def test_api_both_bad_option_and_validation(world):
    client = api_as(world["users"]["admin"])
    body = client.get("/api/leaderboard/", {"both_bad": "exclude"}).json()
    assert (body["votes"], body["both_bad_excluded"]) == (10, 1)
    response = client.get("/api/leaderboard/", {"both_bad": "loss"})
    assert response.status_code == 400 and "both_bad" in response.json()


def test_api_schema_documents_the_leaderboard(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/leaderboard/"]["get"]
    assert [p["name"] for p in operation["parameters"]] == [
        "ai_weight", "both_bad", "category", "eval_set", "identity_leak", "models", "non_blind", "votes"]
    assert "200" in operation["responses"]


# --- external models (imported Chatbot Arena battles) ---------------------------------------------


@pytest.fixture
def arena(world, voter):
    # Imported battles between real model names (source "arena"), plus the world's duels: only
    # votes between two non-checkpoint models count on the external board.
    for _ in range(3):
        duel(voter, "gpt-4", "vicuna-13b", "a", source="arena")
    duel(voter, "vicuna-13b", "gpt-4", "a", source="arena")
    duel(voter, "claude-v1", "vicuna-13b", "tie", source="arena")
    duel(voter, "gpt-4", "gpt-4", "a", source="arena")
    return world


def test_the_external_board_rates_imported_models_and_no_checkpoint(arena):
    board = selectors.leaderboard_compute(models="external", rounds=50)
    assert sorted(board.models) == ["claude-v1", "gpt-4", "vicuna-13b"]  # not gpt-outside: it met a checkpoint
    rows = {row.model: row for row in board.rows}
    assert (rows["gpt-4"].votes, rows["gpt-4"].wins, rows["gpt-4"].losses) == (4, 3, 1)
    assert board.win_rate["gpt-4"]["vicuna-13b"] == pytest.approx(0.75)
    assert rows["gpt-4"].rating > rows["vicuna-13b"].rating
    assert sorted(selectors.leaderboard_compute(rounds=20).models) == ["smol", "smol-dpo", "smol-sft"]
    with pytest.raises(ValueError, match="unknown models"):
        selectors.leaderboard_compute(models="all")


def test_the_page_and_the_api_show_the_external_board(arena):
    response = client_as(arena["users"]["admin"]).get("/manage/leaderboard/", {"models": "external"})
    page = response.content.decode()
    assert response.status_code == 200 and '<option value="external" selected>' in page
    assert "<td>gpt-4</td>" in page and "smol-dpo" not in page and "<th>Model</th>" in page
    body = api_as(arena["users"]["admin"]).get("/api/leaderboard/", {"models": "external"}).json()
    assert [row["model"] for row in body["models"]][0] == "gpt-4"
    assert all(row["checkpoint_id"] is None for row in body["models"])
    response = api_as(arena["users"]["admin"]).get("/api/leaderboard/", {"models": "all"})
    assert response.status_code == 400 and "models" in response.json()


def test_the_external_board_without_imports_says_so(admin_user):
    page = client_as(admin_user).get("/manage/leaderboard/", {"models": "external"}).content.decode()
    assert "No votes between two external models yet" in page


def test_votes_by_admins_who_saw_model_names_are_left_out_and_counted_on_the_page(world):
    """A vote cast by someone who could see the model names (``blind`` False) does not rate the
    checkpoints unless asked for; the page and the API say how many were left out."""
    admin = world["users"]["admin"]
    for _ in range(3):  # three sighted votes for smol-sft over smol
        VoteFactory(comparison=ComparisonFactory(completion_a__model_name="smol-sft", completion_b__model_name="smol"),
                    annotator=admin, choice="a", blind=False)
    page = client_as(admin).get("/manage/leaderboard/")
    assert page.context["board"].non_blind_excluded == 3
    assert "3 votes by people who could see model names (admins) left out" in page.content.decode()
    sft_votes = {row.model: row.votes for row in page.context["board"].rows}["smol-sft"]
    assert sft_votes == 1  # only the blind vote
    counted = client_as(admin).get("/manage/leaderboard/", {"non_blind": "include"})
    assert {row.model: row.votes for row in counted.context["board"].rows}["smol-sft"] == 4
    assert counted.context["board"].non_blind_excluded == 0
    body = api_as(admin).get("/api/leaderboard/").json()
    assert body["non_blind_excluded"] == 3
    assert api_as(admin).get("/api/leaderboard/", {"non_blind": "include"}).json()["non_blind_excluded"] == 0
