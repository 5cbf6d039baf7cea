import { sql, type Expression, type Kysely, type RawBuilder, type Selectable, type Transaction } from 'kysely';
import { STATUS_RANK } from '@bstore/contracts';
import { pageOf, serviceOf, type PageChange, type ReservationPage, type TimelineEntry } from '../../domain/reservation-page.ts';
import type { PageQuery, ReservationPageDetail, ReservationPageStore } from '../../application/ports.ts';
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
    const row = await this.#db.selectFrom('reservation_pages').select(pageColumns).where('reservation_id', '=', reservationId).executeTakeFirst();
    if (!row) return null;
    return { ...toPage(row), timeline: await this.timeline(reservationId) };
  }

  async list(query: PageQuery): Promise<{ items: ReservationPageDetail[]; total: number }> {
    let base = this.#db.selectFrom('reservation_pages');
    if (query.customerId !== undefined) base = base.where('customer_id', '=', query.customerId);
    if (query.status !== undefined) base = base.where('status', '=', query.status);
    const [rows, count] = await Promise.all([
      base.select(pageColumns).orderBy('updated_at', 'desc').orderBy('reservation_id', 'desc').limit(query.limit).offset(query.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    const timelines = await this.#timelines(rows.map((r) => r.reservation_id));
    return {
      items: rows.map((row) => ({ ...toPage(row), timeline: timelines.get(row.reservation_id) ?? [] })),
      total: Number(count.n),
    };
  }

  async timeline(reservationId: number): Promise<TimelineEntry[]> {
    return (await this.#timelines([reservationId])).get(reservationId) ?? [];
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
