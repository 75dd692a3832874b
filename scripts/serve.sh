#!/usr/bin/env bash
# Sets up (npm packages) and serves MEND Lab on the embedded default model at http://127.0.0.1:5173/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx vite build
exec npx vite preview --host 127.0.0.1 --port "${PORT:-5173}" --strictPort
