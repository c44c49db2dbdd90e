#!/usr/bin/env bash
# Capacity report: replays the christmas mix (../shared/bench/christmas.lua,
# ported to crates/esf-load) at rising offered rates against a running store,
# finds the highest rate up to which every step held p99 < 50 ms with no
# errors (the capacity), and writes
# docs/capacity/REPORT.md with a plot, docs/capacity/capacity.png.
#
#   bench/capacity.sh [BASE_URL]
#
# BASE_URL is the store prefix of a running stack, default
# http://127.0.0.1:18080/store (what scripts/up.sh prints: the front proxy);
# a URL without a path gets /store. Bring a stack up first, at the benchmark
# scale: scripts/up.sh --scale default. Takes a few minutes.
#
# Load: esf-load, open loop. Requests are scheduled at the offered rate
# (Poisson arrivals) whatever the server does; WORKERS simulated browsers, one
# shopper and one keep-alive connection each, send them; latency counts from
# the scheduled time, so waiting for a free browser counts (no coordinated
# omission). A step is held when p99 < P99_MS, there are no errors (status >=
# 400, socket errors, timeouts: the rule of ../shared/bench) and every
# scheduled request was answered within the step (achieved >= 99% of offered).
#
# Environment:
#   RATES        offered rates, requests/s, rising
#                (default "100 200 300 400 500 600 700 850 1000 1250 1500 2000 2500 3000")
#   STEP_SECS    seconds per step (default 10)
#   WARMUP_SECS  untimed warm-up at the first rate (default 30; 0 for none)
#   WORKERS      simulated browsers = connections (default 128)
#   STOP_AFTER   stop after this many overloaded steps in a row (achieved < 95%
#                of offered, or p99 > 20 x P99_MS; default 2)
#   P99_MS       the latency bound (default 50)
#   MAX_OTHERS_PCT, RETRIES   for a stack on this machine (its pid files under
#                target/stack, or ESF_STACK): a step during which other processes
#                used more than MAX_OTHERS_PCT % of the machine (default 10) is
#                run again, up to RETRIES times (default 3)
#   ESF_SCALE    the catalog the store loaded: tiny|small|default|large (default:
#                target/stack/loaded-scale if there, else default); checked against
#                the store (the last product id answers, the next one is 404)
#   ESF_CATALOG, ESF_QUERIES, ESF_SEED, ESF_SESSION_LEN   as ../shared/bench/bench.sh
#   OUT          output directory (default docs/capacity)
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -le 1 ] || { usage >&2; exit 2; }

cd "$(dirname "$0")/.."
root=$(pwd)
base=${1:-http://127.0.0.1:18080/store}
base=${base%/}
case "$base" in
  http://*) ;;
  *) echo "capacity: BASE_URL must be an http:// URL, not $base" >&2; exit 2 ;;
esac
hostpart=${base#http://}
[[ "$hostpart" == */* ]] || base=$base/store

rates=${RATES:-100 200 300 400 500 600 700 850 1000 1250 1500 2000 2500 3000}
step_secs=${STEP_SECS:-10}
warmup_secs=${WARMUP_SECS:-30}
workers=${WORKERS:-128}
stop_after=${STOP_AFTER:-2}
p99_bound=${P99_MS:-50}
out=${OUT:-$root/docs/capacity}
max_others=${MAX_OTHERS_PCT:-10}
retries=${RETRIES:-3}
stack=${ESF_STACK:-$root/target/stack}
scale=${ESF_SCALE:-$(cat "$stack/loaded-scale" 2>/dev/null || echo default)}
etoys_pages=700 etoys_sessions=55 etoys_orders=5.6

case "$scale" in
  tiny) n=200 c=12 ;;
  small) n=10000 c=100 ;;
  default) n=100000 c=500 ;;
  large) n=1000000 c=2000 ;;
  *) echo "capacity: unknown ESF_SCALE $scale" >&2; exit 2 ;;
esac
export ESF_SCALE=$scale ESF_PRODUCTS=${ESF_PRODUCTS:-$n} ESF_CATEGORIES=${ESF_CATEGORIES:-$c} ESF_SEED=${ESF_SEED:-1}

# Is a store answering there, with that catalog?
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$1" || true; }
if [ "$(status "$base/hello")" != 200 ] || [ "$(status "$base/")" != 200 ]; then
  echo "capacity: no store answering at $base (GET $base/hello and $base/ must be 200)." >&2
  echo "  Start one with: scripts/up.sh --scale default   (then pass the URL it prints)" >&2
  exit 1
fi
if [ "$(status "$base/product/$ESF_PRODUCTS")" != 200 ] || [ "$(status "$base/product/$((ESF_PRODUCTS + 1))")" != 404 ]; then
  echo "capacity: the store at $base does not hold the $scale catalog ($ESF_PRODUCTS products): set ESF_SCALE" >&2
  exit 1
fi

command -v gnuplot >/dev/null || scripts/install-deps.sh
load=$root/target/release/esf-load
if ! cargo build --release -q -p esf-load; then
  [ -x "$load" ] || { echo "capacity: cannot build esf-load" >&2; exit 1; }
  echo "capacity: warning: the build failed; using the esf-load already built" >&2
fi

if [ -z "${ESF_QUERIES:-}" ]; then
  if [ -n "${ESF_CATALOG:-}" ]; then
    ESF_QUERIES=$ESF_CATALOG/queries.tsv
  else
    qdir=${TMPDIR:-/tmp}/esf-bench-queries-seed$ESF_SEED
    [ -s "$qdir/queries.tsv" ] || python3 "$root/../shared/workload/gen_catalog.py" --scale tiny --seed "$ESF_SEED" --out "$qdir" >/dev/null
    ESF_QUERIES=$qdir/queries.tsv
  fi
fi
[ -s "$ESF_QUERIES" ] || { echo "capacity: no queries file $ESF_QUERIES" >&2; exit 2; }
export ESF_QUERIES

# A stack on this machine: its processes, to tell its CPU use from everything else's.
stack_pids=""
case "$base" in
  http://127.0.0.1[:/]*|http://localhost[:/]*)
    for f in "$stack"/*/*.pid "$stack"/app.pid "$stack"/pg/data/postmaster.pid; do
      [ -f "$f" ] && kill -0 "$(head -1 "$f")" 2>/dev/null && stack_pids=$stack_pids${stack_pids:+,}$(head -1 "$f")
    done ;;
esac
watch=()
[ -z "$stack_pids" ] || watch=(--stack-pids "$stack_pids" --max-others-pct "$max_others" --retries "$retries")

mkdir -p "$out"
raw=$out/raw.txt tsv=$out/steps.tsv
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
first_rate=${rates%% *}
echo "capacity: $base, $scale catalog, steps of ${step_secs}s, $workers browsers, rates: $rates"
echo "  machine load average before: $load_before"
[ "$warmup_secs" = 0 ] || echo "  warm-up: ${warmup_secs}s at $first_rate/s"
# One esf-load run: the browsers (shoppers, connections) go on from step to step.
"$load" --rates "$(echo $rates | tr ' ' ',')" --duration "$step_secs" --warmup "$warmup_secs" \
  --workers "$workers" --p99-ms "$p99_bound" --stop-after "$stop_after" "${watch[@]}" "$base" |
  while IFS= read -r line; do
    printf '%s\n' "$line"
    case "$line" in *" warmup=1 "*) continue ;; esac
    printf '  %5s/s offered %7s achieved %7s  p50 %7sms  p99 %8sms  errors %s  cpu %s%% (others %s%%)  %s%s\n' \
      "$(field target_rps "$line" | cut -d. -f1)" "$(field offered_rps "$line")" "$(field achieved_rps "$line")" \
      "$(field p50_ms "$line")" "$(field p99_ms "$line")" "$(field errors "$line")" \
      "$(field machine_busy_pct "$line")" "$(field others_pct "$line")" \
      "$([ "$(field held "$line")" = 1 ] && echo held || echo FAILED)" \
      "$([ "$(field disturbed "$line")" = 1 ] && echo "  (disturbed by other processes)")" >&2
  done >"$raw"
grep -q ' warmup=0 ' "$raw" || { echo "capacity: esf-load measured nothing" >&2; exit 1; }

# One row per measured step: its last attempt.
finals=$(grep ' warmup=0 ' "$raw" | awk '{split($0, a, " step="); split(a[2], b, " "); last[b[1]] = $0
  if (!(b[1] in seen)) {seen[b[1]] = 1; order[++n] = b[1]}} END {for (i = 1; i <= n; i++) print last[order[i]]}')
cols="target_rps offered_rps achieved_rps p50_ms p90_ms p99_ms max_ms svc_p50_ms svc_p99_ms errors status_409 socket_errors timeouts unsent sessions orders machine_busy_pct machine_steal_pct generator_cpu_pct held stack_pct others_pct disturbed attempt"
{
  echo "#$cols" | tr ' ' '\t'
  printf '%s\n' "$finals" | awk -v cols="$cols" '{
    delete f
    for (i = 2; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
    n = split(cols, c, " ")
    for (i = 1; i <= n; i++) {
      v = (c[i] in f) ? f[c[i]] : 0
      if (c[i] == "target_rps") v = sprintf("%.0f", v)
      if (c[i] == "held") v = (v == 1 ? "held" : "FAILED")
      printf "%s%s", v, (i < n ? "\t" : "\n")
    }
  }'
} >"$tsv"
# The capacity: the highest rate up to which every step was held.
best=$(awk -F'\t' 'NR > 1 {if ($20 != "held") exit; b = $1} END {print b}' "$tsv")
best_any=$(awk -F'\t' 'NR > 1 && $20 == "held" && $1 + 0 > b {b = $1 + 0} END {if (b) print b}' "$tsv")
# The same rule with the SPEC's 409 (not enough stock at checkout) taken as a right answer.
best_409=$(awk -F'\t' -v b="$p99_bound" 'NR > 1 {if (!($6 + 0 < b && $10 - $11 == 0 && $3 >= 0.99 * $2)) exit; m = $1} END {print m}' "$tsv")
best_line=""
[ -z "$best" ] || best_line=$(printf '%s\n' "$finals" | grep " held=1 target_rps=$best.0 " | tail -1)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The plot: throughput and latency against offered load.
xmax=$(awk -F'\t' -v e="$etoys_pages" 'NR > 1 && $2 > m {m = $2} END {m = (m > e ? m : e); printf "%d", m * 1.08}' "$tsv")
best_marks="" best_marks2=""
if [ -n "$best" ]; then
  best_marks="set arrow 2 from $best, graph 0 to $best, graph 1 nohead lw 1 dt 3 lc rgb \"#1565c0\"
set label 2 \"capacity: $best/s\" at $best, graph 0.05 offset 1,0 tc rgb \"#1565c0\""
  best_marks2="set label 2 \"capacity: $best/s\" at $best, graph 0.95 offset 1,0 tc rgb \"#1565c0\""
fi
gnuplot <<EOF
set terminal pngcairo size 1000,950 font "sans,11"
set output "$out/capacity.png"
set termoption noenhanced
set datafile separator "\t"
set key top left box opaque
set grid
set xrange [0:$xmax]
set multiplot layout 2,1 title "mod_esf capacity, christmas mix, open loop ($scale catalog; $base)"
set arrow 1 from $etoys_pages, graph 0 to $etoys_pages, graph 1 nohead lw 2 dt 2 lc rgb "#2e7d32"
set label 1 "eToys, Christmas 2000 peak\n(~$etoys_pages pages/s, whole cluster)" at $etoys_pages, graph 0.88 right offset -1,0 tc rgb "#2e7d32"
$best_marks
set ylabel "requests/s"
set xlabel ""
set title "throughput"
plot x with lines dt 2 lc rgb "#9e9e9e" title "achieved = offered", \
     "$tsv" using 2:3 with linespoints pt 7 lw 2 lc rgb "#1565c0" title "achieved", \
     "$tsv" using 2:(strcol(20) eq "FAILED" ? \$3 : 1/0) with points pt 6 ps 2.2 lw 2 lc rgb "#c62828" title "step failed"
set title "latency (from the scheduled time)"
set label 1 "eToys, Christmas 2000 peak\n(~$etoys_pages pages/s, whole cluster)" at $etoys_pages, graph 0.12 left offset 1,0 tc rgb "#2e7d32"
$best_marks2
set ylabel "ms (log scale)"
set xlabel "offered load, requests/s (Poisson arrivals)"
set logscale y
set yrange [0.1:*]
set key outside below horizontal noopaque nobox
plot $p99_bound with lines lw 2 lc rgb "#c62828" title "p99 bound, $p99_bound ms", \
     "$tsv" using 2:4 with linespoints pt 7 lw 2 lc rgb "#1565c0" title "p50", \
     "$tsv" using 2:6 with linespoints pt 5 lw 2 lc rgb "#ef6c00" title "p99", \
     "$tsv" using 2:9 with linespoints pt 4 lw 1 dt 3 lc rgb "#ef6c00" title "p99 from the send (service time)"
unset multiplot
EOF

# The report.
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -c . || true)
{
  echo "# Capacity report: the christmas mix at rising rates"
  echo
  echo "Generated by \`bench/capacity.sh $base\` on $started (commit $rev$([ "$dirty" = 0 ] || echo ", the work tree with uncommitted changes to $dirty tracked file(s)"))."
  echo
  if [ -n "$best" ]; then
    echo "**Capacity: $best requests/s** offered (christmas mix, \`$scale\` catalog): the highest"
    echo "rate up to which every step was held with p99 < $p99_bound ms and zero errors."
    if [ "$best_409" != "$best" ]; then
      echo "Taking the SPEC's 409 at checkout (not enough stock) as a right answer instead of"
      echo "an error, the highest rate held would be ${best_409:-none}/s."
    fi
  else
    echo "**Capacity: not reached at the lowest rate tried** ($first_rate/s was not held with p99 < $p99_bound ms and zero errors)."
    [ -z "$best_409" ] || echo "Taking the SPEC's 409 at checkout as a right answer, $best_409/s would be held."
  fi
  [ -z "$best_any" ] || [ "$best_any" = "$best" ] ||
    echo "(A higher step, $best_any/s, was held again after one that was not.)"
  echo
  echo "![throughput and latency against offered load](capacity.png)"
  echo
  echo "| offered req/s (target) | achieved req/s | p50 ms | p99 ms | p99 ms from send | errors | of which 409 | unsent | sessions/s | orders/s | CPU: machine / stack / others | held? |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' -v d="$step_secs" -v sp="${stack_pids:+1}" 'NR > 1 {
    cpu = sp ? sprintf("%s%% / %s%% / %s%%", $17, $21, $22) : $17 "%"
    if ($23 == 1) cpu = cpu " (disturbed)"
    printf "| %.0f (%s) | %.0f | %s | %s | %s | %s | %s | %s | %.1f | %.1f | %s | %s |\n",
      $2, $1, $3, $4, $6, $9, $10, $11, $14, $15 / d, $16 / d, cpu, ($20 == "held" ? "held" : "**no**")
  }' "$tsv"
  echo
  echo "p99 by kind of request (ms, from the scheduled time), and the error statuses:"
  echo
  echo "| offered req/s | product | category | search | add | cart | checkout | order | error statuses |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "$finals" | while IFS= read -r l; do
    st=$(printf '%s\n' "$l" | tr ' ' '\n' | grep -E '^(status_[0-9]+|socket_errors|timeouts)=' | grep -v '=0$' | paste -sd' ' || true)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(field target_rps "$l" | cut -d. -f1)" \
      "$(field p99_product_ms "$l")" "$(field p99_category_ms "$l")" "$(field p99_search_ms "$l")" \
      "$(field p99_add_ms "$l")" "$(field p99_cart_ms "$l")" "$(field p99_checkout_ms "$l")" \
      "$(field p99_order_ms "$l")" "${st:-none}"
  done
  echo
  peak=$(awk -F'\t' 'NR > 1 && $3 + 0 > m {m = $3 + 0; r = $1} END {printf "%.0f %s", m, r}' "$tsv")
  echo "## For scale: eToys, Christmas 2000"
  echo
  echo "eToys' peak, across a whole cluster of the hardware of its day: about"
  echo "$etoys_pages page views/s, $etoys_sessions sessions started/s, $etoys_orders orders/s (every christmas"
  echo "request is a page or a form post; none is an image or a stylesheet)."
  if [ -n "$best" ]; then
    rps=$(field achieved_rps "$best_line")
    sess=$(awk -v s="$(field sessions "$best_line")" -v d="$step_secs" 'BEGIN {printf "%.1f", s/d}')
    ords=$(awk -v s="$(field orders "$best_line")" -v d="$step_secs" 'BEGIN {printf "%.1f", s/d}')
    echo "At its capacity step this stack served $rps requests/s ($(awk -v r="$rps" -v e="$etoys_pages" 'BEGIN {printf "%.0f%%", 100*r/e}') of eToys'"
    echo "page views), started $sess sessions/s and placed $ords orders/s, within the latency bound."
  fi
  echo "The most it served in any step was ${peak% *} requests/s (offered ${peak#* }/s), latency bound or not."
  echo
  echo "## How the load is made and measured"
  echo
  echo "- **Generator**: \`target/release/esf-load\` (crates/esf-load), a port of"
  echo "  \`../shared/bench/christmas.lua\`: the same shopper (60% product, 20%"
  echo "  category, 10% search, 7% cart add, 2% cart view, 1% checkout; prerequisites"
  echo "  first; cookie and csrf kept; a 4xx on add or checkout or a finished order"
  echo "  ends the session, otherwise a session ends with probability 1/${ESF_SESSION_LEN:-20} per request),"
  echo "  the same Zipf(s=1) draws over the catalog's $ESF_PRODUCTS products and $ESF_CATEGORIES"
  echo "  categories, the same query phrases."
  echo "- **Open loop**: the requests of a step are scheduled in advance, Poisson"
  echo "  arrivals at the offered rate, whatever the server does. $workers simulated"
  echo "  browsers (one shopper and one keep-alive connection each, reconnecting when"
  echo "  the server closes) take the scheduled requests in order; an idle browser"
  echo "  waits for its request's time and sends it. One esf-load run does all the"
  echo "  steps: the browsers, their shoppers and connections go on from step to step,"
  echo "  so sessions and connections are in a steady state (the warm-up takes the"
  echo "  first cookies and connections)."
  echo "- **Latency** counts from the scheduled time, not from the send: when all"
  echo "  browsers are busy, a request waits for one and that wait is part of its"
  echo "  latency. This avoids *coordinated omission* (a closed-loop tool such as wrk,"
  echo "  with or without \`delay()\`, sends the next request only after the previous"
  echo "  answer, so a slow server slows the load and its stall is hidden from the"
  echo "  percentiles). The latency from the actual send is shown beside it (\"p99 ms"
  echo "  from send\"): the two agree until the server falls behind. The generator's own"
  echo "  scheduling delays (it shares the machine) count against the server."
  echo "- **Offered** is the number of requests scheduled in the step / $step_secs s (the Poisson"
  echo "  draw, close to the target); **achieved** is responses received / $step_secs s. Requests"
  echo "  still unsent when the step ends are counted as *unsent* and not sent."
  echo "- **A step is held** when p99 < $p99_bound ms, there are no errors, and achieved >= 99%"
  echo "  of offered. **Errors** follow \`../shared/bench\`: responses with status >= 400,"
  echo "  socket errors (connect, read, write) and timeouts (10 s). A 409 at checkout"
  echo "  (not enough stock: legitimate per the SPEC) therefore counts; the table shows"
  echo "  how many errors were 409s. Checkouts use up stock, so a long run or repeated"
  echo "  runs against the same data can see more of them: reload the catalog for"
  echo "  identical runs."
  echo "- Steps of $step_secs s, rates $rates; an untimed warm-up of ${warmup_secs} s at"
  echo "  $first_rate/s first; the run stops after $stop_after overloaded steps in a row (achieved < 95%"
  echo "  of offered, or p99 > 20 x $p99_bound ms), so the plot shows where throughput levels off."
  echo
  echo "## The machine"
  echo
  echo "$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo),"
  echo "$(. /etc/os-release && echo "$PRETTY_NAME"), $(apache2 -v 2>/dev/null | sed -n 's/^Server version: //p')."
  echo "The generator, the web servers and PostgreSQL all share these cores, so the"
  echo "capacity is the whole stack's on one small machine, load generator included"
  echo "(its own CPU use at each step is in \`steps.tsv\`, column generator_cpu_pct, % of one core)."
  echo "Load average (1, 5, 15 min) before the run: $load_before; after: $load_after."
  echo "(The load average lags and counts waiting threads; the CPU split of each step below"
  echo "says better whether other work shared the machine during the measurement.)"
  echo
  echo "CPU columns, as shares of the whole machine ($(nproc) cores = 100%) during the step:"
  echo "*machine* is all of it not idle; *stack* is the stack's own processes (the"
  echo "process trees of the pid files under \`$stack\`: httpd, esf-searchd, PostgreSQL), *others*"
  echo "is the rest less the generator: other people's builds and tests on this shared"
  echo "machine. A step during which others took more than $max_others% is marked disturbed and"
  echo "run again (up to $retries times; the table shows the last attempt, \`raw.txt\` all of"
  echo "them). Without pid files (a remote stack) only the machine's share is shown. Steal"
  echo "time (the host taking the CPU away) is in \`steps.tsv\`."
  echo
  echo "Raw results: [\`steps.tsv\`](steps.tsv) (one row per step) and [\`raw.txt\`](raw.txt)"
  echo "(esf-load's full line per step, with per-kind p99 and request counts)."
} >"$out/REPORT.md"

if [ -n "$best" ]; then
  echo "capacity: $best/s (every step up to it held p99 < $p99_bound ms with no errors)"
else
  echo "capacity: not reached at $first_rate/s (p99 < $p99_bound ms with no errors)"
fi
echo "  report: $out/REPORT.md   plot: $out/capacity.png"
