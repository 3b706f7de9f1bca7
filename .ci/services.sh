# shellcheck shell=bash
# Services for the whole-suite run, sourced by .ci/run (or alone: `bash .ci/services.sh check`).
#
# - PostgreSQL: a throwaway cluster (initdb as the `postgres` user, in a temp dir, listening on a
#   unix socket there only) with a database `hipscreen`; exports HIPSCREEN_TEST_POSTGRES_URL for
#   tests/test_service_audit.py's PostgreSQL test. Stopped and deleted at exit, whatever happens.
# - Chromium and chromedriver for tests/test_service_pages.py: when missing, installed with
#   apt-get (as root only). A failed install is reported and the run goes on; the test then skips.
#
# HIPSCREEN_CI_SERVICES=0 starts nothing (those two tests skip with their reasons).
# Requires: bash, set -u safe. Functions: services_start, services_stop (set as an EXIT trap).

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
SERVICES_PG_DIR=""

services_log() {  # services_log MESSAGE: "[N s] services: MESSAGE", N the time since the start
  echo "[$((SECONDS - ${services_began:-$SECONDS})) s] services: $*"
}

services_as_postgres() {  # run a command as the postgres user when root, else as ourselves
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

services_postgres_start() {
  if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
    services_log "PostgreSQL not started: no initdb/pg_ctl in $PG_BIN (the PostgreSQL test skips)"
    return 0
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    services_log "PostgreSQL not started: running as root and no 'postgres' user for initdb"
    return 0
  fi
  # under /tmp: a path postgres can reach and short enough for a unix socket
  SERVICES_PG_DIR="$(mktemp -d /tmp/hipscreen-pg.XXXXXX)"
  chmod 755 "$SERVICES_PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$SERVICES_PG_DIR"; fi
  local data="$SERVICES_PG_DIR/data" socket="$SERVICES_PG_DIR" user
  user="$(services_as_postgres id -un)"
  if ! services_as_postgres "$PG_BIN/initdb" -D "$data" -U "$user" -A trust --no-sync \
    -E UTF8 --locale=C >"$SERVICES_PG_DIR/initdb.log" 2>&1; then
    services_log "PostgreSQL not started: initdb failed (the PostgreSQL test skips):"
    sed 's/^/    /' "$SERVICES_PG_DIR/initdb.log" | tail -n 20
    services_postgres_stop
    return 0
  fi
  # unix socket in the temp dir only, no TCP: no port to collide with anything else on the machine
  if ! services_as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$SERVICES_PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$socket' -c fsync=off" \
    start >/dev/null 2>&1; then
    services_log "PostgreSQL not started: pg_ctl start failed (the PostgreSQL test skips):"
    sed 's/^/    /' "$SERVICES_PG_DIR/server.log" | tail -n 20
    services_postgres_stop
    return 0
  fi
  if ! services_as_postgres "$PG_BIN/createdb" -h "$socket" -U "$user" hipscreen; then
    services_log "PostgreSQL: createdb failed (the PostgreSQL test skips)"
    services_postgres_stop
    return 0
  fi
  # libpq URL with the socket directory as host (percent-encoded), as psycopg expects
  export HIPSCREEN_TEST_POSTGRES_URL="postgresql+psycopg://$user@/hipscreen?host=${socket//\//%2F}"
  services_log "PostgreSQL 15 cluster in $SERVICES_PG_DIR (unix socket); HIPSCREEN_TEST_POSTGRES_URL=$HIPSCREEN_TEST_POSTGRES_URL"
}

services_postgres_stop() {
  [ -n "$SERVICES_PG_DIR" ] || return 0
  if [ -f "$SERVICES_PG_DIR/data/postmaster.pid" ]; then
    services_as_postgres "$PG_BIN/pg_ctl" -D "$SERVICES_PG_DIR/data" -m immediate -w -t 30 \
      stop >/dev/null 2>&1 || true
  fi
  rm -rf "$SERVICES_PG_DIR"
  SERVICES_PG_DIR=""
  unset HIPSCREEN_TEST_POSTGRES_URL
}

services_chromium() {
  if { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; } &&
    command -v chromedriver >/dev/null; then
    services_log "Chromium and chromedriver present: $(command -v chromium || command -v chromium-browser)"
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    services_log "no Chromium/chromedriver and no apt-get as root to install them (the browser test skips)"
    return 0
  fi
  services_log "installing chromium chromium-driver with apt-get"
  if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver >/dev/null; then
    services_log "installed chromium chromium-driver"
  else
    services_log "WARNING: apt-get update/install of chromium chromium-driver failed; the browser test skips"
  fi
}

services_start() {
  services_began=$SECONDS
  if [ "${HIPSCREEN_CI_SERVICES:-1}" = 0 ]; then
    services_log "HIPSCREEN_CI_SERVICES=0: none started (the PostgreSQL and browser tests skip)"
    return 0
  fi
  trap services_stop EXIT
  services_chromium
  services_postgres_start
  services_log "ready"
}

services_stop() {
  if [ -n "$SERVICES_PG_DIR" ]; then
    services_began=$SECONDS
    services_postgres_stop
    services_log "PostgreSQL stopped and its cluster deleted"
  fi
}

# Alone: `bash .ci/services.sh check` starts the services, runs a query, and stops them.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  services_start
  if [ -n "${HIPSCREEN_TEST_POSTGRES_URL:-}" ]; then
    url="${HIPSCREEN_TEST_POSTGRES_URL/postgresql+psycopg:/postgresql:}"
    services_as_postgres "$PG_BIN/psql" "$url" -Atc "select 'psql ok: ' || version()"
  fi
fi
