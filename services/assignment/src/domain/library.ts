import { DomainError } from '@bstore/platform/kernel';

export interface LibraryProps {
  readonly libraryId: number;
  readonly name: string;
  readonly address: string | null;
}

export interface NewLibrary {
  name: string;
  address?: string | null;
}

export const LIBRARY_NAME_MAX = 200;
export const LIBRARY_ADDRESS_MAX = 300;

/** A library branch where a reserved book is picked up. Names are unique across branches. */
export class Library {
  static create(input: NewLibrary): Omit<LibraryProps, 'libraryId'> {
    const name = input.name.trim();
    if (name.length === 0) throw new DomainError('INVALID_LIBRARY', 'name must not be blank');
    if (name.length > LIBRARY_NAME_MAX) throw new DomainError('INVALID_LIBRARY', `name must be at most ${LIBRARY_NAME_MAX} characters`);
    const address = input.address?.trim() || null;
    if (address && address.length > LIBRARY_ADDRESS_MAX) {
      throw new DomainError('INVALID_LIBRARY', `address must be at most ${LIBRARY_ADDRESS_MAX} characters`);
    }
    return { name, address };
  }
}
