#!/usr/bin/env bash
# Benchmark: the front tier (apache-conf/front-proxy.conf over two app
# servers), with the limit measured in the same run: the same proxy serving
# a static file the size of a product page.
#
#   bench/front-tier.sh [SCALE=default] [SECONDS=15] [CONNECTIONS=32]
#
# Brings the stack up with scripts/up.sh under target/bench/tier (its own
# ports and PostgreSQL), and stops it at the end. Measures:
#   - a cached product page against the static file, for a returning
#     visitor (valid ESF_SESSION) and a new one (the proxy issues a session
#     on every request);
#   - the product and christmas mixes of ../shared/bench through the proxy.
# Prints a Markdown table for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scale=${1:-default}
secs=${2:-15}
conns=${3:-32}
bench=$root/../shared/bench/bench.sh

export ESF_STACK=$root/target/bench/tier
export ESF_FRONT_PORT=$((19000 + RANDOM % 400)) ESF_APP1_PORT=$((19400 + RANDOM % 300)) ESF_APP2_PORT=$((19700 + RANDOM % 300))
export ESF_PG_PORT=$((20000 + RANDOM % 900))
trap 'scripts/down.sh >/dev/null' EXIT
# Checkouts change stock: a fresh catalog every run.
rm -f "$ESF_STACK/loaded-scale"
scripts/up.sh --scale "$scale" >&2

base=http://127.0.0.1:$ESF_FRONT_PORT
page=/store/product/1
curl -fsS "$base$page" > "$ESF_STACK/front/htdocs/product.html"
size=$(stat -c %s "$ESF_STACK/front/htdocs/product.html")
cookie=$(curl -fsS -D - -o /dev/null "$base/store/hello" | sed -n 's/^Set-Cookie: \(ESF_SESSION=[^;]*\).*/\1/p' | tr -d '\r')
[ -n "$cookie" ] || { echo "the proxy issued no ESF_SESSION" >&2; exit 1; }

# wrk_line PATH [HEADER]: "rps p50 p99 non2xx" of a wrk run on one URL.
wrk_line() {
  local out
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency ${2:+-H "$2"} "$base$1")
  local rps p50 p99 bad
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  echo "$rps $p50 $p99 ${bad:-0}"
}
row() { # NAME "rps p50 p99 errors" STATIC_RPS
  set -- "$1" $2 "$3"
  echo "| $1 | $2 | $(awk -v a="$2" -v b="$6" 'BEGIN {printf "%.0f%%", 100*a/b}') | $3 | $4 | $5 |"
}

# The page must be a cache hit for the whole run: product pages live 30 s
# (the stock's TTL), so each run is shorter than that or refreshes once.
curl -fsS -o /dev/null -H "Cookie: $cookie" "$base$page"
hit=$(curl -fsS -D - -o /dev/null -H "Cookie: $cookie" "$base$page" | grep -i '^X-Cache' | tr -d '\r')
echo "$hit" | grep -q HIT || { echo "$page is not a cache hit: $hit" >&2; exit 1; }

static=$(wrk_line /product.html "Cookie: $cookie")
srps=${static%% *}
hit_returning=$(wrk_line "$page" "Cookie: $cookie")
static_new=$(wrk_line /product.html)
hit_new=$(wrk_line "$page")
snew=${static_new%% *}

echo "| through the front proxy | req/s | vs static | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|---|"
row "static file ($size bytes), returning visitor" "$static" "$srps"
row "cached product page, returning visitor" "$hit_returning" "$srps"
row "static file, new visitor (session issued)" "$static_new" "$snew"
row "cached product page, new visitor (session issued)" "$hit_new" "$snew"

export ESF_SCALE=$scale ESF_CATALOG=$root/target/catalog-$scale
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
for mix in product christmas; do
  "$bench" "$base/store" "$mix" "$secs" "$conns" >/dev/null # warm caches (untimed)
  line=$("$bench" "$base/store" "$mix" "$secs" "$conns" | grep -E '^[a-z]+ +rps=')
  rps=$(echo "$line" | field rps)
  ratio=$(awk -v a="$rps" -v b="$srps" 'BEGIN {printf "%.0f%%", 100*a/b}')
  echo "| $mix mix | $rps | $ratio | $(echo "$line" | field p50) | $(echo "$line" | field p99) | $(echo "$line" | field errors) errors |"
  echo "  $line" >&2
done
echo "  ($scale catalog, $secs s per run, $conns connections, wrk -t2; reproduce: bench/front-tier.sh $scale $secs $conns)" >&2
