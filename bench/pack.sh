#!/usr/bin/env bash
# Packs `npm run bench` for a bare GPU machine into bench/portable (git-ignored); run it there with bench/gpu.sh.
#  1. the shared webgpu-portable packer (Node, Dawn addon, Vulkan loader debs, run.sh);
#  2. main.mjs rebuilt with @huggingface/transformers aliased to a stub (bench/no-tokenizer.ts): the bench never
#     tokenises, and the real package's native modules (sharp, onnxruntime-node) cannot load from a bundle;
#  3. made small enough to travel: the device machine takes at most 64 MiB of working tree + carried folders, and
#     the tree alone is ~39 MiB with the shipped model. So Node and the Dawn addon are stripped of symbols and
#     xz -9e compressed (cached in $PACK_CACHE by checksum: this takes minutes), and main.mjs is xz-compressed
#     (gpu.sh unpacks it; to use run.sh directly, `xz -dk bench/portable/main.mjs.xz` first).
# The shipped model is not copied: gpu.sh points the bench at the repo's own public/models/facts-gpt/.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${PACK:-../shared/tools/webgpu-portable/pack.sh}
cache=${PACK_CACHE:-/tmp/mendlab-pack-cache}
out=bench/portable
mkdir -p "$cache"
"$PACK" bench/main.ts "$out"
node_modules/.bin/esbuild bench/main.ts --bundle --platform=node --format=esm --target=node20 --external:webgpu \
  --alias:@huggingface/transformers=./bench/no-tokenizer.ts \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
  --outfile="$out/main.mjs" --log-level=warning
xz -T2 -6 -f "$out/main.mjs"

shrink() { # shrink SRC DEST.xz: strip symbols, xz -9e, cached by the source's checksum
  local key; key=$(sha1sum "$1" | cut -c1-16)
  if [ ! -f "$cache/$key.xz" ]; then
    strip -o "$cache/$key.bin" "$1"
    xz -T2 -9e -c "$cache/$key.bin" > "$cache/$key.xz.part" && mv "$cache/$key.xz.part" "$cache/$key.xz"
    rm -f "$cache/$key.bin"
  fi
  cp "$cache/$key.xz" "$2"
}
shrink "$(readlink -f "$(command -v node)")" "$out/node.xz"
shrink node_modules/webgpu/dist/linux-x64/dawn.node "$out/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
# Unpacked copies left by a local run, and model copies from older versions of this script, must not travel.
rm -rf "$out/node" "$out/node_modules/webgpu/dist/linux-x64/dawn.node" "$out/public" "$out/tests"
du -sb "$out" | awk '{printf "bench/portable: %.1f MiB\n", $1 / 1048576}'
