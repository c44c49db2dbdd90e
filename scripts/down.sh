#!/usr/bin/env bash
# Stops what scripts/up.sh started, by the pids it recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$(pwd)/target/stack
pidfile=$state/app.pid
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped the app server (pid $pid)"
  fi
  rm -f "$pidfile"
fi
if [ -d "$state/pg/data" ]; then
  scripts/pg.sh stop "$state/pg" && echo "stopped PostgreSQL"
fi
