#!/usr/bin/env bash
# Set up the database, load demo data, queue SmolLM2's demo comparisons, start the web server and
# two task workers. Ctrl-C or SIGTERM stops all of them, and any runner a worker had started.
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
# SmolLM2 writes two answers to every demo prompt that has fewer than two open comparisons, in two
# jobs on disjoint prompts, one per worker: the 8 eval prompts in batches of 4 (the first
# comparisons reach the queue within a couple of minutes, the job ends in a few), and the 32 train
# prompts (several minutes more). Once the small job is done its worker is free for whatever you
# launch (a reward run, say).
generate() {
  "$PY" manage.py generate --checkpoint SmolLM2-135M-Instruct --max-open-comparisons 2 \
    --max-new-tokens 160 --votes-required 2 --priority 10 "$@"
}
generate --split eval --limit 8 --batch-size 4 || echo "the eval prompts already have their SmolLM2 comparisons"
generate --split train --batch-size 8 || echo "the train prompts already have their SmolLM2 comparisons"

# Job control: every process started below leads its own process group, which stop_all signals as
# a whole. A worker passes the signal on to its runner (a session of its own), waits up to 10 s for
# it to stop, and marks the job failed ("The worker stopped (SIGTERM) while this job was running").
set -m
process_groups=()
stop_all() {
  trap - INT TERM EXIT
  [ ${#process_groups[@]} -gt 0 ] || return 0
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
  echo "stopped" >&2
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

for _ in $(seq 1 "$WORKERS"); do
  OMP_NUM_THREADS=$RUNNER_THREADS "$PY" manage.py db_worker &
  process_groups+=($!)
done
"$PY" -m gunicorn config.wsgi --bind "$HOST:$PORT" --workers 2 --threads 4 --access-logfile - --log-level warning &
process_groups+=($!)

cat <<MSG

  Arbiter is running at http://$HOST:$PORT/
  Log in as an annotator: annotator1 / arbiter-demo   (or annotator2 / arbiter-demo)
  Log in as an admin:     admin / arbiter-demo
  SmolLM2's first comparisons reach the annotators' queue within a few minutes;
  admins watch the generation jobs at http://$HOST:$PORT/manage/jobs/
  API docs: http://$HOST:$PORT/api/docs/   Django admin: http://$HOST:$PORT/admin/
  Press Ctrl-C to stop the web server, the $WORKERS task workers and any job they are running.

MSG
wait -n "${process_groups[@]}"  # one of them ended by itself: stop the others (EXIT trap)
