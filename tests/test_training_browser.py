"""The jobs pages in a real browser (Debian's Chromium through Playwright, as in test_browser.py):
progress updates while a job runs, htmx cancel refreshes the live region without a page load, and
polling stops for good once nothing shown is active. No console errors, no CSP violations.

Skips without /usr/bin/chromium, except under CI, where it fails.
"""
from __future__ import annotations

import re
import time

import pytest
from django.utils import timezone

from tests.factories import PASSWORD, UserFactory
from training.models import Job, JobKind, JobStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]



@pytest.fixture
def admin_page(chromium_browser, live_server):
    """A logged-in admin's page, recording errors, CSP violations, page loads and polls of /manage/jobs/."""
    UserFactory(username="admin1", role="admin")
    context = chromium_browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective));"
    )
    page = context.new_page()
    page.errors, page.loads, page.polls = [], [], []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("framenavigated", lambda f: f == page.main_frame and page.loads.append(f.url))
    page.on("request", lambda r: r.headers.get("hx-request") and page.polls.append((time.monotonic(), r.method, r.url)))
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("admin1")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/manage/comparisons/$"))
    yield page
    assert page.errors == [] and page.evaluate("window.__csp") == [], (page.errors, page.evaluate("window.__csp"))
    context.close()


def running_job(**fields) -> Job:
    now = timezone.now()
    return Job.objects.create(
        kind=JobKind.GENERATION, status=JobStatus.RUNNING, config={"checkpoints": ["smol"]}, started_at=now,
        heartbeat_at=now, progress_total=4, **fields,
    )


def polls_after(page, since: float) -> int:
    return sum(1 for at, method, _ in page.polls if at > since and method == "GET")


def test_job_list_updates_live_cancels_over_htmx_and_stops_polling(admin_page):
    page = admin_page
    job = running_job(progress_done=1)
    page.goto("/manage/jobs/")
    loads = len(page.loads)
    progress = page.locator(f"#job-{job.pk} progress")
    assert progress.get_attribute("value") == "1"

    Job.objects.filter(pk=job.pk).update(progress_done=3, tokens_per_s=17.3, heartbeat_at=timezone.now())
    page.wait_for_function(  # a function, not a string: the page's CSP forbids eval
        "id => document.querySelector(`#job-${id} progress`).value === 3", arg=job.pk, timeout=6_000
    )
    assert "17.3" in page.locator(f"#job-{job.pk}").inner_text()

    page.locator(f"#job-{job.pk}").get_by_role("button", name="Cancel").click()
    page.locator(f"#job-{job.pk} .status-stopping").wait_for(timeout=4_000)
    assert Job.objects.get(pk=job.pk).cancel_requested
    assert len(page.loads) == loads  # swapped in, not a page load

    Job.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED, finished_at=timezone.now())
    page.locator(f"#job-{job.pk} .status-cancelled").wait_for(timeout=6_000)
    assert page.locator("#job-table").get_attribute("hx-trigger") is None
    settled = time.monotonic()
    page.wait_for_timeout(4_500)
    assert polls_after(page, settled) == 0, page.polls[-3:]


def test_job_page_cancels_a_queued_job_and_stops_polling(admin_page):
    page = admin_page
    job = Job.objects.create(kind=JobKind.GENERATION, config={"checkpoints": ["smol"]}, progress_total=4)
    page.goto(f"/manage/jobs/{job.pk}/")
    loads = len(page.loads)
    page.get_by_role("button", name="Cancel job").click()
    page.locator("#job-live .status-cancelled").wait_for(timeout=4_000)
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    assert len(page.loads) == loads
    assert page.locator("#job-live").get_attribute("hx-trigger") is None
    settled = time.monotonic()
    page.wait_for_timeout(4_500)
    assert polls_after(page, settled) == 0, page.polls[-3:]
