import { sql, type Kysely, type RawBuilder, type Selectable, type Transaction } from 'kysely';
import { ACTIVE_STATUSES, ONE_PER_BOOK_STATUSES, Reservation, type NewReservation, type ReservationProps, type ReservationStatus } from '../../domain/reservation.ts';
import type { ReservationRepository } from '../../application/ports.ts';
import type { ReservationTables } from './schema.ts';

type Row = Selectable<ReservationTables['reservations']> & { queue_position?: string | number | null };

/**
 * The place in line of a waiting reservation, computed as it is read: 1 + the reservations of the
 * same book waiting with a smaller ticket (index reservations_waiting_line).
 */
const queuePosition: RawBuilder<string | number | null> = sql<string | number | null>`CASE WHEN r.status = 'bookWaiting' THEN (
    SELECT count(*) FROM reservations w WHERE w.book_id = r.book_id AND w.status = 'bookWaiting' AND w.queue_ticket <= r.queue_ticket
  ) END`;

function toProps(row: Row): ReservationProps {
  return {
    reservationId: row.reservation_id,
    bookId: row.book_id,
    customerId: row.customer_id,
    preferredLibraryId: row.preferred_library_id,
    status: row.status,
    bookName: row.book_name,
    libraryId: row.library_id,
    libraryName: row.library_name,
    rejectReason: row.reject_reason,
    attempts: row.attempts,
    idempotencyKey: row.idempotency_key,
    waitlist: row.waitlist,
    queueTicket: row.queue_ticket === null ? null : Number(row.queue_ticket),
    queuePosition: row.queue_position === null || row.queue_position === undefined ? null : Number(row.queue_position),
    pickupBy: row.pickup_by === null ? null : new Date(row.pickup_by),
    dueAt: row.due_at === null ? null : new Date(row.due_at),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

function toRow(p: NewReservation) {
  return {
    book_id: p.bookId,
    customer_id: p.customerId,
    preferred_library_id: p.preferredLibraryId,
    status: p.status,
    book_name: p.bookName,
    library_id: p.libraryId,
    library_name: p.libraryName,
    reject_reason: p.rejectReason,
    attempts: p.attempts,
    idempotency_key: p.idempotencyKey,
    waitlist: p.waitlist,
    queue_ticket: p.queueTicket,
    pickup_by: p.pickupBy,
    due_at: p.dueAt,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  };
}

export class KyselyReservationRepository implements ReservationRepository {
  readonly #db: Kysely<ReservationTables> | Transaction<ReservationTables>;

  constructor(db: Kysely<ReservationTables> | Transaction<ReservationTables>) {
    this.#db = db;
  }

  async insert(reservation: NewReservation): Promise<Reservation> {
    const row = await this.#db.insertInto('reservations').values(toRow(reservation)).returningAll().executeTakeFirstOrThrow();
    return Reservation.restore(toProps(row));
  }

  async find(reservationId: number): Promise<Reservation | null> {
    const row = await this.#db
      .selectFrom('reservations as r')
      .selectAll('r')
      .select(queuePosition.as('queue_position'))
      .where('r.reservation_id', '=', reservationId)
      .executeTakeFirst();
    return row ? Reservation.restore(toProps(row)) : null;
  }

  async findForUpdate(reservationId: number): Promise<Reservation | null> {
    // With its place in line, so that an answer made from the locked row (a retry, a drive another
    // request finished) shows it too.
    const row = await this.#db
      .selectFrom('reservations as r')
      .selectAll('r')
      .select(queuePosition.as('queue_position'))
      .where('r.reservation_id', '=', reservationId)
      .forUpdate()
      .executeTakeFirst();
    return row ? Reservation.restore(toProps(row)) : null;
  }

  async save(reservation: Reservation): Promise<void> {
    await this.#db.updateTable('reservations').set(toRow(reservation.props)).where('reservation_id', '=', reservation.id).execute();
  }

  async delete(reservationId: number): Promise<void> {
    await this.#db.deleteFrom('reservations').where('reservation_id', '=', reservationId).execute();
  }

  async countActiveAndLock(customerId: string): Promise<number> {
    // A transaction-scoped advisory lock per customer: two placements by one patron serialize here,
    // placements by different patrons do not wait for each other.
    await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`reservation-customer:${customerId}`}, 0))`.execute(this.#db);
    const row = await this.#db
      .selectFrom('reservations')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('customer_id', '=', customerId)
      .where('status', 'in', ACTIVE_STATUSES)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async findOpenForBook(customerId: string, bookId: number): Promise<{ reservationId: number; status: ReservationStatus } | null> {
    const row = await this.#db
      .selectFrom('reservations')
      .select(['reservation_id', 'status'])
      .where('customer_id', '=', customerId)
      .where('book_id', '=', bookId)
      .where('status', 'in', ONE_PER_BOOK_STATUSES)
      .orderBy('reservation_id')
      .limit(1)
      .executeTakeFirst();
    return row ? { reservationId: row.reservation_id, status: row.status } : null;
  }

  async assignMissingDeadlines(pickupMs: number): Promise<number> {
    const result = await this.#db
      .updateTable('reservations')
      .set({ pickup_by: sql<Date>`updated_at + make_interval(secs => ${pickupMs / 1000})` })
      .where('status', '=', 'bookReserved')
      .where('pickup_by', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async findUncollected(now: Date, limit: number): Promise<number[]> {
    const rows = await this.#db
      .selectFrom('reservations')
      .select('reservation_id')
      .where('status', '=', 'bookReserved')
      .where('pickup_by', '<=', now)
      .orderBy('pickup_by')
      .limit(limit)
      .execute();
    return rows.map((r) => r.reservation_id);
  }

  async findStalePending(before: Date, limit: number): Promise<number[]> {
    const rows = await this.#db
      .selectFrom('reservations')
      .select('reservation_id')
      .where('status', '=', 'pending')
      .where('updated_at', '<', before)
      .orderBy('updated_at')
      .limit(limit)
      .execute();
    return rows.map((r) => r.reservation_id);
  }

  async list(query: { customerId?: string; status?: ReservationStatus; libraryId?: number; limit: number; offset: number }) {
    let base = this.#db.selectFrom('reservations as r');
    if (query.customerId) base = base.where('r.customer_id', '=', query.customerId);
    if (query.status) base = base.where('r.status', '=', query.status);
    if (query.libraryId !== undefined) base = base.where('r.library_id', '=', query.libraryId);
    const [rows, count] = await Promise.all([
      base.selectAll('r').select(queuePosition.as('queue_position')).orderBy('r.reservation_id', 'desc').limit(query.limit).offset(query.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(toProps), total: Number(count.n) };
  }
}
