import type { Kysely, Transaction } from 'kysely';
import type { IdempotencyClaim, IdempotencyKeyRepository } from '../../application/ports.ts';
import type { ReservationTables } from './schema.ts';

export class KyselyIdempotencyKeyRepository implements IdempotencyKeyRepository {
  readonly #db: Kysely<ReservationTables> | Transaction<ReservationTables>;

  constructor(db: Kysely<ReservationTables> | Transaction<ReservationTables>) {
    this.#db = db;
  }

  async bind(claim: IdempotencyClaim, reservationId: number): Promise<boolean> {
    const row = await this.#db
      .updateTable('idempotency_keys')
      .set({ reservation_id: reservationId })
      .where('customer_id', '=', claim.customerId)
      .where('idempotency_key', '=', claim.key)
      .where('claim_id', '=', claim.claimId)
      .returning('reservation_id')
      .executeTakeFirst();
    return row !== undefined;
  }
}
