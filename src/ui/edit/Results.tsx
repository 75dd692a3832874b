// What the edit did: the summary (efficacy never without generalisation and locality next to it), the Before and
// After panels for the edit prompt, and the paraphrase and neighbour checks. With "both methods" the two are compared
// in shared tables (one column per method) rather than two half-width copies of everything, which did not fit a
// 1280-pixel screen.
import type { ReactNode } from 'react';
import { METRIC_DEFINITIONS } from '../../eval/metrics';
import { useEdit } from '../../store/edit-store';
import { pct, signedPct } from '../format';
import type { EditReport, GuardReading, MethodEval, NeighbourEval, ProbeState } from '../../worker/protocol';
import { KnowledgeScanPanel } from './KnowledgeScan';
import { Definition, ScrollRegion } from './parts';

const METHOD_NAME = { mend: 'MEND', ft: 'Fine-tuning' } as const;
const METHOD_ORDER = { mend: 0, ft: 1 } as const;


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

function ProbePanel({ title, state, report, testId, method, level = 4 }: {
  title: string; state: ProbeState; report: EditReport; testId: string; method?: string; level?: 3 | 4;
}) {
  const Heading = level === 3 ? 'h3' : 'h4';
  return (
    <div className="probe" data-testid={testId} data-method={method}>
      <Heading>{title}</Heading>
      <p className="continuation"><span className="prompt-echo">{report.request.prompt}</span><strong data-testid={`${testId}-text`} data-method={method}>{state.text}</strong></p>
      <Bar label={`P(new “${report.request.target.trim()}”)`} p={state.targetProb} kind="new" />
      {report.originalAnswer && <Bar label={`P(original “${report.originalAnswer.trim()}”)`} p={state.originalProb} kind="old" />}
    </div>
  );
}

/**
 * "3.136 → 3.145 (+0.3%)", with a warning when the session's damage check flagged the edit; after earlier edits also
 * the change since the original model, because small rises compound over a history (docs/eval.md "Sequential edits").
 */
function HeldOutPerplexity({ h }: { h: NonNullable<MethodEval['heldOut']> }) {
  const signed = signedPct(h.after / h.before - 1);
  const fmt = (p: number) => (Number.isFinite(p) ? p.toPrecision(4) : String(p));
  return (
    <span data-testid="heldout-perplexity" data-flagged={h.flagged} data-before={h.before} data-after={h.after} data-prose={h.prose}>
      {fmt(h.before)} → {fmt(h.after)} ({signed})
      {h.flagged && (
        <strong className="bad"> — more than ×{h.threshold}: this edit may have damaged the model
          {h.original !== undefined && h.original !== h.before
            && '. MEND’s editor was trained on the original weights, and on already-edited ones a single update can break the model: Undo it, or Revert all and edit the facts together as one batch'}
        </strong>
      )}
      <span className="muted"> {h.prose === 'model' ? 'on held-out prose from its corpus' : 'on a fixed English paragraph'}</span>
      {h.original !== undefined && h.original !== h.before && (
        <span className={h.flaggedOriginal ? 'bad' : undefined} data-testid="heldout-since-original" data-flagged={h.flaggedOriginal}>
          ; since the original model {fmt(h.original)} → {fmt(h.after)} ({signedPct(h.ratioOriginal! - 1)})
          {h.flaggedOriginal && <strong> — the edits so far have taken it past ×{h.threshold}: the model may be damaged (Undo, or Revert all)</strong>}
        </span>
      )}
    </span>
  );
}

function Summary({ r }: { r: MethodEval }) {
  const s = r.summary;
  return (
    <dl className="summary" data-testid={`summary-${r.method}`}>
      <div data-testid="summary-edit" data-method={r.method} data-ok={s.editSuccess}>
        <dt><Definition text={METRIC_DEFINITIONS.editSuccess}>Edit success</Definition></dt>
        <dd className={s.editSuccess ? 'ok' : 'bad'}>{s.editSuccess ? 'yes' : 'no'}</dd>
      </div>
      {s.factSuccess !== null && (
        <div data-testid="summary-facts" data-method={r.method}>
          <dt><Definition text={FACTS_DEFINITION}>Facts edited</Definition></dt>
          <dd className={s.factSuccess === 1 ? 'ok' : 'bad'}>{factsText(r)}</dd>
        </div>
      )}
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
      {r.heldOut && (
        <div>
          <dt><Definition text={METRIC_DEFINITIONS.heldOutPerplexity}>Held-out perplexity</Definition></dt>
          <dd className={r.heldOut.flagged ? 'bad' : undefined}><HeldOutPerplexity h={r.heldOut} /></dd>
        </div>
      )}
      {r.guard && (
        <div data-testid="summary-guard">
          <dt><Definition text={GUARD_DEFINITION}>Perplexity guard</Definition></dt>
          <dd><GuardText g={r.guard} halvings={r.stepHalvings ?? 0} /></dd>
        </div>
      )}
      <div>
        <dt>Time</dt>
        <dd>{timeText(r)}</dd>
      </div>
    </dl>
  );
}

const FACTS_DEFINITION = 'A batch edit changes the weights once for all its facts. This counts the facts whose own prompt '
  + 'now gives their whole new target (edit success, fact by fact); “Edit success” above is the first fact’s.';

/** "3 of 3 give their new target" */
function factsText(r: MethodEval): string {
  const all = [r.edit, ...r.batch];
  return `${all.filter((p) => p.success).length} of ${all.length} give their new target`;
}

/** Every fact of a batch edit, before and after each method: its prompt, new target, greedy text and P(new target). */
function BatchTable({ report, rs }: { report: EditReport; rs: MethodEval[] }) {
  const targets = [report.request.target, ...(report.request.moreFacts ?? []).map((f) => f.target)];
  const rows = (r: MethodEval) => [r.edit, ...r.batch];
  const first = rows(rs[0]);
  const one = rs.length === 1;
  return (
    <ScrollRegion label="Every fact of the batch edit before and after">
      <table data-testid="batch-results">
        <caption className="visually-hidden">Every fact of the batch edit, before and after</caption>
        <thead>
          <tr><th scope="col">Fact</th><th scope="col">Before</th>
            {rs.map((r) => <th scope="col" key={r.method}>{one ? 'After' : `After ${METHOD_NAME[r.method]}`}</th>)}</tr>
        </thead>
        <tbody>
          {first.map((p, i) => (
            <tr key={p.prompt} data-testid="batch-row" {...Object.fromEntries(rs.map((r) => [`data-success-${r.method}`, rows(r)[i].success]))}>
              <th scope="row">{i + 1}. {p.prompt} <span className="muted nowrap">→ “{targets[i].trim()}”</span></th>
              <td>{p.before.text} <span className="muted nowrap">P(new) {pct(p.before.targetProb)}</span></td>
              {rs.map((r) => {
                const x = rows(r)[i];
                return <td key={r.method} data-method={r.method}>{x.after.text}<br />{yesNo(x.success, 'success', 'not the argmax')} <span className="muted nowrap">P(new) {pct(x.after.targetProb)}</span></td>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </ScrollRegion>
  );
}

/** "+1.30% on its own prose (limit 5%)", or for a halved step "+62% at the editor's own step, over its 5% limit; at
 * half the step +2.59%". */
function GuardText({ g, halvings }: { g: GuardReading; halvings: number }) {
  const rise = (x: number) => (!Number.isFinite(x) ? 'not finite' : `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(Math.abs(x) < 0.1 ? 2 : 0)}%`);
  const limit = `${+(g.limit * 100).toFixed(2)}%`;
  if (halvings === 0) return <span data-testid="guard-reading">{rise(g.riseFull)} on its own prose (limit {limit})</span>;
  const step = halvings === 1 ? 'half the step' : `1/${2 ** halvings} of the step`;
  return (
    <span data-testid="guard-reading">
      {rise(g.riseFull)} at the editor’s own step, over its {limit} limit; {g.riseKept === null
        ? `kept at ${step}, the most halvings it allows, unchecked`
        : `at ${step} ${rise(g.riseKept)}`}
    </span>
  );
}

const GUARD_DEFINITION = 'After MEND’s first step the editor checks the perplexity of held-out prose it carries '
  + '(editor_config.json first_pass_guard, single-fact edits). If it rose past the limit, the step is undone and redone '
  + 'at half the size. The rare edit that would damage the model does it here. This is not the held-out perplexity '
  + 'above, which reads other paragraphs and so is an independent check.';

/** The edit's time; its MEND passes where the editor was asked more than once (editor_config.json batch_retry), and
 * the halvings of its first step where the perplexity guard asked for them (first_pass_guard). */
function timeText(r: MethodEval): ReactNode {
  const time = `${(r.timingsMs.total / 1000).toFixed(2)} s`;
  const halvings = r.stepHalvings ?? 0;
  return (
    <>
      {time}
      {halvings > 0 && (
        <>, <Definition text={HALVED_DEFINITION}><span data-testid="result-step-halved">{halvingText(halvings)}</span></Definition></>
      )}
      {(r.passes ?? 1) > 1 && (
        <>, <Definition text={PASSES_DEFINITION}><span data-testid="result-passes">{r.passes} passes</span></Definition></>
      )}
    </>
  );
}

/** "first step halved" / "first step halved twice" / "… 3 times" */
function halvingText(n: number): string {
  return `first step halved${n === 1 ? '' : n === 2 ? ' twice' : ` ${n} times`}`;
}

const HALVED_DEFINITION = 'MEND’s first step raised the perplexity of held-out prose the editor carries past its limit, '
  + 'so it was undone and redone at half the step (editor_config.json first_pass_guard). A few edits would otherwise '
  + 'damage the model badly; the cost is a smaller change, which can leave paraphrases behind.';

const PASSES_DEFINITION = 'After its first pass the edit prompt did not yet give the whole target, so MEND was asked again, '
  + 'on the model as edited so far (editor_config.json batch_retry). Where the editor sets them, its guards refuse a pass '
  + 'that moves a weight further than the first did or raises held-out prose perplexity past a limit.';

function MethodResult({ r, report }: { r: MethodEval; report: EditReport }) {
  return (
    <div className="method-result" data-testid={`result-${r.method}`}>
      <h3>{METHOD_NAME[r.method]}</h3>
      <Summary r={r} />
      <div className="before-after">
        <section aria-label={`Before (${METHOD_NAME[r.method]})`}><ProbePanel title="Before" state={r.edit.before} report={report} testId="before" /></section>
        <section aria-label={`After (${METHOD_NAME[r.method]})`}><ProbePanel title="After" state={r.edit.after} report={report} testId="after" method={r.method} /></section>
      </div>
      {r.batch.length > 0 && (
        <>
          <h4>Every fact of the batch</h4>
          <BatchTable report={report} rs={[r]} />
        </>
      )}

      <h4>Paraphrases{r.batch.length > 0 && ' of the first fact'}</h4>
      {r.paraphrases.length === 0 ? <p className="muted">None checked.</p> : (
        <ScrollRegion label="Paraphrases before and after the edit">
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
        </ScrollRegion>
      )}

      <h4>Neighbours</h4>
      {r.neighbours.length === 0 ? <p className="muted">None checked.</p> : (
        <ScrollRegion label="Neighbours before and after the edit">
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
                  <td className={n.unchanged ? 'ok' : 'bad'}>{n.unchanged ? '✓ unchanged' : '✗ changed'}<AfterAnswerNote n={n} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollRegion>
      )}
    </div>
  );
}

/** An unchanged answer followed by different free text: said, so the changed continuation beside it is not a surprise. */
function AfterAnswerNote({ n }: { n: NeighbourEval }) {
  return n.unchanged && n.continuationUnchanged === false
    ? <span className="muted" data-testid="after-answer-differs"> (the text after the answer differs)</span> : null;
}

const yesNo = (ok: boolean, yes: string, no: string) => <span className={ok ? 'ok' : 'bad'}>{ok ? `✓ ${yes}` : `✗ ${no}`}</span>;

/** "Both": MEND and fine-tuning on the same edit, one column per method in every table (MEND first). */
function Comparison({ report }: { report: EditReport }) {
  const rs = [...report.results].sort((a, b) => METHOD_ORDER[a.method] - METHOD_ORDER[b.method]);
  const cols = rs.map((r) => <th scope="col" key={r.method}>{METHOD_NAME[r.method]}</th>);
  const row = (label: ReactNode, cell: (r: MethodEval) => ReactNode, testId?: string, ok?: (r: MethodEval) => boolean) => (
    <tr>
      <th scope="row">{label}</th>
      {rs.map((r) => (
        <td key={r.method} data-testid={testId} data-method={r.method} data-ok={ok?.(r)} className={ok ? (ok(r) ? 'ok' : 'bad') : undefined}>{cell(r)}</td>
      ))}
    </tr>
  );
  const paraphrases = rs[0].paraphrases;
  const neighbours = rs[0].neighbours;
  return (
    <div className="comparison" data-testid="comparison">
      <ScrollRegion label="MEND and fine-tuning compared">
        <table className="compare-summary" data-testid="compare-summary">
          <caption className="visually-hidden">MEND and fine-tuning on the same edit</caption>
          <thead><tr><th scope="col">Measure</th>{cols}</tr></thead>
          <tbody>
            {row(<Definition text={METRIC_DEFINITIONS.editSuccess}>Edit success</Definition>, (r) => (r.summary.editSuccess ? 'yes' : 'no'), 'summary-edit', (r) => r.summary.editSuccess)}
            {rs[0].batch.length > 0 && row(<Definition text={FACTS_DEFINITION}>Facts edited</Definition>, factsText, 'summary-facts', (r) => r.summary.factSuccess === 1)}
            {row(<Definition text={METRIC_DEFINITIONS.paraphraseSuccess}>Paraphrase success</Definition>,
              (r) => (r.summary.paraphraseSuccess === null ? 'none checked' : `${pct(r.summary.paraphraseSuccess)} of ${r.paraphrases.length}`), 'summary-paraphrase')}
            {row(<Definition text={METRIC_DEFINITIONS.neighbourhoodScore}>Neighbourhood score</Definition>,
              (r) => (r.summary.neighbourhoodScore === null ? 'none checked' : `${pct(r.summary.neighbourhoodScore)} of ${r.neighbours.length} unchanged`), 'summary-neighbourhood')}
            {row(<Definition text={METRIC_DEFINITIONS.kl}>Mean neighbour KL</Definition>, (r) => (r.summary.meanKl === null ? '—' : `${r.summary.meanKl.toFixed(4)} nats`))}
            {rs.every((r) => r.heldOut) && row(<Definition text={METRIC_DEFINITIONS.heldOutPerplexity}>Held-out perplexity</Definition>,
              (r) => <HeldOutPerplexity h={r.heldOut!} />, undefined, (r) => !r.heldOut!.flagged)}
            {rs.some((r) => r.guard) && row(<Definition text={GUARD_DEFINITION}>Perplexity guard</Definition>,
              (r) => (r.guard ? <GuardText g={r.guard} halvings={r.stepHalvings ?? 0} /> : '—'), 'summary-guard')}
            {row('Time', timeText)}
          </tbody>
        </table>
      </ScrollRegion>

      <section aria-label="Before the edit"><ProbePanel title="Before" state={rs[0].edit.before} report={report} testId="before" level={3} /></section>
      <div className="after-pair">
        {rs.map((r) => (
          <section key={r.method} aria-label={`After (${METHOD_NAME[r.method]})`}>
            <ProbePanel title={`After ${METHOD_NAME[r.method]}`} state={r.edit.after} report={report} testId="after" method={r.method} level={3} />
          </section>
        ))}
      </div>

      {rs[0].batch.length > 0 && (
        <>
          <h3>Every fact of the batch</h3>
          <BatchTable report={report} rs={rs} />
        </>
      )}

      <h3>Paraphrases{rs[0].batch.length > 0 && ' of the first fact'}</h3>
      {paraphrases.length === 0 ? <p className="muted">None checked.</p> : (
        <ScrollRegion label="Paraphrases after each method">
          <table data-testid="paraphrase-results">
            <caption className="visually-hidden">Paraphrases before the edit and after each method</caption>
            <thead><tr><th scope="col">Prompt</th><th scope="col">Before</th>{cols}</tr></thead>
            <tbody>
              {paraphrases.map((p) => (
                <tr key={p.prompt} data-testid="paraphrase-row"
                  {...Object.fromEntries(rs.map((r) => [`data-success-${r.method}`, r.paraphrases.find((x) => x.prompt === p.prompt)?.success]))}>
                  <th scope="row">{p.prompt}</th>
                  <td>{p.before.text}</td>
                  {rs.map((r) => {
                    const x = r.paraphrases.find((y) => y.prompt === p.prompt);
                    if (!x) return <td key={r.method}>—</td>;
                    return <td key={r.method}>{x.after.text}<br />{yesNo(x.success, 'success', 'not the argmax')} <span className="muted nowrap">P(new) {pct(x.after.targetProb)}</span></td>;
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollRegion>
      )}

      <h3>Neighbours</h3>
      {neighbours.length === 0 ? <p className="muted">None checked.</p> : (
        <ScrollRegion label="Neighbours after each method">
          <table data-testid="neighbour-results">
            <caption className="visually-hidden">Neighbours before the edit and after each method</caption>
            <thead><tr><th scope="col">Prompt</th><th scope="col">Before</th>{cols}</tr></thead>
            <tbody>
              {neighbours.map((n) => (
                <tr key={n.prompt} data-testid="neighbour-row"
                  {...Object.fromEntries(rs.map((r) => [`data-unchanged-${r.method}`, r.neighbours.find((x) => x.prompt === n.prompt)?.unchanged]))}>
                  <th scope="row">{n.prompt}</th>
                  <td>{n.before.text}</td>
                  {rs.map((r) => {
                    const x = r.neighbours.find((y) => y.prompt === n.prompt);
                    if (!x) return <td key={r.method}>—</td>;
                    return <td key={r.method} data-method={r.method}>{x.after.text}<br />{yesNo(x.unchanged, 'unchanged', 'changed')}<AfterAnswerNote n={x} /> <span className="muted nowrap">KL {x.kl.toFixed(4)}</span></td>;
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollRegion>
      )}
    </div>
  );
}

export function Results({ children }: { children?: ReactNode }) {
  const report = useEdit((s) => s.run.report);
  const earlier = useEdit((s) => (s.history?.items.length ?? 0) > 0);
  return (
    <section className="panel" aria-labelledby="results-heading" data-testid="edit-results">
      <h2 id="results-heading">What changed, and what did not</h2>
      {!report ? (
        <p className="muted">
          Apply an edit to see the model before and after it, on the prompt, its paraphrases and its neighbours.
          {earlier && ' The measurements of the edits in the history are not kept after a reload or an import; the edits themselves are.'}
        </p>
      ) : (
        <>
          <p className="edit-line" data-testid="edit-line">
            “{report.request.prompt}” → “{report.request.target}”
            {(report.request.moreFacts?.length ?? 0) > 0 && ` and ${report.request.moreFacts!.length} more fact${report.request.moreFacts!.length === 1 ? '' : 's'} in the same update`}
            <Definition text={`${METRIC_DEFINITIONS.targetProbability} ${METRIC_DEFINITIONS.originalAnswer}`}>What the bars show</Definition>
          </p>
          {report.results.length > 1 ? (
            <>
              <Comparison report={report} />
              <p className="hint">Only the MEND edit was kept; the fine-tuning run was undone after it was measured.</p>
            </>
          ) : report.results.map((r) => <MethodResult key={r.method} r={r} report={report} />)}
          <KnowledgeScanPanel report={report} />
        </>
      )}
      {children}
    </section>
  );
}
