import { DomainError } from '@bstore/platform/kernel';
import { Library, type LibraryProps, type NewLibrary } from '../../domain/library.ts';
import type { AssignmentTransactions } from '../ports.ts';

/** Staff open a library branch. Names are unique: a second branch of the same name is refused. */
export class CreateLibrary {
  readonly #tx: AssignmentTransactions;

  constructor(tx: AssignmentTransactions) {
    this.#tx = tx;
  }

  execute(input: NewLibrary): Promise<LibraryProps> {
    const library = Library.create(input);
    return this.#tx.run(async (uow) => {
      const created = await uow.libraries.insertIfAbsent(library);
      if (!created) throw new DomainError('LIBRARY_EXISTS', `a library named "${library.name}" already exists`, { name: library.name });
      return created;
    });
  }
}
