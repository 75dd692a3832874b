// Asks Dawn (the packed npm `webgpu` addon) for an adapter and says what it got, for bench/gpu.sh to choose the
// Vulkan environment before the real run: `node gpu_probe.mjs PORTABLE_DIR`. Plain JavaScript, because it runs
// with the packed Node and nothing else.
// Exit 0: a hardware adapter; 3: only a software one (SwiftShader, llvmpipe); 2: none; 1: Dawn failed to load.
import { createRequire } from 'node:module';

const dir = process.argv[2];
if (!dir) {
  console.log('usage: node gpu_probe.mjs PORTABLE_DIR');
  process.exit(1);
}
let gpu;
try {
  const { create, globals } = createRequire(`${dir}/main.mjs`)('webgpu');
  Object.assign(globalThis, globals);
  gpu = create([]);
} catch (e) {
  console.log(`Dawn did not load: ${e.message}`);
  process.exit(1);
}
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
if (!adapter) {
  console.log('no adapter');
  process.exit(2);
}
const info = adapter.info ?? {};
const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ');
const software = /swiftshader|llvmpipe|lavapipe|software/i.test(name) || adapter.isFallbackAdapter === true;
console.log(`adapter: ${name}${software ? ' [software]' : ''}; timestamp-query: ${adapter.features.has('timestamp-query')}; ` +
  `maxStorageBufferBindingSize ${adapter.limits.maxStorageBufferBindingSize}`);
process.exit(software ? 3 : 0);
