#!/usr/bin/env python
"""Load test of the annotation loop: N annotators claim (POST /api/assignments/next/) and vote
(POST /api/votes/) against the app served by gunicorn, then the database is checked.

    .venv/bin/python bench/annotate_load.py                        # SQLite, 32 annotators, 30 s
    .venv/bin/python bench/annotate_load.py --database both        # SQLite, then PostgreSQL
    .venv/bin/python bench/annotate_load.py --database postgres --annotators 64 --seconds 60
    .venv/bin/python bench/annotate_load.py --campaigns 4                # annotators spread over 4 campaigns

Each database gets a fresh store for the run: a temporary SQLite file, or a PostgreSQL database
created on ``--pg-url``'s server and dropped afterwards. Setup (migrate, annotators with tokens,
``--comparisons`` comparisons with mixed ``votes_required`` and priorities) runs in a child
process; the load generator itself never imports Django. All traffic goes to 127.0.0.1.

Printed per database: votes/s over the measured window (after ``--warmup``), p50/p95/p99
latency per endpoint (ms), server CPU seconds per vote (gunicorn master and workers, from
psutil; on PostgreSQL also the run's database backends), the load generator's own CPU, and the
database check:

- ``lost``: a vote answered 201/200 whose row is not in the database (or belongs elsewhere).
- ``duplicate``: more than one vote for a comparison+annotator, plus comparisons holding more
  votes than ``votes_required``.
- ``double_assigned``: comparisons whose live leases plus votes exceed ``votes_required`` at the
  end, plus claims that served a comparison whose every slot another annotator already held
  (leases here never expire or get skipped, so a served slot stays taken for the whole run).
- ``outside_pool`` (with ``--campaigns N``): votes on a comparison of a campaign whose pool does
  not hold the voter. With ``--campaigns N`` the comparisons are spread over N active campaigns
  (priorities 0..N-1; each with guidelines every annotator has acknowledged, so the vote's
  guidelines check reads a real row) and annotator i is in campaign i mod N's pool only; claims
  stay unscoped (``POST /api/assignments/next/``), so the pool rule picks their campaign.

The last line per database is one JSON object; with ``--database both`` a final combined line
follows. Exit status 1 when a check fails (lost, duplicate, double-assigned, vote_count or status
out of step, a 5xx, an annotator thread that gave up); the speed floor (``FLOOR``: 250 votes/s and
p99 under 150 ms on SQLite) is reported as ``floor_met``, not enforced, since the machine may be shared.

Server: gunicorn with ``--workers`` sync workers (default 2, one per core of the 2-core machine it
was tuned on). A request is CPU-bound Python and SQLite runs one writer at a time, so more
processes only add context switches and lock waits: 3 or 4 sync workers took roughly 10-30% more
CPU per vote and gave fewer votes/s; gthread (``--threads`` > 1; 2x2, 2x4, 1x4 tried) took up to
30% more CPU per vote and had a p99 two to three times higher (GIL hand-offs between a worker's
threads). Sync workers close the connection after each answer; reconnecting on loopback is cheap.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
NEXT, VOTE = "next", "vote"
NEXT_PATH, VOTE_PATH = "/api/assignments/next/", "/api/votes/"
REQUEST_TIMEOUT_S = 30.0
DEFAULT_WORKERS, DEFAULT_THREADS = 2, 1
FLOOR = {"votes_per_s": 250, "p99_ms": 150}  # on SQLite


# --- setup and check (run in a child process with Django) ------------------------------------
def _django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def child_setup(annotators: int, comparisons: int, seed: int, out: Path, campaigns: int = 0) -> None:
    """Create annotators (with tokens), ``campaigns`` campaigns (0: the Default campaign only) and
    comparisons; write {"tokens": [[user_id, key], ...], "pool": {user_id: campaign_id}} to ``out``."""
    _django()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from feedback.messages import messages_sha256
    from feedback.models import (
        Campaign,
        Comparison,
        Completion,
        GuidelineAcknowledgement,
        GuidelineVersion,
        Prompt,
        default_campaign_id,
    )
    from feedback.roles import roles_ensure

    rng = random.Random(seed)
    words = ("model", "answer", "reward", "policy", "token", "gradient", "prompt", "human", "judge", "data",
             "the", "a", "is", "of", "and", "to", "in", "that", "it", "with")

    def text(n_words: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n_words)).capitalize() + "."

    started = time.monotonic()
    User = get_user_model()
    with transaction.atomic():
        group = roles_ensure()["annotator"]
        unusable = make_password(None)
        users = User.objects.bulk_create(
            [User(username=f"bench-annotator-{i:04d}", password=unusable) for i in range(annotators)]
        )
        User.groups.through.objects.bulk_create([User.groups.through(user_id=u.pk, group_id=group.pk) for u in users])
        keys = [secrets.token_hex(20) for _ in users]
        try:  # hashed API tokens (feedback.tokens)
            from feedback.tokens.models import ApiToken
            from feedback.tokens.services import token_digest
        except ImportError:  # an older tree (before f9262b2's successors): DRF's plain tokens
            from rest_framework.authtoken.models import Token

            Token.objects.bulk_create([Token(key=k, user=u) for u, k in zip(users, keys)])
        else:
            ApiToken.objects.bulk_create(
                [ApiToken(user=u, prefix=k[:8], digest=token_digest(k)) for u, k in zip(users, keys)]
            )
        campaign_ids = [default_campaign_id()]
        pool: dict[int, int] = {}
        if campaigns:
            made = Campaign.objects.bulk_create([
                Campaign(name=f"Bench {n}", slug=f"bench-{n}", status="active", priority=n) for n in range(campaigns)
            ])
            campaign_ids = [c.pk for c in made]
            pool = {u.pk: campaign_ids[i % campaigns] for i, u in enumerate(users)}
            Campaign.annotators.through.objects.bulk_create(
                [Campaign.annotators.through(campaign_id=c, user_id=u) for u, c in pool.items()]
            )
            versions = GuidelineVersion.objects.bulk_create(
                [GuidelineVersion(campaign_id=c, number=1, text="Prefer the more useful answer.") for c in campaign_ids]
            )
            by_campaign = {v.campaign_id: v.pk for v in versions}
            GuidelineAcknowledgement.objects.bulk_create(
                [GuidelineAcknowledgement(version_id=by_campaign[c], annotator_id=u) for u, c in pool.items()]
            )
    batch = 2000
    for start in range(0, comparisons, batch):
        n = min(batch, comparisons - start)
        with transaction.atomic():
            prompts = []
            for i in range(start, start + n):
                messages = [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": f"Question {i}: {text(30)}"},
                ]
                prompts.append(Prompt(messages=messages, messages_sha256=messages_sha256(messages), source="bench",
                                      tags=["bench"], split="train"))
            prompts = Prompt.objects.bulk_create(prompts)
            completions = Completion.objects.bulk_create(
                [Completion(prompt=p, model_name=name, text=text(rng.randint(60, 200)))
                 for p in prompts for name in ("model-a", "model-b")]
            )
            rows = []
            for j, p in enumerate(prompts):
                roll = rng.random()
                rows.append(Comparison(
                    campaign_id=campaign_ids[(start + j) % len(campaign_ids)],
                    prompt=p, completion_a=completions[2 * j], completion_b=completions[2 * j + 1],
                    votes_required=1 if roll < 0.80 else 2 if roll < 0.95 else 3,
                    priority=rng.choice((0, 0, 0, 0, 0, 0, 0, 5, 5, 10)),
                ))
            Comparison.objects.bulk_create(rows)
    out.write_text(json.dumps({"tokens": [[u.pk, k] for u, k in zip(users, keys)], "pool": pool,
                               "setup_s": round(time.monotonic() - started, 1)}))


def child_check(records: Path, out: Path, setup: Path | None = None) -> None:
    """Check the database against the load generator's records; write the counts as JSON to ``out``."""
    _django()
    from django.db.models import Count, F, Q
    from django.utils import timezone

    from feedback.models import Assignment, AssignmentStatus, Comparison, Vote

    rec = json.loads(records.read_text())
    now = timezone.now()
    votes = {pk: (c, a) for pk, c, a in Vote.objects.values_list("id", "comparison_id", "annotator_id")}
    lost = sum(1 for _, user_id, comparison_id, vote_id in rec["votes_ok"] if votes.get(vote_id) != (comparison_id, user_id))
    acknowledged = {vote_id for _, _, _, vote_id in rec["votes_ok"]}
    pool = {int(u): c for u, c in json.loads(setup.read_text()).get("pool", {}).items()} if setup else {}
    outside_pool = 0
    if pool:
        campaign_of = dict(Comparison.objects.filter(votes__isnull=False).values_list("id", "campaign_id").distinct())
        outside_pool = sum(1 for _, user_id, comparison_id, _ in rec["votes_ok"]
                           if campaign_of.get(comparison_id) != pool.get(user_id))
    unacknowledged = sum(1 for pk in votes if pk not in acknowledged)

    dup_pairs = (
        Vote.objects.values("comparison_id", "annotator_id").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    per_comparison = Comparison.objects.annotate(
        votes_n=Count("votes", distinct=True),
        live_n=Count(
            "assignments",
            filter=Q(assignments__status=AssignmentStatus.LEASED, assignments__expires_at__gt=now),
            distinct=True,
        ),
    )
    over_voted = per_comparison.filter(votes_n__gt=F("votes_required")).count()
    over_held = per_comparison.filter(live_n__gt=F("votes_required") - F("votes_n")).count()
    count_mismatch = per_comparison.exclude(vote_count=F("votes_n")).count()
    status_wrong = (
        per_comparison.filter(status="open", votes_n__gte=F("votes_required")).count()
        + per_comparison.filter(status="complete", votes_n__lt=F("votes_required")).count()
    )
    required = dict(Comparison.objects.filter(assignments__isnull=False).values_list("id", "votes_required").distinct())

    # Claims served while every slot was already held by others (client order of answers).
    served: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for t, user_id, comparison_id in rec["claims_ok"]:
        served[comparison_id].append((t, user_id))
    served_while_held = 0
    for comparison_id, events in served.items():
        seen: list[int] = []
        for _, user_id in sorted(events):
            if user_id in seen:
                continue  # the same annotator's own lease served again (a retried claim)
            if len(seen) >= required.get(comparison_id, 1):
                served_while_held += 1
            seen.append(user_id)
    # A claim must never serve back a comparison the annotator already voted on before that claim.
    voted_at = {(user_id, comparison_id): t for t, user_id, comparison_id, _ in rec["votes_ok"]}
    served_own_voted = sum(
        1 for t, user_id, comparison_id in rec["claims_ok"] if voted_at.get((user_id, comparison_id), t) < t
    )

    out.write_text(json.dumps({
        "lost": lost,
        "duplicate": dup_pairs + over_voted,
        "duplicate_pairs": dup_pairs,
        "over_voted": over_voted,
        "double_assigned": over_held + served_while_held,
        "over_held_at_end": over_held,
        "served_while_held": served_while_held,
        "served_own_voted": served_own_voted,
        "vote_count_mismatch": count_mismatch,
        "status_wrong": status_wrong,
        "outside_pool": outside_pool,
        "votes_in_db": len(votes),
        "unacknowledged_votes": unacknowledged,
        "assignments_in_db": Assignment.objects.count(),
    }))


# --- load generator (no Django) ---------------------------------------------------------------
class HTTPConnection:
    """A minimal HTTP/1.1 client for one connection, kept alive when the server allows. The load
    generator shares the cores with the server, and ``http.client`` (headers parsed through
    ``email``) took about twice the CPU per vote. Understands Content-Length and Connection: close,
    which is all gunicorn sends for these answers; anything else is a transport error."""

    def __init__(self, port: int, headers: dict[str, str]):
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{HOST}:{port}", **headers}.items()).encode()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """Send one POST and read its answer: (status, body). Raises OSError or ConnectionError."""
        if self.sock is None:
            self.sock = socket.create_connection((HOST, self.port), timeout=REQUEST_TIMEOUT_S)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (path.encode(), self.head, len(body), body))
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the answer's headers")
            buf += chunk
        lines = buf[:end].split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                raise ConnectionError("chunked answers are not supported")
        buf = buf[end + 4:]
        while len(buf) < length:
            chunk = self.sock.recv(max(65536, length - len(buf)))
            if not chunk:
                raise ConnectionError("connection closed in the middle of an answer")
            buf += chunk
        data, self.buf = buf[:length], buf[length:]
        if close:
            self.close()
        return status, data


class Annotator(threading.Thread):
    """One simulated annotator: next -> vote, with no think time, on its own connection, until ``stop_at``."""

    def __init__(self, index: int, user_id: int, key: str, port: int, start_at: float, stop_at: float, seed: int):
        super().__init__(name=f"annotator-{index}", daemon=True)
        self.user_id, self.start_at, self.stop_at = user_id, start_at, stop_at
        self.conn = HTTPConnection(
            port, {"Authorization": f"Token {key}", "Content-Type": "application/json", "Accept": "application/json"}
        )
        self.rng = random.Random(seed)
        # (endpoint, t_end, latency_s, status)
        self.samples: list[tuple[str, float, float, int]] = []
        self.claims_ok: list[tuple[float, int, int]] = []  # (t, user, comparison)
        self.votes_ok: list[tuple[float, int, int, int]] = []  # (t, user, comparison, vote id)
        self.transport_errors = 0
        self.empty = False
        self.error: str | None = None

    def _post(self, endpoint: str, path: str, body: bytes) -> tuple[int, bytes]:
        """POST with one retry on a dropped keep-alive connection (both endpoints are idempotent)."""
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                status, data = self.conn.post(path, body)
            except OSError:  # ConnectionError and socket timeouts included
                self.transport_errors += 1
                self.conn.close()
                if attempt == 2 or time.monotonic() >= self.stop_at:
                    raise
                continue
            t1 = time.perf_counter()
            self.samples.append((endpoint, time.monotonic(), t1 - t0, status))
            return status, data
        raise AssertionError("unreachable")

    def run(self) -> None:
        delay = self.start_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            while time.monotonic() < self.stop_at:
                status, data = self._post(NEXT, NEXT_PATH, b"")
                if status == 204:
                    self.empty = True
                    return
                if status != 200:
                    time.sleep(0.05)
                    continue
                comparison = json.loads(data)["comparison"]
                self.claims_ok.append((time.monotonic(), self.user_id, comparison))
                choice = self.rng.choice(("a", "a", "b", "b", "tie", "both_bad"))
                vote = {"comparison": comparison, "choice": choice, "ms_on_item": self.rng.randint(2000, 60000)}
                if choice in ("a", "b"):
                    vote["strength"] = self.rng.choice(("slight", "clear", "strong"))
                status, data = self._post(VOTE, VOTE_PATH, json.dumps(vote).encode())
                if status in (200, 201):
                    self.votes_ok.append((time.monotonic(), self.user_id, comparison, json.loads(data)["id"]))
        except Exception as error:  # noqa: BLE001 - reported, never hides a check
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.conn.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


# --- processes --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_seconds(processes: dict[int, object]) -> float:
    """User+system CPU seconds of live processes (psutil.Process objects keyed by pid)."""
    total = 0.0
    for proc in processes.values():
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except Exception:  # noqa: BLE001 - a process that went away
            pass
    return total


def server_processes(master_pid: int) -> dict[int, object]:
    import psutil

    master = psutil.Process(master_pid)
    procs = {master.pid: master}
    for child in master.children(recursive=True):
        procs[child.pid] = child
    return procs


def stop_process_group(proc: subprocess.Popen | None, grace_s: float = 10.0) -> None:
    """SIGTERM the process group started for ``proc`` (gunicorn master + workers); SIGKILL on timeout."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def _die_with_parent() -> None:
    """In the gunicorn child before exec: SIGTERM it if this process dies (even by SIGKILL). Linux only."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def wait_healthy(port: int, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {proc.returncode} during start")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /healthz within {timeout_s:.0f} s")


def pg_admin(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def pg_backend_processes(admin_url: str, dbname: str) -> dict[int, object]:
    import psutil

    rows = pg_admin(admin_url, f"SELECT pid FROM pg_stat_activity WHERE datname = '{dbname}' AND pid <> pg_backend_pid()")
    procs = {}
    for (pid,) in rows:
        try:
            procs[pid] = psutil.Process(pid)
        except Exception:  # noqa: BLE001 - not visible or gone
            pass
    return procs


def run_child(args: list[str], env: dict[str, str], timeout_s: float, what: str) -> None:
    result = subprocess.run([PY, *args], cwd=ROOT, env=env, timeout=timeout_s, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


# --- one run ----------------------------------------------------------------------------------
def run_one(db: str, opts: argparse.Namespace) -> dict:
    import psutil

    tmp = Path(tempfile.mkdtemp(prefix=f"arbiter-bench-{db}-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": "bench",
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ARBITER_PLAIN_STATIC": "1",
        "ARBITER_VAR_DIR": str(tmp),
        "ARBITER_DATA_DIR": str(tmp / "data"),
        "LOG_LEVEL": "ERROR",
        "PYTHONUNBUFFERED": "1",
    }
    pg_db = None
    admin_url = opts.pg_url
    if db == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{tmp / 'db.sqlite3'}"
    else:
        parts = urlsplit(opts.pg_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("--pg-url must point at this machine (127.0.0.1)")
        pg_db = f"arbiter_bench_{os.getpid()}_{int(time.time())}"
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{pg_db}"))
    server: subprocess.Popen | None = None
    log = tmp / "gunicorn.log"
    result: dict = {"db": db}
    try:
        if pg_db:
            pg_admin(admin_url, f'CREATE DATABASE "{pg_db}"')
        t = time.monotonic()
        run_child(["manage.py", "migrate", "--noinput"], env, 600, "migrate")
        run_child([__file__, "_setup", str(opts.annotators), str(opts.comparisons), str(opts.seed), str(tmp / "setup.json"),
                   str(opts.campaigns)], env, 900, "setup")
        setup = json.loads((tmp / "setup.json").read_text())
        print(f"[{db}] setup: migrate + {opts.annotators} annotators + {opts.comparisons} comparisons"
              f"{f' in {opts.campaigns} campaigns' if opts.campaigns else ''} in "
              f"{time.monotonic() - t:.1f} s", file=sys.stderr)

        port = free_port()
        cmd = [str(Path(PY).with_name("gunicorn")), "config.wsgi:application", "--bind", f"{HOST}:{port}",
               "--workers", str(opts.workers), "--threads", str(opts.threads), "--worker-class",
               "gthread" if opts.threads > 1 else "sync", "--backlog", "2048", "--timeout", "60",
               "--graceful-timeout", "5", "--keep-alive", "5", "--error-logfile", str(log), "--log-level", "warning"]
        with open(tmp / "gunicorn.out", "wb") as out:
            server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True, preexec_fn=_die_with_parent)
        wait_healthy(port, server)

        start_at = time.monotonic() + 0.2
        window_start = start_at + opts.warmup
        stop_at = window_start + opts.seconds
        threads = [
            Annotator(i, user_id, key, port, start_at, stop_at, opts.seed * 1000 + i)
            for i, (user_id, key) in enumerate(setup["tokens"])
        ]
        for th in threads:
            th.start()
        # Sample CPU at the window's edges (after warm-up, so worker start-up is not counted).
        time.sleep(max(0.0, window_start - time.monotonic()))
        server_procs = server_processes(server.pid)
        pg_procs = pg_backend_processes(admin_url, pg_db) if pg_db else {}
        srv0, pg0, me0 = cpu_seconds(server_procs), cpu_seconds(pg_procs), time.process_time()
        sys0 = psutil.cpu_times()
        wall0 = time.monotonic()
        time.sleep(max(0.0, stop_at - time.monotonic()))
        wall = time.monotonic() - wall0
        server_procs.update({k: v for k, v in server_processes(server.pid).items() if k not in server_procs})
        if pg_db:
            pg_procs.update({k: v for k, v in pg_backend_processes(admin_url, pg_db).items() if k not in pg_procs})
        srv1, pg1, me1 = cpu_seconds(server_procs), cpu_seconds(pg_procs), time.process_time()
        sys1 = psutil.cpu_times()
        for th in threads:
            th.join(timeout=REQUEST_TIMEOUT_S + 5)
        stop_process_group(server)

        samples = [s for th in threads for s in th.samples]
        in_window = [s for s in samples if window_start <= s[1] <= stop_at]
        statuses = Counter(f"{e} {s}" for e, _, _, s in samples)
        votes_in_window = sum(1 for e, _, _, s in in_window if e == VOTE and s == 201)
        latency = {}
        for endpoint in (NEXT, VOTE):
            values = sorted(lat * 1000 for e, _, lat, _ in in_window if e == endpoint)
            latency[endpoint] = {q: round(percentile(values, q), 1) for q in (50, 95, 99)} | {
                "max": round(values[-1], 1) if values else None, "n": len(values)}
        busy = lambda t: t.user + t.system + getattr(t, "nice", 0) + getattr(t, "irq", 0) + getattr(t, "softirq", 0)  # noqa: E731
        machine_busy = (busy(sys1) - busy(sys0)) / wall

        records = {
            "claims_ok": [c for th in threads for c in th.claims_ok],
            "votes_ok": [v for th in threads for v in th.votes_ok],
        }
        (tmp / "records.json").write_text(json.dumps(records))
        run_child([__file__, "_check", str(tmp / "records.json"), str(tmp / "check.json"), str(tmp / "setup.json")],
                  env, 600, "check")
        check = json.loads((tmp / "check.json").read_text())
        errors_5xx = sum(n for k, n in statuses.items() if k.split()[1].startswith("5"))
        unexpected = {k: n for k, n in statuses.items() if k not in (f"{NEXT} 200", f"{NEXT} 204", f"{VOTE} 201")}
        client_errors = [th.error for th in threads if th.error]
        result.update({
            "votes_per_s": round(votes_in_window / wall, 1),
            "votes": votes_in_window,
            "seconds": round(wall, 1),
            "annotators": opts.annotators,
            "campaigns": opts.campaigns,
            "workers": opts.workers,
            "threads": opts.threads,
            "p50_ms": {k: v[50] for k, v in latency.items()},
            "p95_ms": {k: v[95] for k, v in latency.items()},
            "p99_ms": {k: v[99] for k, v in latency.items()},
            "max_ms": {k: v["max"] for k, v in latency.items()},
            "server_cpu_s_per_vote": round((srv1 - srv0) / max(votes_in_window, 1), 5),
            "server_cpu_s": round(srv1 - srv0, 2),
            **({"db_cpu_s_per_vote": round((pg1 - pg0) / max(votes_in_window, 1), 5)} if pg_db else {}),
            "loadgen_cpu_s": round(me1 - me0, 2),
            "loadgen_cpu_pct_of_one_core": round(100 * (me1 - me0) / wall, 1),
            "machine_busy_cores": round(machine_busy, 2),
            "other_busy_cores": round(machine_busy - (srv1 - srv0 + pg1 - pg0 + me1 - me0) / wall, 2),
            **check,
            "http_unexpected": unexpected,
            "errors_5xx": errors_5xx,
            "transport_errors": sum(th.transport_errors for th in threads),
            "client_errors": len(client_errors),
            "queue_ran_dry": any(th.empty for th in threads),
        })
        if db == "sqlite":
            result["floor_met"] = (
                result["votes_per_s"] >= FLOOR["votes_per_s"]
                and all(p < FLOOR["p99_ms"] for p in result["p99_ms"].values())
                and not failed(result)
            )
        if client_errors:
            print(f"[{db}] client errors (first 3): {client_errors[:3]}", file=sys.stderr)
        text = log.read_text(errors="replace") if log.exists() else ""
        if "Traceback" in text or errors_5xx:
            print(f"[{db}] gunicorn log tail:\n{text[-3000:]}", file=sys.stderr)
        return result
    finally:
        stop_process_group(server)
        if pg_db:
            try:
                pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
            except Exception as error:  # noqa: BLE001
                print(f"[{db}] could not drop database {pg_db}: {error}", file=sys.stderr)
        if opts.keep:
            print(f"[{db}] kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(r: dict) -> None:
    spread = f" in {r['campaigns']} campaigns" if r.get("campaigns") else ""
    print(f"\n== {r['db']}: {r['annotators']} annotators{spread}, gunicorn {r['workers']} worker(s) x {r['threads']} thread(s), "
          f"{r['seconds']} s ==")
    print(f"votes/s            {r['votes_per_s']}  ({r['votes']} votes)")
    for endpoint, path in ((NEXT, NEXT_PATH), (VOTE, VOTE_PATH)):
        print(f"{path:<22} p50 {r['p50_ms'][endpoint]:>7} ms   p95 {r['p95_ms'][endpoint]:>7} ms   "
              f"p99 {r['p99_ms'][endpoint]:>7} ms   max {r['max_ms'][endpoint]} ms")
    line = f"server CPU/vote     {r['server_cpu_s_per_vote'] * 1000:.2f} ms (gunicorn {r['server_cpu_s']} s"
    if "db_cpu_s_per_vote" in r:
        line += f"; PostgreSQL backends {r['db_cpu_s_per_vote'] * 1000:.2f} ms/vote"
    print(line + ")")
    print(f"load generator CPU  {r['loadgen_cpu_s']} s ({r['loadgen_cpu_pct_of_one_core']}% of one core); "
          f"machine busy {r['machine_busy_cores']} of {os.cpu_count()} cores, "
          f"{r['other_busy_cores']} of them other processes")
    pool = f"   outside pool {r['outside_pool']}" if r.get("campaigns") else ""
    print(f"lost {r['lost']}   duplicate {r['duplicate']}   double-assigned {r['double_assigned']} "
          f"(at end {r['over_held_at_end']}, served while held {r['served_while_held']})   "
          f"vote_count mismatch {r['vote_count_mismatch']}   served own voted {r['served_own_voted']}{pool}")
    print(f"HTTP other than next 200/204 and vote 201: {r['http_unexpected'] or 'none'}; transport errors "
          f"{r['transport_errors']}; unacknowledged votes {r['unacknowledged_votes']}")
    if "floor_met" in r:
        print(f"floor ({FLOOR['votes_per_s']} votes/s, p99 < {FLOOR['p99_ms']} ms, no errors): "
              f"{'met' if r['floor_met'] else 'NOT met'}")


def failed(r: dict) -> bool:
    return bool(r["lost"] or r["duplicate"] or r["double_assigned"] or r["vote_count_mismatch"] or r["errors_5xx"]
                or r["client_errors"] or r["served_own_voted"] or r["status_wrong"] or r.get("outside_pool"))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_setup":
        child_setup(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]),
                    int(sys.argv[6]) if len(sys.argv) > 6 else 0)
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_check":
        child_check(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]) if len(sys.argv) > 4 else None)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window (default 30)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before the window (default 3)")
    parser.add_argument("--comparisons", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help=f"gunicorn workers (default {DEFAULT_WORKERS})")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"threads per worker; >1 uses the gthread worker (default {DEFAULT_THREADS})")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL database on 127.0.0.1 to connect to for CREATE/DROP DATABASE")
    parser.add_argument("--campaigns", type=int, default=0,
                        help="spread comparisons and annotators over N campaigns (each annotator in one pool)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, SQLite file)")
    opts = parser.parse_args()
    if opts.campaigns < 0:
        parser.error("--campaigns must be 0 or more")
    if opts.annotators < 1 or opts.seconds <= 0 or opts.comparisons < 1 or opts.workers < 1 or opts.threads < 1:
        parser.error("--annotators, --seconds, --comparisons, --workers and --threads must be positive")

    # SIGTERM/SIGHUP unwind like Ctrl-C, so every finally (stop gunicorn, drop the database) runs.
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)

    results = []
    for db in ("sqlite", "postgres") if opts.database == "both" else (opts.database,):
        r = run_one(db, opts)
        report(r)
        print(json.dumps(r), flush=True)
        results.append(r)
    if len(results) > 1:
        combined = {
            "db": "both",
            **{f"votes_per_s_{r['db']}": r["votes_per_s"] for r in results},
            **{f"p99_ms_{r['db']}": r["p99_ms"] for r in results},
            **{k: sum(r[k] for r in results) for k in ("lost", "duplicate", "double_assigned", "errors_5xx")},
            "ok": not any(failed(r) for r in results),
            "floor_met": all(r.get("floor_met", True) for r in results),
        }
        print(json.dumps(combined), flush=True)
    return 1 if any(failed(r) for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as interrupt:  # cleanup already ran in run_one's finally
        print(f"interrupted ({interrupt or 'Ctrl-C'}); gunicorn stopped, temporary data removed", file=sys.stderr)
        sys.exit(130)
