#!/bin/sh
# Per-stage CPU profiles (Linux perf: CPU time of every thread, native frames included) of the release and
# attestation benchmarks, this checkout and, given, a baseline checkout in the same run; each server's
# samples summarised per stage (µs per operation) by bench/profile.ts. Needs perf (linux-perf).
#
#   sh bench/stage-profile.sh [BASELINE_DIR]      (output directory: $OUT, default a new temp dir)
set -eu
out=${OUT:-$(mktemp -d /tmp/conclave-stages-XXXXXX)}
base=${1:+--baseline $1}
run() {
  name=$1
  shift
  mkdir -p "$out/$name"
  BENCH_PERF="$out/$name" "$@" >"$out/$name/bench.txt" 2>&1
  for f in "$out/$name"/perf-*.data; do perf script -F comm,pid,tid,time,period,event,ip,sym,dso -i "$f" >"${f%.data}.txt" 2>/dev/null; done
  # "server LABEL (pid N) answered M …": one summary per server.
  grep -o 'pid [0-9]*) answered [0-9]*' "$out/$name/bench.txt" | while read -r _ pid _ n; do
    pid=${pid%)}
    echo "== $name, server pid $pid ($(grep "pid $pid)" "$out/$name/bench.txt" | cut -d'(' -f1))"
    node --import tsx bench/profile.ts "$out/$name/perf-$pid.txt" --per "$n" --top 12
  done
}
run release-c16 node scripts/bench.mjs release --concurrency 16 --rounds 1 --seconds 10 --log-off none $base
run attest-sgx-c4 node scripts/bench.mjs attest --tee sgx --connections 4 --rounds 1 --seconds 10 $base
run attest-snp-c4 node scripts/bench.mjs attest --tee snp --connections 4 --rounds 1 --seconds 10 $base
echo "profiles and benchmark output in $out"
