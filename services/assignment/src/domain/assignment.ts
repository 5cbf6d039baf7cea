import type { LibraryProps } from './library.ts';

/**
 * `assigned`: the reservation is served by a library branch (the only active status).
 * `released`: the patron cancelled after the assignment; released once.
 * `voided`: a tombstone — the cancellation arrived before the request, so a late request for the
 * reservation must not be assigned.
 * `failed`: no library branch could serve the reservation (none exists); the reservation is
 * rejected. A cancellation that overtook that rejection still completes (the row becomes `voided`).
 * `closed`: the copy left the branch's hold shelf — checked out to the patron, or not picked up by
 * its deadline (ADR 0022) — so it no longer counts in the branch's load.
 */
export type AssignmentStatus = 'assigned' | 'released' | 'voided' | 'failed' | 'closed';

export interface AssignmentProps {
  readonly assignmentId: number;
  readonly reservationId: number;
  readonly bookId: number;
  readonly customerId: string;
  /** Null only on a tombstone or a failed assignment, which never had a library. */
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

  /** No branch could be chosen: recorded so that the request is answered once, and a late cancel still completes. */
  static failed(reservation: ReservationRef): NewAssignment {
    const { reservationId, bookId, customerId } = reservation;
    return { reservationId, bookId, customerId, libraryId: null, libraryName: null, status: 'failed' };
  }

  static restore(props: AssignmentProps): Assignment {
    return new Assignment(props);
  }

  get status(): AssignmentStatus {
    return this.props.status;
  }

  /**
   * The reservation is cancelled. Returns the assignment after the cancellation, which is then
   * announced (ReservationCanceled), or null when a cancellation was already recorded (released or
   * voided). A failed assignment is voided: it held no library, but the cancellation must still be
   * announced, or the reservation would wait for it in `bookCancel` for ever.
   */
  /** The hold shelf is free again (picked up or expired); null unless it was assigned (a duplicate). */
  close(): Assignment | null {
    return this.props.status === 'assigned' ? new Assignment({ ...this.props, status: 'closed' }) : null;
  }

  release(): Assignment | null {
    if (this.props.status === 'assigned') return new Assignment({ ...this.props, status: 'released' });
    if (this.props.status === 'failed') return new Assignment({ ...this.props, status: 'voided' });
    return null;
  }
}
