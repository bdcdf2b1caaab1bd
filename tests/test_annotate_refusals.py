"""Nothing typed is lost on the annotator page (server side): a refused vote (400, 403, 409) gives
back every input, an expired session is said in place (never the login page inside the item), a
plain form post after it leads back to the annotator page, and a changed vote says what differs.
The browser side (sessionStorage across a log-in) is in tests/test_annotate_page_browser.py."""
import pytest
from django.contrib.sessions.models import Session

from feedback import views
from feedback.errors import NotAssigned
from feedback.models import Vote
from feedback.vote_wording import vote_difference
from tests.factories import ComparisonFactory, UserFactory
from tests.test_views import HTMX, item_of

pytestmark = pytest.mark.django_db

TYPED = {
    "choice": "left", "strength": "clear", "rationale": "Typed <b>reason</b>.", "helpfulness": "right",
    "honesty": "tie", "demonstration": "A better answer.",
}


def _kept_everything(response, strength: str = "clear") -> None:
    content = response.content.decode()
    assert "Typed &lt;b&gt;reason&lt;/b&gt;.</textarea>" in content
    assert 'data-testid="demonstration">A better answer.</textarea>' in content
    assert f'name="strength" value="{strength}" checked' in content
    assert 'name="helpfulness" value="right" checked' in content and 'name="honesty" value="tie" checked' in content


@pytest.fixture
def on_item(client, annotator):
    client.force_login(annotator)
    comparison = ComparisonFactory()
    client.get("/annotate/")
    return client, item_of(comparison)


def test_an_expired_session_is_said_in_place_and_the_item_stays(on_item):
    client, item = on_item
    Session.objects.all().delete()  # logged out on the server between page load and vote
    response = client.post("/annotate/vote/", {"item": item, **TYPED}, **HTMX)
    assert response.status_code == 401
    assert response["HX-Retarget"] == "#vote-refusal" and response["HX-Reswap"] == "innerHTML"
    content = response.content.decode()
    assert "Not saved: log in again." in content
    assert 'href="/accounts/login/?next=/annotate/"' in content
    assert "<form" not in content and "Password" not in content  # no login page to swap into the item
    assert not Vote.objects.exists()
    poll = client.get("/annotate/", **HTMX)  # the empty queue's poll, too
    assert poll.status_code == 401 and "Not saved: log in again." in poll.content.decode()


def test_a_plain_post_after_the_session_expired_logs_in_back_to_the_annotator_page(on_item):
    client, item = on_item
    Session.objects.all().delete()
    response = client.post("/annotate/vote/", {"item": item, **TYPED})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/annotate/"
    skip = client.post("/annotate/skip/", {"item": item})
    assert skip["Location"] == "/accounts/login/?next=/annotate/"  # never a POST-only URL (405 after log-in)


def test_a_lost_role_is_said_in_place_for_htmx_and_is_a_403_page_otherwise(client):
    client.force_login(UserFactory())  # no annotator role
    response = client.post("/annotate/vote/", {"item": "x", **TYPED}, **HTMX)
    assert response.status_code == 403 and response["HX-Retarget"] == "#vote-refusal"
    assert "Not saved: your account can no longer annotate." in response.content.decode()
    assert client.post("/annotate/vote/", {"item": "x", **TYPED}).status_code == 403


@pytest.mark.parametrize("status", [400, 403, 409])
def test_every_refused_vote_gives_back_every_input(on_item, monkeypatch, status):
    client, item = on_item
    if status == 400:
        data = {"item": item, **TYPED, "choice": "sideways"}
    elif status == 403:
        def refuse(**kwargs):
            raise NotAssigned("Comparison 1 is not assigned to you.")

        monkeypatch.setattr(views.services, "vote_submit", refuse)
        data = {"item": item, **TYPED}
    else:
        data = {"item": "not-an-item", **TYPED}
    response = client.post("/annotate/vote/", data, **HTMX)
    assert response.status_code == status
    _kept_everything(response)
    assert not Vote.objects.exists()


def test_a_changed_vote_says_what_differs(client, annotator):
    client.force_login(annotator)
    comparison = ComparisonFactory(votes_required=2)
    ComparisonFactory()  # shown next, with what was typed put back
    client.get("/annotate/")
    item = item_of(comparison)
    client.post("/annotate/vote/", {"item": item, "choice": "left", "strength": "clear"}, **HTMX)
    response = client.post("/annotate/vote/", {"item": item, **TYPED, "choice": "right", "strength": "slight"}, **HTMX)
    assert response.status_code == 409
    assert "You already voted Left (clear); this vote says Right (slight)." in response.content.decode()
    _kept_everything(response, strength="slight")


def test_vote_difference_names_aspects_and_reason_when_the_choice_is_the_same():
    before = {"choice": "left", "strength": "clear", "rationale": "a", "honesty": "tie"}
    after = {"choice": "left", "strength": "clear", "rationale": "b", "honesty": "left"}
    said = vote_difference(before, after, Vote.ASPECTS)
    assert said == "You already voted Left (clear); this vote differs in: honesty (left, not same), reason."
    assert vote_difference({"choice": "tie"}, {"choice": "both_bad"}, Vote.ASPECTS) == (
        "You already voted Tie; this vote says Both bad."
    )
