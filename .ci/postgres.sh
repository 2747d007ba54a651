#!/usr/bin/env bash
# Start a throwaway PostgreSQL 15 server for the tests and print the line that
# exports its URL: eval "$(bash .ci/postgres.sh start)". Stop it with
# `bash .ci/postgres.sh stop DIR` (DIR is exported as COAPFW_TEST_PG_DIR).
#
# Why initdb into a temporary directory rather than `pg_ctlcluster 15 main start`:
# it does not depend on the state of the machine's `main` cluster (absent,
# running, password-protected), it listens on loopback only with trust
# authentication (nothing to configure for the tests), and it leaves nothing
# behind. initdb refuses to run as root, so as root it runs as `postgres`
# (the user Debian's package creates).
set -euo pipefail

PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"

as_pg() {
  # From /tmp: the postgres user may not be allowed into the checkout.
  if [ "$(id -u)" -eq 0 ]; then (cd /tmp && runuser -u postgres -- "$@"); else "$@"; fi
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

start() {
  [ -x "$PGBIN/initdb" ] || { echo "postgres.sh: $PGBIN/initdb not found (apt-get install postgresql)" >&2; exit 1; }
  local dir port
  dir="$(mktemp -d /tmp/coapfw-pg.XXXXXX)"
  chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  port="$(free_port)"
  # fsync off: a test database that dies with the machine is fine, and it is much faster.
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "export COAPFW_TEST_PG=postgres://postgres@127.0.0.1:$port/postgres COAPFW_TEST_PG_DIR=$dir"
}

stop() {
  local dir="${1:?usage: postgres.sh stop DIR}"
  [ -d "$dir/data" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: postgres.sh start | stop DIR" >&2; exit 2 ;;
esac
