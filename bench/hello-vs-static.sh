#!/usr/bin/env bash
# Benchmark: the hello page (GET /store/hello, rendered by mod_esf through a
# Liquid template) against the same httpd serving a static file of the same
# size, in the same run, under the event and prefork MPMs.
#
#   bench/hello-vs-static.sh [SECONDS=10] [CONNECTIONS=32]
#
# Builds the module in release mode, starts apache-conf/app-server.conf
# under target/bench/, and drives it with ../shared/bench/bench.sh (wrk on
# the same 2 cores). Each side runs twice, interleaved; the ratio is
# hello req/s / static req/s. Prints a Markdown table for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-10}
conns=${2:-32}
bench=$root/../shared/bench/bench.sh
[ -x "$bench" ] || { echo "missing $bench" >&2; exit 2; }

scripts/install-deps.sh
scripts/install-module.sh "$root/target/bench/modules" >/dev/null

rps() { sed -n 's/.*rps=\([0-9.]*\).*/\1/p'; }
line() { grep -E '^(hello|url) '; }

echo "| MPM | static req/s | hello req/s | hello / static | hello p50 / p99 | errors |"
echo "|---|---|---|---|---|---|"
for mpm in event prefork; do
  export ESF_STATE=$root/target/bench/hello-$mpm
  export ESF_APP_PORT=$((18190 + RANDOM % 500))
  export ESF_APP_LISTEN=127.0.0.1:$ESF_APP_PORT
  export ESF_MODULE=$root/target/bench/modules/mod_esf.so
  export ESF_TEMPLATES=$root/templates
  # The hello page touches no data: the database is never connected to.
  export ESF_DATABASE="host=/nonexistent dbname=unused"
  export ESF_SECRET=$root/target/bench/session.secret
  scripts/make-secret.sh "$ESF_SECRET"
  rm -rf "$ESF_STATE"; mkdir -p "$ESF_STATE/htdocs" "$ESF_STATE/cache"; chmod o+x "$root/target" "$root/target/bench" "$ESF_STATE"
  [ "$(id -u)" -eq 0 ] && chown www-data:www-data "$ESF_STATE/cache"
  defines=()
  [ "$mpm" = prefork ] && defines=(-D ESF_PREFORK)
  apache2 -f "$root/apache-conf/app-server.conf" "${defines[@]}" -k start
  base=http://127.0.0.1:$ESF_APP_PORT
  for _ in $(seq 50); do curl -fsS -o /dev/null "$base/store/hello" 2>/dev/null && break; sleep 0.2; done
  # The static reference: the hello page's own bytes, as a file.
  curl -fsS "$base/store/hello" > "$ESF_STATE/htdocs/hello.html"
  size=$(stat -c %s "$ESF_STATE/htdocs/hello.html")
  s1=$("$bench" "$base/hello.html" url "$secs" "$conns" | line)
  h1=$("$bench" "$base/store" hello "$secs" "$conns" | line)
  s2=$("$bench" "$base/hello.html" url "$secs" "$conns" | line)
  h2=$("$bench" "$base/store" hello "$secs" "$conns" | line)
  pid=$(cat "$ESF_STATE/httpd.pid")
  kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  static=$(printf '%s\n%s\n' "$s1" "$s2" | rps | awk '{s+=$1} END {printf "%.0f", s/NR}')
  hello=$(printf '%s\n%s\n' "$h1" "$h2" | rps | awk '{s+=$1} END {printf "%.0f", s/NR}')
  ratio=$(awk -v h="$hello" -v s="$static" 'BEGIN {printf "%.0f%%", 100*h/s}')
  lat=$(echo "$h2" | sed -n 's/.*p50=\([^ ]*\) p99=\([^ ]*\).*/\1 \/ \2/p')
  errs=$(printf '%s\n%s\n%s\n%s\n' "$s1" "$h1" "$s2" "$h2" | sed -n 's/.*errors=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s}')
  echo "| $mpm | $static | $hello | $ratio | $lat | $errs |"
  echo "  ($mpm, $size-byte body) static: $s1 / $s2; hello: $h1 / $h2" >&2
done
