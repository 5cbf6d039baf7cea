import { createEnvelope, sourceOf, type IntegrationEvent } from '@bstore/contracts';
import type { AssignmentProps, ReservationRef } from '../domain/assignment.ts';
import type { LibraryProps } from '../domain/library.ts';

export function reservationAccepted(assignment: AssignmentProps, library: LibraryProps, pickupBy: Date): IntegrationEvent<'ReservationAccepted'> {
  return createEnvelope({
    type: 'ReservationAccepted',
    source: sourceOf('assignment'),
    subject: String(assignment.reservationId),
    data: {
      reservationId: assignment.reservationId,
      bookId: assignment.bookId,
      customerId: assignment.customerId,
      assignmentId: assignment.assignmentId,
      libraryId: library.libraryId,
      libraryName: library.name,
      status: 'bookReserved',
      pickupBy: pickupBy.toISOString(),
    },
  });
}

export function reservationAssignmentFailed(reservation: ReservationRef, reason: string): IntegrationEvent<'ReservationAssignmentFailed'> {
  return createEnvelope({
    type: 'ReservationAssignmentFailed',
    source: sourceOf('assignment'),
    subject: String(reservation.reservationId),
    data: { reservationId: reservation.reservationId, bookId: reservation.bookId, customerId: reservation.customerId, reason, status: 'rejected' },
  });
}

export function reservationCanceled(reservation: ReservationRef): IntegrationEvent<'ReservationCanceled'> {
  return createEnvelope({
    type: 'ReservationCanceled',
    source: sourceOf('assignment'),
    subject: String(reservation.reservationId),
    data: { reservationId: reservation.reservationId, bookId: reservation.bookId, customerId: reservation.customerId, status: 'bookCanceled' },
  });
}
