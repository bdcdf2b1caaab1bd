#!/usr/bin/env bash
# Set up the database, load demo data, queue SmolLM2's demo comparisons, start the web server and
# two task workers. Ctrl-C or SIGTERM stops all of them, and any runner a worker had started, cancels
# the generation jobs it queued that have not started, and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
mkdir -p var
[ -s var/secret_key ] || "$PY" -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key
export SECRET_KEY="$(cat var/secret_key)" HTTPS=0 DEBUG=0
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
WORKERS=${WORKERS:-2}
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-localhost,127.0.0.1,$HOST}
# Each worker's runner gets its share of the cores: two runners each spinning every core's worth
# of OpenMP threads would slow each other down several times over.
RUNNER_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / WORKERS > 0 ? $(nproc) / WORKERS : 1 ))}

"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py collectstatic --no-input -v 0
"$PY" manage.py load_demo
echo "importing the bundled SmolLM2-135M-Instruct (the first time takes about half a minute)"
"$PY" manage.py import_model
# The generation jobs this run queues (their ids, one a line). Stopping the demo cancels those that
# have not started; a job already running is failed by its worker when the worker is stopped. A run
# that could not stop cleanly (killed with SIGKILL, say) leaves the file behind: the next start
# cancels its jobs that are still queued first, so they do not run ahead of the new ones.
JOBS_FILE=var/demo-generation-jobs
queued_jobs=()
cancel_queued_jobs() {  # $1: what to say first
  [ ${#queued_jobs[@]} -gt 0 ] || return 0
  echo "$1" >&2
  "$PY" manage.py cancel_job --if-queued "${queued_jobs[@]}" >&2 || true  # ids a fresh database lacks
  rm -f "$JOBS_FILE"
}
if [ -s "$JOBS_FILE" ]; then
  mapfile -t queued_jobs < "$JOBS_FILE"
  cancel_queued_jobs "an earlier make demo did not stop cleanly: cancelling its generation jobs that have not started" 2>&1
  queued_jobs=()
fi

# Job control: every process started below leads its own process group, which stop_all signals as
# a whole. A worker passes the signal on to its runner (a session of its own), waits up to 10 s for
# it to stop, and marks the job failed ("The worker stopped (SIGTERM) while this job was running").
# Then the jobs still queued are cancelled. A clean stop (Ctrl-C, SIGTERM) exits 0.
process_groups=()
stop_all() {
  trap - INT TERM EXIT
  if [ ${#process_groups[@]} -gt 0 ]; then
    echo "stopping the web server and the workers ..." >&2
    local group alive _
    for group in "${process_groups[@]}"; do kill -TERM -- "-$group" 2>/dev/null || true; done
    for _ in $(seq 1 120); do  # up to 60 s
      alive=0
      for group in "${process_groups[@]}"; do kill -0 -- "-$group" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.5
    done
    for group in "${process_groups[@]}"; do kill -KILL -- "-$group" 2>/dev/null || true; done
    wait || true
  fi
  cancel_queued_jobs "cancelling the generation jobs it queued that have not started ..." || true
  echo "stopped" >&2
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

# SmolLM2 writes two answers to every demo prompt that has fewer than two open comparisons, in two
# jobs on disjoint prompts, one per worker: the 8 eval prompts in batches of 4 (the first
# comparisons reach the queue within a couple of minutes, the job ends in a few), and the 32 train
# prompts (several minutes more). Once the small job is done its worker is free for whatever you
# launch (a reward run, say).
generate() {
  local out id
  out=$("$PY" manage.py generate --checkpoint SmolLM2-135M-Instruct --max-open-comparisons 2 \
    --max-new-tokens 160 --votes-required 2 --priority 10 "$@") || return
  echo "$out"
  id=$(sed -n 's/^queued generation job \([0-9][0-9]*\) .*/\1/p' <<<"$out")
  if [ -n "$id" ]; then
    queued_jobs+=("$id")
    echo "$id" >> "$JOBS_FILE"
  fi
}
generate --split eval --limit 8 --batch-size 4 || echo "the eval prompts already have their SmolLM2 comparisons"
generate --split train --batch-size 8 || echo "the train prompts already have their SmolLM2 comparisons"

set -m
for _ in $(seq 1 "$WORKERS"); do
  OMP_NUM_THREADS=$RUNNER_THREADS "$PY" manage.py db_worker &
  process_groups+=($!)
done
"$PY" -m gunicorn config.wsgi --bind "$HOST:$PORT" --workers 2 --threads 4 --access-logfile - --log-level warning &
process_groups+=($!)

if [ "$WORKERS" = 1 ]; then task_workers="the task worker"; else task_workers="the $WORKERS task workers"; fi
cat <<MSG

  Arbiter is running at http://$HOST:$PORT/
  Log in as an annotator: annotator1 / arbiter-demo   (or annotator2 / arbiter-demo)
  Log in as an admin:     admin / arbiter-demo
  SmolLM2's first comparisons reach the annotators' queue within a few minutes;
  admins watch the generation jobs at http://$HOST:$PORT/manage/jobs/
  API docs: http://$HOST:$PORT/api/docs/   Django admin: http://$HOST:$PORT/admin/
  Press Ctrl-C to stop the web server, $task_workers and any job they are running.

MSG
wait -n "${process_groups[@]}"  # one of them ended by itself: stop the others (EXIT trap)
