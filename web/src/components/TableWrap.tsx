import type { ReactNode } from 'react';

/** A table that scrolls inside its own box on a narrow screen (never the page); keyboard-scrollable. */
export function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
