// --backend for the CLI: the engine's initBackend, plus Dawn when WebGPU is asked for in Node.

import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../model';
import { canRerunWithSwiftShader, installDawn, rerunWithSwiftShader, systemHasVulkan } from './dawn';

/**
 * Activates the backend; returns {rerunExit} when the command had to be re-run for SwiftShader. `dawnFlags` go to
 * Dawn's create() before MENDLAB_DAWN_FLAGS (the bench asks for unquantized GPU timestamps this way).
 */
export async function setupCliBackend(name: BackendName, opts: { dawnFlags?: string[] } = {}): Promise<{ backend: BackendName } | { rerunExit: number }> {
  tf.env().set('PROD', true); // no "install tfjs-node" banner or debug checks on a CLI
  // Without a system Vulkan loader, trying Dawn first only prints a loader warning: go straight to SwiftShader.
  const rerunFirst = name === 'webgpu' && !systemHasVulkan() && canRerunWithSwiftShader();
  if (name === 'webgpu' && (rerunFirst || !(await installDawn(opts.dawnFlags)))) {
    const code = rerunWithSwiftShader();
    if (code !== null) return { rerunExit: code };
    throw new Error('WebGPU: Dawn found no adapter (no GPU, and no /usr/lib/chromium SwiftShader driver)');
  }
  return { backend: await initBackend(name) };
}
