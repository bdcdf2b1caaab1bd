#!/usr/bin/env bash
# The whole suite: once on SQLite (with the browser tests and the real-model tests), once on
# PostgreSQL (everything that touches the database; the queue and vote concurrency tests matter
# most there). The real-model tests (SmolLM2 generating and training, minutes on a CPU) check model
# behaviour, which does not depend on the database, so they run once.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
export DEBUG=0 SECRET_KEY=test-only-secret-key-not-for-production HTTPS=0 ARBITER_PLAIN_STATIC=1

echo "== SQLite =="
env -u DATABASE_URL "$PY" -m pytest "$@"
sqlite_rc=$?
echo "== PostgreSQL ($PG_URL) =="
DATABASE_URL="$PG_URL" "$PY" -m pytest -m "not browser and not real_model" "$@"
pg_rc=$?
if [ $sqlite_rc -ne 0 ] || [ $pg_rc -ne 0 ]; then
  echo "FAILED: SQLite exit $sqlite_rc, PostgreSQL exit $pg_rc"
  exit 1
fi
