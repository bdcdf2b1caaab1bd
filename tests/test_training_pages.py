"""Admin pages for checkpoints, generation and jobs: who may see them, the launch form, live
progress polling (200 while a job runs, 286 once nothing shown is active), cancel, and the reaper."""
import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from feedback import interface
from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobStatus
from training.supervisor import job_log_path
from tests.factories import CompletionFactory, PromptFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
ROLES = ["anonymous", "annotator", "admin", "no_role"]
SMOL_META = {"param_count": 134_515_008, "dtype": "float32", "has_chat_template": True, "license": "apache-2.0"}


def make_job(status=JobStatus.QUEUED, **fields) -> Job:
    now = timezone.now()
    defaults = {"kind": JobKind.GENERATION, "config": {"checkpoints": ["smol"], "strategy": "two_samples"}}
    if status in (JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED):
        defaults.update(started_at=now - timedelta(seconds=30), heartbeat_at=now)
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        defaults["finished_at"] = now
    return Job.objects.create(status=status, **{**defaults, **fields})


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def world(annotator, admin_user, data_dir):
    smol = Checkpoint.objects.create(name="smol", hub_id="x/smol", metadata=SMOL_META)
    tuned = Checkpoint.objects.create(name="smol-dpo", hub_id="x/smol-dpo", parent=smol)
    reward = Checkpoint.objects.create(name="smol-rm", hub_id="x/smol-rm", kind=CheckpointKind.REWARD, parent=smol)
    prompts = PromptFactory.create_batch(3, tags=["math"])
    return {
        "users": {"anonymous": None, "annotator": annotator, "admin": admin_user, "no_role": UserFactory()},
        "checkpoints": {"smol": smol, "tuned": tuned, "reward": reward},
        "prompts": prompts,
        "ids": {
            "checkpoint": smol.pk,
            "queued": make_job().pk,
            "running": make_job(JobStatus.RUNNING).pk,
        },
    }


def client_as(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def as_admin(world):
    return client_as(world["users"]["admin"])


def form_data(**overrides) -> dict:
    data = {
        "strategy": "two_samples", "checkpoint": "smol", "opponent": "", "tag": "", "split": "",
        "max_open_comparisons": "", "limit": "20", "max_new_tokens": "128", "temperature": "0.8",
        "top_p": "0.95", "batch_size": "8", "seed": "0", "votes_required": "1", "priority": "0",
    }
    data.update(overrides)
    return data


def login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- who may see what ------------------------------------------------------------------------------
def expect(anonymous, annotator, admin, no_role):
    return dict(zip(ROLES, (anonymous, annotator, admin, no_role), strict=True))


LOGIN = "login"
MATRIX = [
    ("get", "/manage/checkpoints/", None, expect(LOGIN, 403, 200, 403)),
    ("post", "/manage/checkpoints/", {}, expect(LOGIN, 405, 405, 405)),
    ("get", "/manage/checkpoints/{checkpoint}/", None, expect(LOGIN, 403, 200, 403)),
    ("get", "/manage/checkpoints/999999/", None, expect(LOGIN, 403, 404, 403)),
    ("get", "/manage/generate/", None, expect(LOGIN, 403, 200, 403)),
    ("post", "/manage/generate/", form_data(), expect(LOGIN, 403, 302, 403)),
    ("put", "/manage/generate/", None, expect(LOGIN, 405, 405, 405)),
    ("get", "/manage/jobs/", None, expect(LOGIN, 403, 200, 403)),
    ("post", "/manage/jobs/", {}, expect(LOGIN, 405, 405, 405)),
    ("get", "/manage/jobs/{running}/", None, expect(LOGIN, 403, 200, 403)),
    ("get", "/manage/jobs/999999/", None, expect(LOGIN, 403, 404, 403)),
    ("post", "/manage/jobs/{queued}/cancel/", {}, expect(LOGIN, 403, 302, 403)),
    ("get", "/manage/jobs/{queued}/cancel/", None, expect(LOGIN, 405, 405, 405)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "data", "expected"), MATRIX, ids=[f"{m.upper()} {p}" for m, p, _, _ in MATRIX])
def test_permission_matrix(world, django_capture_on_commit_callbacks, role, method, path, data, expected):
    client = client_as(world["users"][role])
    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(client, method)(path.format(**world["ids"]), data or {})
    if expected[role] == LOGIN:
        assert login_redirect(response), (response.status_code, response.get("Location"))
    else:
        assert response.status_code == expected[role], response.content[:300]
    if role != "admin":  # nothing happened for anyone else
        assert Job.objects.get(pk=world["ids"]["queued"]).status == JobStatus.QUEUED
        assert Job.objects.count() == 2


def test_the_top_nav_links_the_pages_for_admins_only(world):
    admin_page = client_as(world["users"]["admin"]).get("/manage/comparisons/").content.decode()
    for url in ("/manage/checkpoints/", "/manage/generate/", "/manage/jobs/"):
        assert f'href="{url}"' in admin_page
    annotator_page = client_as(world["users"]["annotator"]).get("/annotate/").content.decode()
    assert "/manage/jobs/" not in annotator_page and "/manage/checkpoints/" not in annotator_page


@pytest.mark.parametrize("path", ["/manage/checkpoints/", "/manage/checkpoints/{checkpoint}/", "/manage/generate/", "/manage/jobs/", "/manage/jobs/{running}/"])
def test_pages_have_no_inline_scripts_or_styles(as_admin, world, path):
    content = as_admin.get(path.format(**world["ids"])).content.decode()
    assert "style=" not in content
    assert not re.search(r"<script(?![^>]*\bsrc=)", content), "inline script"
    assert not re.search(r"<[^>]+\son[a-z]+=", content), "inline event handler"


# --- checkpoints -----------------------------------------------------------------------------------
def test_checkpoint_list_shows_the_registry(as_admin, world):
    content = as_admin.get("/manage/checkpoints/").content.decode()
    row = re.search(r'<tr>\s*<td><a href="/manage/checkpoints/%d/">smol</a>(.*?)</tr>' % world["ids"]["checkpoint"], content, re.S)
    assert row, content
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]
    assert cells[:6] == ["policy", "—", "134.5M", "float32", "apache-2.0", "yes"]
    # the fine-tune and the reward model name their parent; unknown metadata shows as a dash
    tuned = re.search(r">smol-dpo</a>(.*?)</tr>", content, re.S).group(1)
    assert ">smol</a>" in tuned and "—" in tuned
    assert "reward model" in content


def test_checkpoint_detail_shows_lineage_location_and_completion_count(as_admin, world):
    smol = world["checkpoints"]["smol"]
    CompletionFactory.create_batch(3, model_name="smol")
    CompletionFactory(model_name="someone-else")
    content = as_admin.get(f"/manage/checkpoints/{smol.pk}/").content.decode()
    assert "x/smol" in content
    assert ">smol-dpo</a>" in content and ">smol-rm</a>" in content  # children
    assert re.search(r"<dt>Completions written</dt><dd><a[^>]*>3</a>", content)
    assert "Generate completions with this checkpoint" in content
    child = as_admin.get(f"/manage/checkpoints/{world['checkpoints']['tuned'].pk}/").content.decode()
    assert re.search(r"<dt>Parent</dt><dd><a href=\"/manage/checkpoints/%d/\">smol</a>" % smol.pk, child)


def test_completion_count_counts_by_model_name():
    CompletionFactory.create_batch(2, model_name="a")
    CompletionFactory(model_name="b", text="")
    assert interface.completion_count(model_name="a") == 2
    assert interface.completion_count(model_name="b") == 1
    assert interface.completion_count(model_name="c") == 0


# --- launching generation --------------------------------------------------------------------------
def test_the_form_offers_policy_checkpoints_and_laptop_defaults(as_admin, world):
    content = as_admin.get("/manage/generate/?checkpoint=smol-dpo").content.decode()
    assert '<option value="smol-dpo" selected>' in content
    assert 'value="smol-rm"' not in content  # reward models cannot generate
    for name, value in (("limit", "20"), ("max_new_tokens", "128"), ("temperature", "0.8"), ("top_p", "0.95"), ("batch_size", "8")):
        assert re.search(rf'name="{name}" value="{value}"', content), name


def test_launch_queues_one_job_and_one_task(as_admin, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post("/manage/generate/", form_data(tag="math", max_new_tokens="64", seed="7", priority="5"))
    job = Job.objects.exclude(pk__in=world["ids"].values()).get()
    assert response.status_code == 302 and response["Location"] == f"/manage/jobs/{job.pk}/"
    assert job.status == JobStatus.QUEUED and job.created_by == world["users"]["admin"]
    assert job.progress_total == 3
    assert job.config == {
        "checkpoints": ["smol"], "strategy": "two_samples", "prompt_ids": None, "tag": "math", "split": None,
        "max_open_comparisons": None, "limit": 20, "max_new_tokens": 64, "temperature": 0.8, "top_p": 0.95,
        "batch_size": 8, "seed": 7, "votes_required": 1, "priority": 5, "campaign_id": None,
        "backend": "transformers", "on_failure": "fail", "extra": {},
    }
    task = DBTaskResult.objects.get()
    assert task.task_path == "training.tasks.job_execute"
    assert task.args_kwargs["args"] == [job.pk]
    assert Job.objects.get(pk=job.pk).task_id == str(task.id)
    page = as_admin.get(response["Location"])
    assert f"Generation job {job.pk} queued over 3 prompts." in page.content.decode()


def test_head_to_head_launch(as_admin, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post("/manage/generate/", form_data(strategy="head_to_head", opponent="smol-dpo", temperature="0"))
    assert response.status_code == 302
    job = Job.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert job.config["checkpoints"] == ["smol", "smol-dpo"] and job.config["temperature"] == 0
    assert DBTaskResult.objects.count() == 1


def test_launch_into_a_campaign_and_not_into_a_closed_one(as_admin, world, django_capture_on_commit_callbacks):
    from feedback.models import Campaign

    round3 = Campaign.objects.create(name="Round 3", slug="round-3", status="active")
    closed = Campaign.objects.create(name="Old round", slug="old-round", status="closed")
    content = as_admin.get("/manage/generate/").content.decode()
    assert f'<option value="{round3.pk}">Round 3</option>' in content and "Old round" not in content
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post("/manage/generate/", form_data(campaign=str(round3.pk)))
    assert response.status_code == 302
    assert Job.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1])).config["campaign_id"] == round3.pk
    response = as_admin.post("/manage/generate/", form_data(campaign=str(closed.pk)))
    assert response.status_code == 400
    assert '<p class="field-error" id="id_campaign_error">' in response.content.decode()


def test_the_generate_command_takes_a_campaign(world):
    from django.core.management import CommandError, call_command

    from feedback.models import Campaign

    round3 = Campaign.objects.create(name="Round 3", slug="round-3", status="active")
    call_command("generate", "--checkpoint", "smol", "--campaign", str(round3.pk), stdout=io.StringIO())
    assert Job.objects.exclude(pk__in=world["ids"].values()).get().config["campaign_id"] == round3.pk
    with pytest.raises(CommandError, match="^campaign_id: .*999"):
        call_command("generate", "--checkpoint", "smol", "--campaign", "999", stdout=io.StringIO())


BAD_FORMS = [
    ({"checkpoint": "no-such-model"}, "checkpoint"),
    ({"checkpoint": "smol-rm"}, "checkpoint"),  # a reward model
    ({"checkpoint": ""}, "checkpoint"),
    ({"strategy": "head_to_head"}, "checkpoint"),  # needs two checkpoints
    ({"strategy": "head_to_head", "opponent": "smol"}, "checkpoint"),  # two different ones
    ({"strategy": "best_of_n"}, "strategy"),
    ({"max_new_tokens": "0"}, "max_new_tokens"),
    ({"max_new_tokens": "100000"}, "max_new_tokens"),
    ({"max_new_tokens": "lots"}, "max_new_tokens"),
    ({"temperature": "0"}, "temperature"),  # two_samples would give identical samples
    ({"temperature": "3"}, "temperature"),
    ({"top_p": "0"}, "top_p"),
    ({"batch_size": "0"}, "batch_size"),
    ({"seed": "-1"}, "seed"),
    ({"votes_required": "0"}, "votes_required"),
    ({"limit": "0"}, "limit"),
    ({"max_open_comparisons": "0"}, "max_open_comparisons"),
    ({"split": "test"}, "split"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_FORMS, ids=[f"{k}={v}" for o, _ in BAD_FORMS for k, v in list(o.items())[-1:]])
def test_bad_settings_show_next_to_their_field_and_queue_nothing(as_admin, world, django_capture_on_commit_callbacks, overrides, field):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post("/manage/generate/", form_data(**overrides))
    assert response.status_code == 400
    content = response.content.decode()
    # the message sits next to its field, which points screen readers at it
    assert f'<p class="field-error" id="id_{field}_error">' in content, re.findall(r'class="field-error" id="([^"]+)"', content)
    assert re.search(rf'aria-invalid="true"[^>]*id="id_{field}"', content)
    assert "Nothing was queued" in content
    assert Job.objects.count() == 2 and DBTaskResult.objects.count() == 0
    # what was typed stays in the form
    for name, value in overrides.items():
        if name not in ("checkpoint", "opponent", "strategy", "split"):
            assert re.search(rf'name="{name}" value="{re.escape(value)}"', content), name


def test_an_empty_prompt_selection_is_refused(as_admin, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post("/manage/generate/", form_data(tag="no-such-tag"))
    assert response.status_code == 400
    assert "the prompt selection matches no prompts" in response.content.decode()
    assert Job.objects.count() == 2 and DBTaskResult.objects.count() == 0


def test_launch_page_says_how_to_get_a_checkpoint_when_there_is_none(admin_user):
    content = client_as(admin_user).get("/manage/generate/").content.decode()
    assert "manage.py import_model" in content


# --- job list and live progress --------------------------------------------------------------------
def test_job_list_shows_status_progress_speed_and_errors(as_admin, world):
    make_job(JobStatus.RUNNING, progress_done=3, progress_total=10, tokens_per_s=41.27)
    make_job(JobStatus.FAILED, error="CUDA out of memory", progress_total=4)
    content = as_admin.get("/manage/jobs/").content.decode()
    assert '<progress value="3" max="10"' in content and "3/10" in content
    assert "41.3" in content
    assert "CUDA out of memory" in content
    assert len(re.findall(r'action="/manage/jobs/\d+/cancel/"', content)) == 3  # cancel buttons: the queued and the two running jobs
    assert 'hx-trigger="every 2s' in content


def test_job_list_poll_answers_200_while_a_job_is_active_and_286_after(as_admin, world):
    poll = {**HTMX, "HTTP_HX_TARGET": "job-table"}
    response = as_admin.get("/manage/jobs/", **poll)
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="job-table" hx-get=')
    assert "<h1>" not in response.content.decode()  # the table alone

    Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    response = as_admin.get("/manage/jobs/", **poll)
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode()  # the swapped-in table polls no more
    assert as_admin.get("/manage/jobs/").status_code == 200  # a plain page load is a plain 200


def test_job_list_poll_only_counts_the_jobs_it_shows(as_admin, world):
    Job.objects.update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    make_job(JobStatus.RUNNING)
    poll = {**HTMX, "HTTP_HX_TARGET": "job-table"}
    assert as_admin.get("/manage/jobs/?status=succeeded", **poll).status_code == 286
    assert as_admin.get("/manage/jobs/?status=running", **poll).status_code == 200


def test_job_detail_shows_config_summary_heartbeat_error_traceback_and_log(as_admin, world):
    job = make_job(
        JobStatus.FAILED, error="The runner process was killed by SIGKILL.", traceback="Traceback (most recent call last):\n  boom",
        summary={"paired": 4, "completions": 10, "skipped_empty": 1, "skipped_identical": 0, "new_tokens": 512, "seconds": 12.5},
        config={"checkpoints": ["smol"], "strategy": "two_samples", "max_new_tokens": 64},
    )
    path = job_log_path(job.pk)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("loading smol\n<b>batch 1/3</b>\n")
    content = as_admin.get(f"/manage/jobs/{job.pk}/").content.decode()
    assert "killed by SIGKILL" in content and "boom" in content
    assert "&lt;b&gt;batch 1/3&lt;/b&gt;" in content  # the log is escaped
    for label, value in (("comparisons made", "4"), ("completions written", "10"), ("new tokens", "512"), ("seconds", "12.5")):
        assert re.search(rf"<th>{label}</th><td class=\"num\">{value}</td>", content), label
    assert "<th>max_new_tokens</th><td><code class=\"wrap\">64</code>" in content
    assert "<dt>Heartbeat</dt>" in content and " ago)" in content
    assert "hx-trigger" not in content  # finished: no polling


def test_a_reward_run_whose_held_out_pairs_were_all_too_long_says_so_at_the_top_of_its_page(as_admin, world):
    warning = ("all 37 held-out pairs are longer than max_length 128; accuracy is measured on them cut to their "
               "last 128 tokens; raise max_length")
    job = make_job(JobStatus.SUCCEEDED, kind=JobKind.REWARD, config={"base": "smol", "max_length": 128}, summary={
        "train_rows": 400, "eval_rows": 0, "eval_accuracy": 0.5946, "eval_accuracy_all": 0.5946, "eval_rows_all": 37,
        "eval_accuracy_note": warning, "warnings": [warning], "steps": 50,
    })
    content = as_admin.get(f"/manage/jobs/{job.pk}/").content.decode()
    assert f'<div class="warning" role="status"><strong>Warning:</strong> <span class="wrap">{warning}</span></div>' in content


def test_a_training_run_page_shows_its_own_summary_fields_formatted(as_admin, world):
    job = make_job(JobStatus.SUCCEEDED, kind=JobKind.REWARD, config={"base": "smol"}, summary={
        "train_rows": 12345, "eval_rows": 14, "filtered_too_long": {"train": 3, "eval": 2}, "margin_used": True,
        "steps": 12, "epochs": 1.0, "eval_accuracy": 0.7857142857142857,
        "eval_accuracy_by_strength": {"slight": 0.0, "clear": 1.0}, "train_loss": 0.6931471805599453,
        "samples_per_s": 41.26789, "checkpoint": "smol-rm-9", "cancelled": False, "seconds": 12.5,
    })
    content = as_admin.get(f"/manage/jobs/{job.pk}/").content.decode()
    summary = content.split("<h2>Summary</h2>")[1].split("</table>")[0]
    for label in ("comparisons made", "completions written", "new tokens", "completions scored", "cancelled"):
        assert label not in summary  # generation and scoring rows, and what the status already says
    assert '<th>training pairs</th><td class="num">12,345</td>' in summary
    assert '<th>held-out accuracy (chosen scored higher)</th><td class="num">0.7857</td>' in summary
    assert '<th>training loss</th><td class="num">0.6931</td>' in summary and ">41.27<" in summary
    assert ('<th>pairs left out: longer than max length</th><td><ul class="pairs"><li>train: <span class="num">3</span>'
            '</li><li>eval: <span class="num">2</span></li></ul></td>') in summary
    assert "slight: <span" in summary and "{" not in summary  # no raw dict
    running = make_job(JobStatus.RUNNING, kind=JobKind.DPO, config={"base": "smol"})
    assert "The summary appears when the job ends." in as_admin.get(f"/manage/jobs/{running.pk}/").content.decode()


def test_a_pairwise_run_page_shows_what_fitting_cut_and_left_out_its_ties_and_its_warnings(as_admin, world):
    warning = ("1 of 16 training pairs left out: chosen and rejected are the same tokens after cutting to max_length "
               "(no preference signal); raise max_length to keep them")
    job = make_job(JobStatus.SUCCEEDED, kind=JobKind.REWARD, config={"base": "smol"}, summary={
        "train_rows": 15, "eval_rows": 4, "truncated_prompt": {"train": 3, "eval": 2},
        "truncated_response": {"train": 1, "eval": 0}, "filtered_identical": {"train": 1, "eval": 0},
        "eval_accuracy": 0.5, "eval_tie_rate": 0.25, "steps": 2, "warnings": [warning],
    })
    content = as_admin.get(f"/manage/jobs/{job.pk}/").content.decode()
    assert f'<div class="warning" role="status"><strong>Warning:</strong> <span class="wrap">{warning}</span></div>' in content
    summary = content.split("<h2>Summary</h2>")[1].split("</table>")[0]
    for label, train, held_out in (
        ("pairs cut: the prompt&#x27;s start", 3, 2), ("pairs cut: the responses&#x27; end", 1, 0),
        ("pairs left out: chosen and rejected identical after cutting", 1, 0),
    ):
        assert (f'<th>{label}</th><td><ul class="pairs"><li>train: <span class="num">{train}</span></li>'
                f'<li>eval: <span class="num">{held_out}</span></li></ul></td>') in summary, label
    assert '<th>held-out accuracy (chosen scored higher)</th><td class="num">0.5</td>' in summary
    assert '<th>held-out ties (equal scores)</th><td class="num">0.25</td>' in summary


def test_a_running_jobs_phase_shows_beside_its_progress_until_it_ends(as_admin, world):
    job = make_job(JobStatus.RUNNING, kind=JobKind.REWARD, config={"base": "smol"}, progress_done=2, progress_total=2,
                   phase="saving checkpoint")
    poll = {**HTMX, "HTTP_HX_TARGET": "job-live"}
    live = as_admin.get(f"/manage/jobs/{job.pk}/", **poll).content.decode()
    assert '<span class="num">2/2</span> steps <span class="phase">· saving checkpoint</span>' in live
    assert '<span class="phase">· saving checkpoint</span>' in as_admin.get("/manage/jobs/").content.decode()
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="disk full", finished_at=timezone.now())
    assert "saving checkpoint" not in as_admin.get(f"/manage/jobs/{job.pk}/", **poll).content.decode()


def test_job_detail_poll_answers_200_while_running_and_286_when_finished(as_admin, world):
    job_id = world["ids"]["running"]
    poll = {**HTMX, "HTTP_HX_TARGET": "job-live"}
    running = as_admin.get(f"/manage/jobs/{job_id}/", **poll)
    assert running.status_code == 200
    assert running.content.decode().lstrip().startswith(f'<div id="job-live" hx-get="/manage/jobs/{job_id}/"')
    Job.objects.filter(pk=job_id).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now(), summary={"paired": 2})
    finished = as_admin.get(f"/manage/jobs/{job_id}/", **poll)
    assert finished.status_code == 286
    assert "succeeded" in finished.content.decode() and "hx-get" not in finished.content.decode()


# --- cancel ----------------------------------------------------------------------------------------
def test_cancelling_a_queued_job_cancels_it(as_admin, world):
    job_id = world["ids"]["queued"]
    response = as_admin.post(f"/manage/jobs/{job_id}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/manage/jobs/{job_id}/"
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None
    assert f"Job {job_id} cancelled." in as_admin.get(response["Location"]).content.decode()


def test_cancelling_a_running_job_asks_it_to_stop(as_admin, world):
    job_id = world["ids"]["running"]
    response = as_admin.post(f"/manage/jobs/{job_id}/cancel/", {"next": "/manage/jobs/?status=running"})
    assert response.status_code == 302 and response["Location"] == "/manage/jobs/?status=running"
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.RUNNING and job.cancel_requested
    page = as_admin.get(f"/manage/jobs/{job_id}/").content.decode()
    assert "stops after its current batch" in page
    assert f'action="/manage/jobs/{job_id}/cancel/"' not in page  # no second cancel button


def test_cancel_over_htmx_answers_204_and_tells_the_page_to_refresh(as_admin, world):
    job_id = world["ids"]["queued"]
    response = as_admin.post(f"/manage/jobs/{job_id}/cancel/", **HTMX)
    assert response.status_code == 204 and response["HX-Trigger"] == "job-changed"
    assert Job.objects.get(pk=job_id).status == JobStatus.CANCELLED


def test_cancel_leaves_a_finished_job_alone_and_ignores_foreign_next(as_admin, world):
    job = make_job(JobStatus.SUCCEEDED)
    response = as_admin.post(f"/manage/jobs/{job.pk}/cancel/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/manage/jobs/{job.pk}/"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and not job.cancel_requested


def test_cancel_needs_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["users"]["admin"])
    assert client.post(f"/manage/jobs/{world['ids']['queued']}/cancel/").status_code == 403
    assert Job.objects.get(pk=world["ids"]["queued"]).status == JobStatus.QUEUED


# --- the reaper ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/manage/jobs/", "/manage/jobs/{stale}/"])
def test_showing_jobs_reaps_a_running_job_whose_heartbeat_stopped(as_admin, world, path):
    stale = make_job(JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    live = Job.objects.get(pk=world["ids"]["running"])
    content = as_admin.get(path.format(stale=stale.pk)).content.decode()
    stale.refresh_from_db()
    assert stale.status == JobStatus.FAILED and stale.finished_at is not None
    assert "stopped reporting" in stale.error and "stopped reporting" in content
    assert Job.objects.get(pk=live.pk).status == JobStatus.RUNNING  # a fresh heartbeat is left alone


def test_the_job_list_pager_keeps_the_status_filter(as_admin, world):
    Job.objects.bulk_create([Job(kind="generation", status=JobStatus.FAILED) for _ in range(51)])
    content = as_admin.get("/manage/jobs/?status=failed").content.decode()
    assert "page 1 of 2 (51 jobs)" in " ".join(content.split())
    assert 'href="?status=failed&amp;page=2">next</a>' in content
    second = as_admin.get("/manage/jobs/?status=failed&page=2").content.decode()
    assert 'href="?status=failed&amp;page=1">previous</a>' in second
