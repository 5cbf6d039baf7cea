import { sql, type Kysely, type Transaction } from 'kysely';
import { Hold } from '../../domain/hold.ts';
import type { HoldRepository } from '../../application/ports.ts';
import type { BookTables } from './schema.ts';

const columns = ['reservation_id', 'book_id', 'customer_id', 'status', 'queue_ticket'] as const;

type Row = { reservation_id: number; book_id: number; customer_id: string; status: Hold['props']['status']; queue_ticket: string | number | null };

function toHold(row: Row): Hold {
  return Hold.restore({
    reservationId: row.reservation_id,
    bookId: row.book_id,
    customerId: row.customer_id,
    status: row.status,
    queueTicket: row.queue_ticket === null ? null : Number(row.queue_ticket),
  });
}

export class KyselyHoldRepository implements HoldRepository {
  readonly #db: Kysely<BookTables> | Transaction<BookTables>;

  constructor(db: Kysely<BookTables> | Transaction<BookTables>) {
    this.#db = db;
  }

  async insertIfAbsent(hold: Hold): Promise<boolean> {
    const p = hold.props;
    const row = await this.#db
      .insertInto('holds')
      .values({ reservation_id: p.reservationId, book_id: p.bookId, customer_id: p.customerId, status: p.status, queue_ticket: p.queueTicket })
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
      .set({ status: hold.props.status, queue_ticket: hold.props.queueTicket, updated_at: new Date() })
      .where('reservation_id', '=', hold.props.reservationId)
      .execute();
  }

  async nextQueueTicket(): Promise<number> {
    const { rows } = await sql<{ ticket: string | number }>`SELECT nextval('hold_queue_tickets') AS ticket`.execute(this.#db);
    return Number(rows[0]!.ticket);
  }

  async oldestWaiting(bookId: number): Promise<Hold | null> {
    const row = await this.#db
      .selectFrom('holds')
      .select(columns)
      .where('book_id', '=', bookId)
      .where('status', '=', 'waiting')
      .orderBy('queue_ticket')
      .limit(1)
      .executeTakeFirst();
    return row ? toHold(row) : null;
  }

  async grant(reservationId: number): Promise<Hold | null> {
    const row = await this.#db
      .updateTable('holds')
      .set({ status: 'held', updated_at: new Date() })
      .where('reservation_id', '=', reservationId)
      .where('status', '=', 'waiting')
      .returning(columns)
      .executeTakeFirst();
    return row ? toHold(row) : null;
  }

  async queuePosition(bookId: number, queueTicket: number): Promise<number> {
    const row = await this.#db
      .selectFrom('holds')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('book_id', '=', bookId)
      .where('status', '=', 'waiting')
      .where('queue_ticket', '<=', queueTicket)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async #load(reservationId: number, lock: boolean): Promise<Hold | null> {
    let query = this.#db.selectFrom('holds').select(columns).where('reservation_id', '=', reservationId);
    if (lock) query = query.forUpdate();
    const row = await query.executeTakeFirst();
    return row ? toHold(row) : null;
  }
}
