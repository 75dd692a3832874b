// Small pieces the result views share.
import type { ReactNode } from 'react';

/** A table that may scroll sideways on a narrow screen: focusable and named, so keyboard users can scroll it too. */
export function ScrollRegion({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>{children}</div>
  );
}

/** A term whose definition opens under it. */
export function Definition({ children, text }: { children: ReactNode; text: string }) {
  return (
    <details className="definition">
      <summary>{children}</summary>
      <p>{text}</p>
    </details>
  );
}
