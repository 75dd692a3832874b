import { describe, expect, it } from 'vitest';
import { answerFromContinuation, argmax, klDivergence, logSoftmax, nextTokenRow, rate, sameAnswer, sameTokens, teacherForced } from './metrics';

describe('metrics', () => {
  it('log-softmax sums to one and is shift invariant', () => {
    const a = logSoftmax([1, 2, 3]);
    expect(Array.from(a).reduce((s, v) => s + Math.exp(v), 0)).toBeCloseTo(1, 12);
    const b = logSoftmax([1001, 1002, 1003]);
    a.forEach((v, i) => expect(b[i]).toBeCloseTo(v, 9));
  });

  it('KL is zero for equal rows, positive otherwise, and asymmetric', () => {
    expect(klDivergence([0.3, 1, -2], [0.3, 1, -2])).toBe(0);
    // p = softmax([0, 0]) = (½, ½), q = softmax([log 3, 0]) = (¾, ¼): KL(p‖q) = ½ log(⅔) + ½ log 2
    const kl = klDivergence([0, 0], [Math.log(3), 0]);
    expect(kl).toBeCloseTo(0.5 * Math.log(2 / 3) + 0.5 * Math.log(2), 10);
    expect(klDivergence([Math.log(3), 0], [0, 0])).not.toBeCloseTo(kl, 6);
    expect(() => klDivergence([0], [0, 1])).toThrow();
  });

  it('teacher forcing reads the row before each target token', () => {
    const V = 3;
    // prompt of 2 tokens, target [2, 0]: rows 1 and 2 predict them; row 0 must be ignored
    const logits = new Float32Array([
      9, 0, 0, // row 0 (predicts prompt token 1: not part of the score)
      0, 0, 5, // row 1 → target[0] = 2, argmax ✓
      0, 4, 0, // row 2 → target[1] = 0, argmax is 1 ✗
    ]);
    const r = teacherForced(logits, 2, [2, 0], V);
    expect(r.exactMatch).toBe(false);
    expect(r.logprob).toBeCloseTo(logSoftmax([0, 0, 5])[2] + logSoftmax([0, 4, 0])[0], 6);
    expect(teacherForced(logits, 2, [2], V).exactMatch).toBe(true);
    expect(Array.from(nextTokenRow(logits, 2, V))).toEqual([0, 0, 5]);
  });

  it('argmax, sameTokens, rate', () => {
    expect(argmax([1, 5, 5, 2])).toBe(1);
    expect(sameTokens([1, 2], [1, 2])).toBe(true);
    expect(sameTokens([1, 2], [1, 2, 3])).toBe(false);
    expect(rate([])).toBeNull();
    expect(rate([true, false, true, true])).toBe(0.75);
  });

  it('the answer a continuation states stops at punctuation and keeps its leading space', () => {
    expect(answerFromContinuation(' Paris.\nNote')).toBe(' Paris');
    expect(answerFromContinuation(' Western Europe, and')).toBe(' Western Europe');
    expect(answerFromContinuation(' the Euro')).toBe(' the Euro');
    expect(answerFromContinuation('.\n')).toBe('');
  });

  it('a neighbour is unchanged when its stated answer is, whatever free text follows it', () => {
    const c = (text: string, ids: number[]) => ({ text, ids });
    expect(sameAnswer(c(' Tokyo.\nNote that', [1, 2, 3, 4]), c(' Tokyo.\nQuiz: The', [1, 2, 5, 6]))).toBe(true);
    expect(sameAnswer(c(' Madrid.\nNote', [7, 2, 3]), c(' Rome.\nQuiz', [8, 2, 5]))).toBe(false);
    expect(sameAnswer(c(' Tokyo.', [1, 2]), c(' Tokyo Bay.', [1, 9, 2]))).toBe(false); // a longer answer is another one
    expect(sameAnswer(c(' the Euro', [3, 4]), c(' the Euro', [3, 4]))).toBe(true); // cut by the token limit: whole text
    // no answer stated (starts with punctuation): token for token
    expect(sameAnswer(c('.\nNote', [2, 3]), c('.\nQuiz', [2, 5]))).toBe(false);
    expect(sameAnswer(c('.\nNote', [2, 3]), c('.\nNote', [2, 3]))).toBe(true);
  });
});
