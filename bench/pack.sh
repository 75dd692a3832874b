#!/usr/bin/env bash
# Packs `npm run bench` for a bare GPU machine into bench/portable (git-ignored): bash bench/portable/run.sh [args].
# Uses the shared webgpu-portable packer, then rebuilds main.mjs with @huggingface/transformers aliased to a stub
# (bench/no-tokenizer.ts): the bench never tokenises, and the real package's native modules cannot load from a
# bundle. Copies the shipped model (public/models/facts-gpt, else the tests/fixtures/mend-tiny fixture) along,
# weights and editor only, so `--shapes shipped` works there too. Run from anywhere; needs node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${PACK:-../shared/tools/webgpu-portable/pack.sh}
out=bench/portable
"$PACK" bench/main.ts "$out"
node_modules/.bin/esbuild bench/main.ts --bundle --platform=node --format=esm --target=node20 --external:webgpu \
  --alias:@huggingface/transformers=./bench/no-tokenizer.ts \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
  --outfile="$out/main.mjs" --log-level=warning
rm -rf "$out/public" "$out/tests"
for d in public/models/facts-gpt tests/fixtures/mend-tiny; do
  if [ -f "$d/model.safetensors" ] && [ -f "$d/editor.safetensors" ]; then
    mkdir -p "$out/$d"
    cp "$d/config.json" "$d/model.safetensors" "$d/editor_config.json" "$d/editor.safetensors" "$out/$d/"
    break
  fi
done
du -sh "$out" | awk '{print "bench/portable: " $1 " (carry limit 64 MiB)"}'
