import { DomainError } from '@bstore/platform/kernel';
import type { LibraryProps } from './library.ts';

/** A library branch and how many reservations it serves now (assignments in status `assigned`). */
export interface LibraryLoad {
  readonly library: LibraryProps;
  readonly activeAssignments: number;
}

/**
 * Which branch serves a new reservation: the patron's preferred branch when it exists; otherwise
 * the branch with the fewest active assignments, ties going to the lowest libraryId. Deterministic,
 * so a redelivered or replayed request picks the same branch from the same state.
 *
 * A preferred branch that does not exist (deleted, or a stale id from the client) is not an error:
 * the reservation already holds a copy, so it falls back to the fewest-active rule.
 *
 * @example
 * chooseLibrary([{ library: gangnam, activeAssignments: 3 }, { library: mapo, activeAssignments: 1 }], null); // mapo
 */
export function chooseLibrary(loads: readonly LibraryLoad[], preferredLibraryId?: number | null): LibraryProps {
  if (preferredLibraryId != null) {
    const preferred = loads.find((l) => l.library.libraryId === preferredLibraryId);
    if (preferred) return preferred.library;
  }
  let best: LibraryLoad | undefined;
  for (const load of loads) {
    if (
      !best ||
      load.activeAssignments < best.activeAssignments ||
      (load.activeAssignments === best.activeAssignments && load.library.libraryId < best.library.libraryId)
    ) {
      best = load;
    }
  }
  if (!best) throw new DomainError('NO_LIBRARY_AVAILABLE', 'no library branch exists to assign the reservation to');
  return best.library;
}
