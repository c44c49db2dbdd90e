#!/usr/bin/env bash
# Stops what scripts/up.sh started, by the pids it recorded: the front
# proxy first, then the app servers, esf-searchd, then PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${ESF_STACK:-$(pwd)/target/stack}

# stop NAME PIDFILE: SIGTERM, up to 10 s, then SIGKILL.
stop() {
  local name=$1 pidfile=$2 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

stop "the front proxy" "$stack/front/httpd.pid"
stop "app server 1" "$stack/app1/httpd.pid"
stop "app server 2" "$stack/app2/httpd.pid"
stop "the app server of an older layout" "$stack/app.pid"
stop "esf-searchd" "$stack/searchd/searchd.pid"
# The front proxy's page cache, in memory.
if [ -f "$stack/page-cache-path" ]; then
  rm -rf "$(cat "$stack/page-cache-path")" "$stack/page-cache-path"
fi
if [ -d "$stack/pg/data" ]; then
  scripts/pg.sh stop "$stack/pg" && echo "stopped PostgreSQL"
fi
