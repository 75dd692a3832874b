// Sets up WebGPU in Node through Dawn (the npm package `webgpu`) so that tfjs-backend-webgpu can register.
// Order matters: `navigator.gpu` must exist *before* @tensorflow/tfjs-backend-webgpu is first imported,
// so this module only uses dynamic imports. On this CPU-only machine Dawn runs on SwiftShader (Vulkan),
// which needs VK_ICD_FILENAMES and LD_LIBRARY_PATH set before node starts (see package.json scripts).
import * as tf from '@tensorflow/tfjs';

let ready: Promise<boolean> | null = null;
let gpuRef: unknown = null; // keep Dawn's GPU object alive while tests run

/** True when Dawn can give us an adapter in this process (needs the SwiftShader env vars or a real GPU). */
export function nodeWebGPUAvailable(): Promise<boolean> {
  ready ??= (async () => {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create([]);
    const adapter = await gpu.requestAdapter();
    if (!adapter) return false;
    gpuRef = gpu;
    const nav = (globalThis as unknown as { navigator?: Record<string, unknown> }).navigator;
    if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
    await import('@tensorflow/tfjs-backend-webgpu');
    return true;
  })();
  return ready;
}

/** Switch tfjs to the WebGPU backend (Dawn). Throws with the reason when WebGPU cannot start here. */
export async function useNodeWebGPU(): Promise<void> {
  if (!(await nodeWebGPUAvailable())) {
    throw new Error('Dawn found no WebGPU adapter: run with VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json LD_LIBRARY_PATH=/usr/lib/chromium (apt-get install chromium)');
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs could not initialise the webgpu backend');
  await tf.ready();
}

export function releaseNodeWebGPU(): void {
  gpuRef = null;
}
