#!/usr/bin/env bash
# Set up the database, load demo data, start the web server and the task worker.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
mkdir -p var
[ -s var/secret_key ] || "$PY" -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key
export SECRET_KEY="$(cat var/secret_key)" HTTPS=0 DEBUG=0
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-localhost,127.0.0.1,$HOST}

"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py collectstatic --no-input -v 0
"$PY" manage.py load_demo
echo "importing the bundled SmolLM2-135M-Instruct (the first time takes about half a minute)"
"$PY" manage.py import_model
# SmolLM2 writes two answers to every demo prompt that has fewer than two open comparisons; the
# task worker below runs the job and the comparisons reach the queue batch by batch.
"$PY" manage.py generate --checkpoint SmolLM2-135M-Instruct --max-open-comparisons 2 \
  --max-new-tokens 160 --batch-size 8 --votes-required 2 --priority 10 \
  || echo "every demo prompt already has its SmolLM2 comparisons"

"$PY" manage.py db_worker &
worker=$!
"$PY" -m gunicorn config.wsgi --bind "$HOST:$PORT" --workers 2 --threads 4 --access-logfile - --log-level warning &
web=$!
trap 'kill $worker $web 2>/dev/null; wait' INT TERM EXIT

cat <<MSG

  Arbiter is running at http://$HOST:$PORT/
  Log in as an annotator: annotator1 / arbiter-demo   (or annotator2 / arbiter-demo)
  Log in as an admin:     admin / arbiter-demo
  SmolLM2's first comparisons reach the annotators' queue within a few minutes;
  admins watch the generation job at http://$HOST:$PORT/manage/jobs/
  API docs: http://$HOST:$PORT/api/docs/   Django admin: http://$HOST:$PORT/admin/
  Press Ctrl-C to stop the web server and the worker.

MSG
wait -n $worker $web
