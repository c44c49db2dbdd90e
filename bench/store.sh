#!/usr/bin/env bash
# Benchmark: the reference store's load mixes (../shared/bench: product,
# category, search, christmas) against one app server, with the physical
# limit measured in the same run: the same httpd serving a static file the
# size of a product page.
#
#   bench/store.sh [SCALE=default] [SECONDS=15] [CONNECTIONS=32] [MPM=event]
#   ESF_MIXES="product search" bench/store.sh ...   (only those mixes)
#
# Starts its own PostgreSQL, loads the catalog, builds in release mode and
# starts apache-conf/app-server.conf, all under target/bench/store. Each
# mix runs on a warm cache (an untimed pass of the same mix right before). Prints a
# Markdown table for docs/BENCHMARKS.md. Checkouts change stock: the
# catalog is reloaded at every run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scale=${1:-default}
secs=${2:-15}
conns=${3:-32}
mpm=${4:-event}
bench=$root/../shared/bench/bench.sh
scripts/install-deps.sh

export ESF_STATE=$root/target/bench/store
export ESF_APP_PORT=$((18700 + RANDOM % 500))
export ESF_APP_LISTEN=127.0.0.1:$ESF_APP_PORT
export ESF_MODULE=$ESF_STATE/modules/mod_esf.so
export ESF_TEMPLATES=$root/templates
export ESF_SECRET=$ESF_STATE/session.secret
pg_port=$((21000 + RANDOM % 4000))
rm -rf "$ESF_STATE/cache" "$ESF_STATE/htdocs"
mkdir -p "$ESF_STATE/htdocs" "$ESF_STATE/cache"
chmod o+x "$root/target" "$root/target/bench" "$ESF_STATE"
[ "$(id -u)" -eq 0 ] && chown www-data:www-data "$ESF_STATE/cache"
scripts/make-secret.sh "$ESF_SECRET"
scripts/install-module.sh "$ESF_STATE/modules" >/dev/null
cargo build --release -q -p esf-cli

scripts/pg.sh start "$ESF_STATE/pg" "$pg_port"
stop_all() {
  [ -f "$ESF_STATE/httpd.pid" ] && kill -TERM "$(cat "$ESF_STATE/httpd.pid")" 2>/dev/null || true
  scripts/pg.sh stop "$ESF_STATE/pg"
}
trap stop_all EXIT
export ESF_DATABASE=$(scripts/pg.sh conninfo "$ESF_STATE/pg" "$pg_port" store)
psql -X -q -h "$ESF_STATE/pg/socket" -p "$pg_port" -U postgres -d postgres -c "DROP DATABASE IF EXISTS store" -c "CREATE DATABASE store" 2>/dev/null
catalog=$root/target/bench/catalog-$scale
[ -s "$catalog/products.tsv" ] || python3 "$root/../shared/workload/gen_catalog.py" --scale "$scale" --out "$catalog" >/dev/null
target/release/esf migrate --database "$ESF_DATABASE" >/dev/null
target/release/esf import --database "$ESF_DATABASE" "$catalog" >&2

defines=()
[ "$mpm" = prefork ] && defines=(-D ESF_PREFORK)
apache2 -f "$root/apache-conf/app-server.conf" "${defines[@]}" -k start
base=http://127.0.0.1:$ESF_APP_PORT
for _ in $(seq 50); do curl -fsS -o /dev/null "$base/store/product/1" 2>/dev/null && break; sleep 0.2; done
curl -fsS "$base/store/product/1" > "$ESF_STATE/htdocs/product.html"
size=$(stat -c %s "$ESF_STATE/htdocs/product.html")

export ESF_SCALE=$scale ESF_CATALOG=$catalog
run() { "$bench" "$@" | grep -E '^[a-z]+ +rps='; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
static=$(run "$base/product.html" url "$secs" "$conns")
srps=$(echo "$static" | field rps)
echo "| mix | req/s | vs static | p50 | p99 | errors |"
echo "|---|---|---|---|---|---|"
echo "| static file ($size bytes) | $srps | 100% | $(echo "$static" | field p50) | $(echo "$static" | field p99) | $(echo "$static" | field errors) |"
for mix in ${ESF_MIXES:-product category search christmas}; do
  # Warm the object cache right before (untimed, as long as the run): the
  # Zipf draw's head and much of its tail cached, as on a live site. Right
  # before, because stock entries live 30 s.
  run "$base/store" "$mix" "$secs" "$conns" >/dev/null
  line=$(run "$base/store" "$mix" "$secs" "$conns")
  rps=$(echo "$line" | field rps)
  ratio=$(awk -v a="$rps" -v b="$srps" 'BEGIN {printf "%.0f%%", 100*a/b}')
  echo "| $mix | $rps | $ratio | $(echo "$line" | field p50) | $(echo "$line" | field p99) | $(echo "$line" | field errors) |"
  echo "  $line" >&2
done
echo "  ($mpm MPM, $scale catalog, $secs s per mix, $conns connections)" >&2
