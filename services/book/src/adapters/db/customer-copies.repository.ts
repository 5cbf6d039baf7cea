import type { Kysely, Transaction } from 'kysely';
import type { CustomerCopiesRepository } from '../../application/ports.ts';
import type { BookTables } from './schema.ts';

export class KyselyCustomerCopiesRepository implements CustomerCopiesRepository {
  readonly #db: Kysely<BookTables> | Transaction<BookTables>;

  constructor(db: Kysely<BookTables> | Transaction<BookTables>) {
    this.#db = db;
  }

  async takeOne(customerId: string, limit: number): Promise<boolean> {
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
      .set((eb) => ({ held: eb('held', '-', 1) }))
      .where('customer_id', '=', customerId)
      .execute();
  }

  async held(customerId: string): Promise<number> {
    const row = await this.#db.selectFrom('customer_copies').select('held').where('customer_id', '=', customerId).executeTakeFirst();
    return row?.held ?? 0;
  }
}
