#!/usr/bin/env bash
# Benchmark: a Product loaded from the LMDB object cache against the same
# Product loaded from PostgreSQL, in one run, on the `default` catalog
# (100,000 products), ids drawn Zipf like the product mix; then cache
# reads/s with both cores. Target: LMDB >= 50x PostgreSQL.
#
#   bench/data-layer.sh [SCALE=default] [LOADS=20000]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scale=${1:-default}
loads=${2:-20000}
state=$root/target/bench/data-layer
scripts/install-deps.sh
mkdir -p "$state"
port=$((20000 + RANDOM % 5000))
scripts/pg.sh start "$state/pg" "$port"
trap 'scripts/pg.sh stop "$state/pg"' EXIT
conninfo=$(scripts/pg.sh conninfo "$state/pg" "$port" store)
psql -X -q -h "$state/pg/socket" -p "$port" -U postgres -d postgres -c "DROP DATABASE IF EXISTS store" -c "CREATE DATABASE store"
catalog=$root/target/bench/catalog-$scale
[ -s "$catalog/products.tsv" ] || python3 "$root/../shared/workload/gen_catalog.py" --scale "$scale" --out "$catalog"
cargo build --release -q -p esf-cli -p esf-data --examples --bins
target/release/esf migrate --database "$conninfo" >/dev/null
target/release/esf import --database "$conninfo" "$catalog"
products=$(($(wc -l < "$catalog/products.tsv") - 1))
rm -rf "$state/cache"; mkdir -p "$state/cache"
target/release/examples/product_load "$conninfo" "$state/cache" "$products" "$loads"
