// The knowledge scan under an edit's results: the neighbours above are a handful of facts someone picked; the scan
// asks hundreds of the facts the model was taught, before and after the edit, and lists every one it knew and lost
// (src/eval/scan.ts). It runs on request: a few seconds on the WASM fallback, longer on a software GPU.
import { useEdit } from '../../store/edit-store';
import type { EditReport, KnowledgeScan, ScanReport } from '../../worker/protocol';
import { ScrollRegion } from './parts';

const relationName = (r: string) => r.replace(/_/g, ' ');

const KIND_TEXT: Record<ScanReport['groups'][number]['kind'], (r: ScanReport) => string> = {
  'same relation': (r) => `Same relation (${relationName(r.relation ?? '')}), other subjects, in the edit prompt's wording`,
  'same subject': (r) => `${r.subject}'s other facts`,
  elsewhere: () => 'A sample of every other relation',
};

export function KnowledgeScanPanel({ report }: { report: EditReport }) {
  const facts = useEdit((s) => s.facts);
  const scan = useEdit((s) => s.scan);
  const latest = useEdit((s) => s.history?.items.filter((i) => i.applied).at(-1)?.id);
  const start = useEdit((s) => s.scanKnowledge);
  if (!facts) return null; // no facts index beside this model: nothing to ask
  const mine = scan.entryId === report.entryId ? scan : null;
  const isLatest = latest === report.entryId;
  return (
    <section className="knowledge-scan" aria-labelledby="scan-heading" data-testid="knowledge-scan">
      <h3 id="scan-heading">Everything else it was taught</h3>
      <p className="hint">
        The neighbours above are a handful of facts. The scan asks the model hundreds of the facts it was taught, before
        and after this edit: every other subject of the edited relation (in the edit prompt's wording), the subject's
        other facts, and a sample of every other relation. It lists each fact the model knew and no longer gives.
        {report.results.length > 1 && ' It measures the edit that was kept (MEND).'}
      </p>
      {isLatest ? (
        <button type="button" onClick={() => void start(report.entryId)} disabled={scan.phase === 'running'} data-testid="scan-start">
          {mine?.phase === 'ready' ? 'Scan again' : 'Scan the knowledge base'}
        </button>
      ) : (
        <p className="muted" data-testid="scan-unavailable">
          The history has changed since this edit; the scan compares the weights just before and after the latest applied edit.
        </p>
      )}
      {mine?.phase === 'running' && <p role="status" data-testid="scan-status">{mine.message}</p>}
      {mine?.phase === 'error' && <p role="alert" className="bad" data-testid="scan-error">The scan failed: {mine.error}</p>}
      {mine?.phase === 'ready' && mine.result && <ScanResult r={mine.result} />}
    </section>
  );
}

function ScanResult({ r }: { r: KnowledgeScan }) {
  const lost = r.knownBefore - r.kept;
  const took = r.lost.filter((l) => l.tookTarget).length;
  return (
    <div data-testid="scan-result" data-lost={lost}>
      <p data-testid="scan-summary">
        <strong>{lost === 0 ? 'Nothing else changed: ' : `${lost} fact${lost === 1 ? '' : 's'} lost: `}</strong>
        of {r.asked} facts asked, the model knew {r.knownBefore} before the edit and still gives {r.kept}.
        {took > 0 && ` ${took} of the lost now give the edit's target: the edit spread to ${took === 1 ? 'a fact' : 'facts'} it was not meant for.`}
      </p>
      {r.subject === null && (
        <p className="hint" data-testid="scan-unrecognised">
          The edit prompt is not one of the facts index's wordings, so the scan could not tell its relation and subject:
          it asked only the sample of every relation.
        </p>
      )}
      <ScrollRegion label="Knowledge scan by kind of fact">
        <table data-testid="scan-groups">
          <caption className="visually-hidden">Facts the model knew before the edit and still gives, by kind</caption>
          <thead><tr><th scope="col">Facts</th><th scope="col">Asked</th><th scope="col">Known before</th><th scope="col">Still given</th></tr></thead>
          <tbody>
            {r.groups.map((g) => (
              <tr key={g.kind} data-testid="scan-group" data-kind={g.kind} data-lost={g.knownBefore - g.kept}>
                <th scope="row">{KIND_TEXT[g.kind](r)}</th>
                <td>{g.asked}</td>
                <td>{g.knownBefore}</td>
                <td className={g.kept === g.knownBefore ? 'ok' : 'bad'}>{g.kept}{g.gained > 0 && <span className="muted"> (+{g.gained} it did not know)</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </ScrollRegion>
      {r.lost.length > 0 && (
        <ScrollRegion label="Facts the edit changed">
          <table data-testid="scan-lost">
            <caption className="visually-hidden">Every fact the model knew before the edit and no longer gives</caption>
            <thead><tr><th scope="col">Prompt</th><th scope="col">Taught</th><th scope="col">Now</th></tr></thead>
            <tbody>
              {r.lost.map((l) => (
                <tr key={l.prompt} data-testid="scan-lost-row" data-took-target={l.tookTarget !== null}>
                  <th scope="row">{l.prompt}</th>
                  <td>{l.taught}</td>
                  <td className="bad">{l.now || '(no answer)'}{l.tookTarget && <span className="muted"> — the edit's target</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollRegion>
      )}
    </div>
  );
}
