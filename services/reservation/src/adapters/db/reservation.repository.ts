import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { ACTIVE_STATUSES, Reservation, type NewReservation, type ReservationProps, type ReservationStatus } from '../../domain/reservation.ts';
import type { ReservationRepository } from '../../application/ports.ts';
import type { ReservationTables } from './schema.ts';

type Row = Selectable<ReservationTables['reservations']>;

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
    const row = await this.#db.selectFrom('reservations').selectAll().where('reservation_id', '=', reservationId).executeTakeFirst();
    return row ? Reservation.restore(toProps(row)) : null;
  }

  async findForUpdate(reservationId: number): Promise<Reservation | null> {
    const row = await this.#db.selectFrom('reservations').selectAll().where('reservation_id', '=', reservationId).forUpdate().executeTakeFirst();
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

  async list(query: { customerId?: string; status?: ReservationStatus; limit: number; offset: number }) {
    let base = this.#db.selectFrom('reservations');
    if (query.customerId) base = base.where('customer_id', '=', query.customerId);
    if (query.status) base = base.where('status', '=', query.status);
    const [rows, count] = await Promise.all([
      base.selectAll().orderBy('reservation_id', 'desc').limit(query.limit).offset(query.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(toProps), total: Number(count.n) };
  }
}
