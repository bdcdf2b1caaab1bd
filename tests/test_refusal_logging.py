"""A refused management page is logged as one line, without a traceback; server errors keep theirs."""
import logging

import pytest

from config.log_filters import RefusalWithoutTraceback

pytestmark = pytest.mark.django_db


def formatted(caplog) -> str:
    formatter = logging.Formatter()
    return "\n".join(formatter.format(record) for record in caplog.records if record.name == "django.request")


@pytest.mark.parametrize("url", ["/manage/comparisons/", "/manage/exports/", "/manage/jobs/"])
def test_a_refused_management_page_logs_one_line(client, annotator, caplog, url):
    client.force_login(annotator)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get(url)
    assert response.status_code == 403
    assert formatted(caplog) == f"Forbidden (Permission denied): {url}"


def test_a_server_error_keeps_its_traceback():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("django.request").makeRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error: /x", (), __import__("sys").exc_info(),
            extra={"status_code": 500},
        )
    RefusalWithoutTraceback().filter(record)
    assert "Traceback" in logging.Formatter().format(record)
