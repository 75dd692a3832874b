#!/usr/bin/env bash
# Both GPU jobs in ONE device call, because a session's device allowance (15 min, machine start included) does not
# fit two calls with their starts and idle gaps:
#   run(command="bash scripts/gpu-session.sh", carry=["bench/portable"], timeout_s=600)
# (bench/portable made here first by `bash bench/pack.sh`; docs/benchmarks.md and docs/training.md.)
#
#   1. the benchmark (issue 6): bench/gpu.sh, first, alone on the GPU so that its timings are clean; at most
#      BENCH_SECONDS (default 200). Its five files are packed into $OUT/bench.tgz; its summary goes to stdout.
#   2. the editor training run (issue 3): training/gpu_run2.sh with the time that is left: the editor gets
#      (LIMIT - elapsed - 150) s, at most 330 s. The shipped editor's relation-balanced numbers, which the decision
#      rule compares against, are computed afterwards on a CPU (SHIPPED_BALANCED=0 here: it saves ~35 s).
# Extra arguments go to gpu_run2.sh (CPU test: see docs/training.md).
# $OUT then holds bench.tgz, env.txt, log.txt and artifacts.tgz.* (or partial.tgz.*): at most 8 files.
set -u
cd "$(dirname "$0")/.."
T0=$SECONDS
LIMIT=${LIMIT:-585}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"

echo "== bench ($(date -u +%T))"
OUT="$OUT/bench" TOTAL_SECONDS=${BENCH_SECONDS:-200} bash bench/gpu.sh 2>&1 | tail -n 150
tar czf "$OUT/bench.tgz" -C "$OUT" bench && rm -rf "$OUT/bench"

left=$((LIMIT - (SECONDS - T0)))
editor=$((left - 150)); [ "$editor" -gt 330 ] && editor=330
echo
echo "== training ($(date -u +%T)): ${left} s left, editor budget ${editor} s"
if [ "$editor" -lt 60 ]; then
  echo "not enough time left for an editor run"; exit 0
fi
EDITOR_SECONDS=$editor SHIPPED_BALANCED=0 OUT="$OUT" timeout $((left - 5)) sh training/gpu_run2.sh "$@"
echo "gpu_run2 exit $? at $((SECONDS - T0)) s"
tail -n 25 "$OUT/log.txt"
ls -la "$OUT"
