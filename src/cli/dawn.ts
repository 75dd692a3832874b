// WebGPU for the Node CLI through Dawn (npm `webgpu`). navigator.gpu must exist before
// @tensorflow/tfjs-backend-webgpu is imported (initBackend imports it lazily, after this ran).
//
// On a machine without a GPU, Dawn can use Chromium's SwiftShader Vulkan driver, but the loader
// reads VK_ICD_FILENAMES / LD_LIBRARY_PATH only at process start. So when no adapter is found and
// that driver is installed, we re-run this same command once with those variables set.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const REEXEC_MARK = 'MENDLAB_DAWN_REEXEC';

let gpuRef: unknown = null; // Dawn's GPU object; the process stays alive while it is referenced

/**
 * Dawn options from MENDLAB_DAWN_FLAGS (comma-separated `key=value` items; toggles joined with `+`), e.g.
 * `backend=null` (no GPU work at all: measures the JavaScript and Dawn cost of dispatching) or
 * `disable-dawn-features=timestamp_quantization` (exact GPU timestamps; the bench sets this itself).
 */
export function dawnFlags(extra: string[] = []): string[] {
  const env = (process.env.MENDLAB_DAWN_FLAGS ?? '').split(',').map((s) => s.trim().replace(/\+/g, ',')).filter(Boolean);
  return [...extra, ...env];
}

/** Installs Dawn's navigator.gpu and returns true if it offers an adapter. */
export async function installDawn(extraFlags: string[] = []): Promise<boolean> {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  const gpu = create(dawnFlags(extraFlags));
  if (!(await gpu.requestAdapter())) return false;
  gpuRef = gpu;
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
  return true;
}

/** Whether a system Vulkan loader exists (then a real GPU may be there, so Dawn is tried as is first). */
export function systemHasVulkan(): boolean {
  return ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib']
    .some((d) => existsSync(`${d}/libvulkan.so.1`));
}

/** True when the SwiftShader re-run is possible and not yet done. */
export function canRerunWithSwiftShader(): boolean {
  return !process.env[REEXEC_MARK] && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD);
}

/**
 * If Dawn found no adapter but SwiftShader is installed and the env is not set yet, re-runs the
 * command with the env and returns its exit code; returns null when a re-run is not possible.
 */
export function rerunWithSwiftShader(): number | null {
  if (!canRerunWithSwiftShader()) return null;
  const env = {
    ...process.env,
    [REEXEC_MARK]: '1',
    VK_ICD_FILENAMES: SWIFTSHADER_ICD,
    LD_LIBRARY_PATH: ['/usr/lib/chromium', process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
  };
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { env, stdio: 'inherit' });
  return r.status ?? 1;
}

/** Drops the Dawn reference so the process can exit. */
export function releaseDawn(): void {
  gpuRef = null;
  void gpuRef;
}
