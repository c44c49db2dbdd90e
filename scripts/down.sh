#!/usr/bin/env bash
# Stops what scripts/up.sh started, by the pids it recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$(pwd)/target/stack
for pidfile in "$state"/app.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped $(basename "$pidfile" .pid) (pid $pid)"
  fi
  rm -f "$pidfile"
done
