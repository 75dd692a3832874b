// The prompt, the decoding settings and the completion.
import { useId, useState, type FormEvent, type KeyboardEvent } from 'react';
import { useApp } from '../store/app-store';

const DEFAULT_PROMPT = 'The capital of France is';

export function PromptPanel() {
  const modelReady = useApp((s) => s.model.phase === 'ready');
  const generation = useApp((s) => s.generation);
  const options = useApp((s) => s.options);
  const setOptions = useApp((s) => s.setOptions);
  const generate = useApp((s) => s.generate);
  const [prompt, setPrompt] = useState(DEFAULT_PROMPT);
  const ids = { prompt: useId(), tokens: useId(), temp: useId(), topk: useId(), seed: useId(), help: useId() };
  const running = generation.phase === 'running';
  const canGenerate = modelReady && !running && prompt.trim().length > 0;

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (canGenerate) void generate(prompt);
  };
  // Enter alone adds a newline (prompts may span lines); Ctrl/⌘+Enter generates.
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && canGenerate) {
      e.preventDefault();
      void generate(prompt);
    }
  };

  return (
    <section className="panel" aria-labelledby="prompt-heading">
      <h2 id="prompt-heading">Prompt</h2>
      <form onSubmit={onSubmit}>
        <label htmlFor={ids.prompt} className="visually-hidden">Prompt</label>
        <textarea
          id={ids.prompt}
          rows={3}
          value={prompt}
          onChange={(e) => setPrompt(e.target.value)}
          onKeyDown={onKeyDown}
          aria-describedby={ids.help}
          data-testid="prompt"
        />
        <p className="hint" id={ids.help}>Ctrl+Enter generates. Temperature 0 is greedy decoding; above 0 the text is sampled (top-k 0 = from all tokens), the same seed giving the same text.</p>
        <div className="settings">
          <label htmlFor={ids.tokens}>New tokens</label>
          <input id={ids.tokens} type="number" min={1} max={256} value={options.maxNewTokens}
            onChange={(e) => setOptions({ maxNewTokens: clampInt(e.target.value, 1, 256, 16) })} data-testid="max-new-tokens" />
          <label htmlFor={ids.temp}>Temperature</label>
          <input id={ids.temp} type="number" min={0} max={2} step={0.1} value={options.temperature}
            onChange={(e) => setOptions({ temperature: clampNum(e.target.value, 0, 2, 0) })} data-testid="temperature" />
          <label htmlFor={ids.topk}>Top-k sampling</label>
          <input id={ids.topk} type="number" min={0} max={1000} value={options.topK} disabled={options.temperature === 0}
            onChange={(e) => setOptions({ topK: clampInt(e.target.value, 0, 1000, 0) })} data-testid="top-k" />
          <label htmlFor={ids.seed}>Seed</label>
          <input id={ids.seed} type="number" min={0} max={2 ** 31 - 1} value={options.seed} disabled={options.temperature === 0}
            onChange={(e) => setOptions({ seed: clampInt(e.target.value, 0, 2 ** 31 - 1, 1) })} data-testid="seed" />
        </div>
        <button type="submit" className="primary" disabled={!canGenerate} data-testid="generate">
          {running ? 'Generating…' : 'Generate'}
        </button>
        {!modelReady && <span className="muted"> Load a model first.</span>}
      </form>

      <h3>Completion</h3>
      <div className="completion" aria-live="polite" aria-busy={running} data-testid="completion-box" data-phase={generation.phase}>
        {generation.phase === 'idle' ? (
          <span className="muted">The model’s continuation appears here.</span>
        ) : (
          <p>
            <span className="prompt-echo">{generation.prompt}</span>
            <span className="generated" data-testid="completion">{generation.completion}</span>
            {running && <span className="cursor" aria-hidden="true">▍</span>}
          </p>
        )}
        {generation.result && (
          <p className="muted small" data-testid="generation-stats">
            {generation.result.newTokens.length} tokens in {(generation.result.ms / 1000).toFixed(2)} s
          </p>
        )}
      </div>
      {generation.phase === 'error' && generation.error && (
        <p className="error" role="alert" data-testid="generation-error">Generation failed: {generation.error.message}</p>
      )}
    </section>
  );
}

function clampInt(text: string, lo: number, hi: number, fallback: number): number {
  const v = Math.round(Number(text));
  return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : fallback;
}
function clampNum(text: string, lo: number, hi: number, fallback: number): number {
  const v = Number(text);
  return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : fallback;
}
