#!/usr/bin/env bash
# What the device machine would receive for `run` with carry ["bench/portable"]: the working tree as it copies it
# (tracked files + untracked files git does not ignore) plus the carried folder, against its 64 MiB limit.
# Exit 1 when over the limit or when less than MARGIN bytes (default 128 KiB) are left. The margin is for what is
# committed between packing and the device call; pack right before the call (docs/benchmarks.md, the procedure).
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=67108864
MARGIN=${MARGIN:-131072}
tree=$( { git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}')
portable=$(find bench/portable -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}')
total=$((tree + portable))
printf 'tree %d + bench/portable %d = %d bytes (%.2f MiB) of %d; %d left\n' "$tree" "$portable" "$total" \
  "$(echo "$total / 1048576" | bc -l)" "$LIMIT" $((LIMIT - total))
for f in node main.mjs node_modules/webgpu/dist/linux-x64/dawn.node; do
  [ -e "bench/portable/$f" ] && echo "bench/portable/$f is an unpacked copy from a local run: delete it (or re-run pack.sh)"
done
[ $((LIMIT - total)) -ge "$MARGIN" ] || { echo "too big: under $MARGIN bytes to spare" >&2; exit 1; }
