// Stands in for @tensorflow/tfjs in the packed (portable) bench: tfjs-core with its gradients and chained ops, and
// the cpu backend, which is all the engine uses (the webgpu and wasm backends are imported by name where needed).
// The union package adds tfjs-layers, -converter, -data and -backend-webgl, which nothing here touches, and they
// cost ~0.3 MB of the compressed bundle: the device machine takes at most 64 MiB of working tree plus bench/portable,
// and bench/carry_size.sh wants 128 KiB to spare. bench/pack.sh aliases the package to this file.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-backend-cpu';
