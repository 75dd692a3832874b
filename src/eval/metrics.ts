// The numbers an edit is judged by, each with one exact definition (the page shows these same sentences next to
// the numbers, so what is measured and what is explained cannot drift apart). Pure functions on logits rows:
// the worker computes the rows, this file decides what they mean.
//
// Conventions (docs/formats.md): a scored continuation is tokenize(prompt) ++ tokenize(target); the logits row at
// position t predicts token t+1, so target token j is predicted by row promptLen − 1 + j.

export const METRIC_DEFINITIONS = {
  editSuccess:
    'Edit success: on the edit prompt, with teacher forcing, every token of the new target is the model’s single most ' +
    'likely token at its position after the edit (whole-target exact match, not a share of tokens).',
  paraphraseSuccess:
    'Paraphrase success: the share of paraphrases (other wordings of the same question) for which the same whole-target ' +
    'exact match holds after the edit.',
  neighbourhoodScore:
    'Neighbourhood score: the share of neighbour prompts (facts the edit must not touch) whose greedy continuation ' +
    'states the same answer after the edit as before it: the text up to its first sentence punctuation or line break. ' +
    'The free text a small model writes after the answer moves with any edit and does not count.',
  heldOutPerplexity:
    'Held-out perplexity: exp of the mean negative log-likelihood per token of text the model never trained on, with '+
    'the weights before and after the edit: a whole-model check that nothing else broke. For the shipped facts model '+
    'the text is held-out prose from its own corpus (facts.json), where a good edit moves it by a few percent at '+
    'most; it is not the prose the editor’s perplexity guards check, so it is an independent look at an edit they '+
    'let through; '+
    'otherwise a fixed English paragraph. An edit that multiplies it by more than the limit (×1.5) is flagged as one '+
    'that may have damaged the model. After earlier edits the change since the original model is shown too, and '+
    'flagged past the same limit: each edit is checked against the weights it started from, and small rises compound '+
    '(ten MEND edits in a row took the shipped model +33 %, twenty ×52).',
  kl:
    'KL: the Kullback–Leibler divergence KL(before ‖ after) = Σ p_before · log(p_before / p_after), in nats, between the ' +
    'next-token distributions right after the prompt, over the whole vocabulary. 0 means the edit left it untouched.',
  targetProbability:
    'Probability of an answer: the teacher-forced probability of all its tokens in turn (the product over its tokens), ' +
    'after the prompt.',
  originalAnswer:
    'Original answer: the fact the model stated before the edit — the object from the facts index when the prompt is ' +
    'recognised, otherwise the model’s own greedy continuation up to the first punctuation or line break.',
} as const;

/** The row of a flat [T·V] logits array. */
function row(logits: Float32Array, t: number, V: number): Float32Array {
  return logits.subarray(t * V, (t + 1) * V);
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** log-softmax of one logits row, computed stably in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

/** KL(p ‖ q) in nats from two logits rows (the order matters: p = before, q = after). */
export function klDivergence(logitsP: ArrayLike<number>, logitsQ: ArrayLike<number>): number {
  if (logitsP.length !== logitsQ.length) throw new Error('KL: the two distributions have different sizes');
  const lp = logSoftmax(logitsP);
  const lq = logSoftmax(logitsQ);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) {
    const p = Math.exp(lp[i]);
    if (p > 0) kl += p * (lp[i] - lq[i]);
  }
  return Math.max(0, kl); // rounding can leave a tiny negative for identical rows
}

export interface TeacherForced {
  /** Σ log p(target_j | prompt, target_<j) */
  logprob: number;
  /** every target token is the argmax at its position */
  exactMatch: boolean;
}

/** Scores `targetIds` from the logits of prompt ++ target ([T·V], T = promptLen + target length). */
export function teacherForced(logits: Float32Array, promptLen: number, targetIds: number[], V: number): TeacherForced {
  if (promptLen < 1) throw new Error('the prompt must have at least one token');
  if (logits.length < (promptLen + targetIds.length - 1) * V) throw new Error('logits do not cover the target');
  let logprob = 0;
  let exactMatch = true;
  targetIds.forEach((t, j) => {
    const r = row(logits, promptLen - 1 + j, V);
    logprob += logSoftmax(r)[t];
    if (argmax(r) !== t) exactMatch = false;
  });
  return { logprob, exactMatch };
}

/** The next-token logits right after the prompt (row promptLen − 1), copied out of a longer logits array. */
export function nextTokenRow(logits: Float32Array, promptLen: number, V: number): Float32Array {
  return row(logits, promptLen - 1, V).slice();
}

/** Token-for-token equality of two greedy continuations. */
export function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * The answer a greedy continuation states: its text up to the first sentence punctuation or line break, keeping the
 * leading space (targets start with one). " Paris.\nNote" → " Paris"; "" when nothing is left.
 */
export function answerFromContinuation(text: string): string {
  const cut = text.search(/[.,;:!?\n]/);
  const head = cut < 0 ? text : text.slice(0, cut);
  return head.trim() === '' ? '' : head.replace(/\s+$/, '');
}

/**
 * Whether a neighbour's answer survived an edit: the answers the two greedy continuations state
 * (answerFromContinuation) are equal. What a small model writes after the answer (" Tokyo.\nNote that" →
 * " Tokyo.\nQuiz: The") moves with any change of its weights, so comparing whole continuations would call almost
 * every neighbour changed; the held-out benchmark's NS compares the answer tokens only, too. A continuation that
 * states no answer (it starts with punctuation) is compared token for token.
 */
export function sameAnswer(before: Continuation, after: Continuation): boolean {
  const answer = answerFromContinuation(before.text);
  return answer === '' ? sameTokens(before.ids, after.ids) : answer === answerFromContinuation(after.text);
}

export interface Continuation { text: string; ids: readonly number[] }

/** Share of true values; null for an empty list (the page says "none checked" rather than 0 % or 100 %). */
export function rate(flags: readonly boolean[]): number | null {
  return flags.length === 0 ? null : flags.filter(Boolean).length / flags.length;
}
