import { describe, expect, it } from 'vitest';
import { activeWebGPUBackend, BIND_GROUP_DEPTH, BindGroupCache, cachedPipeline, gpuPlans, KeptPlans } from './webgpu';
import { kernelTestsOnWebGPU } from './testing';

// The bind-group cache of the fast paths: reuse only when the pipeline and every bound buffer range are the same.
// Its numerical consequences (nothing stale is ever bound) are tested where the fast paths use it:
// tests/model/fast-capture-webgpu.test.ts (after setWeight) and fast-editor-webgpu.test.ts (a kept plan, new rows).
describe('BindGroupCache on webgpu (Dawn)', () => {
  kernelTestsOnWebGPU();

  const CODE = `
@group(0) @binding(0) var<uniform> u : vec4<f32>;
@group(0) @binding(1) var<storage, read> A : array<f32>;
@group(0) @binding(2) var<storage, read_write> B : array<f32>;
@compute @workgroup_size(1) fn main() { B[0] = A[0] + u.x; }`;

  it('reuses a bind group only for the same pipeline and the same buffers, offsets and sizes', () => {
    const device = activeWebGPUBackend()!.device;
    const p1 = cachedPipeline(device, 'bind group cache test', 'one', () => CODE);
    const p2 = cachedPipeline(device, 'bind group cache test', 'two', () => `${CODE}\n// another pipeline`);
    const buffer = (usage: number) => device.createBuffer({ size: 512, usage });
    const uni = buffer(GPUBufferUsage.UNIFORM);
    const [a, b, c] = [0, 1, 2].map(() => buffer(GPUBufferUsage.STORAGE));
    const cache = new BindGroupCache();
    const bind = (p: GPUComputePipeline, offset: number, x: GPUBuffer, i = 0) => cache.get(device, i, p, [{ buffer: uni, offset, size: 16 }, { buffer: x }, { buffer: c }]);
    const created = gpuPlans.created;
    const g0 = bind(p1, 0, a);
    expect(bind(p1, 0, a)).toBe(g0);
    const g1 = bind(p1, 256, a); // another uniform slot
    expect(g1).not.toBe(g0);
    const g2 = bind(p1, 256, b); // another buffer
    expect(g2).not.toBe(g1);
    expect(bind(p2, 256, b)).not.toBe(g2); // another pipeline
    const other = bind(p1, 0, a, 1); // another dispatch index has its own entry
    expect(bind(p1, 0, a, 1)).toBe(other);
    expect(gpuPlans.created - created).toBe(5);
    // reuse off: always a new one
    gpuPlans.reuse = false;
    try {
      expect(bind(p1, 0, a, 1)).not.toBe(other);
    } finally {
      gpuPlans.reuse = true;
    }
    cache.clear();
    expect(bind(p1, 0, a, 1)).not.toBe(other);
    for (const x of [uni, a, b, c]) x.destroy();
  });

  it('keeps the last BIND_GROUP_DEPTH recordings of a dispatch: buffers that alternate between calls are reused', () => {
    expect(BIND_GROUP_DEPTH).toBe(2);
    const device = activeWebGPUBackend()!.device;
    const p = cachedPipeline(device, 'bind group cache test', 'one', () => CODE);
    const buffer = (usage: number) => device.createBuffer({ size: 512, usage });
    const uni = buffer(GPUBufferUsage.UNIFORM);
    const [a, b, x, c] = [0, 1, 2, 3].map(() => buffer(GPUBufferUsage.STORAGE));
    const cache = new BindGroupCache();
    const bind = (input: GPUBuffer) => cache.get(device, 0, p, [{ buffer: uni, offset: 0, size: 16 }, { buffer: input }, { buffer: c }]);
    const created = gpuPlans.created;
    // tfjs's pool hands two same-sized buffers back in alternating order: a, b, a, b, ...
    const ga = bind(a);
    const gb = bind(b);
    for (let i = 0; i < 3; i++) {
      expect(bind(a)).toBe(ga);
      expect(bind(b)).toBe(gb);
    }
    expect(gpuPlans.created - created).toBe(2);
    // A third buffer evicts the least recently used recording (a's), not b's.
    const gx = bind(x);
    expect(bind(b)).toBe(gb);
    expect(bind(x)).toBe(gx);
    expect(bind(a)).not.toBe(ga);
    expect(gpuPlans.created - created).toBe(4);
    for (const buf of [uni, a, b, x, c]) buf.destroy();
  });

  it('KeptPlans: one plan per key and device, the least recently used destroyed, none kept with reuse off', () => {
    const destroyed: string[] = [];
    const plans = new KeptPlans<{ name: string }>(2, (p) => destroyed.push(p.name));
    const [d1, d2] = [{}, {}] as unknown as GPUDevice[];
    let made = 0;
    const take = (device: GPUDevice, key: string) => plans.take(device, key, () => ({ name: `${key}#${made++}` }));
    const a = take(d1, 'a');
    expect(a.kept).toBe(true);
    expect(take(d1, 'a').plan).toBe(a.plan);
    expect(take(d2, 'a').plan, 'another device has its own').not.toBe(a.plan);
    const b = take(d1, 'b');
    take(d1, 'a'); // a is now the most recently used
    take(d1, 'c'); // so b goes
    expect(destroyed).toEqual([b.plan.name]);
    expect(plans.holds(d1, b.plan)).toBe(false);
    expect(plans.holds(d1, a.plan)).toBe(true);
    gpuPlans.reuse = false;
    try {
      const fresh = take(d1, 'a');
      expect(fresh.plan).not.toBe(a.plan);
      expect(fresh.kept).toBe(false);
      expect(plans.holds(d1, fresh.plan)).toBe(false);
    } finally {
      gpuPlans.reuse = true;
    }
    plans.release(d1, (p) => p.name.startsWith('a'));
    expect(destroyed).toEqual([b.plan.name, a.plan.name]);
    expect(take(d1, 'c').kept).toBe(true);
    expect(destroyed).toHaveLength(2);
  });
});
