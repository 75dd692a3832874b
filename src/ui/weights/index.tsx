// "What the edit did to the weights": for the latest applied MEND edit, per edited weight the size of the update
// (and relative to the weight), its singular values (at most one per token: the update is a sum of one rank-1
// piece per token), a heatmap of where it is largest, and how much each token's piece contributed.
import { useState } from 'react';
import type { WeightsReport } from '../../worker/weights-protocol';
import { visibleToken } from '../format';
import { Heatmap } from './Heatmap';
import { percent, sci, shortWeightName } from './numbers';
import { SingularValues } from './SingularValues';
import { mostChangedWeight, useWeightsReport } from './use-report';
import './weights.css';

export { useWeights } from './store';

export interface WeightsPanelProps {
  /** changes whenever the applied edits change (e.g. the applied entry ids joined); the report is refetched then */
  historyKey?: string | null;
}

export function WeightsPanel({ historyKey }: WeightsPanelProps) {
  const { phase, report, error } = useWeightsReport(historyKey);
  return (
    <section className="panel wt-panel" aria-labelledby="weights-heading" data-testid="weights-panel" aria-busy={phase === 'running'}>
      <h2 id="weights-heading">What the edit did to the weights</h2>
      {phase === 'error' && <p className="error" role="alert">Could not analyse the edit: {error}</p>}
      {phase === 'running' && !report && <p className="muted" role="status">Analysing the edit…</p>}
      {phase !== 'error' && !report && phase !== 'running' && (
        <p className="muted">After a MEND edit, this shows how much each edited weight changed and which tokens changed it.</p>
      )}
      {report && <ReportView report={report} />}
    </section>
  );
}

/** An edit the editor was asked for twice (editor_config.json batch_retry): what is shown is its first pass. */
export function RetryNote({ passes }: { passes: number }) {
  return (
    <p className="note" data-testid="weights-retry-note">
      The first MEND pass left the edit prompt short of its target, so the editor was asked again on the model as
      edited so far: this edit took {passes} passes. The tokens, rows, steps and update norms here are the first
      pass’s; ‖W′ − W‖, measured on the installed weights, includes every pass.
    </p>
  );
}

/** An edit whose first step the perplexity guard halved (editor_config.json first_pass_guard): lr_scale is the halved one. */
export function HalvedNote({ halvings, lrScale, guard }: { halvings: number; lrScale: number; guard: WeightsReport['guard'] }) {
  const times = halvings === 1 ? 'once' : halvings === 2 ? 'twice' : `${halvings} times`;
  const by = guard && Number.isFinite(guard.riseFull) ? ` by ${Math.round(guard.riseFull * 100)}%` : '';
  const limit = guard ? ` ${+(guard.limit * 100).toFixed(2)}%` : '';
  return (
    <p className="note" data-testid="weights-halved-note">
      At the editor’s own step this edit raised the perplexity of the held-out prose the editor carries{by}, past its
      guard’s{limit} limit, so its first pass was undone and redone at half the step, {times}: lr_scale here is the
      halved {sci(lrScale)}.
    </p>
  );
}

function ReportView({ report }: { report: WeightsReport }) {
  const [chosen, setChosen] = useState<number | null>(null);
  const index = chosen !== null && chosen < report.weights.length ? chosen : mostChangedWeight(report.weights);
  const w = report.weights[index];
  const n = report.tokens.length;
  const named = report.facts.map((f) => `“${f.prompt}” → “${f.target.trim()}”`);
  const fact = named.length > 1 ? `${named.slice(0, -1).join(', ')} and ${named[named.length - 1]}` : named[0];
  const batch = report.facts.length > 1;
  return (
    <>
      <p className="hint">
        The MEND edit {fact} changed each weight W by <i>step</i>·ΔW, where ΔW = Σ<sub>i</sub> x̃<sub>i</sub>ᵀδ̃<sub>i</sub> adds
        one rank-1 piece per token ({n} tokens{batch ? `, from all ${report.facts.length} facts` : ''}), so ΔW has rank at most {n}.
        {' '}<i>step</i> = sign · lr_scale · edit_lr, where edit_lr is learned per weight and lr_scale is{' '}
        <span data-testid="weights-lr-scale">{+report.lrScale.toPrecision(3)}</span> here
        {report.stepHalvings > 0 ? ' (halved, see below)' : ` (editor_config.json's scale for ${batch ? 'batch edits' : 'a single fact'})`}.
        Norms are Frobenius norms.
      </p>
      {report.stepHalvings > 0 && <HalvedNote halvings={report.stepHalvings} lrScale={report.lrScale} guard={report.guard} />}
      {report.passes > 1 && <RetryNote passes={report.passes} />}
      {report.editsAfter > 0 && (
        <p className="note" data-testid="weights-later-edits">
          {report.editsAfter === 1 ? 'One fine-tuning edit was' : `${report.editsAfter} fine-tuning edits were`} applied after it; fine-tuning
          has no per-token pieces, so this panel keeps describing the latest MEND edit.
        </p>
      )}
      <div className="wt-scroll" role="region" aria-label="Update per edited weight" tabIndex={0}>
        <table className="wt-table" data-testid="weights-table">
          <caption><span className="wt-caption">Update per edited weight</span></caption>
          <thead>
            <tr>
              <th scope="col">Weight</th>
              <th scope="col">Shape</th>
              <th scope="col">Step</th>
              <th scope="col">‖W‖</th>
              <th scope="col">‖update‖</th>
              <th scope="col">relative</th>
              <th scope="col">Rank</th>
            </tr>
          </thead>
          <tbody>
            {report.weights.map((x, i) => (
              <tr key={x.name} data-testid="weights-row" data-weight={x.name} data-norm={x.updateNorm} data-rank={x.rank}
                  className={i === index ? 'wt-selected' : undefined}>
                <th scope="row" title={x.name}>{shortWeightName(x.name)}</th>
                <td>{x.shape[0]}×{x.shape[1]}</td>
                <td>{sci(x.step)}</td>
                <td>{sci(x.weightNorm)}</td>
                <td data-testid="weights-norm">{sci(x.updateNorm)}</td>
                <td>{percent(x.relativeUpdate)}</td>
                <td>{x.rank} / {n}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <div className="row">
        <label htmlFor="wt-weight">Weight shown in detail</label>
        <select id="wt-weight" className="wt-select" value={index} onChange={(e) => setChosen(Number(e.target.value))}>
          {report.weights.map((x, i) => <option key={x.name} value={i}>{shortWeightName(x.name)}</option>)}
        </select>
      </div>

      <div className="wt-figures">
        <SingularValues
          id="wt-sv" values={w.singularValues} rank={w.rank} tolerance={report.rankTolerance} tokens={n}
          title={`Singular values of the update to ${shortWeightName(w.name)}`}
        />
        <Heatmap
          id="wt-heat" data={w.heatmap}
          title={`The update to ${shortWeightName(w.name)} where it is largest: its ${w.heatmap.rows.length} rows and ${w.heatmap.cols.length} columns of largest norm (axis labels are their indices)`}
        />
      </div>

      <TokenTable report={report} weight={index} />
    </>
  );
}

function TokenTable({ report, weight }: { report: WeightsReport; weight: number }) {
  const w = report.weights[weight];
  const maxShare = Math.max(1e-30, ...w.rows.map((r) => Math.abs(r.updateShare)));
  return (
    <>
    <p className="hint" id="wt-tokens-note">
      A piece’s size is |step|·‖x̃ᵢ‖·‖δ̃ᵢ‖; its share is ⟨pieceᵢ, ΔW⟩/‖ΔW‖², the part of the update it accounts for
      (shares add up to 100%; a negative share partly cancels the others). Rows with an all-zero x or δ are dropped.
    </p>
    <div className="wt-scroll" role="region" aria-label="Each token’s piece of the update" tabIndex={0}>
      <table className="wt-table" data-testid="weights-tokens" aria-describedby="wt-tokens-note">
        <caption><span className="wt-caption">Each token’s rank-1 piece of the update to {shortWeightName(w.name)}</span></caption>
        <thead>
          <tr>
            <th scope="col">Token</th>
            <th scope="col">Part</th>
            <th scope="col">‖x̃ᵢ‖</th>
            <th scope="col">‖δ̃ᵢ‖</th>
            <th scope="col">‖pieceᵢ‖</th>
            <th scope="col">Share</th>
          </tr>
        </thead>
        <tbody>
          {w.rows.map((r, i) => {
            const t = report.tokens[i];
            return (
              <tr key={i} data-testid="weights-token-row" className={r.kept ? undefined : 'wt-dropped'}>
                <th scope="row" className="wt-token">{visibleToken(t.text)}</th>
                <td>{t.role}{report.facts.length > 1 ? ` (fact ${t.fact + 1})` : ''}</td>
                <td>{sci(r.xTildeNorm)}</td>
                <td>{sci(r.deltaTildeNorm)}</td>
                <td>{r.kept ? sci(r.updatePieceNorm) : 'dropped'}</td>
                <td>
                  <span className="wt-share">
                    <span className="wt-share-bar" aria-hidden="true">
                      <span className={r.updateShare >= 0 ? 'wt-share-fill' : 'wt-share-fill wt-negative'}
                            style={{ width: `${(Math.abs(r.updateShare) / maxShare) * 100}%` }} />
                    </span>
                    <span>{percent(r.updateShare)}</span>
                  </span>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
    </>
  );
}
