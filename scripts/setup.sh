#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks. Idempotent: a second run installs nothing.
#   bash scripts/setup.sh            npm packages only (enough to run the app and the CLI)
#   bash scripts/setup.sh --all      also Debian packages for the tests: Chromium (WebGPU on SwiftShader,
#                                    also used by Node's Dawn) and PyTorch (the training pipeline)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--all" ]; then
  need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || need+=(python3-torch python3-numpy libopenblas0-pthread)
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "setup: installing Debian packages: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

# npm ci only when node_modules is missing or older than the lockfile (.npmrc skips onnxruntime-node's download).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi
