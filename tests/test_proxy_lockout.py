"""Login lockouts count the client's own address: the connection's without a proxy, the one the
trusted proxy wrote into X-Forwarded-For with one (config/proxy.py, ARBITER_PROXY_HOPS)."""
import pytest
from django.test import Client, RequestFactory

from config.proxy import client_ip_address

PROXY = "10.0.0.2"  # the TLS proxy's address, as the web server sees every proxied connection
ALICE = "203.0.113.5"
BOB = "198.51.100.7"
PASSWORD = "correct-horse-battery"  # tests/factories.py


@pytest.fixture
def lockouts(settings):
    settings.AXES_ENABLED = True
    return settings


def _login(user, password, *, remote, forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return Client().post("/accounts/login/", {"username": user.username, "password": password}, **extra)


def _fail_until_locked(user, settings, *, remote, forwarded=None):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(user, "wrong", remote=remote, forwarded=forwarded).status_code == 200
    assert _login(user, "wrong", remote=remote, forwarded=forwarded).status_code == 429


@pytest.mark.django_db
def test_without_the_proxy_setting_the_header_is_ignored_and_spoofing_it_does_not_escape(lockouts, admin_user):
    lockouts.ARBITER_PROXY_HOPS = 0
    # The attacker changes X-Forwarded-For on every try: still one address, so locked after five.
    for attempt in range(lockouts.AXES_FAILURE_LIMIT - 1):
        assert _login(admin_user, "wrong", remote=ALICE, forwarded=f"192.0.2.{attempt}").status_code == 200
    assert _login(admin_user, "wrong", remote=ALICE, forwarded="192.0.2.99").status_code == 429
    assert _login(admin_user, PASSWORD, remote=ALICE, forwarded=BOB).status_code == 429
    # Someone at another address is not locked out.
    assert _login(admin_user, PASSWORD, remote=BOB).status_code == 302


@pytest.mark.django_db
def test_behind_the_proxy_two_clients_are_counted_apart(lockouts, admin_user):
    lockouts.ARBITER_PROXY_HOPS = 1
    _fail_until_locked(admin_user, lockouts, remote=PROXY, forwarded=ALICE)
    assert _login(admin_user, PASSWORD, remote=PROXY, forwarded=ALICE).status_code == 429
    # Bob comes through the same proxy: the admin account still lets him in.
    assert _login(admin_user, PASSWORD, remote=PROXY, forwarded=BOB).status_code == 302


@pytest.mark.django_db
def test_behind_the_proxy_a_forged_extra_hop_does_not_escape_the_lockout(lockouts, annotator):
    lockouts.ARBITER_PROXY_HOPS = 1
    _fail_until_locked(annotator, lockouts, remote=PROXY, forwarded=ALICE)
    # Alice sends "X-Forwarded-For: <Bob>"; the proxy appends her real address after it.
    assert _login(annotator, PASSWORD, remote=PROXY, forwarded=f"{BOB}, {ALICE}").status_code == 429
    assert _login(annotator, PASSWORD, remote=PROXY, forwarded=f"{BOB},{BOB}, {ALICE}").status_code == 429


@pytest.mark.django_db
def test_behind_the_proxy_without_the_header_everyone_shares_the_proxy_address(lockouts, annotator):
    """A request that reached the app without passing the proxy (no header) counts as the connection's
    address, never as an address it names itself."""
    lockouts.ARBITER_PROXY_HOPS = 1
    _fail_until_locked(annotator, lockouts, remote=PROXY)
    assert _login(annotator, PASSWORD, remote=PROXY, forwarded=BOB).status_code == 302


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "198.51.100.7", PROXY),  # proxy off: header ignored
        (1, "198.51.100.7", BOB),
        (1, "192.0.2.1, 198.51.100.7", BOB),  # forged hop on the left is skipped
        (2, "192.0.2.1, 198.51.100.7, 10.0.0.9", BOB),  # two proxies: the outer one's peer
        (2, "198.51.100.7", PROXY),  # fewer entries than proxies: did not come through them
        (1, "not-an-address", PROXY),
        (1, "", PROXY),
        (1, " 2001:db8::1 ", "2001:db8::1"),
    ],
)
def test_client_ip_address_reads_the_configured_number_of_hops(settings, hops, forwarded, expected):
    settings.ARBITER_PROXY_HOPS = hops
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip_address(request) == expected
