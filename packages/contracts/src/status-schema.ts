import { Type, type Static } from 'typebox';
import type { ReservationStatus } from './statuses.ts';

/** The status as a schema, for routes and events: one literal per status of RESERVATION_STATUSES. */
export const ReservationStatusSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('bookWaiting'),
  Type.Literal('bookReserveReq'),
  Type.Literal('bookOutOfStock'),
  Type.Literal('rejected'),
  Type.Literal('bookReserved'),
  Type.Literal('bookCancel'),
  Type.Literal('bookCanceled'),
  Type.Literal('bookLoaned'),
  Type.Literal('bookReturned'),
  Type.Literal('bookExpired'),
]);

// The schema and the vocabulary name the same statuses: the compiler fails here if they part.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameStatuses: Same<Static<typeof ReservationStatusSchema>, ReservationStatus> = true;
void sameStatuses;
