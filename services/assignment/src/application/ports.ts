import type { Outbox, TransactionRunner } from '@bstore/platform/kernel';
import type { Assignment, AssignmentProps, NewAssignment } from '../domain/assignment.ts';
import type { LibraryProps } from '../domain/library.ts';
import type { LibraryLoad } from '../domain/library-assignment.policy.ts';

/** An assignment as staff see it: with the time it was made. */
export interface AssignmentRecord extends AssignmentProps {
  readonly createdAt: Date;
}

export interface AssignmentQuery {
  reservationId?: number;
  limit: number;
  offset: number;
}

export interface AssignmentRepository {
  /**
   * Inserts the assignment unless the reservation already has one (INSERT ... ON CONFLICT
   * (reservation_id) DO NOTHING); null when it had.
   */
  insertIfAbsent(assignment: NewAssignment): Promise<AssignmentProps | null>;
  find(reservationId: number): Promise<Assignment | null>;
  /** Loads the reservation's assignment and locks its row until the transaction ends. */
  findForUpdate(reservationId: number): Promise<Assignment | null>;
  save(assignment: Assignment): Promise<void>;
  list(query: AssignmentQuery): Promise<{ items: AssignmentRecord[]; total: number }>;
}

export interface LibraryRepository {
  /** Inserts the library unless one has its name (ON CONFLICT (name) DO NOTHING); null when one had. */
  insertIfAbsent(library: Omit<LibraryProps, 'libraryId'>): Promise<LibraryProps | null>;
  /** Every library with its count of active assignments, by libraryId. */
  listWithLoad(): Promise<LibraryLoad[]>;
}

/** The repositories and outbox of one transaction. */
export interface AssignmentUnitOfWork {
  readonly assignments: AssignmentRepository;
  readonly libraries: LibraryRepository;
  readonly outbox: Outbox;
}

export type AssignmentTransactions = TransactionRunner<AssignmentUnitOfWork>;
