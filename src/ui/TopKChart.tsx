// A bar chart of the most likely next tokens after the prompt. Plain HTML and CSS so that screen readers
// read it as a list of "token, probability" pairs.
import { useApp } from '../store/app-store';
import { formatPercent, visibleToken } from './format';

export function TopKChart() {
  const generation = useApp((s) => s.generation);
  const topk = generation.topk;
  const max = topk?.[0]?.prob ?? 1;
  return (
    <section className="panel" aria-labelledby="topk-heading">
      <h2 id="topk-heading">Next-token probabilities</h2>
      {!topk ? (
        <p className="muted">{generation.phase === 'running' ? 'Computing…' : 'After you generate, the most likely next tokens after the prompt are shown here.'}</p>
      ) : (
        <>
          <p className="hint">The {topk.length} most likely tokens to follow “{generation.prompt}”. ␣ marks a space.</p>
          <ol className="topk" aria-label="Most likely next tokens" data-testid="topk-chart">
            {topk.map((t) => (
              <li key={t.id} data-testid="topk-row" data-token-id={t.id} aria-label={`${JSON.stringify(t.text)}: ${formatPercent(t.prob)}`}>
                <span className="topk-token" aria-hidden="true">{visibleToken(t.text)}</span>
                <span className="topk-bar" aria-hidden="true">
                  <span className="topk-fill" style={{ width: `${Math.max(0.5, (t.prob / max) * 100)}%` }} />
                </span>
                <span className="topk-prob" aria-hidden="true">{formatPercent(t.prob)}</span>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
