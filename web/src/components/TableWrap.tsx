import type { ReactNode } from 'react';

/** A table that scrolls inside its own box on a narrow screen (never the page); keyboard-scrollable. */
export function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

/** A list as a table: its title (the region's label and the hidden caption), the column headings, and its rows. */
export function DataTable({ title, columns, children }: { title: string; columns: readonly string[]; children: ReactNode }) {
  return (
    <TableWrap label={title}>
      <table>
        <caption className="visually-hidden">{title}</caption>
        <thead>
          <tr>
            {columns.map((column, i) => (
              <th scope="col" key={i}>
                {column}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </TableWrap>
  );
}
