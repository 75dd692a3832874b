// Bars of the singular values of one weight's update, largest first: a rank-1 piece per token means at most one
// bar per token; those under the tolerance line count as zero.
import { sci, sciSpoken } from './numbers';

export function SingularValues({ values, rank, tolerance, tokens, title, id }: {
  values: number[]; rank: number; tolerance: number; tokens: number; title: string; id: string;
}) {
  const max = values[0] || 1;
  const bar = 16;
  const gap = 4;
  const height = 110;
  const width = values.length * (bar + gap) + 40;
  const spoken = values.map((v, i) => `σ${i + 1} = ${sciSpoken(v)}`).join(', ');
  return (
    <figure className="wt-figure" data-testid="weights-singular-values">
      <svg viewBox={`0 0 ${width} ${height + 18}`} className="wt-sv" role="img" aria-labelledby={`${id}-title`} aria-describedby={`${id}-desc`}>
        <title id={`${id}-title`}>{title}</title>
        <desc id={`${id}-desc`}>{`${rank} of ${values.length} singular values are nonzero: ${spoken}.`}</desc>
        <line x1={30} x2={width} y1={height} y2={height} stroke="#888" />
        <text x={26} y={10} className="wt-tick" textAnchor="end">{sci(max, 2)}</text>
        <text x={26} y={height} className="wt-tick" textAnchor="end">0</text>
        {values.map((v, i) => {
          const h = Math.max(v > tolerance * max ? 1 : 0, (v / max) * (height - 6));
          const x = 34 + i * (bar + gap);
          return (
            <g key={i}>
              <rect x={x} y={height - h} width={bar} height={h} className={v > tolerance * max ? 'wt-bar' : 'wt-bar-zero'}>
                <title>{`σ${i + 1} = ${sci(v)}`}</title>
              </rect>
              <text x={x + bar / 2} y={height + 13} className="wt-tick" textAnchor="middle">{i + 1}</text>
            </g>
          );
        })}
      </svg>
      <figcaption>
        {title}: <strong data-testid="weights-rank">{rank}</strong> nonzero of {values.length} (one rank-1 piece per token,
        {' '}{tokens} tokens; a value counts as nonzero above {sci(tolerance)}·σ₁).
      </figcaption>
    </figure>
  );
}
