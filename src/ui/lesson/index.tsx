// A guided lesson for the classroom: the latest MEND edit walked through step by step with its actual numbers:
// the edit loss, its gradient as a sum of per-token rank-1 pieces, what the editor network does to each piece,
// the learned step, and the resulting update. Reads the same report as the weights panel.
import { useState, type ReactNode } from 'react';
import type { WeightsReport, WeightUpdateReport } from '../../worker/weights-protocol';
import { visibleToken } from '../format';
import { percent, sci, shortWeightName } from '../weights/numbers';
import { HalvedNote, RetryNote } from '../weights';
import { mostChangedWeight, useWeightsReport } from '../weights/use-report';
import '../weights/weights.css';

const STEPS = ['The edit loss', 'The gradient: one rank-1 piece per token', 'What the editor does to each piece', 'The learned step', 'The resulting update'];

export interface LessonProps {
  /** changes whenever the applied edits change; the lesson follows the latest MEND edit */
  historyKey?: string | null;
}

export function Lesson({ historyKey }: LessonProps) {
  const { phase, report, error } = useWeightsReport(historyKey);
  const [step, setStep] = useState(0);
  const [chosen, setChosen] = useState<number | null>(null);
  return (
    <section className="panel" aria-labelledby="lesson-heading" data-testid="lesson">
      <h2 id="lesson-heading">Lesson: one edit, step by step</h2>
      {phase === 'error' && <p className="error" role="alert">Could not prepare the lesson: {error}</p>}
      {!report ? (
        <p className="muted" role="status">{phase === 'running' ? 'Preparing the lesson…' : 'Apply a MEND edit to walk through it here, with its own numbers.'}</p>
      ) : (
        <>
          <ol className="lesson-progress" aria-label="Lesson steps">
            {STEPS.map((s, i) => (
              <li key={s} aria-current={i === step ? 'step' : undefined}>
                <span className="visually-hidden">{`Step ${i + 1}: ${s}`}</span>
                <span aria-hidden="true">{i + 1}</span>
              </li>
            ))}
          </ol>
          {report.weights.length > 1 && step > 0 && (
            <div className="row">
              <label htmlFor="lesson-weight">Weight followed</label>
              <select id="lesson-weight" className="wt-select" value={weightIndex(report, chosen)} onChange={(e) => setChosen(Number(e.target.value))}>
                {report.weights.map((w, i) => <option key={w.name} value={i}>{shortWeightName(w.name)}</option>)}
              </select>
            </div>
          )}
          <div className="lesson-step" data-testid="lesson-step" data-step={step + 1} aria-live="polite">
            <h3>Step {step + 1} of {STEPS.length}: {STEPS[step]}</h3>
            <StepBody step={step} report={report} w={report.weights[weightIndex(report, chosen)]} />
          </div>
          <nav className="lesson-nav" aria-label="Lesson navigation">
            <button type="button" className="secondary" onClick={() => setStep(step - 1)} disabled={step === 0} data-testid="lesson-prev">
              ← Previous step
            </button>
            <span className="muted small">Step {step + 1} of {STEPS.length}</span>
            <button type="button" className="primary" onClick={() => setStep(step + 1)} disabled={step === STEPS.length - 1} data-testid="lesson-next">
              Next step →
            </button>
          </nav>
        </>
      )}
    </section>
  );
}

function weightIndex(report: WeightsReport, chosen: number | null): number {
  return chosen !== null && chosen < report.weights.length ? chosen : mostChangedWeight(report.weights);
}

const Num = ({ children, testId }: { children: ReactNode; testId?: string }) => (
  <span className="lesson-number" data-testid={testId}>{children}</span>
);

function StepBody({ step, report, w }: { step: number; report: WeightsReport; w: WeightUpdateReport }) {
  const n = report.tokens.length;
  const name = shortWeightName(w.name);
  const kept = w.rows.filter((r) => r.kept).length;
  switch (step) {
    case 0: {
      const targets = report.tokens.filter((t) => t.role === 'target').length;
      return (
        <>
          <p>
            The edit asks the model to continue {report.facts.map((f, i) => (
              <span key={i}>{i > 0 && ' and '}“{f.prompt}” with “<strong>{f.target.trim()}</strong>”</span>
            ))}. Prompt and target are tokenised separately and joined: {n} tokens, {targets} of them the target.
          </p>
          <p className="lesson-tokens" aria-label="The tokens">
            {report.tokens.map((t, i) => (
              <span key={i} className={t.role === 'target' ? 'lesson-chip lesson-target' : 'lesson-chip'}>{visibleToken(t.text)}</span>
            ))}
          </p>
          {report.targetProbBefore !== null && (
            <p>Before the edit, the model gives the whole target probability <Num testId="lesson-prob">{percent(report.targetProbBefore)}</Num>.</p>
          )}
          <p>
            The <em>edit loss</em> is the mean negative log-likelihood of the target tokens on the unedited model:
            {' '}ℓ = <Num testId="lesson-loss">{sci(report.loss)}</Num> nats. MEND never minimises it by gradient
            descent; it only looks at its gradient once, as the next steps show.
          </p>
        </>
      );
    }
    case 1:
      return (
        <>
          <p>
            Every edited weight is a linear layer z = x·W (here {name}, {w.shape[0]}×{w.shape[1]}). Its gradient is a
            sum over tokens: <span className="wt-formula">∇W ℓ = Σᵢ xᵢᵀ δᵢ</span> where xᵢ is the layer’s input at token i
            and δᵢ = ∂ℓ/∂zᵢ. Each term is a rank-1 matrix, so ∇W has rank at most {n}; here it is
            {' '}<Num testId="lesson-grad-rank">{w.gradient.rank}</Num>, and ‖∇W‖ = <Num testId="lesson-grad-norm">{sci(w.gradient.norm)}</Num>.
          </p>
          <GradientNote report={report} w={w} kept={kept} />
          <RowTable report={report} w={w} caption={`Per-token pieces of the gradient of ${name}`} columns={['‖xᵢ‖', '‖δᵢ‖', '‖xᵢᵀδᵢ‖']}
            cells={(r) => [sci(r.xNorm), sci(r.deltaNorm), sci(r.gradientPieceNorm)]} />
        </>
      );
    case 2:
      return (
        <>
          <p>
            MEND does not use the pieces as they are. Its editor network reads each token’s pair (xᵢ, δᵢ), normalises
            it with statistics gathered during training, passes it through two low-rank residual layers (shared
            editor {w.editorKey}, rank {w.editorRank}, with this weight’s own scale and shift, mode {w.mode}) and returns
            a new pair (x̃ᵢ, δ̃ᵢ). The tokens are transformed one by one, never mixed.
          </p>
          <p>
            A cosine of 1 means the editor kept the direction and only rescaled it; lower values mean it turned the
            vector. The editor learned these turns in training, where it was rewarded when edits carried over to
            paraphrases and left unrelated facts alone.
          </p>
          <RowTable report={report} w={w} caption={`What the editor did to each token row of ${name}`}
            columns={['‖xᵢ‖ → ‖x̃ᵢ‖', 'cos(xᵢ, x̃ᵢ)', '‖δᵢ‖ → ‖δ̃ᵢ‖', 'cos(δᵢ, δ̃ᵢ)']}
            cells={(r) => [`${sci(r.xNorm)} → ${sci(r.xTildeNorm)}`, r.xCos.toFixed(3), `${sci(r.deltaNorm)} → ${sci(r.deltaTildeNorm)}`, r.deltaCos.toFixed(3)]} />
        </>
      );
    case 3:
      return (
        <>
          <p>
            The new pieces are added up, ΔW = Σᵢ x̃ᵢᵀδ̃ᵢ, and scaled by a step learned per weight:
            {' '}<span className="wt-formula">step = sign · lr_scale · edit_lr</span>. For {name}:
            {' '}step = ({report.sign}) · {sci(report.lrScale)} · {sci(w.editLr)} = <Num testId="lesson-step-size">{sci(w.step)}</Num>.
          </p>
          {report.stepHalvings > 0 && <HalvedNote halvings={report.stepHalvings} lrScale={report.lrScale} guard={report.guard} />}
          <div className="wt-scroll" role="region" aria-label="The learned step of every edited weight" tabIndex={0}>
            <table className="wt-table">
              <caption>The learned step of every edited weight</caption>
              <thead><tr><th scope="col">Weight</th><th scope="col">edit_lr</th><th scope="col">step</th><th scope="col">‖ΔW‖</th></tr></thead>
              <tbody>
                {report.weights.map((x) => (
                  <tr key={x.name}><th scope="row">{shortWeightName(x.name)}</th><td>{sci(x.editLr)}</td><td>{sci(x.step)}</td><td>{sci(x.deltaWNorm)}</td></tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      );
    default:
      return (
        <>
          <p>
            The weight becomes <span className="wt-formula">W′ = W + step · ΔW</span>. For {name} the update has norm
            {' '}<Num testId="lesson-update-norm">{sci(w.updateNorm)}</Num>, {percent(w.relativeUpdate)} of ‖W‖ = {sci(w.weightNorm)}
            {' '}(measured on the installed weights: ‖W′ − W‖ = {sci(w.measuredUpdateNorm)}).
          </p>
          {report.passes > 1 && <RetryNote passes={report.passes} />}
          <p>
            It has rank <Num testId="lesson-update-rank">{w.rank}</Num> (at most {n}, one per token); its largest singular values are
            {' '}{w.singularValues.slice(0, 3).map((s) => sci(s)).join(', ')}.
          </p>
          <p>
            Plain gradient descent would move W along −∇W. The cosine between MEND’s update and −∇W is
            {' '}<Num testId="lesson-cosine">{w.cosineWithDescent.toFixed(3)}</Num>:
            {' '}{w.cosineWithDescent > 0.9 ? 'almost the same direction — here the editor mostly chose the step size.'
              : w.cosineWithDescent > 0.2 ? 'related but clearly turned: the editor reshaped the gradient, not only rescaled it.'
              : w.cosineWithDescent > -0.2 ? 'nearly unrelated: the editor built a different update from the same pieces.'
              : 'pointing partly against the gradient (the editor learned its own convention for the sign).'}
          </p>
        </>
      );
  }
}

/** Which tokens carry the gradient, read off this edit's own rows. */
function GradientNote({ report, w, kept }: { report: WeightsReport; w: WeightUpdateReport; kept: number }) {
  const n = report.tokens.length;
  let top = 0;
  w.rows.forEach((r, i) => {
    if (r.gradientPieceNorm > w.rows[top].gradientPieceNorm) top = i;
  });
  const total = w.rows.reduce((s, r) => s + r.gradientPieceNorm, 0);
  return (
    <p>
      The loss scores the target tokens, each predicted at the position <em>before</em> it, so the biggest piece here
      comes from “{visibleToken(report.tokens[top].text)}” ({percent(total > 0 ? w.rows[top].gradientPieceNorm / total : 0)} of the
      summed piece sizes). Other positions get δ ≠ 0 only through attention: later tokens read them.{' '}
      {kept < n
        ? `${n - kept} of ${n} rows have an all-zero x or δ (e.g. the last token, which predicts nothing the loss scores) and are dropped.`
        : 'No row is all zero, so all take part.'}
      {w.gradient.rank < kept && ` The ${kept} kept pieces span only ${w.gradient.rank} independent direction(s).`}
    </p>
  );
}

function RowTable({ report, w, caption, columns, cells }: {
  report: WeightsReport; w: WeightUpdateReport; caption: string; columns: string[];
  cells: (r: WeightUpdateReport['rows'][number]) => string[];
}) {
  return (
    <div className="wt-scroll" role="region" aria-label={caption} tabIndex={0}>
      <table className="wt-table" data-testid="lesson-table">
        <caption>{caption}</caption>
        <thead>
          <tr><th scope="col">Token</th><th scope="col">Part</th>{columns.map((c) => <th key={c} scope="col">{c}</th>)}</tr>
        </thead>
        <tbody>
          {w.rows.map((r, i) => (
            <tr key={i} className={r.kept ? undefined : 'wt-dropped'}>
              <th scope="row" className="wt-token">{visibleToken(report.tokens[i].text)}</th>
              <td>{r.kept ? report.tokens[i].role : `${report.tokens[i].role}, dropped`}</td>
              {cells(r).map((c, k) => <td key={k}>{c}</td>)}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
