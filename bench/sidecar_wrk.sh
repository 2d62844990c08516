#!/bin/bash
# Decisions a second and server CPU a decision under wrk, and the machine's floor beside
# them (GET /healthz: no token, no body, no decision, no log), for one toegang binary on a
# fresh copy of engine_bench's GP-shaped store (bench/RESULTS.md, "Authenticating a
# request and reading its instant"); and, from the server's own histogram, the share of
# the timed run's decisions that took at most 50 us (the p99.9 budget). Run it for two
# builds in turn to compare them.
#
#   bench/sidecar_wrk.sh bazel-bin/toegang [PATIENTS [WARM_SECONDS]]
#
# PATIENTS: default 100000. WARM_SECONDS: decisions before the timed run, default 20,
# which reads nearly every patient of 100,000 into the record cache at this VM's pace; 0
# times the first reads from RocksDB too.
#
# Needs wrk, and the store engine_bench writes: /tmp/toegang-engine-bench-PATIENTS.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 TOEGANG_BINARY [PATIENTS [WARM_SECONDS]]" >&2; exit 2; }
bin=$(realpath "$1")
patients=${2:-100000}
warm=${3:-20}
[[ "$patients" =~ ^[0-9]+$ && "$warm" =~ ^[0-9]+$ ]] || { echo "PATIENTS and WARM_SECONDS are whole numbers" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
store=/tmp/toegang-engine-bench-$patients
[ -d "$store" ] || { echo "no $store: run bazel-bin/bench/engine_bench first" >&2; exit 2; }
work=$(mktemp -d)
port=18181
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$store" "$work/store"
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && echo "decide,metrics $token" > "$work/tokens")
"$bin" serve --db "$work/store" --audit-mode buffered --threads 2 --token-file "$work/tokens" \
  --http 127.0.0.1:$port --socket "$work/sock" > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do curl -s -o /dev/null http://127.0.0.1:$port/healthz && break; sleep 0.5; done
curl -s -o /dev/null http://127.0.0.1:$port/healthz || { echo "the server did not answer:" >&2; cat "$work/serve.log" >&2; exit 1; }
decide() {
  TOEGANG_TOKEN=$token TOEGANG_WRK_PATIENTS=$patients wrk -t2 -c64 -d"$1" -s "$here/wrk_decide.lua" \
    http://127.0.0.1:$port
}
[ "$warm" -gt 0 ] && decide "${warm}s" > /dev/null  # fill the record cache
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# From the server's own histogram of decision times: how many took at most 50 us, and
# how many there were, so far.
histogram() {
  curl -s -H "Authorization: Bearer $token" http://127.0.0.1:$port/metrics |
    awk '/^toegang_decision_seconds_bucket\{le="5e-05"\}/ {w = $2} /^toegang_decision_seconds_count/ {c = $2}
         END {print w + 0, c + 0}'
}
read -r within0 count0 < <(histogram)
before=$(ticks)
requests=$(decide 8s | awk '/requests in/ {print $1}')
after=$(ticks)
read -r within1 count1 < <(histogram)
within=$((within1 - within0))
count=$((count1 - count0))
healthz=$(wrk -t2 -c64 -d8s http://127.0.0.1:$port/healthz | awk '/requests in/ {print $1}')
hz=$(getconf CLK_TCK)
awk -v r="$requests" -v h="$healthz" -v t=$((after - before)) -v hz="$hz" -v b="$(basename "$bin")" \
  -v w="${within:-0}" -v c="${count:-0}" 'BEGIN {
  printf "%s: decisions %d/s, server CPU %.1f us a decision; /healthz %d/s; ", b, r / 8, t / hz * 1e6 / r, h / 8
  printf "%.3f%% of the timed run\047s %d decisions within 50 us (server histogram)\n", c ? 100 * w / c : 0, c
}'
