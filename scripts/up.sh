#!/usr/bin/env bash
# Brings the mod_esf stack up on this machine and prints the store's URL.
#
#   scripts/up.sh [--scale tiny|small|default|large]     (default: small)
#
# Installs what is missing, builds in release mode, starts a PostgreSQL
# cluster of its own, migrates it and loads the catalog, and starts an
# application server (apache-conf/app-server.conf), all with their state
# under target/stack/. Running it again does no harm: what runs is kept
# (the app server gets a graceful restart with the new build), the catalog
# is loaded again only for another scale. Stop with scripts/down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scale=small
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=${2:?--scale needs tiny, small, default or large}; shift 2 ;;
    *) echo "usage: scripts/up.sh [--scale tiny|small|default|large]" >&2; exit 2 ;;
  esac
done
case "$scale" in tiny|small|default|large) ;; *) echo "unknown scale $scale" >&2; exit 2 ;; esac

scripts/install-deps.sh

export ESF_STATE=$root/target/stack
export ESF_APP_PORT=${ESF_APP_PORT:-18180}
export ESF_MODULE=$ESF_STATE/modules/mod_esf.so
export ESF_TEMPLATES=$root/templates
pg_port=${ESF_PG_PORT:-18432}
export ESF_SECRET=$ESF_STATE/session.secret
mkdir -p "$ESF_STATE/htdocs" "$ESF_STATE/cache"
scripts/make-secret.sh "$ESF_SECRET"
chmod o+x "$root/target" "$ESF_STATE"
[ "$(id -u)" -eq 0 ] && chown www-data:www-data "$ESF_STATE/cache"

echo "== building"
scripts/install-module.sh "$ESF_STATE/modules"
cargo build --release -q -p esf-cli

echo "== PostgreSQL on port $pg_port"
scripts/pg.sh start "$ESF_STATE/pg" "$pg_port"
export ESF_DATABASE=$(scripts/pg.sh conninfo "$ESF_STATE/pg" "$pg_port" store)
psql -X -q -h "$ESF_STATE/pg/socket" -p "$pg_port" -U postgres -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'store'" | grep -q 1 ||
  psql -X -q -h "$ESF_STATE/pg/socket" -p "$pg_port" -U postgres -d postgres -c "CREATE DATABASE store"
target/release/esf migrate --database "$ESF_DATABASE"

catalog=$root/target/catalog-$scale
if [ "$(cat "$ESF_STATE/loaded-scale" 2>/dev/null)" != "$scale" ]; then
  echo "== loading the $scale catalog"
  [ -s "$catalog/products.tsv" ] || python3 "$root/../shared/workload/gen_catalog.py" --scale "$scale" --out "$catalog"
  target/release/esf import --database "$ESF_DATABASE" "$catalog"
  echo "$scale" > "$ESF_STATE/loaded-scale"
fi

echo "== app server on port $ESF_APP_PORT"
conf=$root/apache-conf/app-server.conf
apache2 -t -f "$conf"
if [ -f "$ESF_STATE/app.pid" ] && kill -0 "$(cat "$ESF_STATE/app.pid")" 2>/dev/null; then
  apache2 -f "$conf" -k graceful   # picks up the new module and templates
else
  apache2 -f "$conf" -k start
fi

url="http://127.0.0.1:$ESF_APP_PORT/store"
for _ in $(seq 50); do
  curl -fsS -o /dev/null "$url/" 2>/dev/null && break
  sleep 0.2
done
curl -fsS -o /dev/null "$url/" || { echo "the app server did not answer; see $ESF_STATE/app-error.log" >&2; exit 1; }
echo
echo "mod_esf is up: $url/"
echo "logs: $ESF_STATE/app-error.log   stop: scripts/down.sh"
