// A plain copy kernel: the memory-bandwidth yardstick for the fused update kernel on the same adapter.
//
// Each invocation moves one vec4<f32> (16 bytes read, 16 written), fully coalesced, no arithmetic: about the
// best a WGSL kernel can do for streaming memory. It runs through tfjs's runWebGPUProgram exactly like our MEND
// kernels, so both pay the same dispatch path and their bandwidths are comparable.
import * as tf from '@tensorflow/tfjs';
import { activeWebGPUBackend, runProgram, type WebGPUProgram } from '../src/kernels/webgpu';

const WORKGROUP = 256;

class CopyProgram implements WebGPUProgram {
  outputShape: number[];
  variableNames = ['A'];
  shaderKey = `benchCopyVec4_${WORKGROUP}`;
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  outputComponent = 4;
  variableComponents = [4];
  size = true; // uniforms.size = number of vec4s

  constructor(n: number) {
    this.outputShape = [n];
    const groups = Math.ceil(n / 4 / WORKGROUP);
    this.dispatch = [groups, 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) { result[index] = A[index]; }
      }
    `;
  }
}

/** A copy of a 1-D float32 tensor whose length is a multiple of 4, by the vec4 copy kernel (webgpu only). */
export function copyKernel(a: tf.Tensor1D): tf.Tensor1D {
  const backend = activeWebGPUBackend();
  if (!backend) throw new Error('copyKernel needs the webgpu backend');
  if (a.dtype !== 'float32' || a.rank !== 1 || a.size % 4 !== 0) throw new Error(`copyKernel: needs float32 [4k], got ${a.dtype} [${a.shape}]`);
  return runProgram(backend, new CopyProgram(a.size), [a]) as tf.Tensor1D;
}
