// A checksum of a model's weights over their exact bits, to prove that revert restores them bit for bit
// (a float comparison with a tolerance could not tell a true restore from "W + c·ΔW − c·ΔW").
import type { GPT2 } from '../model';

/** FNV-1a-style hash (32-bit, one step per 32-bit word) over the raw float32 bits of the named weights (all weights by default), in name order. */
export async function weightsChecksum(model: GPT2, names: readonly string[] = model.weightNames()): Promise<string> {
  let h = 0x811c9dc5;
  for (const name of [...names].sort()) {
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
    const bits = new Uint32Array((await model.readWeight(name)).slice().buffer);
    for (let i = 0; i < bits.length; i++) h = Math.imul(h ^ bits[i], 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
