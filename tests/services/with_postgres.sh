#!/usr/bin/env bash
# Run a command beside a throwaway PostgreSQL 15 cluster on a free loopback port, with
# VGGSERVE_TEST_POSTGRES_URL naming it (a superuser URL: tests create a database each).
# The cluster lives in a temporary folder, is stopped by its postmaster's PID on exit
# (whatever the command's outcome) and removed. Installs PostgreSQL 15 if this Debian
# machine lacks it (as root, from the distribution's registry).
#   tests/services/with_postgres.sh cargo test ...
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PG_BIN/initdb" ]; then
  echo "with_postgres: installing postgresql-15" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi

dir=$(mktemp -d /tmp/vggserve-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# initdb and postgres refuse to run as root: run them as the postgres user when root.
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$dir"
  as_pg=(runuser -u postgres --)
fi

stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    pid=$(head -1 "$dir/data/postmaster.pid")
    kill -QUIT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$dir"
}
trap stop EXIT

"${as_pg[@]}" "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
  --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200"
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -o "$opts" start >/dev/null \
  || { cat "$dir/pg.log" >&2; exit 1; }

export VGGSERVE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
export VGGSERVE_TEST_PG_BIN="$PG_BIN"
export VGGSERVE_TEST_PG_DATA="$dir/data"
# For the test that restarts the server mid-run (pg_ctl -D DATA -o OPTS -l LOG start).
export VGGSERVE_TEST_PG_OPTS="$opts" VGGSERVE_TEST_PG_LOG="$dir/pg.log"
echo "with_postgres: PostgreSQL on 127.0.0.1:$port" >&2
"$@"
