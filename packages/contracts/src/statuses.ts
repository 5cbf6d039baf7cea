import { Type } from 'typebox';

/**
 * Reservation statuses. The five `book*` names are the seed's and part of the public API;
 * `pending` and `rejected` are bstore's own (see docs/adr/0003-reservation-lifecycle.md).
 */
export const RESERVATION_STATUSES = [
  'pending',
  'bookReserveReq',
  'bookOutOfStock',
  'rejected',
  'bookReserved',
  'bookCancel',
  'bookCanceled',
] as const;

export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];

/** Statuses in which a reservation holds a copy of its book (invariant I2). */
export const ACTIVE_STATUSES: readonly ReservationStatus[] = ['bookReserveReq', 'bookReserved'];

/** Statuses nothing moves a reservation out of. */
export const TERMINAL_STATUSES: readonly ReservationStatus[] = ['bookOutOfStock', 'rejected', 'bookCanceled'];

/**
 * Progress order of the lifecycle. A read model that applies events arriving out of order keeps
 * the status with the higher rank, so it never moves backwards.
 */
export const STATUS_RANK: Readonly<Record<ReservationStatus, number>> = {
  pending: 0,
  bookReserveReq: 1,
  bookReserved: 2,
  bookCancel: 3,
  bookCanceled: 4,
  bookOutOfStock: 4,
  rejected: 4,
};

/** The status as a schema, for routes and events. */
export const ReservationStatusSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('bookReserveReq'),
  Type.Literal('bookOutOfStock'),
  Type.Literal('rejected'),
  Type.Literal('bookReserved'),
  Type.Literal('bookCancel'),
  Type.Literal('bookCanceled'),
]);
