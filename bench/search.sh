#!/usr/bin/env bash
# Benchmark: esf-searchd against PostgreSQL's full-text search (GIN over
# the token arrays, the store's engine without EsfSearch) on the same
# data, in the same run: the queries of queries.tsv drawn uniformly (as
# the SPEC's search mix draws them), page 1, from CLIENTS client threads,
# first sorted by relevance (the mix's default), then with the four sorts
# mixed; plus the daemon's index build time and memory. Targets: >= 20x
# PostgreSQL's queries/s, p99 < 2 ms at `large`.
#
#   bench/search.sh [SCALES="default large"] [SECONDS=10] [CLIENTS=4]
#
# Starts its own PostgreSQL under target/bench/search, loads each catalog,
# builds in release mode, starts esf-searchd on a Unix socket. Prints
# Markdown for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scales=${1:-default large}
secs=${2:-10}
clients=${3:-4}
state=$root/target/bench/search
scripts/install-deps.sh
mkdir -p "$state"
port=$((26000 + RANDOM % 4000))
scripts/pg.sh start "$state/pg" "$port"
stop_all() {
  [ -f "$state/searchd.pid" ] && kill -TERM "$(cat "$state/searchd.pid")" 2>/dev/null || true
  scripts/pg.sh stop "$state/pg"
}
trap stop_all EXIT
conninfo=$(scripts/pg.sh conninfo "$state/pg" "$port" store)
cargo build --release -q -p esf-cli -p esf-searchd --bins --examples

for scale in $scales; do
  catalog=$root/target/bench/catalog-$scale
  [ -s "$catalog/products.tsv" ] || python3 "$root/../shared/workload/gen_catalog.py" --scale "$scale" --out "$catalog"
  psql -X -q -h "$state/pg/socket" -p "$port" -U postgres -d postgres -c "DROP DATABASE IF EXISTS store" -c "CREATE DATABASE store" 2>/dev/null
  target/release/esf migrate --database "$conninfo" >/dev/null
  target/release/esf import --database "$conninfo" "$catalog" >&2
  # The GIN index's pending list merged and statistics fresh, as after any
  # bulk load (the import does both; VACUUM settles the visibility map).
  psql -X -q -h "$state/pg/socket" -p "$port" -U postgres -d store -c "VACUUM ANALYZE product_search" >/dev/null

  rm -f "$state/searchd.sock" "$state/searchd.pid"
  target/release/esf-searchd --database "$conninfo" --listen "unix:$state/searchd.sock" --pidfile "$state/searchd.pid" 2> "$state/searchd-$scale.log" &
  for _ in $(seq 600); do [ -S "$state/searchd.sock" ] && [ -f "$state/searchd.pid" ] && break; sleep 0.1; done
  pid=$(cat "$state/searchd.pid")
  built=$(grep -m1 'built the index' "$state/searchd-$scale.log")
  rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  products=$(($(wc -l < "$catalog/products.tsv") - 1))

  echo
  echo "### $scale catalog ($products products)"
  echo
  echo "Index: ${built#*: info: built the index: }; daemon resident after start: $((rss_kib / 1024)) MiB," \
       "$(awk -v k="$rss_kib" -v n="$products" 'BEGIN {printf "%.0f", k / 1024 * 1000000 / n}') MiB per million products."
  for sort in relevance mixed; do
    echo
    target/release/examples/search_bench "$conninfo" "unix:$state/searchd.sock" "$catalog/queries.tsv" "$clients" "$secs" "$sort"
  done
  kill -TERM "$pid"; sleep 0.2
done
