// What a knowledge scan (scan.ts) reports, and the report as JSON: the CLI's `edit --scan --json` and `scan --json`
// and the page's "Download the scan" write the same object (docs/cli.md). No runtime imports, so the page's main
// thread can use it without pulling in the model engine.

export type ScanKind = 'same relation' | 'same subject' | 'elsewhere';

export interface ScanProbe {
  kind: ScanKind;
  subject: string;
  relation: string;
  prompt: string;
  /** the object facts.json records, with the target prefix (" Madrid") */
  taught: string;
}

export interface ScanGroup {
  kind: ScanKind;
  /** the edited relation a same-relation group asks (a batch of several relations has one group each); else null */
  relation: string | null;
  asked: number;
  /** facts whose taught answer the model gave before the edit */
  knownBefore: number;
  /** of those, still given after it */
  kept: number;
  /** facts the model did not give before and gives after */
  gained: number;
}

export interface LostFact {
  kind: ScanKind;
  subject: string;
  relation: string;
  prompt: string;
  taught: string;
  /** the answer the greedy continuation states now (answerFromContinuation) */
  now: string;
  /** the edit's target this fact now gives (one of the edit's facts' targets), else null */
  tookTarget: string | null;
}

export interface ScanReport {
  asked: number;
  knownBefore: number;
  kept: number;
  groups: ScanGroup[];
  lost: LostFact[];
  /** what the scan was built around (scanScope): the edited subjects and relations the facts index recognised */
  subjects: string[];
  relations: string[];
  /** how many of the edit's fact prompts the index did not recognise */
  unrecognised: number;
}

/**
 * A scan report in the CLI's snake_case JSON (docs/cli.md, `edit --scan --json` → `scan`). The page's "Download the
 * scan" writes the same object, so a scan made in the browser and one made on the command line read alike.
 */
export function scanReportJson(r: ScanReport) {
  return {
    subjects: r.subjects, relations: r.relations, unrecognised: r.unrecognised, asked: r.asked, known_before: r.knownBefore, kept: r.kept,
    groups: r.groups.map((g) => ({ kind: g.kind, relation: g.relation, asked: g.asked, known_before: g.knownBefore, kept: g.kept, gained: g.gained })),
    lost: r.lost.map((l) => ({ kind: l.kind, subject: l.subject, relation: l.relation, prompt: l.prompt, taught: l.taught, now: l.now, took_target: l.tookTarget })),
  };
}

/** How the text report words "before" and a lost fact that took a target: for one edit, or for a whole history. */
export interface ScanLinesWording {
  before: string;
  target: string;
}
export const EDIT_SCAN_WORDING: ScanLinesWording = { before: 'before the edit', target: "the edit's target" };
export const HISTORY_SCAN_WORDING: ScanLinesWording = { before: 'in the original model', target: "an edit's target" };

/**
 * The report as text lines (the CLI's `knowledge scan:` block): a summary, a line per group and a `LOST` line per lost
 * fact. `promptsEdited`: how many fact prompts the scan was built around (to word the unrecognised note).
 */
export function scanReportLines(sc: ReturnType<typeof scanReportJson>, promptsEdited: number, wording = EDIT_SCAN_WORDING): string[] {
  const lines = [`knowledge scan: ${sc.asked} facts asked; the model knew ${sc.known_before} ${wording.before} and still gives ${sc.kept} of them`];
  if (sc.unrecognised) {
    const which = sc.unrecognised === promptsEdited
      ? (promptsEdited === 1 ? 'the edit prompt is' : 'no edited prompt is')
      : `${sc.unrecognised} of the edited prompts ${sc.unrecognised === 1 ? 'is' : 'are'}`;
    lines.push(`  (${which} not in the facts index: only the sample of every relation covers ${sc.unrecognised === 1 ? 'it' : 'them'})`);
  }
  for (const g of sc.groups) {
    const kind = g.relation ? `${g.kind} (${g.relation})` : g.kind;
    lines.push(`  ${kind.padEnd(13)} ${g.kept} of ${g.known_before} known kept (${g.asked} asked${g.gained ? `; ${g.gained} newly right` : ''})`);
  }
  for (const l of sc.lost) {
    lines.push(`  LOST ${JSON.stringify(l.prompt)}: taught ${JSON.stringify(l.taught)}, now ${JSON.stringify(l.now)}${l.took_target ? ` (${wording.target})` : ''}`);
  }
  return lines;
}
