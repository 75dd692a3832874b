// A diverging-colour heatmap of a slice of the installed update (red = positive, blue = negative, white = 0), as
// SVG with a text alternative: the figure caption, a spoken summary, and the values as a table on request.
import type { Heatmap as HeatmapData } from '../../worker/weights-protocol';
import { sci, sciSpoken } from './numbers';

const CELL = 14;
const MARGIN = { left: 34, top: 34 };

/** v in [−1, 1] → a colour from blue through white to red. */
export function divergingColour(v: number): string {
  const t = Math.min(1, Math.abs(v));
  const [r, g, b] = v >= 0 ? [178, 24, 43] : [33, 102, 172];
  const mix = (c: number) => Math.round(255 + (c - 255) * t);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

export function Heatmap({ data, title, id }: { data: HeatmapData; title: string; id: string }) {
  const nr = data.rows.length;
  const nc = data.cols.length;
  let sliceMax = 0;
  for (const v of data.values) sliceMax = Math.max(sliceMax, Math.abs(v));
  const scale = sliceMax || 1;
  const width = MARGIN.left + nc * CELL + 4;
  const height = MARGIN.top + nr * CELL + 4;
  const labelEvery = Math.max(1, Math.ceil(Math.max(nr, nc) / 6));
  const [ar, ac] = data.argmax;
  const negative = data.values.filter((v) => v < 0).length;
  const summary =
    `${nr} rows (chosen input dimensions from ${data.rows[0]} to ${data.rows[nr - 1]}) by ${nc} columns (chosen output dimensions ` +
    `${data.cols[0]} to ${data.cols[nc - 1]}). Colour runs from blue (−${sciSpoken(scale)}) through white (0) to red ` +
    `(+${sciSpoken(scale)}). The largest entry of the whole update is ${sciSpoken(data.maxAbs)}, at input ${ar}, output ${ac}.`;
  return (
    <figure className="wt-figure" data-testid="weights-heatmap">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        className="wt-heatmap"
        role="img"
        aria-labelledby={`${id}-title`}
        aria-describedby={`${id}-desc`}
      >
        <title id={`${id}-title`}>{title}</title>
        <desc id={`${id}-desc`}>{summary}</desc>
        <text x={MARGIN.left} y={10} className="wt-axis">output dim →</text>
        <text x={2} y={MARGIN.top - 4} className="wt-axis">in ↓</text>
        {data.cols.map((c, b) =>
          b % labelEvery === 0 ? (
            <text key={`c${b}`} x={MARGIN.left + b * CELL + CELL / 2} y={MARGIN.top - 6} className="wt-tick" textAnchor="middle">{c}</text>
          ) : null,
        )}
        {data.rows.map((r, a) =>
          a % labelEvery === 0 ? (
            <text key={`r${a}`} x={MARGIN.left - 3} y={MARGIN.top + a * CELL + CELL * 0.75} className="wt-tick" textAnchor="end">{r}</text>
          ) : null,
        )}
        {data.rows.map((r, a) =>
          data.cols.map((c, b) => {
            const v = data.values[a * nc + b];
            const isMax = r === ar && c === ac;
            return (
              <rect
                key={`${a}-${b}`}
                x={MARGIN.left + b * CELL}
                y={MARGIN.top + a * CELL}
                width={CELL}
                height={CELL}
                fill={divergingColour(v / scale)}
                stroke={isMax ? '#111' : 'none'}
                strokeWidth={isMax ? 1.5 : 0}
              >
                <title>{`in ${r}, out ${c}: ${sci(v)}`}</title>
              </rect>
            );
          }),
        )}
      </svg>
      <figcaption>
        {title}. <span className="wt-legend" aria-hidden="true">
          <span className="wt-swatch" style={{ background: divergingColour(-1) }} /> −{sci(scale)}
          <span className="wt-swatch" style={{ background: '#fff' }} /> 0
          <span className="wt-swatch" style={{ background: divergingColour(1) }} /> +{sci(scale)}
        </span>{' '}
        The outlined cell is the largest entry of the whole update ({sci(data.maxAbs)}, input {ar}, output {ac}).
        {' '}<span data-testid="heatmap-signs">{negative} of the {data.values.length} entries shown are negative.</span>
      </figcaption>
      <details>
        <summary>The {nr}×{nc} values as a table</summary>
        <div className="wt-scroll" role="region" aria-label={`${title}: the values`} tabIndex={0}>
          <table className="wt-table wt-values">
            <caption className="visually-hidden">{title}: rows are input dimensions, columns output dimensions</caption>
            <thead>
              <tr>
                <th scope="col">in \ out</th>
                {data.cols.map((c) => <th key={c} scope="col">{c}</th>)}
              </tr>
            </thead>
            <tbody>
              {data.rows.map((r, a) => (
                <tr key={r}>
                  <th scope="row">{r}</th>
                  {data.cols.map((c, b) => <td key={c}>{sci(data.values[a * nc + b], 2)}</td>)}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
