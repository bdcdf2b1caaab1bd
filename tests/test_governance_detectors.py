"""Personal-data detectors (feedback.governance.detectors): each on positive and negative examples."""
from __future__ import annotations

import pytest

from feedback.governance.detectors import detect, iban_valid, luhn_valid, mask, redact


def found(text: str) -> list[tuple[str, str]]:
    return [(f.detector, text[f.start:f.end]) for f in detect(text)]


@pytest.mark.parametrize("text, value", [
    ("write to john.doe@example.com today", "john.doe@example.com"),
    ("<a.b+tag@mail.example.co.uk>", "a.b+tag@mail.example.co.uk"),
])
def test_emails_are_found_with_their_exact_span(text, value):
    assert found(text) == [("email", value)]


@pytest.mark.parametrize("text", ["user@localhost", "an @ sign", "name@domain", "version@2.0"])
def test_things_that_are_not_email_addresses_are_not(text):
    assert [d for d, _ in found(text) if d == "email"] == []


@pytest.mark.parametrize("number", ["4111 1111 1111 1111", "4111-1111-1111-1111", "5500005555555559", "378282246310005"])
def test_card_numbers_that_pass_the_luhn_check_are_found(number):
    assert found(f"card: {number}.") == [("card", number)]


@pytest.mark.parametrize("number", ["4111 1111 1111 1112", "5500005555555558", "0000 0000 0000 0000", "1234567890123"])
def test_card_numbers_that_fail_the_luhn_check_or_are_zeros_are_not(number):
    assert [d for d, _ in found(f"card: {number}.") if d == "card"] == []


def test_luhn():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")


@pytest.mark.parametrize("iban", ["DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "GB82 WEST 1234 5698 7654 32",
                                  "FR1420041010050500013M02606"])
def test_ibans_that_pass_mod_97_are_found(iban):
    assert iban_valid(iban)
    assert found(f"pay to {iban} now") == [("iban", iban)]


@pytest.mark.parametrize("iban", ["DE89 3704 0044 0532 0130 01", "GB82WEST12345698765433", "XX00 0000 0000 0000"])
def test_ibans_that_fail_mod_97_are_not(iban):
    assert not iban_valid(iban)
    assert [d for d, _ in found(f"pay to {iban} now") if d == "iban"] == []


@pytest.mark.parametrize("phone", ["+44 20 7946 0958", "(555) 123-4567", "555-123-4567", "555.123.4567", "+14155552671",
                                   "+49 (30) 1234 5678", "020 7946 0958"])
def test_phone_formats_are_found(phone):
    assert found(f"call {phone} please") == [("phone", phone)]


@pytest.mark.parametrize("text", ["on 2024-01-15", "version 10.0.19045", "pi is 3.14159265", "12345", "call 555-1234",
                                  "at 10:30:15", "order 1234567890123", "1.2.3.4.5.6.7"])
def test_dates_versions_and_short_numbers_are_not_phones(text):
    assert [d for d, _ in found(text) if d == "phone"] == []


@pytest.mark.parametrize("address", ["192.168.1.20", "8.8.8.8", "2001:db8::8a2e:370:7334", "fe80::1", "::ffff:10.0.0.1"])
def test_ip_addresses_v4_and_v6_are_found(address):
    assert [d for d, _ in found(f"from {address} today")] == ["ip"]


@pytest.mark.parametrize("text", ["version 1.2.3.4.5", "256.1.1.1", "999.10.10.10", "1.2.3", "12:30:45", "a::b::c", "::",
                                  "v2.0.1.3-beta"])
def test_version_strings_bad_octets_and_times_are_not_ips(text):
    assert [d for d, _ in found(text) if d == "ip"] == []


def test_a_finding_is_stored_masked_never_whole():
    text = "j.doe@example.com 4111 1111 1111 1111 DE89 3704 0044 0532 0130 00 +44 20 7946 0958 192.168.1.20"
    excerpts = {f.detector: f.excerpt for f in detect(text)}
    assert excerpts == {"email": "j***@e***.com", "card": "****1111", "iban": "DE***00", "phone": "+4***58", "ip": "192.*.*.*"}
    for finding in detect(text):
        assert text[finding.start:finding.end] not in finding.excerpt
    assert mask("ip", "2001:db8::1") == "2001:***"


def test_overlapping_detectors_report_one_finding():
    assert found("IBAN DE89370400440532013000") == [("iban", "DE89370400440532013000")]
    assert found("host 10.20.30.40") == [("ip", "10.20.30.40")]


def test_redact_replaces_each_span_with_its_label():
    text = "mail a@b.example or call +44 20 7946 0958."
    spans = [(f.start, f.end, f.detector) for f in detect(text)]
    assert redact(text, spans) == "mail [EMAIL] or call [PHONE]."
