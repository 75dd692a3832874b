#!/usr/bin/env bash
# Sets up everything a fresh Debian machine lacks, then runs every test suite, from fast to slow:
#   1. Python: the training pipeline (its --tiny configuration end to end, golden fixtures, tokenizer round trip)
#   2. Node: unit tests on the cpu/wasm backends and WebGPU tests through Dawn on SwiftShader (vitest)
#   3. Browser: Playwright end-to-end tests in Debian's Chromium (WebGPU on SwiftShader, and the WASM fallback)
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --all || exit 1
export VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
export LD_LIBRARY_PATH=/usr/lib/chromium${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

passed=0; failed=0; failures=()
suite() {  # suite NAME COMMAND...: run one suite, remember whether it passed
  local name=$1; shift
  echo; echo "=== $name: $*"; local t0=$SECONDS
  if "$@"; then passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0)) s)"
  else failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0)) s)"; fi
}

suite python /usr/bin/python3 -m unittest discover -s training/tests -v
suite typecheck npx tsc --noEmit -p tsconfig.json
suite node npm run --silent test:unit
suite browser npm run --silent test:e2e

echo
[ $failed -eq 0 ] || echo "failed suites: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
