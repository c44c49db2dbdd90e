#!/usr/bin/env bash
# Brings the mod_esf stack up on this machine and prints the store's URL.
# Installs what is missing, builds the module in release mode and starts an
# application server (apache-conf/app-server.conf) with its state under
# target/stack/. Running it again restarts what runs with the new build.
# Stop everything with scripts/down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/install-deps.sh

export ESF_STATE=$root/target/stack
export ESF_APP_PORT=${ESF_APP_PORT:-18180}
export ESF_MODULE=$ESF_STATE/modules/mod_esf.so
export ESF_TEMPLATES=$root/templates
mkdir -p "$ESF_STATE/htdocs"
chmod o+x "$root/target" "$ESF_STATE"

scripts/install-module.sh "$ESF_STATE/modules"

conf=$root/apache-conf/app-server.conf
apache2 -t -f "$conf"
if [ -f "$ESF_STATE/app.pid" ] && kill -0 "$(cat "$ESF_STATE/app.pid")" 2>/dev/null; then
  # Already running: a graceful restart loads the new module and templates.
  apache2 -f "$conf" -k graceful
else
  apache2 -f "$conf" -k start
fi

url="http://127.0.0.1:$ESF_APP_PORT/store"
for _ in $(seq 50); do
  curl -fsS -o /dev/null "$url/hello" 2>/dev/null && break
  sleep 0.2
done
curl -fsS -o /dev/null "$url/hello" || { echo "the app server did not answer; see $ESF_STATE/app-error.log" >&2; exit 1; }
echo
echo "mod_esf is up: $url/hello"
echo "logs: $ESF_STATE/app-error.log   stop: scripts/down.sh"
