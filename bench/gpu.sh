#!/usr/bin/env bash
# The benchmark run on the GPU machine (one H100/H200): `bash bench/gpu.sh`, with bench/portable carried
# (made here by bench/pack.sh). Writes under $OUT:
#   env.txt        GPU, driver, torch, date
#   webgpu.json    npm run bench --json (tfjs-webgpu through Dawn/Vulkan): distilgpt2, shipped, gpt2-medium
#   webgpu.log     its progress
#   torch.json     bench/torch_edit.py: the same edit in PyTorch eager (hooks, probe) and torch.compile
#   torch.log      its progress
# Both JSON files are rewritten after every model, so a cut-off run still brings back what it measured.
# The whole script stays under ~200 s: each half runs under `timeout`, the torch half gets what is left.
# Override the arguments for a quick run (e.g. here on SwiftShader):
#   OUT=/tmp/o BENCH_ARGS="--shapes tiny ..." TORCH_ARGS="--shapes tiny ..." bash bench/gpu.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/bench-out}
TOTAL=${TOTAL_SECONDS:-195}
BENCH_ARGS=${BENCH_ARGS:---shapes distilgpt2,shipped,gpt2-medium}
TORCH_ARGS=${TORCH_ARGS:---shapes distilgpt2,gpt2-medium --compile-shapes distilgpt2}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
start=$SECONDS
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv 2>&1 || echo "no nvidia-smi"
  "$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" 2>&1
  nproc
} > "$OUT/env.txt"

# pack.sh ships main.mjs compressed (the 64 MiB transfer limit).
[ -f bench/portable/main.mjs ] || xz -dk bench/portable/main.mjs.xz
# The shipped model from the repo itself (run.sh runs from bench/portable, so the path must be absolute).
shipped=
for d in public/models/facts-gpt tests/fixtures/mend-tiny; do
  if [ -f "$d/editor.safetensors" ] && { [ -f "$d/model.safetensors" ] || [ -f "$d/model.safetensors.index.json" ]; }; then shipped="$PWD/$d"; break; fi
done

# WebGPU first (the subject of the benchmark); most of the budget, but leave the torch half its minimum.
timeout 120 bash bench/portable/run.sh --json --out "$OUT/webgpu.json" ${shipped:+--shipped "$shipped"} $BENCH_ARGS > /dev/null 2> "$OUT/webgpu.log"
echo "exit $? after $((SECONDS - start)) s" >> "$OUT/webgpu.log"

left=$((TOTAL - (SECONDS - start)))
if [ "$left" -gt 10 ]; then
  PYTHONUNBUFFERED=1 timeout "$left" "$PY" bench/torch_edit.py --out "$OUT/torch.json" $TORCH_ARGS > /dev/null 2> "$OUT/torch.log"
  echo "exit $? after $((SECONDS - start)) s" >> "$OUT/torch.log"
else
  echo "skipped: only $left s left" > "$OUT/torch.log"
fi
echo "gpu.sh done in $((SECONDS - start)) s"
ls -la "$OUT"
tail -n 3 "$OUT/webgpu.log" "$OUT/torch.log"
