import { sql, type Expression, type Kysely, type RawBuilder, type Selectable, type SelectQueryBuilder, type Transaction } from 'kysely';
import { STATUS_RANK } from '@bstore/contracts';
import { pageOf, serviceOf, type PageChange, type ReservationPage, type TimelineEntry } from '../../domain/reservation-page.ts';
import type { PageQuery, ReservationPageDetail, ReservationPageStore, WaitingLineQuery } from '../../application/ports.ts';
import type { CustomerCenterTables } from './schema.ts';

type PageRow = Selectable<CustomerCenterTables['reservation_pages']>;
type TimelineRow = Selectable<CustomerCenterTables['reservation_timeline']>;

const pageColumns = [
  'reservation_id',
  'book_id',
  'book_name',
  'customer_id',
  'status',
  'library_id',
  'library_name',
  'pickup_by',
  'due_at',
  'queue_ticket',
  'created_at',
  'updated_at',
] as const;

const timelineColumns = ['reservation_id', 'event_id', 'event_type', 'status', 'source', 'occurred_at', 'trace_id'] as const;

function toPage(row: PageRow): ReservationPage {
  return {
    reservationId: row.reservation_id,
    bookId: row.book_id,
    bookName: row.book_name,
    customerId: row.customer_id,
    status: row.status,
    libraryId: row.library_id,
    libraryName: row.library_name,
    pickupBy: row.pickup_by === null ? null : new Date(row.pickup_by),
    dueAt: row.due_at === null ? null : new Date(row.due_at),
    // int8: a number from pg (the platform's parser), a number or a bigint from PGlite.
    queueTicket: row.queue_ticket === null ? null : Number(row.queue_ticket),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

function toEntry(row: Omit<TimelineRow, 'id'>): TimelineEntry {
  return {
    eventId: row.event_id,
    eventType: row.event_type,
    status: row.status,
    service: serviceOf(row.source),
    occurredAt: new Date(row.occurred_at),
    traceId: row.trace_id,
  };
}

/** STATUS_RANK as SQL, so the upsert compares statuses exactly as the domain does. */
function rankOf(status: Expression<string>): RawBuilder<number> {
  const whens = Object.entries(STATUS_RANK).map(([name, rank]) => sql`WHEN ${sql.lit(name)} THEN ${sql.lit(rank)}`);
  return sql<number>`(CASE ${status} ${sql.join(whens, sql` `)} ELSE -1 END)`;
}

/**
 * The place in line of the page row `reservation_pages` (see `queuePositionOf`): a count over the
 * partial index `reservation_pages_waiting_line` (migration 0003), null unless it is waiting.
 */
const queuePosition = sql<number | null>`(CASE WHEN reservation_pages.status = 'bookWaiting' AND reservation_pages.queue_ticket IS NOT NULL THEN (1 + (
  SELECT count(*) FROM reservation_pages AS ahead
  WHERE ahead.book_id = reservation_pages.book_id AND ahead.status = 'bookWaiting' AND ahead.queue_ticket < reservation_pages.queue_ticket
))::integer END)`.as('queue_position');

type PageSelection = PageRow & { queue_position: number | null };

/**
 * ReservationPageStore on PostgreSQL/PGlite. The merge of `mergePages` is one
 * INSERT ... ON CONFLICT DO UPDATE, so concurrent changes to one page serialize on its row and
 * none is lost; its test checks it against the domain rule for every order of events.
 */
export class KyselyReservationPageStore implements ReservationPageStore {
  readonly #db: Kysely<CustomerCenterTables> | Transaction<CustomerCenterTables>;

  constructor(db: Kysely<CustomerCenterTables> | Transaction<CustomerCenterTables>) {
    this.#db = db;
  }

  async applyChange(change: PageChange): Promise<ReservationPage> {
    const incoming = pageOf(change);
    const row = await this.#db
      .insertInto('reservation_pages')
      .values({
        reservation_id: incoming.reservationId,
        book_id: incoming.bookId,
        book_name: incoming.bookName,
        customer_id: incoming.customerId,
        status: incoming.status,
        library_id: incoming.libraryId,
        library_name: incoming.libraryName,
        pickup_by: incoming.pickupBy,
        due_at: incoming.dueAt,
        queue_ticket: incoming.queueTicket,
        created_at: incoming.createdAt,
        updated_at: incoming.updatedAt,
      })
      .onConflict((oc) =>
        oc.column('reservation_id').doUpdateSet((eb) => ({
          book_name: eb.fn.coalesce('reservation_pages.book_name', 'excluded.book_name'),
          status: sql`CASE WHEN ${rankOf(eb.ref('excluded.status'))} > ${rankOf(eb.ref('reservation_pages.status'))}
            THEN excluded.status ELSE reservation_pages.status END`,
          library_id: eb.fn.coalesce('reservation_pages.library_id', 'excluded.library_id'),
          library_name: eb.fn.coalesce('reservation_pages.library_name', 'excluded.library_name'),
          pickup_by: eb.fn.coalesce('reservation_pages.pickup_by', 'excluded.pickup_by'),
          due_at: eb.fn.coalesce('reservation_pages.due_at', 'excluded.due_at'),
          queue_ticket: eb.fn.coalesce('reservation_pages.queue_ticket', 'excluded.queue_ticket'),
          created_at: sql`least(reservation_pages.created_at, excluded.created_at)`,
          updated_at: sql`greatest(reservation_pages.updated_at, excluded.updated_at)`,
        })),
      )
      .returning(pageColumns)
      .executeTakeFirstOrThrow();

    await this.#db
      .insertInto('reservation_timeline')
      .values({
        reservation_id: change.reservationId,
        event_id: change.eventId,
        event_type: change.eventType,
        status: change.status,
        source: change.source,
        occurred_at: change.occurredAt,
        trace_id: change.traceId,
      })
      .onConflict((oc) => oc.columns(['reservation_id', 'event_id']).doNothing())
      .execute();
    return toPage(row);
  }

  async get(reservationId: number): Promise<ReservationPageDetail | null> {
    const [detail] = await this.#details(this.#pages().where('reservation_id', '=', reservationId));
    return detail ?? null;
  }

  async list(query: PageQuery): Promise<{ items: ReservationPageDetail[]; total: number }> {
    let base = this.#db.selectFrom('reservation_pages');
    if (query.customerId !== undefined) base = base.where('customer_id', '=', query.customerId);
    if (query.status !== undefined) base = base.where('status', '=', query.status);
    const [items, count] = await Promise.all([
      this.#details(base.select([...pageColumns, queuePosition]).orderBy('updated_at', 'desc').orderBy('reservation_id', 'desc').limit(query.limit).offset(query.offset)),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items, total: Number(count.n) };
  }

  async waitingLine(query: WaitingLineQuery): Promise<ReservationPageDetail[]> {
    let line = this.#pages().where('book_id', '=', query.bookId).where('status', '=', 'bookWaiting');
    if (query.afterTicket !== undefined) line = line.where('queue_ticket', '>', query.afterTicket);
    return this.#details(line.orderBy('queue_ticket').orderBy('reservation_id').limit(query.limit));
  }

  async timeline(reservationId: number): Promise<TimelineEntry[]> {
    return (await this.#timelines([reservationId])).get(reservationId) ?? [];
  }

  /** Pages with their place in line. */
  #pages() {
    return this.#db.selectFrom('reservation_pages').select([...pageColumns, queuePosition]);
  }

  /** The pages a query selects, in its order, each with its timeline (read in one more query). */
  async #details(query: SelectQueryBuilder<CustomerCenterTables, 'reservation_pages', PageSelection>): Promise<ReservationPageDetail[]> {
    const rows = await query.execute();
    const timelines = await this.#timelines(rows.map((r) => r.reservation_id));
    return rows.map((row) => ({ ...toPage(row), queuePosition: row.queue_position, timeline: timelines.get(row.reservation_id) ?? [] }));
  }

  /** The timelines of several pages in one query, each oldest first. */
  async #timelines(reservationIds: number[]): Promise<Map<number, TimelineEntry[]>> {
    const byPage = new Map<number, TimelineEntry[]>();
    if (reservationIds.length === 0) return byPage;
    const rows = await this.#db
      .selectFrom('reservation_timeline')
      .select(timelineColumns)
      .where('reservation_id', 'in', reservationIds)
      .orderBy('occurred_at')
      .orderBy('event_id')
      .execute();
    for (const row of rows) {
      const entries = byPage.get(row.reservation_id) ?? [];
      entries.push(toEntry(row));
      byPage.set(row.reservation_id, entries);
    }
    return byPage;
  }
}
