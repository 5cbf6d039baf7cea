import type { Library } from '../api.ts';

/** The library branches as the options of a select, by id. */
export function LibraryOptions({ libraries }: { libraries: readonly Library[] }) {
  return (
    <>
      {libraries.map((l) => (
        <option key={l.libraryId} value={String(l.libraryId)}>
          {l.name}
        </option>
      ))}
    </>
  );
}
