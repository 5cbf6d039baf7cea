import { describe, expect, it } from 'vitest';
import { DomainError } from '@bstore/platform/kernel';
import { Assignment, type AssignmentProps } from '../src/domain/assignment.ts';
import { Library, type LibraryProps } from '../src/domain/library.ts';
import { chooseLibrary, type LibraryLoad } from '../src/domain/library-assignment.policy.ts';

const lib = (libraryId: number, name = `Library ${libraryId}`): LibraryProps => ({ libraryId, name, address: null });
const load = (libraryId: number, activeAssignments: number): LibraryLoad => ({ library: lib(libraryId), activeAssignments });
const reservation = { reservationId: 7, bookId: 3, customerId: 'alice' };

function assigned(): Assignment {
  return Assignment.restore({ ...Assignment.assign(reservation, lib(2, 'Mapo')), assignmentId: 11 });
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof DomainError ? err.code : `not a DomainError: ${String(err)}`;
  }
  return undefined;
}

describe('library assignment policy', () => {
  it('takes the preferred library when it exists, however busy it is', () => {
    expect(chooseLibrary([load(1, 0), load(2, 9), load(3, 0)], 2).libraryId).toBe(2);
  });

  it('falls back to the fewest active assignments when the preferred library does not exist', () => {
    expect(chooseLibrary([load(1, 4), load(2, 1), load(3, 2)], 99).libraryId).toBe(2);
  });

  it('without a preference takes the library with the fewest active assignments', () => {
    expect(chooseLibrary([load(1, 5), load(2, 3), load(3, 1), load(4, 2)], null).libraryId).toBe(3);
    expect(chooseLibrary([load(1, 5), load(2, 3)]).libraryId).toBe(2);
  });

  it('breaks ties by the lowest libraryId, whatever the input order', () => {
    expect(chooseLibrary([load(4, 1), load(2, 1), load(3, 1), load(5, 2)], null).libraryId).toBe(2);
    expect(chooseLibrary([load(3, 0), load(1, 0)], null).libraryId).toBe(1);
  });

  it('without libraries refuses with NO_LIBRARY_AVAILABLE, even with a preference', () => {
    expect(codeOf(() => chooseLibrary([], null))).toBe('NO_LIBRARY_AVAILABLE');
    expect(codeOf(() => chooseLibrary([], 1))).toBe('NO_LIBRARY_AVAILABLE');
  });
});

describe('Assignment transitions', () => {
  it('assign records the library and its name as an active assignment', () => {
    expect(Assignment.assign(reservation, lib(2, 'Mapo'))).toEqual({ ...reservation, libraryId: 2, libraryName: 'Mapo', status: 'assigned' });
  });

  it('an assigned assignment is released once; releasing the released one gives null', () => {
    const a = assigned();
    const released = a.release();
    expect(released?.props).toEqual<AssignmentProps>({ ...a.props, status: 'released' });
    expect(a.status).toBe('assigned'); // no mutation: the aggregate returns a new state
    expect(released?.release()).toBeNull();
  });

  it('a tombstone has no library, is voided, and has nothing to release', () => {
    const tomb = Assignment.tombstone(reservation);
    expect(tomb).toEqual({ ...reservation, libraryId: null, libraryName: null, status: 'voided' });
    expect(Assignment.restore({ ...tomb, assignmentId: 12 }).release()).toBeNull();
  });
});

describe('Library.create', () => {
  it('trims the name and turns a blank address into null', () => {
    expect(Library.create({ name: '  Mapo  ', address: '   ' })).toEqual({ name: 'Mapo', address: null });
    expect(Library.create({ name: 'Jongno' })).toEqual({ name: 'Jongno', address: null });
  });

  it('refuses a blank or overlong name', () => {
    expect(codeOf(() => Library.create({ name: '   ' }))).toBe('INVALID_LIBRARY');
    expect(codeOf(() => Library.create({ name: 'x'.repeat(201) }))).toBe('INVALID_LIBRARY');
    expect(Library.create({ name: 'x'.repeat(200) }).name).toHaveLength(200);
  });
});
