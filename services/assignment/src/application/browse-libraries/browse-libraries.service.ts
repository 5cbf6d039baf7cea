import type { LibraryLoad } from '../../domain/library-assignment.policy.ts';
import type { LibraryRepository } from '../ports.ts';

/** Read side of the branches: each with the number of reservations it serves now. */
export class BrowseLibraries {
  readonly #libraries: LibraryRepository;

  constructor(libraries: LibraryRepository) {
    this.#libraries = libraries;
  }

  list(): Promise<LibraryLoad[]> {
    return this.#libraries.listWithLoad();
  }
}
