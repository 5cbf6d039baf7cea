import type { Transaction } from 'kysely';
import { KyselyOutbox } from '@bstore/platform';
import type { ReservationUnitOfWork } from '../../application/ports.ts';
import { KyselyIdempotencyKeyRepository } from './idempotency-key.repository.ts';
import { KyselyReservationRepository } from './reservation.repository.ts';
import type { ReservationTables } from './schema.ts';

export function reservationUnitOfWork(trx: Transaction<ReservationTables>): ReservationUnitOfWork {
  return { reservations: new KyselyReservationRepository(trx), idempotencyKeys: new KyselyIdempotencyKeyRepository(trx), outbox: new KyselyOutbox(trx) };
}
