#!/usr/bin/env bash
# Packs `npm run bench` for a bare GPU machine into bench/portable (git-ignored); run it there with bench/gpu.sh.
#  1. the shared webgpu-portable packer (Node, Dawn addon, Vulkan loader debs, run.sh);
#  2. main.mjs rebuilt with @huggingface/transformers aliased to a stub (bench/no-tokenizer.ts): the bench never
#     tokenises, and the real package's native modules (sharp, onnxruntime-node) cannot load from a bundle;
#  3. made small enough to travel: the device machine takes at most 64 MiB of working tree + carried folders, and
#     the tree alone is ~40 MB with the shipped model. So Node and the Dawn addon are stripped of symbols and
#     xz-compressed with the x86 filter (cached in $PACK_CACHE by checksum: this takes minutes), and main.mjs is xz-compressed
#     (gpu.sh unpacks it; to use run.sh directly, `xz -dk bench/portable/main.mjs.xz` first).
# The shipped model is not copied: gpu.sh points the bench at the repo's own public/models/facts-gpt/.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${PACK:-../shared/tools/webgpu-portable/pack.sh}
cache=${PACK_CACHE:-/tmp/mendlab-pack-cache}
out=bench/portable
mkdir -p "$cache"
"$PACK" bench/main.ts "$out"
# @tensorflow/tfjs and node-fetch are aliased too, to what the bench uses of them (bench/tfjs-core-only.ts,
# bench/fetch-global.cjs): 0.53 MB → 0.32 MB compressed, which is what keeps the call under 64 MiB. ES modules first
# (--main-fields): the shim's deep imports of tfjs-core are ES modules, and its CommonJS bundle would be a second
# copy of tfjs-core without them (a Tensor without its op handler).
node_modules/.bin/esbuild bench/main.ts --bundle --platform=node --format=esm --target=node20 --external:webgpu \
  --alias:@huggingface/transformers=./bench/no-tokenizer.ts --alias:@tensorflow/tfjs=./bench/tfjs-core-only.ts \
  --alias:node-fetch=./bench/fetch-global.cjs --main-fields=module,main \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
  --outfile="$out/main.mjs" --log-level=warning
xz -T1 -9e -f "$out/main.mjs"

# xz with the x86 branch filter (BCJ: call/jump targets made relative, so repeated calls compress) and a window
# larger than the stripped Node (86 MB): 0.76 MB smaller than plain -9e for Node, which matters next to the
# 64 MiB limit. Decompression needs nothing special (xz -d reads the filter chain from the file).
XZ_OPTS="--x86 --lzma2=preset=9e,dict=128MiB"
shrink() { # shrink SRC DEST.xz: strip symbols, xz (XZ_OPTS), cached by the source's checksum and the options
  local key; key=$(sha1sum "$1" | cut -c1-16)-$(echo "$XZ_OPTS" | sha1sum | cut -c1-6)
  if [ ! -f "$cache/$key.xz" ]; then
    strip -o "$cache/$key.bin" "$1"
    # shellcheck disable=SC2086
    xz -T1 $XZ_OPTS -c "$cache/$key.bin" > "$cache/$key.xz.part" && mv "$cache/$key.xz.part" "$cache/$key.xz"
    rm -f "$cache/$key.bin"
  fi
  cp "$cache/$key.xz" "$2"
}
shrink "$(readlink -f "$(command -v node)")" "$out/node.xz"
shrink node_modules/webgpu/dist/linux-x64/dawn.node "$out/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
# Unpacked copies left by a local run, and model copies from older versions of this script, must not travel.
rm -rf "$out/node" "$out/node_modules/webgpu/dist/linux-x64/dawn.node" "$out/public" "$out/tests"
du -sb "$out" | awk '{printf "bench/portable: %.1f MiB\n", $1 / 1048576}'
# The tree + this folder must fit the device machine's transfer limit (fails when under 128 KiB are left).
bash bench/carry_size.sh
