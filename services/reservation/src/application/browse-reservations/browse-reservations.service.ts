import { DomainError } from '@bstore/platform/kernel';
import type { ReservationProps, ReservationStatus } from '../../domain/reservation.ts';
import type { ReservationRepository, Requester } from '../ports.ts';

export class BrowseReservations {
  readonly #reservations: ReservationRepository;

  constructor(reservations: ReservationRepository) {
    this.#reservations = reservations;
  }

  /** Another customer's reservation is answered as not found, so ids reveal nothing. */
  async get(reservationId: number, requester: Requester): Promise<ReservationProps> {
    const r = await this.#reservations.find(reservationId);
    if (!r || (requester.role !== 'staff' && !r.isOwnedBy(requester.customerId))) {
      throw new DomainError('RESERVATION_NOT_FOUND', `reservation ${reservationId} does not exist`, { reservationId });
    }
    return r.props;
  }

  list(
    query: { status?: ReservationStatus; customerId?: string; libraryId?: number; limit: number; offset: number },
    requester: Requester,
  ): Promise<{ items: ReservationProps[]; total: number }> {
    const customerId = requester.role === 'staff' ? query.customerId : requester.customerId;
    return this.#reservations.list({ ...query, ...(customerId ? { customerId } : {}) });
  }
}
