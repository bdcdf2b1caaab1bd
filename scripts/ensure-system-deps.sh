#!/usr/bin/env bash
# What the test suite needs outside Python: Debian's Chromium (browser tests) and a PostgreSQL
# server at 127.0.0.1:5432 (the PostgreSQL half of the suite). Installs them with apt when missing
# and we are root; otherwise says exactly what is missing and stops.
set -euo pipefail

need_apt=()
# The browser tests launch exactly /usr/bin/chromium (Debian's package), so that is what is checked.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then need_apt+=(postgresql); fi
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: missing system packages: ${need_apt[*]} (install them with your package manager)" >&2
    exit 1
  fi
  echo "installing ${need_apt[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "error: PostgreSQL does not answer at 127.0.0.1:5432" >&2; exit 1; }
  # A freshly installed cluster asks for passwords on TCP; the suite connects as postgres with trust.
  if ! psql -h 127.0.0.1 -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
    hba=$(ls /etc/postgresql/"$version"/main/pg_hba.conf)
    sed -i 's/^\(host[[:space:]].*127.0.0.1\/32[[:space:]]*\)[a-z0-9-]*$/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
fi
psql -h 127.0.0.1 -U postgres -d postgres -tc "select 1 from pg_database where datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null
