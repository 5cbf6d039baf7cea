/* The status vocabulary, with no dependency: the web app imports it through `@bstore/contracts/statuses`. */

/**
 * Reservation statuses. The five `book*` names of the seed are part of the public API; `pending`
 * and `rejected` are bstore's own (docs/adr/0003-reservation-lifecycle.md); `bookWaiting`,
 * `bookLoaned`, `bookReturned` and `bookExpired` carry a reservation through the library's whole
 * life of a hold, in the seed's style (docs/adr/0022-waiting-line-and-deadlines.md).
 */
export const RESERVATION_STATUSES = [
  'pending',
  'bookWaiting',
  'bookReserveReq',
  'bookOutOfStock',
  'rejected',
  'bookReserved',
  'bookCancel',
  'bookCanceled',
  'bookLoaned',
  'bookReturned',
  'bookExpired',
] as const;

export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];

/** Statuses in which a reservation holds a copy of its book, awaiting pickup or a library (invariant I2). */
export const ACTIVE_STATUSES: readonly ReservationStatus[] = ['bookReserveReq', 'bookReserved'];

/** Statuses nothing moves a reservation out of. */
export const TERMINAL_STATUSES: readonly ReservationStatus[] = ['bookOutOfStock', 'rejected', 'bookCanceled', 'bookReturned', 'bookExpired'];

/**
 * Progress order of the lifecycle. A read model that applies events arriving out of order keeps
 * the status with the higher rank, so it never moves backwards. Statuses of equal rank exclude
 * each other in one reservation's life (a reservation is either cancelled or loaned, and ends once).
 */
export const STATUS_RANK: Readonly<Record<ReservationStatus, number>> = {
  pending: 0,
  bookWaiting: 1,
  bookReserveReq: 2,
  bookReserved: 3,
  bookCancel: 4,
  bookLoaned: 4,
  bookCanceled: 5,
  bookOutOfStock: 5,
  rejected: 5,
  bookReturned: 5,
  bookExpired: 5,
};
