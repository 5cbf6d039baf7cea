import type { ReservationPage, ReservationStatus } from '../api.ts';

/** Progress order of the lifecycle: a status never moves back to a lower rank. */
export const STATUS_RANK: Readonly<Record<ReservationStatus, number>> = {
  pending: 0,
  bookReserveReq: 1,
  bookReserved: 2,
  bookCancel: 3,
  bookCanceled: 4,
  bookOutOfStock: 4,
  rejected: 4,
};

/** The fresher of two versions of a page (the stream and a reload can cross). */
export function fresher(current: ReservationPage, incoming: ReservationPage): ReservationPage {
  if (incoming.updatedAt > current.updatedAt) return incoming;
  if (incoming.updatedAt < current.updatedAt) return current;
  return STATUS_RANK[incoming.status] >= STATUS_RANK[current.status] ? incoming : current;
}
