import { Library, type LibraryProps, type NewLibrary } from '../../domain/library.ts';
import type { AssignmentTransactions } from '../ports.ts';

/**
 * Makes sure the given branches exist, matched by name: missing ones are inserted, existing ones
 * left as they are. Safe at every start-up (demo seed) and from several replicas at once.
 */
export class EnsureLibraries {
  readonly #tx: AssignmentTransactions;

  constructor(tx: AssignmentTransactions) {
    this.#tx = tx;
  }

  /** Returns the libraries this call inserted. */
  execute(inputs: readonly NewLibrary[]): Promise<LibraryProps[]> {
    const libraries = inputs.map((input) => Library.create(input));
    return this.#tx.run(async (uow) => {
      const inserted: LibraryProps[] = [];
      for (const library of libraries) {
        const created = await uow.libraries.insertIfAbsent(library);
        if (created) inserted.push(created);
      }
      return inserted;
    });
  }
}
