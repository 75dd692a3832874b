#!/bin/sh
# The real run on the GPU machine (one H100), as used for the shipped public/models/facts-gpt/.
# Writes to training/runs/gpu/ and packs the artifacts into $OUT as <= 15 MiB pieces plus the log:
#   cat artifacts.tgz.* | tar xzf -
# The pipeline bounds its own phases by wall-clock budgets (pretraining, editor training, evaluation), so the
# whole command fits in ~6 minutes; `timeout` is only a last resort.
OUT=${OUT:-/tmp/out}
RUN=training/runs/gpu
mkdir -p "$RUN" "$OUT"
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.is_available())"
  nproc
} > "$OUT/env.txt" 2>&1
timeout 380 python3 training/run_pipeline.py --device cuda --out "$RUN" "$@" > "$OUT/log.txt" 2>&1
echo "exit $?" >> "$OUT/log.txt"
cd "$RUN" || exit 1
if [ -d facts-gpt ] && [ -f facts-gpt/eval.json ]; then
  tar czf - facts-gpt log.txt train_log.json | split -b 15m - "$OUT/artifacts.tgz."
else  # the run did not finish: bring back the pretrained base model, if any, for a CPU continuation
  tar czf - base log.txt 2>/dev/null | split -b 15m - "$OUT/partial.tgz."
fi
ls -la "$OUT"
