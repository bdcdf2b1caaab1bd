"""Exports choose whose votes (issue 16, item 4): people's (default), AI judges', or both with AI
votes weighted in the aggregating formats; bad choices are field messages (form, API)."""
from __future__ import annotations

import uuid

import pytest

from feedback.exports.filters import ExportFilters
from feedback.exports.services import export_request_check, export_write
from feedback.models import Export
from feedback.preferences import RulesError
from tests.ai_vote_support import ai_vote
from tests.conftest import api_as
from tests.export_fixtures import export_world, jsonl_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """The export world plus two judges: both chose B on ``pair`` (people: a, a, b) and A on ``split``."""
    world = export_world()
    for judge in ("tiny@1", "other@2"):
        ai_vote(world.comparisons["pair"], "b", judge=judge)
        ai_vote(world.comparisons["split"], "a", judge=judge)
    return world


def _rows(tmp_path, fmt="trl-preference", **filters):
    request = export_request_check(format=fmt, file_type="jsonl", filters=filters, options=None)
    path = tmp_path / f"out-{uuid.uuid4().hex[:8]}.jsonl"
    export_write(request=request, path=path, salt=b"s" * 32)
    return jsonl_rows(path)


def _chosen(rows):
    return [row["chosen"][0]["content"] for row in rows]


def test_by_default_only_peoples_votes_are_exported(world, tmp_path):
    assert _chosen(_rows(tmp_path)) == ["Four.", "Paris.", "Ahoy, matey!"]
    raw = _rows(tmp_path, "raw-votes")
    assert len(raw) == 9 and not any(row["annotator"].startswith("judge:") for row in raw)


def test_ai_only_exports_the_judges_votes_under_their_names(world, tmp_path):
    assert _chosen(_rows(tmp_path, votes="ai")) == ["Five.", "Blue."]
    raw = _rows(tmp_path, "raw-votes", votes="ai")
    assert sorted({row["annotator"] for row in raw}) == ["judge:other@2", "judge:tiny@1"] and len(raw) == 4


def test_both_weighs_ai_votes(world, tmp_path):
    # pair: people a 2, b 1; judges b 2. Weight 1: b 3 > a 2. Weight 0.4: a 2 > b 1.8.
    assert _chosen(_rows(tmp_path, votes="both")) == ["Five.", "Paris.", "Ahoy, matey!", "Blue."]
    assert _chosen(_rows(tmp_path, votes="both", ai_weight=0.4)) == ["Four.", "Paris.", "Ahoy, matey!", "Blue."]
    # split: people a 1, b 1; judges a 2 * 0.5 -> a 2 > b 1, a row either way.
    assert "Blue." in _chosen(_rows(tmp_path, votes="both", ai_weight=0.5))
    # The detail path (raw votes) weighs nothing but writes every vote, people's and judges'.
    assert len(_rows(tmp_path, "raw-votes", votes="both", ai_weight=0.5)) == 13


def test_the_choice_round_trips_and_bad_values_name_the_field():
    both = ExportFilters.from_dict({"votes": "both", "ai_weight": 0.25})
    assert both.as_dict()["votes"] == "both" and ExportFilters.from_dict(both.as_dict()) == both
    assert "votes" not in ExportFilters.from_dict({}).as_dict()
    with pytest.raises(RulesError) as error:
        ExportFilters.from_dict({"votes": "people", "ai_weight": -1})
    assert set(error.value.errors) == {"votes", "ai_weight"}


def test_the_api_and_form_take_the_choice(world):
    api = api_as(world.users["admin"])
    bad = api.post("/api/exports/", {"format": "trl-preference", "file_type": "jsonl",
                                     "filters": {"votes": "both", "ai_weight": 2}}, format="json")
    assert bad.status_code == 400
    assert bad.json() == {"ai_weight": ["must be a number from 0 to 1 (the weight of an AI vote; a person's weighs 1)"]}
    good = api.post("/api/exports/", {"format": "trl-preference", "file_type": "jsonl",
                                      "filters": {"votes": "both", "ai_weight": 0.4}}, format="json")
    assert good.status_code == 201, good.json()
    assert good.json()["filters"]["votes"] == "both" and good.json()["row_count"] == 4
    from django.test import Client

    client = Client()
    client.force_login(world.users["admin"])
    response = client.post("/manage/exports/", {"format": "trl-preference", "file_type": "jsonl", "gold": "include",
                                                "votes": "human", "ai_weight": "0.5"})
    assert 'only with votes &quot;both&quot;' in response.content.decode()
    client.post("/manage/exports/", {"format": "trl-preference", "file_type": "jsonl", "gold": "include",
                                     "votes": "ai"})
    assert Export.objects.filter(filters__votes="ai").count() == 1
    page = client.get("/manage/exports/").content.decode()
    assert '<span class="hint" data-testid="export-votes">AI votes only</span>' in page


def test_the_command_takes_the_choice_and_says_what_is_wrong(world, tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("export_preferences", "--format", "trl-preference", "--file-type", "jsonl", "--votes", "ai",
                 "--output", str(tmp_path / "ai.jsonl"), stdout=out, stderr=StringIO())
    assert _chosen(jsonl_rows(tmp_path / "ai.jsonl")) == ["Five.", "Blue."]
    with pytest.raises(CommandError, match="ai_weight: must be a number from 0 to 1"):
        call_command("export_preferences", "--format", "trl-preference", "--file-type", "jsonl", "--votes", "both",
                     "--ai-weight", "7", "--output", str(tmp_path / "bad.jsonl"), stdout=StringIO(), stderr=StringIO())
