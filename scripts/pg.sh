#!/usr/bin/env bash
# A PostgreSQL cluster of the project's own, for the bring-up command and
# the benchmarks (the tests start theirs from t/harness).
#
#   scripts/pg.sh start DIR PORT   initdb if needed, start, wait until ready
#   scripts/pg.sh stop DIR         fast shutdown (by the postmaster's pid)
#   scripts/pg.sh conninfo DIR PORT [DB]
#
# The data lives in DIR/data (owned by postgres when run as root), the
# socket in DIR/socket (reachable by httpd's children).
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|conninfo DIR [PORT] [DB]}
dir=$(realpath -m "${2:?DIR}")
port=${3:-5432}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
  start)
    mkdir -p "$dir/socket"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir" "$dir/socket"
    chmod 0755 "$dir" "$dir/socket"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null
    fi
    if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      exit 0
    fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
      -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 -c max_connections=300 -c unix_socket_permissions=0777" >/dev/null
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    ;;
  conninfo)
    echo "host=$dir/socket port=$port dbname=${4:-store} user=postgres"
    ;;
  *) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
