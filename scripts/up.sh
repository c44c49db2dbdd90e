#!/usr/bin/env bash
# Brings the whole mod_esf stack up on this machine and prints the store's URL.
#
#   scripts/up.sh [--scale tiny|small|default|large]     (default: small)
#
# Installs what is missing, builds in release mode, starts a PostgreSQL
# cluster of its own, migrates it and loads the catalog, then starts two
# application servers (apache-conf/app-server.conf) with the search daemon
# esf-searchd beside them, and the front proxy
# (apache-conf/front-proxy.conf) in front of them, all with their state
# under target/stack/ (ESF_STACK overrides). Running it again does no harm:
# what runs is kept (the servers get a graceful restart with the new build),
# the catalog is loaded again only for another scale. Stop: scripts/down.sh.
#
# Ports (loopback; override with the variables): front proxy 18080
# (ESF_FRONT_PORT), app servers 18181 and 18182 (ESF_APP1_PORT,
# ESF_APP2_PORT), PostgreSQL 18432 (ESF_PG_PORT).
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

stack=${ESF_STACK:-$root/target/stack}
front_port=${ESF_FRONT_PORT:-18080}
app1_port=${ESF_APP1_PORT:-18181}
app2_port=${ESF_APP2_PORT:-18182}
pg_port=${ESF_PG_PORT:-18432}
export ESF_MODULE=$stack/modules/mod_esf.so
export ESF_TEMPLATES=$root/templates
export ESF_SECRET=$stack/session.secret
mkdir -p "$stack"
scripts/make-secret.sh "$ESF_SECRET"
chmod o+x "$root/target" "$stack"

echo "== building"
scripts/install-module.sh "$stack/modules"
cargo build --release -q -p esf-cli -p esf-searchd

echo "== PostgreSQL on port $pg_port"
scripts/pg.sh start "$stack/pg" "$pg_port"
export ESF_DATABASE=$(scripts/pg.sh conninfo "$stack/pg" "$pg_port" store)
psql -X -q -h "$stack/pg/socket" -p "$pg_port" -U postgres -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'store'" | grep -q 1 ||
  psql -X -q -h "$stack/pg/socket" -p "$pg_port" -U postgres -d postgres -c "CREATE DATABASE store"
target/release/esf migrate --database "$ESF_DATABASE"

catalog=$root/target/catalog-$scale
if [ "$(cat "$stack/loaded-scale" 2>/dev/null)" != "$scale" ]; then
  echo "== loading the $scale catalog"
  [ -s "$catalog/products.tsv" ] || python3 "$root/../shared/workload/gen_catalog.py" --scale "$scale" --out "$catalog"
  target/release/esf import --database "$ESF_DATABASE" "$catalog"
  echo "$scale" > "$stack/loaded-scale"
fi

# start_httpd NAME CONF PIDFILE [-D NAME...]: checks CONF, then starts the
# server, or gives a running one a graceful restart (new module, templates,
# config).
start_httpd() {
  local name=$1 conf=$2 pidfile=$3
  shift 3
  mkdir -p "$ESF_STATE/htdocs"
  local said
  said=$(apache2 -t -f "$conf" "$@" 2>&1) || { echo "$said" >&2; echo "$name: configuration test failed" >&2; exit 1; }
  echo "$said" | grep -v "Syntax OK" >&2 || true
  # A graceful restart keeps the -D flags httpd was started with: when they
  # change, stop and start instead.
  local flags="$*"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    if [ "$(cat "$ESF_STATE/started-with" 2>/dev/null)" = "$flags" ]; then
      apache2 -f "$conf" "$@" -k graceful
      return
    fi
    apache2 -f "$conf" -k stop
    for _ in $(seq 100); do [ -f "$pidfile" ] || break; sleep 0.1; done
  fi
  apache2 -f "$conf" "$@" -k start
  echo "$flags" > "$ESF_STATE/started-with"
}

# wait_for URL LOG: until URL answers 2xx, at most 10 s.
wait_for() {
  for _ in $(seq 50); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "$1 did not answer; see $2" >&2
  exit 1
}

searchd=$stack/searchd
export ESF_SEARCH=unix:$searchd/searchd.sock
echo "== esf-searchd on $ESF_SEARCH"
mkdir -p "$searchd"
chmod o+x "$searchd"   # the app servers' children connect to the socket
if ! { [ -f "$searchd/searchd.pid" ] && kill -0 "$(cat "$searchd/searchd.pid")" 2>/dev/null; }; then
  rm -f "$searchd/searchd.pid"
  # It builds its index before it listens; the pid file says it is ready.
  setsid target/release/esf-searchd --database "$ESF_DATABASE" --listen "$ESF_SEARCH" \
    --pidfile "$searchd/searchd.pid" </dev/null >>"$searchd/searchd.log" 2>&1 &
  for _ in $(seq 600); do [ -f "$searchd/searchd.pid" ] && break; sleep 0.1; done
  [ -f "$searchd/searchd.pid" ] || { echo "esf-searchd did not start; see $searchd/searchd.log" >&2; exit 1; }
fi

for n in 1 2; do
  port_var=app${n}_port
  export ESF_STATE=$stack/app$n ESF_APP_PORT=${!port_var}
  export ESF_APP_LISTEN=127.0.0.1:$ESF_APP_PORT
  echo "== app server $n on port $ESF_APP_PORT"
  mkdir -p "$ESF_STATE/cache"
  [ "$(id -u)" -eq 0 ] && chown www-data:www-data "$ESF_STATE/cache"
  start_httpd "app server $n" "$root/apache-conf/app-server.conf" "$ESF_STATE/httpd.pid" -D ESF_SEARCH
  wait_for "http://127.0.0.1:$ESF_APP_PORT/store/hello" "$ESF_STATE/error.log"
done

export ESF_STATE=$stack/front ESF_FRONT_LISTEN=127.0.0.1:$front_port
export ESF_APP1=127.0.0.1:$app1_port ESF_APP2=127.0.0.1:$app2_port
echo "== front proxy on port $front_port"
# The page cache lives in memory (apache-conf/front-proxy.conf says why).
export ESF_PAGE_CACHE=${ESF_PAGE_CACHE:-/dev/shm/esf-page-cache-$front_port}
echo "$ESF_PAGE_CACHE" > "$stack/page-cache-path"
mkdir -p "$ESF_PAGE_CACHE" "$ESF_STATE/cache-lock" "$ESF_STATE/htdocs"
cp -r "$root/htdocs/." "$ESF_STATE/htdocs/"
[ "$(id -u)" -eq 0 ] && chown www-data:www-data "$ESF_PAGE_CACHE" "$ESF_STATE/cache-lock"
start_httpd "front proxy" "$root/apache-conf/front-proxy.conf" "$ESF_STATE/httpd.pid"
url="http://127.0.0.1:$front_port/store"
wait_for "$url/" "$ESF_STATE/error.log"

echo
echo "mod_esf is up: $url/"
echo "logs: $stack/{front,app1,app2}/error.log, $stack/searchd/searchd.log"
echo "status: http://127.0.0.1:$app1_port/esf-status http://127.0.0.1:$app2_port/esf-status http://127.0.0.1:$front_port/balancer-manager"
echo "purge a page: target/release/esf purge --cache-root $ESF_PAGE_CACHE URL"
echo "stop: scripts/down.sh"
