#!/usr/bin/env bash
# The benchmark run on the GPU machine (one H100/H200): `bash bench/gpu.sh`, with bench/portable carried (made
# here by bench/pack.sh). Writes under $OUT (at most 8 files come back; this writes 5):
#   env.txt        GPU, driver, torch, and the Vulkan diagnostics: loader libraries, ICD folders and files, which
#                  loader debs were unpacked, and each Dawn probe with its loader messages
#   webgpu.json    npm run bench --json (tfjs-webgpu through Dawn/Vulkan): distilgpt2, shipped, gpt2-medium
#   webgpu.log     its progress (or why it did not run)
#   torch.json     bench/torch_edit.py: the same edit in PyTorch eager (hooks, probe) and torch.compile
#   torch.log      its progress
#   rounds.json    (RATIO_ROUNDS=N > 0) N ratio rounds: the one-wait edit (`--edit-only`) and PyTorch eager's, in turn
#   rounds.log     their progress
# Both JSON files are rewritten after every model, so a cut-off run still brings back what it measured. At the
# end it prints the WebGPU table and the PyTorch totals, so the run's output already holds the answer.
#
# Vulkan on the device machine: the loader (libvulkan1) and the GL vendor-neutral dispatch libraries that
# NVIDIA's driver needs (libglvnd0, libegl1, libglx0, libgl1, libopengl0, libgles2) come as .debs in
# bench/portable/debs; all are unpacked into / when any of them is missing (the machine is fresh each time).
# Then Dawn is probed with each candidate ICD (NVIDIA's manifests, with VK_DRIVER_FILES and
# __EGL_VENDOR_LIBRARY_FILENAMES; a generated EGL-only manifest for headless use; the loader's default) and the
# first that gives a hardware adapter runs the bench. If none does on a machine with nvidia-smi, the WebGPU half
# is skipped with "DAWN FAILED" (no point timing SwiftShader on a GPU's clock) and the PyTorch half still runs.
#
# Time: the whole script stays under TOTAL_SECONDS (default 210): probes ≤ 15 s each, the WebGPU half ≤ 120 s,
# the torch half gets what is left, minus ROUND_SECONDS (default 45) per ratio round asked for (RATIO_ROUNDS,
# default 0; RATIO_SHAPE, default distilgpt2). Why rounds: the WebGPU/PyTorch ratio of the same code moved from 0.87
# to 1.18 between calls on 2026-11-27, so one pair of numbers cannot say "reliably <= 1.0"; N fresh pairs on one
# machine, the order flipped every round, give N ratios (gpu_summary.py prints them with their median and range). Override the arguments for a quick run (e.g. here on SwiftShader):
#   OUT=/tmp/o BENCH_ARGS="--shapes tiny ..." TORCH_ARGS="--shapes tiny ..." bash bench/gpu.sh
# On a machine without nvidia-smi a software adapter is accepted, so that this test works on the CPU.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
P=$ROOT/bench/portable
OUT=${OUT:-/tmp/bench-out}
TOTAL=${TOTAL_SECONDS:-210}
WEBGPU_SECONDS=${WEBGPU_SECONDS:-120}
BENCH_ARGS=${BENCH_ARGS:---shapes distilgpt2,shipped,gpt2-medium --rowwise-baseline}
TORCH_ARGS=${TORCH_ARGS:---shapes distilgpt2,gpt2-medium --compile-shapes distilgpt2}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
ENV_TXT=$OUT/env.txt
start=$SECONDS
say() { echo "$*" | tee -a "$ENV_TXT"; }
section() { printf '\n== %s\n' "$*" >> "$ENV_TXT"; }

: > "$ENV_TXT"
{
  date -u
  nvidia-smi 2>&1 || echo "no nvidia-smi"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv 2>&1 || true
  "$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" 2>&1
  echo "nproc $(nproc)"
  echo "NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-} NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES:-}"
} >> "$ENV_TXT" 2>&1
has_gpu=0
nvidia-smi -L > /dev/null 2>&1 && has_gpu=1

gl_libs() { # the loader and glvnd libraries as the dynamic linker sees them
  ldconfig -p | grep -E 'libvulkan|GLX|EGL|GLdispatch|libOpenGL|libGL\.so|GLES' || echo "(none)"
}
section "loader libraries before (ldconfig -p | grep -E 'vulkan|GLX|EGL|GLdispatch|OpenGL|GL|GLES')"
gl_libs >> "$ENV_TXT"

# 1. The loader debs: all of them whenever one library is missing (NVIDIA's libGLX_nvidia/libEGL_nvidia need
#    libGLdispatch and the EGL/GLX dispatchers; a machine may have libvulkan and still lack those).
missing=
for lib in libvulkan.so.1 libGLdispatch.so.0 libEGL.so.1 libGLX.so.0 libOpenGL.so.0 libGL.so.1 libGLESv2.so.2; do
  ldconfig -p | grep -qF "$lib" || missing="$missing $lib"
done
section "loader debs"
if [ -n "$missing" ]; then
  echo "missing:$missing -> unpacking $(ls "$P"/debs/*.deb 2>/dev/null | xargs -n1 basename 2>/dev/null | tr '\n' ' ')" >> "$ENV_TXT"
  for f in "$P"/debs/*.deb; do dpkg -x "$f" / >> "$ENV_TXT" 2>&1 || echo "dpkg -x $f failed" >> "$ENV_TXT"; done
  ldconfig >> "$ENV_TXT" 2>&1
  section "loader libraries after unpacking"
  gl_libs >> "$ENV_TXT"
else
  echo "all present, nothing unpacked" >> "$ENV_TXT"
fi

# 2. Node, the Dawn addon and main.mjs travel compressed (the 64 MiB transfer limit). The unpacked copies are
#    removed on exit, so that a local test run does not leave bench/portable too big to carry.
trap 'rm -f "$P/node" "$P/main.mjs" "$P/baseline.mjs" "$P/node_modules/webgpu/dist/linux-x64/dawn.node"' EXIT
[ -x "$P/node" ] || { xz -dc "$P/node.xz" > "$P/node" && chmod +x "$P/node"; }
addon=$P/node_modules/webgpu/dist/linux-x64/dawn.node
[ -f "$addon" ] || xz -dc "$addon.xz" > "$addon"
[ -f "$P/main.mjs" ] || xz -dk "$P/main.mjs.xz"

# 3. The ICDs on this machine.
NVLIB=
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$d" ] && NVLIB="${NVLIB:+$NVLIB:}$d"; done
section "ICD folders"
for d in /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/glvnd/egl_vendor.d /usr/share/glvnd/egl_vendor.d /usr/local/nvidia/lib64; do
  echo "-- ls $d" >> "$ENV_TXT"
  ls -la "$d" >> "$ENV_TXT" 2>&1
done
section "ICD and EGL vendor files"
for f in /usr/local/nvidia/share/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json \
  /usr/local/nvidia/share/glvnd/egl_vendor.d/*.json /usr/share/glvnd/egl_vendor.d/*.json; do
  [ -f "$f" ] && { echo "-- $f"; cat "$f"; } >> "$ENV_TXT" 2>&1
done
section "NVIDIA driver libraries (ldconfig -p | grep nvidia)"
{ ldconfig -p | grep -E 'nvidia|libcuda' || echo "(none)"; } >> "$ENV_TXT"

egl_vendor=
for f in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json; do
  [ -f "$f" ] && { egl_vendor=$f; break; }
done
# A manifest that points the loader at NVIDIA's EGL library instead of its GLX one: the usual fix for headless
# machines, where the GLX entry point can refuse to create an instance ("Could not get 'vkCreateInstance' via
# 'vk_icdGetInstanceProcAddr'").
egl_icd=
if ldconfig -p | grep -q libEGL_nvidia.so.0 || ls ${NVLIB//:/ } 2>/dev/null | grep -q libEGL_nvidia.so.0; then
  egl_icd=/tmp/mendlab_nvidia_egl_icd.json
  printf '{"file_format_version": "1.0.1", "ICD": {"library_path": "libEGL_nvidia.so.0", "api_version": "1.3.0"}}\n' > "$egl_icd"
fi

# 4. Candidate environments, best first; each is tried with a quick Dawn probe.
candidates=()
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$f" ] && candidates+=("VK_DRIVER_FILES=$f VK_ICD_FILENAMES=$f${egl_vendor:+ __EGL_VENDOR_LIBRARY_FILENAMES=$egl_vendor}")
done
[ -n "$egl_icd" ] && candidates+=("VK_DRIVER_FILES=$egl_icd VK_ICD_FILENAMES=$egl_icd${egl_vendor:+ __EGL_VENDOR_LIBRARY_FILENAMES=$egl_vendor}")
candidates+=("DEFAULT_LOADER_SEARCH=1")
if [ "$has_gpu" = 0 ] && [ -f /usr/lib/chromium/vk_swiftshader_icd.json ]; then
  candidates+=("VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json LD_LIBRARY_PATH=/usr/lib/chromium")
fi
with_nvlib() { # adds the NVIDIA library folders to LD_LIBRARY_PATH of an env string
  if [ -n "$NVLIB" ]; then
    case "$1" in *LD_LIBRARY_PATH=*) echo "${1/LD_LIBRARY_PATH=/LD_LIBRARY_PATH=$NVLIB:}" ;; *) echo "$1 LD_LIBRARY_PATH=$NVLIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
  else
    echo "$1"
  fi
}
section "Dawn probes (exit 0 hardware adapter, 3 software, 2 none, 1 Dawn did not load)"
chosen=
software_env=
for c in "${candidates[@]}"; do
  e=$(with_nvlib "$c")
  echo "-- env $e" >> "$ENV_TXT"
  # shellcheck disable=SC2086
  (cd "$P" && env $e VK_LOADER_DEBUG=error,warn,driver timeout 15 ./node "$ROOT/bench/gpu_probe.mjs" "$P") >> "$ENV_TXT" 2>&1
  rc=$?
  echo "exit $rc" >> "$ENV_TXT"
  if [ $rc = 0 ]; then chosen=$e; break; fi
  [ $rc = 3 ] && [ -z "$software_env" ] && software_env=$e
done

# 5. The WebGPU half.
shipped=
for d in public/models/facts-gpt tests/fixtures/mend-tiny; do
  if [ -f "$d/editor.safetensors" ] && { [ -f "$d/model.safetensors" ] || [ -f "$d/model.safetensors.index.json" ]; }; then shipped="$ROOT/$d"; break; fi
done
if [ -z "$chosen" ] && [ "$has_gpu" = 0 ] && [ -n "$software_env" ]; then
  chosen=$software_env
  say "gpu.sh: no GPU here (no nvidia-smi): running WebGPU on the software adapter; only ratios count"
fi
if [ -n "$chosen" ]; then
  say "gpu.sh: WebGPU env: $chosen"
  # shellcheck disable=SC2086
  (cd "$P" && env $chosen timeout "$WEBGPU_SECONDS" ./node main.mjs --json --out "$OUT/webgpu.json" ${shipped:+--shipped "$shipped"} $BENCH_ARGS) > /dev/null 2> "$OUT/webgpu.log"
  echo "exit $? after $((SECONDS - start)) s" >> "$OUT/webgpu.log"
else
  msg="DAWN FAILED: no hardware WebGPU adapter from any Vulkan ICD (see the probes in env.txt); WebGPU half skipped"
  echo "$msg" > "$OUT/webgpu.log"
  say "gpu.sh: $msg"
fi

# 5b. A side-by-side baseline, when bench/portable/baseline.mjs.xz exists: the main.mjs of an earlier commit (its
#     commit in baseline.txt), run right after, with the same arguments and adapter, so that before/after is a
#     ratio from one machine (docs/benchmarks.md). Copy main.mjs.xz to baseline.mjs.xz before re-packing to make one.
if [ -n "$chosen" ] && [ -f "$P/baseline.mjs.xz" ]; then
  left=$((TOTAL - (SECONDS - start)))
  if [ "$left" -gt 20 ]; then
    xz -dc "$P/baseline.mjs.xz" > "$P/baseline.mjs"
    say "gpu.sh: baseline $(cat "$P/baseline.txt" 2>/dev/null) with the same arguments"
    # shellcheck disable=SC2086
    (cd "$P" && env $chosen timeout "$((left < WEBGPU_SECONDS ? left : WEBGPU_SECONDS))" ./node baseline.mjs --json --out "$OUT/webgpu-baseline.json" ${shipped:+--shipped "$shipped"} ${BASELINE_ARGS:-$BENCH_ARGS}) > /dev/null 2> "$OUT/webgpu-baseline.log"
    echo "exit $? after $((SECONDS - start)) s" >> "$OUT/webgpu-baseline.log"
  fi
fi

# 6. The PyTorch half, in the time left (SKIP_TORCH=1: not at all, e.g. when only a before/after is wanted).
ROUNDS=${RATIO_ROUNDS:-0}
ROUND_SECONDS=${ROUND_SECONDS:-45}
[ "${SKIP_TORCH:-0}" = 1 ] || [ -z "$chosen" ] && ROUNDS=0
left=$((TOTAL - (SECONDS - start) - ROUNDS * ROUND_SECONDS))
[ "${SKIP_TORCH:-0}" = 1 ] && left=0
if [ "$left" -gt 10 ]; then
  PYTHONUNBUFFERED=1 timeout "$left" "$PY" bench/torch_edit.py --out "$OUT/torch.json" $TORCH_ARGS > /dev/null 2> "$OUT/torch.log"
  echo "exit $? after $((SECONDS - start)) s" >> "$OUT/torch.log"
else
  echo "skipped: only $left s left" > "$OUT/torch.log"
fi

# 7. Ratio rounds: a fresh WebGPU process timing only the one-wait edit, and a fresh PyTorch process timing only
#    the eager edit, in turn (WebGPU first in even rounds, PyTorch first in odd ones), merged into rounds.json.
if [ "$ROUNDS" -gt 0 ]; then
  shape=${RATIO_SHAPE:-distilgpt2}
  tmp=$(mktemp -d)
  : > "$OUT/rounds.log"
  for ((i = 0; i < ROUNDS; i++)); do
    left=$((TOTAL - (SECONDS - start)))
    if [ "$left" -lt "$ROUND_SECONDS" ]; then echo "round $i: skipped, only $left s left" >> "$OUT/rounds.log"; break; fi
    half=$((ROUND_SECONDS / 2))
    web() { # shellcheck disable=SC2086
      (cd "$P" && env $chosen timeout "$half" ./node main.mjs --edit-only --json --shapes "$shape" --out "$tmp/web.json" ${shipped:+--shipped "$shipped"}) > /dev/null 2>> "$OUT/rounds.log"
      echo "round $i webgpu exit $? at $((SECONDS - start)) s" >> "$OUT/rounds.log"; }
    tor() { PYTHONUNBUFFERED=1 timeout "$half" "$PY" bench/torch_edit.py --shapes "$shape" --compile-shapes "" --out "$tmp/torch.json" > /dev/null 2>> "$OUT/rounds.log"
      echo "round $i torch exit $? at $((SECONDS - start)) s" >> "$OUT/rounds.log"; }
    rm -f "$tmp/web.json" "$tmp/torch.json"
    if [ $((i % 2)) = 0 ]; then web; tor; first=webgpu; else tor; web; first=torch; fi
    "$PY" bench/gpu_summary.py --add-round "$OUT/rounds.json" "$tmp/web.json" "$tmp/torch.json" "$first" >> "$OUT/rounds.log" 2>&1
  done
  rm -rf "$tmp"
fi

echo "gpu.sh done in $((SECONDS - start)) s"
ls -la "$OUT"
tail -n 3 "$OUT/webgpu.log" "$OUT/torch.log"
if [ -f "$OUT/webgpu.json" ]; then
  echo; (cd "$P" && ./node main.mjs --show "$OUT/webgpu.json") 2>&1 | head -n 80
fi
if [ -f "$OUT/webgpu-baseline.json" ]; then
  echo; echo "== baseline ($(cat "$P/baseline.txt" 2>/dev/null))"; tail -n 2 "$OUT/webgpu-baseline.log"
  (cd "$P" && ./node main.mjs --show "$OUT/webgpu-baseline.json") 2>&1 | head -n 40
fi
echo; "$PY" bench/gpu_summary.py "$OUT" 2>&1 | head -n 40
