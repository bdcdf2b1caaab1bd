"""Identity leaks (issue 15 item 4): responses that reveal which model wrote them are flagged at
creation in every path, again when the pattern list changes, and by annotators; votes on flagged
comparisons leave the leaderboard by default (counted); admins manage the list on a page, the API
and a command; annotators never see any of it."""
from __future__ import annotations

import io
import random

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_tasks_db.models import DBTaskResult

from feedback import interface, services
from feedback.identity import services as identity
from feedback.identity.models import IdentityMatch, IdentityPattern, IdentityScan
from feedback.imports import trl_preferences_import
from feedback.interface import CandidatePair, GeneratedText
from feedback.models import Comparison, SkipReason
from tests.conftest import api_as
from tests.factories import AssignmentFactory, ComparisonFactory, CompletionFactory, PromptFactory, UserFactory, VoteFactory
from tests.import_files import assistant, user, write_jsonl
from training import selectors as training_selectors
from training.models import Checkpoint

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
LEAK = "Sure. As an AI developed by a big lab, I think Paris."


def client_as(person) -> Client:
    client = Client()
    if person is not None:
        client.force_login(person)
    return client


def pattern(text: str, kind: str = "word", scope: str = "", active: bool = True) -> IdentityPattern:
    """A pattern written directly (no re-scan queued)."""
    return IdentityPattern.objects.create(text=text, kind=kind, scope=scope, active=active)


def flagged_ids() -> set[int]:
    return set(Comparison.objects.filter(identity_leak=True).values_list("pk", flat=True))


def pair_of(text_a: str, text_b: str, *, model_a: str = "model-a", model_b: str = "model-b") -> Comparison:
    return ComparisonFactory(completion_a__text=text_a, completion_a__model_name=model_a,
                             completion_b__text=text_b, completion_b__model_name=model_b)


# --- flagged at creation --------------------------------------------------------------------------
def test_the_seeded_defaults_flag_a_comparison_created_by_the_service():
    prompt = PromptFactory()
    a = CompletionFactory(prompt=prompt, text=LEAK)
    b = CompletionFactory(prompt=prompt, text="Paris.")
    comparison = services.comparison_create(completion_a=a, completion_b=b)
    comparison.refresh_from_db()
    assert comparison.identity_leak and not comparison.identity_leak_annotator
    assert [p.text for p in IdentityPattern.objects.filter(matches__comparison=comparison)] == ["as an AI developed by"]


def test_a_clean_pair_is_not_flagged():
    prompt = PromptFactory()
    comparison = services.comparison_create(completion_a=CompletionFactory(prompt=prompt, text="Paris."),
                                            completion_b=CompletionFactory(prompt=prompt, text="It is Paris."))
    comparison.refresh_from_db()
    assert not comparison.identity_leak


def test_inline_creation_flags_and_a_scoped_pattern_applies_to_its_model_only():
    pattern("Smolly", scope="smol-dpo")
    leaked = services.comparison_create_inline(
        prompt={"messages": [{"role": "user", "content": "Who are you?"}]},
        completion_a={"model_name": "smol-dpo", "text": "I am Smolly."}, completion_b={"model_name": "smol", "text": "A bot."},
    )
    other_model = services.comparison_create_inline(
        prompt={"messages": [{"role": "user", "content": "Who?"}]},
        completion_a={"model_name": "smol", "text": "I am Smolly."}, completion_b={"model_name": "x", "text": "A bot."},
    )
    assert flagged_ids() == {leaked.pk} and other_model.pk not in flagged_ids()


def test_the_loops_generated_pairs_are_flagged_in_bulk():
    prompts = PromptFactory.create_batch(3)
    made = lambda text, model: GeneratedText(model, text)  # noqa: E731
    pairs = [CandidatePair(prompts[0].id, made("I'm Claude, hello.", "p1"), made("Hello.", "p0")),
             CandidatePair(prompts[1].id, made("Four.", "p1"), made("It is 4.", "p0")),
             CandidatePair(prompts[2].id, made("Yes.", "p1"), made("I am ChatGPT: yes.", "p0"))]
    assert interface.pairs_record(pairs=pairs, rng=random.Random(1)).paired == 3
    assert set(Comparison.objects.filter(identity_leak=True).values_list("prompt_id", flat=True)) == {prompts[0].id, prompts[2].id}


def test_a_bulk_import_flags_its_leaking_pairs(tmp_path):
    rows = [{"prompt": [user(f"Question {n}?")], "chosen": [assistant(text)], "rejected": [assistant(f"No {n}.")]}
            for n, text in enumerate(["Fine.", LEAK, "As a large language model trained by someone, yes."])]
    trl_preferences_import(path=write_jsonl(tmp_path / "prefs.jsonl", rows))
    leaking = Comparison.objects.filter(identity_leak=True)
    assert sorted(leaking.values_list("prompt__messages", flat=True), key=str) == [
        [user("Question 1?")], [user("Question 2?")]]


# --- retroactive, annotators ----------------------------------------------------------------------
def test_adding_a_pattern_queues_a_rescan_that_flags_old_comparisons(django_capture_on_commit_callbacks, admin_user):
    old = pair_of("Greetings from Zorblax.", "Hello.")
    clean = pair_of("Hi.", "Hello there.")
    with django_capture_on_commit_callbacks(execute=True):
        created = identity.identity_pattern_create(values={"text": "zorblax"}, created_by=admin_user)
    scan = IdentityScan.objects.get()
    assert DBTaskResult.objects.get().args_kwargs["args"] == [scan.pk] and flagged_ids() == set()
    scan = identity.identity_rescan_run(scan_id=scan.pk)
    assert (scan.status, scan.scanned, scan.total, scan.flagged, scan.percent) == ("succeeded", 2, 2, 1, 100)
    assert flagged_ids() == {old.pk} and clean.pk not in flagged_ids()
    assert IdentityMatch.objects.filter(pattern=created).count() == 1


def test_a_second_request_reuses_the_waiting_scan():
    first, queued = identity.identity_rescan_request(reason="one")
    second, again = identity.identity_rescan_request(reason="two")
    assert queued and not again and first.pk == second.pk


def test_deactivating_a_pattern_unflags_what_it_alone_flagged_and_keeps_annotator_flags(annotator):
    zorb = pattern("zorblax")
    other = pattern("quuxbot")
    only_zorb = pair_of("I am zorblax.", "Hi.")
    both = pair_of("zorblax and quuxbot", "Hi.")
    annotated = pair_of("zorblax here", "Hi.")
    identity.identity_rescan_run()
    AssignmentFactory(annotator=annotator, comparison=annotated)
    services.assignment_skip(annotator=annotator, comparison_id=annotated.pk, reason=SkipReason.IDENTITY_LEAK)
    assert flagged_ids() == {only_zorb.pk, both.pk, annotated.pk}

    identity.identity_pattern_deactivate(pattern=zorb)

    assert flagged_ids() == {both.pk, annotated.pk}
    assert not IdentityMatch.objects.filter(pattern=zorb).exists()
    identity.identity_rescan_run()  # a later scan keeps the annotator's flag and leaves the inactive pattern out
    assert flagged_ids() == {both.pk, annotated.pk} and other.active


def test_editing_a_pattern_drops_its_old_matches_and_rescans():
    zorb = pattern("zorblax")
    old = pair_of("zorblax", "Hi.")
    new = pair_of("quuxbot", "Hi.")
    identity.identity_rescan_run()
    identity.identity_pattern_update(pattern=zorb, values={"text": "quuxbot"})
    assert flagged_ids() == set()
    identity.identity_rescan_run(scan_id=IdentityScan.objects.filter(status="queued").get().pk)
    assert flagged_ids() == {new.pk} and old.pk not in flagged_ids()


def test_an_annotators_identity_leak_skip_flags_the_comparison_other_reasons_do_not(annotator):
    leak, broken = AssignmentFactory(annotator=annotator), AssignmentFactory(annotator=annotator)
    services.assignment_skip(annotator=annotator, comparison_id=leak.comparison_id, reason="identity_leak")
    services.assignment_skip(annotator=annotator, comparison_id=broken.comparison_id, reason="broken")
    assert flagged_ids() == {leak.comparison_id}
    assert Comparison.objects.get(pk=leak.comparison_id).identity_leak_annotator


# --- the leaderboard ------------------------------------------------------------------------------
@pytest.fixture
def board_world(admin_user):
    for name in ("smol", "smol-dpo"):
        Checkpoint.objects.create(name=name, hub_id=f"x/{name}")
    voter = UserFactory(role="annotator")
    for n in range(3):
        VoteFactory(comparison=pair_of(f"Fine {n}.", f"Ok {n}.", model_a="smol-dpo", model_b="smol"), annotator=voter)
    leaky = pair_of("I'm Claude.", "Ok.", model_a="smol", model_b="smol-dpo")
    VoteFactory(comparison=leaky, annotator=voter, choice="a")
    identity.identity_rescan_run()
    return leaky


def test_the_leaderboard_leaves_out_votes_on_flagged_comparisons_and_counts_them(board_world):
    board = training_selectors.leaderboard_compute(rounds=10)
    assert (board.votes, board.identity_leak_excluded) == (3, 1)
    counted = training_selectors.leaderboard_compute(rounds=10, include_identity_leak=True)
    assert (counted.votes, counted.identity_leak_excluded) == (4, 0)


def test_the_leaderboard_page_says_how_many_were_left_out_and_can_count_them(board_world, admin_user):
    page = client_as(admin_user).get("/manage/leaderboard/")
    assert "1 vote on comparisons flagged as revealing which model wrote a response left out" in page.content.decode()
    assert "from 3 human votes" in page.content.decode()
    page = client_as(admin_user).get("/manage/leaderboard/?identity_leak=include")
    assert "from 4 human votes" in page.content.decode()
    assert "flagged as revealing which model wrote a response are counted" in page.content.decode()


def test_the_leaderboard_api_leaves_them_out_unless_asked(board_world, admin_user):
    data = api_as(admin_user).get("/api/leaderboard/").json()
    assert (data["votes"], data["identity_leak_excluded"]) == (3, 1)
    data = api_as(admin_user).get("/api/leaderboard/?identity_leak=include").json()
    assert (data["votes"], data["identity_leak_excluded"]) == (4, 0)
    assert api_as(admin_user).get("/api/leaderboard/?identity_leak=maybe").status_code == 400


# --- the admin page -------------------------------------------------------------------------------
def test_the_page_lists_patterns_with_their_counts(admin_user):
    zorb = pattern("zorblax")
    pair_of("zorblax", "Hi.")
    identity.identity_rescan_run()
    page = client_as(admin_user).get("/manage/identity/")
    row = page.content.decode().split(f'data-testid="pattern-{zorb.pk}"')[1].split("</tr>")[0]
    assert "zorblax" in row and f"identity_pattern={zorb.pk}\">1</a>" in row
    assert "as an AI developed by" in page.content.decode()  # a seeded default
    assert "succeeded" in page.content.decode()  # the latest scan


@pytest.mark.parametrize("htmx", [False, True])
def test_adding_from_the_page(admin_user, htmx):
    response = client_as(admin_user).post("/manage/identity/", {"text": r"\bZorb\w*", "kind": "regex", "scope": "",
                                                                "note": "", "active": "on"},
                                          **(HTMX if htmx else {}), follow=not htmx)
    assert response.status_code == 200
    assert IdentityPattern.objects.filter(text=r"\bZorb\w*", kind="regex", created_by=admin_user).exists()
    assert "added" in response.content.decode()


@pytest.mark.parametrize("htmx", [False, True])
def test_a_bad_regex_on_the_page_is_a_field_error(admin_user, htmx):
    response = client_as(admin_user).post("/manage/identity/", {"text": "(a+)+", "kind": "regex"}, **(HTMX if htmx else {}))
    assert response.status_code == 400
    error = response.content.decode().split('data-testid="error-text">')[1].split("</span>")[0]
    assert "repeat inside another repeat" in error.replace("repeated part inside", "repeat inside")
    assert not IdentityPattern.objects.filter(text="(a+)+").exists()


def test_deactivating_from_the_page_unflags(admin_user):
    zorb = pattern("zorblax")
    comparison = pair_of("zorblax", "Hi.")
    identity.identity_rescan_run()
    response = client_as(admin_user).post(f"/manage/identity/{zorb.pk}/", {"active": "false"}, follow=True)
    assert response.status_code == 200 and "saved (inactive)" in response.content.decode()
    assert comparison.pk not in flagged_ids()


def test_the_scan_poll_stops_once_finished(admin_user):
    identity.identity_rescan_run()
    assert client_as(admin_user).get("/manage/identity/scan/", **HTMX).status_code == 286
    identity.identity_rescan_request()
    assert client_as(admin_user).get("/manage/identity/scan/", **HTMX).status_code == 200


def test_flagged_comparisons_show_their_patterns_and_filter_on_the_list(admin_user, annotator):
    pattern("zorblax")
    leaked = pair_of("zorblax", "Hi.")
    clean = pair_of("Hello.", "Hi.")
    identity.identity_rescan_run()
    AssignmentFactory(annotator=annotator, comparison=leaked)
    services.assignment_skip(annotator=annotator, comparison_id=leaked.pk, reason="identity_leak")
    detail = client_as(admin_user).get(f"/manage/comparisons/{leaked.pk}/").content.decode()
    box = detail.split('data-testid="identity-leak"')[1].split("</div>")[0]
    assert "zorblax" in box and "flagged by an annotator" in box
    assert 'data-testid="identity-leak"' not in client_as(admin_user).get(f"/manage/comparisons/{clean.pk}/").content.decode()
    listing = client_as(admin_user).get("/manage/comparisons/?identity_leak=flagged").content.decode()
    assert f'/manage/comparisons/{leaked.pk}/"' in listing and f'/manage/comparisons/{clean.pk}/"' not in listing
    listing = client_as(admin_user).get("/manage/comparisons/?identity_leak=clean").content.decode()
    assert f'/manage/comparisons/{clean.pk}/"' in listing and f'/manage/comparisons/{leaked.pk}/"' not in listing
    zorb = IdentityPattern.objects.get(text="zorblax")
    listing = client_as(admin_user).get(f"/manage/comparisons/?identity_pattern={zorb.pk}").content.decode()
    assert f'/manage/comparisons/{leaked.pk}/"' in listing and f'/manage/comparisons/{clean.pk}/"' not in listing
    assert "reveals model" in listing.split(f'/manage/comparisons/{leaked.pk}/"')[1].split("</tr>")[0]


# --- the API --------------------------------------------------------------------------------------
def test_api_crud_and_rescan(admin_user, django_capture_on_commit_callbacks):
    client = api_as(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/identity-patterns/", {"text": "Zorblax", "scope": "smol"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert (body["text"], body["kind"], body["scope"], body["active"], body["flagged"], body["created_by"]) == (
        "Zorblax", "word", "smol", True, 0, admin_user.username)
    assert client.get(f"/api/identity-patterns/{body['id']}/").json()["text"] == "Zorblax"
    assert "Zorblax" in [row["text"] for row in client.get("/api/identity-patterns/").json()]
    changed = client.patch(f"/api/identity-patterns/{body['id']}/", {"active": False}, format="json")
    assert changed.status_code == 200 and changed.json()["active"] is False
    scan = client.get("/api/identity-patterns/rescan/").json()
    assert scan["status"] == "queued"
    posted = client.post("/api/identity-patterns/rescan/")
    assert posted.status_code == 202 and posted.json()["queued"] is False  # the waiting scan is reused
    assert client.delete(f"/api/identity-patterns/{body['id']}/").status_code == 204
    assert not IdentityPattern.objects.filter(pk=body["id"]).exists()


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"text": "(a|ab)*", "kind": "regex"}, "text", "alternation inside a repeat"),
        ({"text": "[oops", "kind": "regex"}, "text", "not a valid regular expression"),
        ({"text": "", "kind": "word"}, "text", "blank"),
        ({"text": "x", "kind": "glob"}, "kind", "not a valid choice"),
        ({"text": "x", "colour": "red"}, "non_field_errors", "unknown fields: colour"),
        ({"text": "as an AI developed by"}, "text", "already exists"),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field(admin_user, payload, field, words):
    response = api_as(admin_user).post("/api/identity-patterns/", payload, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])


# --- the command ----------------------------------------------------------------------------------
def test_the_command_adds_lists_rescans_and_deactivates():
    comparison = pair_of("zorblax speaking", "Hi.")
    out = io.StringIO()
    call_command("identity_patterns", "add", "zorblax", "--note", "test", stdout=out)
    call_command("identity_patterns", "rescan", stdout=out)
    assert "1 newly flagged" in out.getvalue() and comparison.pk in flagged_ids()
    zorb = IdentityPattern.objects.get(text="zorblax")
    out = io.StringIO()
    call_command("identity_patterns", "list", stdout=out)
    assert f"{zorb.pk}\tword\t*\tactive\t1 flagged\tzorblax" in out.getvalue()
    call_command("identity_patterns", "deactivate", str(zorb.pk), stdout=out)
    assert comparison.pk not in flagged_ids()
    with pytest.raises(CommandError, match="nested|inside another repeat"):
        call_command("identity_patterns", "add", "(x+)+", "--kind", "regex")


# --- who may see it -------------------------------------------------------------------------------
@pytest.mark.parametrize(("role", "page", "api"), [(None, 302, 401), ("annotator", 403, 403), ("admin", 200, 200)])
def test_permissions(role, page, api):
    person = UserFactory(role=role) if role else None
    assert client_as(person).get("/manage/identity/").status_code == page
    assert client_as(person).get("/manage/identity/scan/").status_code == {200: 286}.get(page, page)  # no scan: stop polling
    assert client_as(person).post("/manage/identity/", {"text": "x", "kind": "word"}).status_code == (page if page != 200 else 302)
    assert api_as(person).get("/api/identity-patterns/").status_code == api
    if role != "admin":
        assert api_as(person).post("/api/identity-patterns/", {"text": "x"}, format="json").status_code == api
        assert api_as(person).post("/api/identity-patterns/rescan/").status_code == api
        assert not IdentityPattern.objects.filter(text="x").exists()


def test_annotators_never_see_identity_flags_or_patterns(annotator):
    leaked = pair_of("I'm Claude, here to help.", "Hi.")
    assert leaked.pk in flagged_ids() or identity.identity_rescan_run() and leaked.pk in flagged_ids()
    AssignmentFactory(annotator=annotator, comparison=leaked)
    client = client_as(annotator)
    page = client.get("/annotate/").content.decode().lower()
    assert "here to help" in page  # the item is on screen, and nothing says it was flagged or why
    for telltale in ("identity-leak", "identity pattern", "reveals the model", "gemini|bard", "developed|created"):
        assert telltale not in page
    api = api_as(annotator)
    item = api.get(f"/api/comparisons/{leaked.pk}/").json()
    assert not any("identity" in key for key in item)
    listing = api.get("/api/comparisons/?identity_leak=clean").json()
    assert [row["id"] for row in listing["results"]] == [leaked.pk]  # the filter is ignored for annotators


def test_the_django_admin_refuses_a_bad_regex_and_saves_through_the_services(admin_user, django_capture_on_commit_callbacks):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client = client_as(admin_user)
    form = {"text": "(a+)+", "kind": "regex", "scope": "", "note": "", "active": "on"}
    refused = client.post("/admin/feedback/identitypattern/add/", form)
    assert refused.status_code == 200 and "inside another repeat" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post("/admin/feedback/identitypattern/add/", form | {"text": r"\bzorb\w*"})
    assert saved.status_code == 302
    assert IdentityPattern.objects.filter(text=r"\bzorb\w*").exists() and IdentityScan.objects.filter(status="queued").exists()


def test_a_bad_edit_is_refused_on_the_page_and_the_api(admin_user):
    zorb = pattern("zorblax")
    response = client_as(admin_user).post(f"/manage/identity/{zorb.pk}/", {"kind": "regex", "text": "(?P<x>z)"}, **HTMX)
    assert response.status_code == 400 and "must not name groups" in response.content.decode()
    response = api_as(admin_user).patch(f"/api/identity-patterns/{zorb.pk}/", {"kind": "regex", "text": "x**"}, format="json")
    assert response.status_code == 400 and "not a valid regular expression" in " ".join(response.json()["text"])
    zorb.refresh_from_db()
    assert (zorb.text, zorb.kind) == ("zorblax", "word")
