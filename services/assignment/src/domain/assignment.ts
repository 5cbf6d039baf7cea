import type { LibraryProps } from './library.ts';

/**
 * `assigned`: the reservation is served by a library branch (the only active status).
 * `released`: the patron cancelled after the assignment; released once.
 * `voided`: a tombstone — the cancellation arrived before the request, so a late request for the
 * reservation must not be assigned.
 */
export type AssignmentStatus = 'assigned' | 'released' | 'voided';

export interface AssignmentProps {
  readonly assignmentId: number;
  readonly reservationId: number;
  readonly bookId: number;
  readonly customerId: string;
  /** Null only on a tombstone, which never had a library. */
  readonly libraryId: number | null;
  /** The branch's name when assigned, kept so the answer does not change if the branch is renamed. */
  readonly libraryName: string | null;
  readonly status: AssignmentStatus;
}

export type NewAssignment = Omit<AssignmentProps, 'assignmentId'>;

export interface ReservationRef {
  reservationId: number;
  bookId: number;
  customerId: string;
}

/** The library branch given to one reservation. One per reservation, released at most once. */
export class Assignment {
  readonly props: AssignmentProps;

  private constructor(props: AssignmentProps) {
    this.props = props;
  }

  static assign(reservation: ReservationRef, library: LibraryProps): NewAssignment {
    const { reservationId, bookId, customerId } = reservation;
    return { reservationId, bookId, customerId, libraryId: library.libraryId, libraryName: library.name, status: 'assigned' };
  }

  static tombstone(reservation: ReservationRef): NewAssignment {
    const { reservationId, bookId, customerId } = reservation;
    return { reservationId, bookId, customerId, libraryId: null, libraryName: null, status: 'voided' };
  }

  static restore(props: AssignmentProps): Assignment {
    return new Assignment(props);
  }

  get status(): AssignmentStatus {
    return this.props.status;
  }

  /** Returns the released assignment, or null when there is nothing to release (already released or voided). */
  release(): Assignment | null {
    if (this.props.status !== 'assigned') return null;
    return new Assignment({ ...this.props, status: 'released' });
  }
}
