import type { Kysely, Transaction } from 'kysely';
import { Hold } from '../../domain/hold.ts';
import type { HoldRepository } from '../../application/ports.ts';
import type { BookTables } from './schema.ts';

const columns = ['reservation_id', 'book_id', 'customer_id', 'status'] as const;

export class KyselyHoldRepository implements HoldRepository {
  readonly #db: Kysely<BookTables> | Transaction<BookTables>;

  constructor(db: Kysely<BookTables> | Transaction<BookTables>) {
    this.#db = db;
  }

  async insertIfAbsent(hold: Hold): Promise<boolean> {
    const p = hold.props;
    const row = await this.#db
      .insertInto('holds')
      .values({ reservation_id: p.reservationId, book_id: p.bookId, customer_id: p.customerId, status: p.status })
      .onConflict((oc) => oc.column('reservation_id').doNothing())
      .returning('reservation_id')
      .executeTakeFirst();
    return row !== undefined;
  }

  find(reservationId: number): Promise<Hold | null> {
    return this.#load(reservationId, false);
  }

  findForUpdate(reservationId: number): Promise<Hold | null> {
    return this.#load(reservationId, true);
  }

  async save(hold: Hold): Promise<void> {
    await this.#db
      .updateTable('holds')
      .set({ status: hold.props.status, updated_at: new Date() })
      .where('reservation_id', '=', hold.props.reservationId)
      .execute();
  }

  async #load(reservationId: number, lock: boolean): Promise<Hold | null> {
    let query = this.#db.selectFrom('holds').select(columns).where('reservation_id', '=', reservationId);
    if (lock) query = query.forUpdate();
    const row = await query.executeTakeFirst();
    return row ? Hold.restore({ reservationId: row.reservation_id, bookId: row.book_id, customerId: row.customer_id, status: row.status }) : null;
  }
}
