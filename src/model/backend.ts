// Choosing the tfjs backend. 'webgpu' when navigator.gpu yields an adapter, else 'wasm'; 'cpu' is the
// pure-JS reference (Node tests, debugging). The webgpu package is imported lazily because it only
// registers itself if navigator.gpu exists when the module is evaluated (tfjs-webgpu.md §2): in Node
// the caller installs Dawn's navigator.gpu first, then asks for 'webgpu'.

import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'webgpu' | 'wasm' | 'cpu';
export type BackendChoice = BackendName | 'auto';

let wasmPathsSet = false;

/**
 * Where the tfjs WASM binaries are served from: a URL prefix ending in '/' (containing
 * tfjs-backend-wasm.wasm, -simd.wasm, -threaded-simd.wasm) or a file map. Call before initBackend.
 */
export function setWasmPath(prefixOrFileMap: string | { 'tfjs-backend-wasm.wasm'?: string; 'tfjs-backend-wasm-simd.wasm'?: string; 'tfjs-backend-wasm-threaded-simd.wasm'?: string }): void {
  setWasmPaths(prefixOrFileMap);
  wasmPathsSet = true;
}

/** Whether setWasmPath was called (the browser needs it; Node finds the files in node_modules). */
export function wasmPathConfigured(): boolean {
  return wasmPathsSet;
}

/** True when this environment offers a WebGPU adapter (a real one or Dawn in Node). */
export async function webgpuAvailable(): Promise<boolean> {
  const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } }).navigator?.gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) != null;
  } catch {
    return false;
  }
}

async function activate(name: BackendName): Promise<void> {
  if (name === 'webgpu') {
    if (!(await webgpuAvailable())) throw new Error('WebGPU is not available here (no navigator.gpu adapter)');
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!tf.findBackendFactory('webgpu')) {
      throw new Error('the tfjs webgpu backend did not register (navigator.gpu appeared after it was imported)');
    }
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tfjs could not initialise the ${name} backend`);
  await tf.ready();
  if (name === 'webgpu') {
    // Small ops would otherwise run on the CPU and leave tensors without GPU buffers (pitfall 2);
    // keeping everything on the GPU avoids surprise uploads and keeps interop code simple.
    tf.env().set('WEBGPU_CPU_FORWARD', false);
  }
}

/**
 * Activates a backend and returns its name. 'auto' tries webgpu, then wasm, then cpu, so the
 * app always gets a working engine; an explicit choice fails loudly instead of falling back.
 */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendName> {
  if (choice !== 'auto') {
    await activate(choice);
    return choice;
  }
  for (const name of ['webgpu', 'wasm', 'cpu'] as const) {
    try {
      await activate(name);
      return name;
    } catch {
      // try the next one
    }
  }
  throw new Error('no tfjs backend could be initialised (tried webgpu, wasm, cpu)');
}

/** The backend tfjs is using now. */
export function activeBackend(): BackendName {
  return tf.getBackend() as BackendName;
}
