// The knowledge scan under an edit's results: the neighbours above are a handful of facts someone picked; the scan
// asks hundreds of the facts the model was taught, before and after the edit, and lists every one it knew and lost
// (src/eval/scan.ts). It runs on request: a few seconds on the WASM fallback, longer on a software GPU. After a
// "both methods" edit it scans the kept MEND edit and the fine-tuning edit of the same facts, side by side: both
// start from the same weights, so they are asked the same facts, known alike before.
import { EDIT_SCAN_WORDING, HISTORY_SCAN_WORDING, scanReportJson, type ScanLinesWording } from '../../eval/scan_report';
import { useEdit } from '../../store/edit-store';
import { downloadJson } from '../download';
import type { EditMethod, EditReport, HistoryItem, KnowledgeScan, ScanReport } from '../../worker/protocol';
import { ScrollRegion } from './parts';

const relationName = (r: string) => r.replace(/_/g, ' ');

/** A list of names for a sentence: "France", "France and Spain", "France, Spain, Peru and 4 more". */
function names(items: string[], shown = 3): string {
  if (items.length <= 1) return items.join('');
  if (items.length <= shown) return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
  return `${items.slice(0, shown).join(', ')} and ${items.length - shown} more`;
}

function groupLabel(g: ScanReport['groups'][number], r: ScanReport, history: boolean): string {
  const batch = r.relations.length > 1 || r.subjects.length > 1;
  switch (g.kind) {
    case 'same relation':
      return `Same relation (${relationName(g.relation ?? '')}), other subjects, in the ${batch ? 'edited fact' : 'edit prompt'}'s wording`;
    case 'same subject':
      return r.subjects.length === 1 ? `${r.subjects[0]}'s other facts` : `The other facts of ${names(r.subjects)}`;
    case 'elsewhere':
      return history ? 'A sample of every relation the edits did not touch' : batch ? 'A sample of every relation the edit did not touch' : 'A sample of every other relation';
  }
}

const METHOD_NAME: Record<EditMethod, string> = { mend: 'MEND', ft: 'Fine-tuning' };

export function KnowledgeScanPanel({ report }: { report: EditReport }) {
  const facts = useEdit((s) => s.facts);
  const scan = useEdit((s) => s.scan);
  const latest = useEdit((s) => s.history?.items.filter((i) => i.applied).at(-1)?.id);
  const start = useEdit((s) => s.scanKnowledge);
  if (!facts) return null; // no facts index beside this model: nothing to ask
  const mine = scan.entryId === report.entryId ? scan : null;
  const isLatest = latest === report.entryId;
  // the kept edit first (the last method that ran), then the comparison run's
  const ran = report.results.map((m) => m.method);
  const methods = [...ran.slice(-1), ...ran.slice(0, -1)];
  const both = methods.length > 1;
  return (
    <section className="knowledge-scan" aria-labelledby="scan-heading" data-testid="knowledge-scan">
      <h3 id="scan-heading">Everything else it was taught</h3>
      <p className="hint">
        The neighbours above are a handful of facts. The scan asks the model hundreds of the facts it was taught, before
        and after this edit: every other subject of the edited relation (in the edit prompt's wording), the subject's
        other facts, and a sample of every other relation; for a batch edit, around every one of its facts. It lists
        each fact the model knew and no longer gives.
        {both && ' It scans both edits: the kept MEND edit, and the fine-tuning edit of the same facts, made again on the same weights and taken back.'}
      </p>
      {isLatest ? (
        <button type="button" onClick={() => void start(report.entryId, methods)} disabled={scan.phase === 'running'} data-testid="scan-start">
          {mine?.phase === 'ready' ? 'Scan again' : both ? 'Scan the knowledge base with both edits' : 'Scan the knowledge base'}
        </button>
      ) : (
        <p className="muted" data-testid="scan-unavailable">
          The history has changed since this edit; the scan compares the weights just before and after the latest applied edit.
        </p>
      )}
      {mine?.phase === 'running' && <p role="status" data-testid="scan-status">{mine.message}</p>}
      {mine?.phase === 'error' && <p role="alert" className="bad" data-testid="scan-error">The scan failed: {mine.error}</p>}
      {mine?.results && mine.results.length > 0 && mine.phase !== 'running' && <EditScanResult results={mine.results} />}
    </section>
  );
}

/**
 * A scan as a file (docs/formats.md "Knowledge scan file"): what it measured (`scope`: one edit, or every applied edit
 * against the original model), those edits (method and every fact) and one report per method scanned, each in the
 * same JSON as the CLI's `edit --scan --json`.
 */
export function scanFile(scope: 'edit' | 'history', results: Array<ScanReport & { method?: EditMethod }>, edits: HistoryItem[], model: string | null) {
  return {
    format: 'mendlab-knowledge-scan', version: 1, scope, model, scanned_at: new Date().toISOString(),
    edits: edits.map((e) => ({ method: e.method, facts: [{ prompt: e.prompt, target: e.target }, ...e.more] })),
    scans: results.map((r) => ({ ...(r.method ? { method: r.method } : {}), ...scanReportJson(r) })),
  };
}

/** What a scan compared: one edit ("before the edit") or the whole history ("in the original model"). */
export interface ScanWording extends ScanLinesWording {
  /** the edited prompts, as "N of {prompts} are not ..." */
  prompts: string;
  /** names of the two scrolling tables (unique on the page, which can show both scans) */
  regions: [string, string];
}
const EDIT_WORDING: ScanWording = { ...EDIT_SCAN_WORDING, prompts: "the edit's prompts", regions: ['Knowledge scan by kind of fact', 'Facts the edit changed'] };
export const HISTORY_WORDING: ScanWording = { ...HISTORY_SCAN_WORDING, prompts: 'the edited prompts', regions: ['Knowledge scan of all edits by kind of fact', 'Facts the edits changed'] };

function Summary({ r, who, wording }: { r: ScanReport & { method?: EditMethod }; who: string; wording: ScanWording }) {
  const lost = r.knownBefore - r.kept;
  const took = r.lost.filter((l) => l.tookTarget).length;
  return (
    <p data-testid="scan-summary" data-method={r.method} data-lost={lost}>
      {who && <>{who}: </>}
      <strong>{lost === 0 ? 'Nothing else changed: ' : `${lost} fact${lost === 1 ? '' : 's'} lost: `}</strong>
      of {r.asked} facts asked, the model knew {r.knownBefore} {wording.before} and still gives {r.kept}.
      {took > 0 && ` ${took} of the lost now give ${wording.target}: ${wording === EDIT_WORDING ? 'the edit' : 'the edits'} spread to ${took === 1 ? 'a fact' : 'facts'} ${wording === EDIT_WORDING ? 'it was' : 'they were'} not meant for.`}
    </p>
  );
}

function EditScanResult({ results }: { results: KnowledgeScan[] }) {
  const model = useEdit((s) => s.modelKey);
  const entry = useEdit((s) => s.history?.items.find((i) => i.id === results[0].entryId));
  return <ScanResult results={results} wording={EDIT_WORDING} file={() => scanFile('edit', results, entry ? [entry] : [], model)} />;
}

/**
 * A scan's report: a summary per method, the facts by kind (a "still given" column per method) and every fact lost
 * (a "now" column per method). `results`: one scan, or the kept edit's and the comparison's; `file`: what "Download
 * the scan" saves.
 */
export function ScanResult({ results, wording, file }: {
  results: Array<ScanReport & { method?: EditMethod }>; wording: ScanWording; file: () => unknown;
}) {
  const [r] = results; // the kept edit's; the facts asked (and known before) are the same for every method
  const both = results.length > 1;
  const who = (x: (typeof results)[number]) => (both && x.method ? METHOD_NAME[x.method] : '');
  const key = (x: (typeof results)[number]) => x.method ?? 'scan';
  // every fact some method lost, once, ordered by kind of fact, relation and prompt
  const KIND_ORDER = ['same relation', 'same subject', 'elsewhere'];
  const lostPrompts = [...new Map(results.flatMap((x) => x.lost).map((l) => [l.prompt, l])).values()]
    .sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || a.relation.localeCompare(b.relation) || a.prompt.localeCompare(b.prompt))
    .map((l) => l.prompt);
  const lostOf = (x: ScanReport, prompt: string) => x.lost.find((l) => l.prompt === prompt);
  return (
    <div data-testid="scan-result" data-lost={r.knownBefore - r.kept}>
      {results.map((x) => <Summary key={key(x)} r={x} who={who(x)} wording={wording} />)}
      <button type="button" onClick={() => downloadJson('mendlab-knowledge-scan.json', file())} data-testid="scan-download">
        Download the scan (JSON)
      </button>
      {r.relations.length === 0 ? (
        <p className="hint" data-testid="scan-unrecognised">
          {wording === EDIT_WORDING ? 'The edit prompt is not' : 'None of the edited prompts is'} one of the facts index's wordings, so the
          scan could not tell {wording === EDIT_WORDING ? 'its' : 'their'} relation and subject: it asked only the sample of every relation.
        </p>
      ) : r.unrecognised > 0 && (
        <p className="hint" data-testid="scan-unrecognised">
          {r.unrecognised} of {wording.prompts} {r.unrecognised === 1 ? 'is' : 'are'} not one of the facts index's
          wordings: the scan asked around the other facts, and only the sample covers {r.unrecognised === 1 ? 'that one' : 'those'}.
        </p>
      )}
      <ScrollRegion label={wording.regions[0]}>
        <table data-testid="scan-groups">
          <caption className="visually-hidden">Facts the model knew before the edit and still gives, by kind</caption>
          <thead>
            <tr>
              <th scope="col">Facts</th><th scope="col">Asked</th><th scope="col">Known before</th>
              {results.map((x) => <th key={key(x)} scope="col">Still given{both && ` (${who(x)})`}</th>)}
            </tr>
          </thead>
          <tbody>
            {r.groups.map((g) => (
              <tr key={`${g.kind}/${g.relation ?? ''}`} data-testid="scan-group" data-kind={g.kind} data-relation={g.relation ?? undefined} data-lost={g.knownBefore - g.kept}>
                <th scope="row">{groupLabel(g, r, wording !== EDIT_WORDING)}</th>
                <td>{g.asked}</td>
                <td>{g.knownBefore}</td>
                {results.map((x) => {
                  const h = x.groups.find((y) => y.kind === g.kind && y.relation === g.relation) ?? g;
                  return (
                    <td key={key(x)} data-method={x.method} className={h.kept === h.knownBefore ? 'ok' : 'bad'}>
                      {h.kept}{h.gained > 0 && <span className="muted"> (+{h.gained} it did not know)</span>}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </ScrollRegion>
      {lostPrompts.length > 0 && (
        <ScrollRegion label={wording.regions[1]}>
          <table data-testid="scan-lost">
            <caption className="visually-hidden">Every fact the model knew before the edit and no longer gives{both && ', per method'}</caption>
            <thead>
              <tr>
                <th scope="col">Prompt</th><th scope="col">Taught</th>
                {results.map((x) => <th key={key(x)} scope="col">Now{both && ` (${who(x)})`}</th>)}
              </tr>
            </thead>
            <tbody>
              {lostPrompts.map((prompt) => {
                const first = results.map((x) => lostOf(x, prompt)).find(Boolean)!;
                return (
                  <tr key={prompt} data-testid="scan-lost-row" data-took-target={lostOf(r, prompt)?.tookTarget != null}>
                    <th scope="row">{prompt}</th>
                    <td>{first.taught}</td>
                    {results.map((x) => {
                      const l = lostOf(x, prompt);
                      return l ? (
                        <td key={key(x)} data-method={x.method} data-lost="true" className="bad">
                          {l.now || '(no answer)'}{l.tookTarget && <span className="muted"> — {wording.target}</span>}
                        </td>
                      ) : (
                        <td key={key(x)} data-method={x.method} data-lost="false" className="ok">still given</td>
                      );
                    })}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </ScrollRegion>
      )}
    </div>
  );
}
