// Why a second MEND batch breaks the model (docs/eval.md "Sequential edits"). Not a speed benchmark: an experiment
// that prints what it finds, on the shipped model and the WASM backend:
//
//   npx tsx bench/experiments/second_batch.ts [--first G] [--second G]      (benchmark batch-of-10 groups, 0 and 1)
//
// It applies batch G1 as the app does, then edits G2's facts on top, each alone and in subsets, in plain MEND passes
// at the batch scale (no guard, no retry, so what the editor itself does is what is measured), and prints for each:
// its edit success, how many of G1's facts still hold, and the held-out perplexity (the benchmark's 64 paragraphs)
// against the original model. Every edit is reverted bit-exactly before the next.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { disposeChanges, MendEditor, revertChanges, type TokenizedFact } from '../../src/editors';
import { parseBenchmark } from '../../src/eval/benchmark';
import { proseNll } from '../../src/eval/benchmark_run';
import { initBackend, loadModel, localSource } from '../../src/model';

const MODEL = 'public/models/facts-gpt';
const { values } = parseArgs({ options: { first: { type: 'string' }, second: { type: 'string' } } });
const [g1, g2] = [Number(values.first ?? 0), Number(values.second ?? 1)];

await initBackend('wasm');
const { model } = await loadModel(localSource(MODEL));
const bench = parseBenchmark(JSON.parse(readFileSync(`${MODEL}/benchmark.json`, 'utf8')));
const groups = bench.groups['mend.batch10'];
const fact = (i: number): TokenizedFact => ({ promptIds: bench.edits[i].prompt_ids, targetIds: bench.edits[i].target_ids });
const holding = async (ix: number[]) => {
  let n = 0;
  for (const i of ix) n += (await model.targetIsArgmax(fact(i).promptIds, fact(i).targetIds)) ? 1 : 0;
  return n;
};
const nll0 = await proseNll(model, bench.prose_ids);
const ppl = async () => Math.exp((await proseNll(model, bench.prose_ids)) - nll0);
const fmt = (r: number) => (r < 2 ? `${r >= 1 ? '+' : ''}${((r - 1) * 100).toFixed(1)} %` : `×${r.toFixed(0)}`);

const appEditor = await MendEditor.load(localSource(MODEL), model);
const first = await appEditor.edit(model, groups[g1].map(fact));
console.log(`batch ${g1} as the app edits it: ${await holding(groups[g1])} of 10 facts hold, perplexity ${fmt(await ppl())}`);
// the same editor weights in plain passes: one MEND pass at lr_scale_batch for any number of facts
const config = JSON.parse(readFileSync(`${MODEL}/editor_config.json`, 'utf8'));
delete config.batch_retry;
delete config.first_pass_guard;
config.lr_scale = config.lr_scale_batch;
const plain = await MendEditor.fromFiles(config, readFileSync(`${MODEL}/editor.safetensors`), model);
const g = groups[g2];
const subsets = [...g.map((i) => [i]), g.slice(0, 5), g.slice(5), g];
console.log(`then facts of batch ${g2} on top, in one plain pass each (lr_scale ${config.lr_scale}):`);
console.log('facts | give their target | batch facts still holding | perplexity vs original');
for (const sub of subsets) {
  const r = await plain.edit(model, sub.map(fact));
  console.log(`${sub.join(',')} | ${await holding(sub)} of ${sub.length} | ${await holding(groups[g1])} of 10 | ${fmt(await ppl())}`);
  revertChanges(model, r.changes);
  disposeChanges(r.changes);
}
revertChanges(model, first.changes);
disposeChanges(first.changes);
plain.dispose();
appEditor.dispose();
model.dispose();
