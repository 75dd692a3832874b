// What the edit did: the summary (efficacy never without generalisation and locality next to it), the Before and
// After panels for the edit prompt, and the paraphrase and neighbour checks. With "both methods" every part shows
// the two methods side by side.
import type { ReactNode } from 'react';
import { METRIC_DEFINITIONS } from '../../eval/metrics';
import { useEdit } from '../../store/edit-store';
import type { EditReport, MethodEval, ProbeState } from '../../worker/protocol';

const METHOD_NAME = { mend: 'MEND', ft: 'Fine-tuning' } as const;

export function pct(p: number | null): string {
  if (p === null || Number.isNaN(p)) return '—';
  if (p >= 0.9995) return '100%';
  if (p < 0.0005) return p === 0 ? '0%' : '<0.1%';
  return `${(100 * p).toFixed(p < 0.1 ? 1 : 0)}%`;
}

function Definition({ children, text }: { children: ReactNode; text: string }) {
  return (
    <details className="definition">
      <summary>{children}</summary>
      <p>{text}</p>
    </details>
  );
}

function Bar({ label, p, kind }: { label: string; p: number; kind: 'new' | 'old' }) {
  const width = Number.isFinite(p) ? Math.max(0, Math.min(1, p)) * 100 : 0;
  return (
    <div className="prob-row" role="img" aria-label={`${label}: ${pct(p)}`}>
      <span className="prob-label">{label}</span>
      <span className="prob-track"><span className={`prob-bar ${kind}`} style={{ width: `${width}%` }} /></span>
      <span className="prob-value">{pct(p)}</span>
    </div>
  );
}

function ProbePanel({ title, state, report, testId }: { title: string; state: ProbeState; report: EditReport; testId: string }) {
  return (
    <div className="probe" data-testid={testId}>
      <h4>{title}</h4>
      <p className="continuation"><span className="prompt-echo">{report.request.prompt}</span><strong data-testid={`${testId}-text`}>{state.text}</strong></p>
      <Bar label={`P(new “${report.request.target.trim()}”)`} p={state.targetProb} kind="new" />
      {report.originalAnswer && <Bar label={`P(original “${report.originalAnswer.trim()}”)`} p={state.originalProb} kind="old" />}
    </div>
  );
}

function Summary({ r }: { r: MethodEval }) {
  const s = r.summary;
  return (
    <dl className="summary" data-testid={`summary-${r.method}`}>
      <div data-testid="summary-edit" data-ok={s.editSuccess}>
        <dt><Definition text={METRIC_DEFINITIONS.editSuccess}>Edit success</Definition></dt>
        <dd className={s.editSuccess ? 'ok' : 'bad'}>{s.editSuccess ? 'yes' : 'no'}</dd>
      </div>
      <div data-testid="summary-paraphrase">
        <dt><Definition text={METRIC_DEFINITIONS.paraphraseSuccess}>Paraphrase success</Definition></dt>
        <dd>{s.paraphraseSuccess === null ? 'none checked' : `${pct(s.paraphraseSuccess)} of ${r.paraphrases.length}`}</dd>
      </div>
      <div data-testid="summary-neighbourhood">
        <dt><Definition text={METRIC_DEFINITIONS.neighbourhoodScore}>Neighbourhood score</Definition></dt>
        <dd>{s.neighbourhoodScore === null ? 'none checked' : `${pct(s.neighbourhoodScore)} of ${r.neighbours.length} unchanged`}</dd>
      </div>
      <div>
        <dt><Definition text={METRIC_DEFINITIONS.kl}>Mean neighbour KL</Definition></dt>
        <dd>{s.meanKl === null ? '—' : `${s.meanKl.toFixed(4)} nats`}</dd>
      </div>
      <div>
        <dt>Time</dt>
        <dd>{(r.timingsMs.total / 1000).toFixed(2)} s</dd>
      </div>
    </dl>
  );
}

function MethodResult({ r, report }: { r: MethodEval; report: EditReport }) {
  return (
    <div className="method-result" data-testid={`result-${r.method}`}>
      <h3>{METHOD_NAME[r.method]}</h3>
      <Summary r={r} />
      <div className="before-after">
        <section aria-label={`Before (${METHOD_NAME[r.method]})`}><ProbePanel title="Before" state={r.edit.before} report={report} testId="before" /></section>
        <section aria-label={`After (${METHOD_NAME[r.method]})`}><ProbePanel title="After" state={r.edit.after} report={report} testId="after" /></section>
      </div>

      <h4>Paraphrases</h4>
      {r.paraphrases.length === 0 ? <p className="muted">None checked.</p> : (
        <div className="table-wrap">
          <table data-testid="paraphrase-results">
            <caption className="visually-hidden">Paraphrases before and after the edit</caption>
            <thead><tr><th scope="col">Prompt</th><th scope="col">Before</th><th scope="col">After</th><th scope="col">P(new target)</th><th scope="col">Success</th></tr></thead>
            <tbody>
              {r.paraphrases.map((p) => (
                <tr key={p.prompt} data-testid="paraphrase-row" data-success={p.success}>
                  <th scope="row">{p.prompt}</th>
                  <td>{p.before.text}</td>
                  <td>{p.after.text}</td>
                  <td>{pct(p.before.targetProb)} → {pct(p.after.targetProb)}</td>
                  <td className={p.success ? 'ok' : 'bad'}>{p.success ? '✓ success' : '✗ not the argmax'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h4>Neighbours</h4>
      {r.neighbours.length === 0 ? <p className="muted">None checked.</p> : (
        <div className="table-wrap">
          <table data-testid="neighbour-results">
            <caption className="visually-hidden">Neighbours before and after the edit</caption>
            <thead><tr><th scope="col">Prompt</th><th scope="col">Before</th><th scope="col">After</th><th scope="col">KL (nats)</th><th scope="col">Unchanged</th></tr></thead>
            <tbody>
              {r.neighbours.map((n) => (
                <tr key={n.prompt} data-testid="neighbour-row" data-unchanged={n.unchanged}>
                  <th scope="row">{n.prompt}</th>
                  <td>{n.before.text}</td>
                  <td>{n.after.text}</td>
                  <td>{n.kl.toFixed(4)}</td>
                  <td className={n.unchanged ? 'ok' : 'bad'}>{n.unchanged ? '✓ unchanged' : '✗ changed'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

export function Results({ children }: { children?: ReactNode }) {
  const report = useEdit((s) => s.run.report);
  return (
    <section className="panel" aria-labelledby="results-heading" data-testid="edit-results">
      <h2 id="results-heading">What changed, and what did not</h2>
      {!report ? (
        <p className="muted">Apply an edit to see the model before and after it, on the prompt, its paraphrases and its neighbours.</p>
      ) : (
        <>
          <p className="edit-line">
            “{report.request.prompt}” → “{report.request.target}”
            <Definition text={`${METRIC_DEFINITIONS.targetProbability} ${METRIC_DEFINITIONS.originalAnswer}`}>What the bars show</Definition>
          </p>
          <div className={report.results.length > 1 ? 'side-by-side' : ''}>
            {report.results.map((r) => <MethodResult key={r.method} r={r} report={report} />)}
          </div>
          {report.results.length > 1 && <p className="hint">Only the MEND edit was kept; the fine-tuning run was undone after it was measured.</p>}
        </>
      )}
      {children}
    </section>
  );
}
