import { sql, type Kysely, type Transaction } from 'kysely';
import type { CustomerCopiesRepository } from '../../application/ports.ts';
import type { BookTables } from './schema.ts';

export class KyselyCustomerCopiesRepository implements CustomerCopiesRepository {
  readonly #db: Kysely<BookTables> | Transaction<BookTables>;

  constructor(db: Kysely<BookTables> | Transaction<BookTables>) {
    this.#db = db;
  }

  async takeOne(customerId: string, limit: number, forReservationId: number): Promise<boolean> {
    if (await this.#tryTake(customerId, limit)) return true;
    // Refused. Count again from the holds before saying no, so that a count that drifted (a book of
    // an older version taking or releasing holds beside this one during a rolling upgrade) corrects
    // itself instead of locking the patron out. The row is locked by the attempt above, so holds of
    // this patron that commit later wait for it; this reservation's own hold row is not counted yet.
    await this.#db
      .updateTable('customer_copies')
      .set({
        held: sql<number>`(SELECT count(*) FROM holds WHERE holds.customer_id = ${customerId} AND holds.status IN ('held', 'waiting') AND holds.reservation_id <> ${forReservationId})`,
      })
      .where('customer_id', '=', customerId)
      .execute();
    return this.#tryTake(customerId, limit);
  }

  async #tryTake(customerId: string, limit: number): Promise<boolean> {
    // One statement, like the stock's conditional decrement: the row's lock serializes one patron's
    // holds, and the WHERE refuses the one past the limit (no row returned).
    const row = await this.#db
      .insertInto('customer_copies')
      .values({ customer_id: customerId, held: 1 })
      .onConflict((oc) =>
        oc
          .column('customer_id')
          .doUpdateSet((eb) => ({ held: eb('customer_copies.held', '+', 1) }))
          .where('customer_copies.held', '<', limit),
      )
      .returning('held')
      .executeTakeFirst();
    return row !== undefined;
  }

  async giveBackOne(customerId: string): Promise<void> {
    await this.#db
      .updateTable('customer_copies')
      // Never below zero, even if the count drifted (see takeOne): a release must not fail on it.
      .set({ held: sql<number>`greatest(held - 1, 0)` })
      .where('customer_id', '=', customerId)
      .execute();
  }

  async lock(customerId: string): Promise<void> {
    await this.#db.selectFrom('customer_copies').select('customer_id').where('customer_id', '=', customerId).forUpdate().execute();
  }

  async held(customerId: string): Promise<number> {
    const row = await this.#db.selectFrom('customer_copies').select('held').where('customer_id', '=', customerId).executeTakeFirst();
    return row?.held ?? 0;
  }
}
