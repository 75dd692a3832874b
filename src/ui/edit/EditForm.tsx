// The edit form: an example to start from, the prompt and the new target, optionally more facts edited in the same
// update (a batch edit), the method, and the checks that will judge the edit (paraphrases and neighbours, proposed
// from the model's facts index plus the user's own).
import { useId, useMemo, useState, type FormEvent } from 'react';
import { exampleEdits, type ExampleEdit, recognise, relationOutlook, SPLIT_LABEL, suggestNeighbours, suggestParaphrases, wordingOf } from '../../eval/suggest';
import { MAX_FACTS_PER_EDIT } from '../../session/facts';
import { useEdit } from '../../store/edit-store';
import type { EditMethodChoice } from '../../worker/protocol';

const METHOD_LABEL: Record<EditMethodChoice, string> = {
  mend: 'MEND',
  ft: 'Fine-tuning',
  both: 'Both, side by side',
};

/** Every prompt the form's edit changes (the first fact's and each batch row's), trimmed. */
function formPrompts(prompt: string, moreFacts: ReadonlyArray<{ prompt: string }>): Set<string> {
  return new Set([prompt, ...moreFacts.map((f) => f.prompt)].map((p) => p.trim()));
}

export function useChecks() {
  const facts = useEdit((s) => s.facts);
  const prompt = useEdit((s) => s.prompt);
  const ownParaphrases = useEdit((s) => s.ownParaphrases);
  const ownNeighbours = useEdit((s) => s.ownNeighbours);
  const unchecked = useEdit((s) => s.unchecked);
  const moreFacts = useEdit((s) => s.moreFacts);
  return useMemo(() => {
    // a batch fact's own prompt is edited on purpose: as a neighbour it would "change" by design
    const edited = formPrompts(prompt, moreFacts);
    const rec = facts ? recognise(facts, prompt) : null;
    const paraphrases = facts && rec ? suggestParaphrases(facts, rec) : [];
    const neighbours = facts && rec ? suggestNeighbours(facts, rec) : [];
    const chosenParaphrases = [...paraphrases.map((p) => p.prompt), ...ownParaphrases].filter((p) => !unchecked[p] && p.trim() !== prompt.trim());
    const chosenNeighbours = [...neighbours.map((n) => n.prompt), ...ownNeighbours].filter((p) => !unchecked[p] && !edited.has(p.trim()));
    return { rec, paraphrases, neighbours, chosenParaphrases: [...new Set(chosenParaphrases)], chosenNeighbours: [...new Set(chosenNeighbours)] };
  }, [facts, prompt, ownParaphrases, ownNeighbours, unchecked, moreFacts]);
}

export function EditForm() {
  const s = useEdit();
  const checks = useChecks();
  const ids = { prompt: useId(), target: useId(), example: useId(), exampleNote: useId(), tokens: useId(), recog: useId() };
  const examples = useMemo(() => (s.facts ? exampleEdits(s.facts, { evidence: s.evidence }) : []), [s.facts, s.evidence]);
  const outlook = checks.rec ? relationOutlook(s.evidence, checks.rec.relation) : null;
  // the example last chosen, while the form still holds it: its label says how MEND did on it
  const [picked, setPicked] = useState<ExampleEdit | null>(null);
  const shownExample = picked && picked.prompt === s.prompt && picked.target === s.target ? picked : null;
  const exampleIndex = shownExample ? examples.findIndex((e) => e.prompt === shownExample.prompt && e.target === shownExample.target) : -1;
  const running = s.run.phase === 'running';
  const methods = s.editing?.methods ?? [];
  const available: EditMethodChoice[] = methods.length === 2 ? ['mend', 'ft', 'both'] : methods;
  const unfinished = s.moreFacts.findIndex((f) => f.prompt.trim() === '' || f.target.trim() === '');
  const canApply = !!s.editing && !running && !s.historyBusy && s.prompt.trim() !== '' && s.target.trim() !== '' && unfinished < 0
    && available.includes(s.method);

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const moreOriginals = s.moreFacts.map((f) => (s.facts ? recognise(s.facts, f.prompt)?.answer : undefined));
    if (canApply) void s.applyEdit(checks.chosenParaphrases, checks.chosenNeighbours, checks.rec?.answer, moreOriginals);
  };

  return (
    <section className="panel" aria-labelledby="edit-heading" data-testid="edit-panel">
      <h2 id="edit-heading">Edit a fact</h2>
      {!s.editing && <p className="muted">Load a model to edit it.</p>}
      {s.editing?.mendNote && <p className="note" data-testid="mend-note">{s.editing.mendNote}</p>}
      <form onSubmit={onSubmit}>
        {examples.length > 0 && (
          <div className="row">
            <label htmlFor={ids.example}>Example edit</label>
            <select id={ids.example} data-testid="example-edit" value={exampleIndex >= 0 ? String(exampleIndex) : ''} aria-describedby={s.evidence ? ids.exampleNote : undefined}
              onChange={(e) => {
                const ex = examples[Number(e.target.value)];
                if (ex) s.setForm({ prompt: ex.prompt, target: ex.target });
                setPicked(ex ?? null);
              }}>
              <option value="">Choose an example…</option>
              {examples.map((ex, i) => (
                <option key={ex.prompt} value={i} data-outlook={ex.outlook.kind} data-expected-to-fail={ex.expectedToFail}>{ex.label}</option>
              ))}
            </select>
          </div>
        )}
        {shownExample && (
          <p className={`hint example-outlook ${shownExample.expectedToFail ? 'bad' : 'ok'}`} data-testid="example-outlook">
            Example: {shownExample.label}
          </p>
        )}
        {examples.length > 0 && s.evidence && (
          <p className="hint" id={ids.exampleNote} data-testid="example-note">
            Examples are marked with how this model’s MEND editor did in its held-out benchmark.
            {examples.some((e) => e.expectedToFail) && ' Not every edit works: the one marked “expected to fail” is a kind of edit MEND usually misses.'}
          </p>
        )}
        <div className="row">
          <label htmlFor={ids.prompt}>Prompt</label>
          <input id={ids.prompt} type="text" value={s.prompt} data-testid="edit-prompt" aria-describedby={ids.recog}
            placeholder="The capital of France is" onChange={(e) => s.setForm({ prompt: e.target.value })} />
        </div>
        <div className="row">
          <label htmlFor={ids.target}>New target</label>
          <input id={ids.target} type="text" value={s.target} data-testid="edit-target"
            placeholder=" Rome (start with a space)" onChange={(e) => s.setForm({ target: e.target.value })} />
        </div>
        <p className="hint" id={ids.recog} data-testid="recognised">
          {checks.rec
            ? <>Recognised: <strong>{checks.rec.subject}</strong>, relation <strong>{checks.rec.relation}</strong>; the model was taught
              “{checks.rec.answer.trim()}”. This wording is a {SPLIT_LABEL[checks.rec.split]}.
              {outlook && <> <span data-testid="relation-outlook">{outlook}</span></>}</>
            : s.facts && s.prompt.trim() ? 'This prompt is not one of the model’s known facts: add your own paraphrases and neighbours below.' : 'Targets usually start with a space, as in “ Rome”.'}
        </p>
        <BatchFacts />
        <fieldset className="methods">
          <legend>Method</legend>
          {(['mend', 'ft', 'both'] as const).map((m) => (
            <label key={m} className="radio">
              <input type="radio" name="edit-method" value={m} checked={s.method === m} disabled={!available.includes(m)}
                onChange={() => s.setForm({ method: m })} data-testid={`method-${m}`} />
              {METHOD_LABEL[m]}
            </label>
          ))}
          {s.method !== 'mend' && s.editing && (
            <p className="hint">Fine-tuning: {s.editing.ft.steps} Adam steps at learning rate {s.editing.ft.learningRate} on the same
              weights MEND edits. “Both” measures fine-tuning first, undoes it, then applies MEND; only the MEND edit stays in the history.</p>
          )}
        </fieldset>
        <div className="row">
          <label htmlFor={ids.tokens}>Tokens to generate</label>
          <input id={ids.tokens} type="number" min={1} max={24} value={s.maxNewTokens} className="narrow"
            onChange={(e) => s.setForm({ maxNewTokens: Math.min(24, Math.max(1, Math.round(Number(e.target.value)) || 6)) })} />
        </div>
        <Checks kind="paraphrase" />
        <Checks kind="neighbour" />
        <SequenceNote />
        {unfinished >= 0 && <p className="hint bad" data-testid="batch-unfinished">Fact {unfinished + 2} needs a prompt and a new target, or remove it.</p>}
        <button type="submit" className="primary" disabled={!canApply} data-testid="apply-edit">
          {s.moreFacts.length ? `Apply edit of ${s.moreFacts.length + 1} facts` : 'Apply edit'}
        </button>
        <div role="status" aria-live="polite" className="progress-line" data-testid="edit-status" data-phase={s.run.phase}>
          {running && (
            <>
              <progress max={s.run.steps ?? 1} value={s.run.step ?? 0} aria-label="Edit progress" /> {s.run.message}
            </>
          )}
          {s.run.phase === 'ready' && 'Edit applied and measured.'}
        </div>
        {s.run.phase === 'error' && <p className="error" role="alert" data-testid="edit-error">The edit failed: {s.run.error}</p>}
      </form>
    </section>
  );
}

/** The paraphrase or neighbour list: suggestions with a checkbox each, the user's own with a remove button, and an add field. */
function Checks({ kind }: { kind: 'paraphrase' | 'neighbour' }) {
  const s = useEdit();
  const checks = useChecks();
  const [text, setText] = useState('');
  const addId = useId();
  const own = kind === 'paraphrase' ? s.ownParaphrases : s.ownNeighbours;
  const title = kind === 'paraphrase' ? 'Paraphrases' : 'Neighbours';
  const explain = kind === 'paraphrase'
    ? 'The same question in other words: after the edit they should give the new target too.'
    : 'Facts the edit must not change: the same relation for other subjects, other relations for the same subject.';
  const add = () => {
    s.addOwn(kind, text);
    setText('');
  };
  const ownInvalid = kind === 'paraphrase' && s.facts ? (p: string) => wordingOf(s.facts!, p) : () => null;
  // a neighbour that is one of this edit's further facts is not checked (useChecks leaves it out): it changes by design
  const batchFact = (p: string) => kind === 'neighbour' && s.moreFacts.some((f) => f.prompt.trim() === p.trim());
  return (
    <fieldset className="checks" data-testid={`${kind}-list`}>
      <legend>{title}</legend>
      <p className="hint">{explain}</p>
      <ul>
        {kind === 'paraphrase' && checks.paraphrases.map((p) => (
          <li key={p.prompt}>
            <label>
              <input type="checkbox" checked={!s.unchecked[p.prompt]} onChange={(e) => s.toggleSuggestion(p.prompt, e.target.checked)} />
              {p.prompt} <span className={`tag split-${p.split}`}>{SPLIT_LABEL[p.split]}</span>
            </label>
          </li>
        ))}
        {kind === 'neighbour' && checks.neighbours.map((n) => (
          <li key={n.prompt}>
            <label>
              <input type="checkbox" checked={!s.unchecked[n.prompt] && !batchFact(n.prompt)} disabled={batchFact(n.prompt)}
                onChange={(e) => s.toggleSuggestion(n.prompt, e.target.checked)} />
              {n.prompt} <span className="tag">{batchFact(n.prompt) ? 'edited in this batch, not checked' : `${n.kind}; taught “${n.expected.trim()}”`}</span>
            </label>
          </li>
        ))}
        {own.map((p) => {
          const w = ownInvalid(p);
          return (
            <li key={p}>
              <label>
                <input type="checkbox" checked={!s.unchecked[p] && !batchFact(p)} disabled={batchFact(p)} onChange={(e) => s.toggleSuggestion(p, e.target.checked)} />
                {p} <span className="tag own">your own{w ? `; ${SPLIT_LABEL[w.split]}` : ''}{batchFact(p) ? '; edited in this batch, not checked' : ''}</span>
              </label>{' '}
              <button type="button" className="link" onClick={() => s.removeOwn(kind, p)} aria-label={`Remove ${kind} “${p}”`}>Remove</button>
            </li>
          );
        })}
      </ul>
      <div className="row">
        <label htmlFor={addId} className="visually-hidden">Add your own {kind}</label>
        <input id={addId} type="text" value={text} placeholder={`Add your own ${kind}`} data-testid={`add-${kind}`}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              add();
            }
          }} />
        <button type="button" onClick={add} disabled={!text.trim()} data-testid={`add-${kind}-button`}>Add</button>
      </div>
    </fieldset>
  );
}

/**
 * The further facts of a batch edit. MEND edits them in the same update as the first: each fact's gradient pieces go
 * through the editor and the resulting changes are summed. This is how the editor was trained (batches of up to 10),
 * and it is what the held-out benchmark's "batch of 10" measures.
 */
function BatchFacts() {
  const s = useEdit();
  const id = useId();
  const full = s.moreFacts.length + 1 >= MAX_FACTS_PER_EDIT;
  const examples = useMemo(() => (s.facts ? exampleEdits(s.facts, { evidence: s.evidence, count: MAX_FACTS_PER_EDIT + 1 }) : []), [s.facts, s.evidence]);
  const taken = formPrompts(s.prompt, s.moreFacts);
  const unused = examples.filter((e) => !taken.has(e.prompt.trim()));
  const addExamples = () => {
    for (const e of unused.slice(0, MAX_FACTS_PER_EDIT - 1 - s.moreFacts.length)) s.addFact({ prompt: e.prompt, target: e.target });
  };
  return (
    <fieldset className="checks batch" data-testid="batch-facts" aria-describedby={`${id}-hint`}>
      <legend>More facts in the same edit</legend>
      <p className="hint" id={`${id}-hint`}>
        Optional: a batch edit. MEND changes the weights once for all the facts: each one’s gradient pieces go through the
        editor and the changes are summed (this editor was trained on batches of up to {MAX_FACTS_PER_EDIT}). Each fact is
        checked on its own prompt; the paraphrases and neighbours below check the first.
      </p>
      {s.moreFacts.length > 0 && (
        <ol className="batch-list">
          {s.moreFacts.map((f, i) => (
            <li key={i} data-testid="batch-fact">
              <span className="batch-num" aria-hidden="true">{i + 2}.</span>
              <label htmlFor={`${id}-p${i}`} className="visually-hidden">Prompt of fact {i + 2}</label>
              <input id={`${id}-p${i}`} type="text" value={f.prompt} placeholder={`Prompt of fact ${i + 2}`} data-testid="batch-prompt"
                onChange={(e) => s.setFact(i, { prompt: e.target.value })} />
              <label htmlFor={`${id}-t${i}`} className="visually-hidden">New target of fact {i + 2}</label>
              <input id={`${id}-t${i}`} type="text" value={f.target} placeholder="New target" className="batch-target" data-testid="batch-target"
                onChange={(e) => s.setFact(i, { target: e.target.value })} />
              <button type="button" className="link" onClick={() => s.removeFact(i)} aria-label={`Remove fact ${i + 2}`} data-testid="batch-remove">Remove</button>
            </li>
          ))}
        </ol>
      )}
      <div className="row buttons">
        <button type="button" onClick={() => s.addFact()} disabled={full} data-testid="add-fact">Add a fact</button>
        {unused.length > 0 && (
          <button type="button" onClick={addExamples} disabled={full} data-testid="add-example-facts">Fill with example facts</button>
        )}
        {full && <span className="muted">{MAX_FACTS_PER_EDIT} facts is the most one edit holds.</span>}
      </div>
    </fieldset>
  );
}

/**
 * Before an edit on already-edited weights, what was measured on this model (docs/eval.md "Sequential edits"): MEND's
 * editor was trained on the original weights, so a batch on top of an earlier edit broke the shipped model (×1,222
 * perplexity; bench/experiments/second_batch.ts finds one or two facts in ten whose update alone does it, which the
 * single-edit pass-1 guard would halve), and single edits degrade after about ten in a row.
 */
function SequenceNote() {
  const s = useEdit();
  const applied = (s.history?.items ?? []).filter((i) => i.applied).length;
  if (s.method === 'ft' || applied === 0) return null;
  const batch = s.moreFacts.length > 0;
  if (!batch && applied < 5) return null;
  return (
    <p className={batch ? 'note' : 'hint'} data-testid="sequence-note" data-batch={batch}>
      {batch
        ? `The model already carries ${applied} edit${applied === 1 ? '' : 's'}. MEND’s editor was trained on the original weights: on this model a batch on top of an earlier edit broke it (perplexity ×1,222: one fact of the ten alone did ×281, and a batch has no guard to halve it). Revert all first and put every fact in one batch, or edit these facts one at a time.`
        : `The model already carries ${applied} edits. On this model MEND’s edits degrade after about ten in a row; “Check every edit now” (History) shows what still holds.`}
    </p>
  );
}
