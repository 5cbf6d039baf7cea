import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { NoticeContent, ReminderKind, ReservationFacts } from '../../domain/notice.ts';
import type { Notice, NoticeQuery, NoticeStore, NotificationUnitOfWork } from '../../application/ports.ts';
import type { NotificationTables } from './schema.ts';

type FactsRow = Selectable<NotificationTables['reservation_facts']>;
type NoticeRow = Selectable<NotificationTables['notices']>;

function factsOf(row: FactsRow): ReservationFacts {
  return {
    reservationId: row.reservation_id,
    customerId: row.customer_id,
    bookId: row.book_id,
    status: row.status,
    bookName: row.book_name,
    libraryName: row.library_name,
    pickupBy: row.pickup_by ? new Date(row.pickup_by) : null,
    dueAt: row.due_at ? new Date(row.due_at) : null,
  };
}

function noticeOf(row: NoticeRow): Notice {
  return {
    noticeId: Number(row.notice_id),
    customerId: row.customer_id,
    reservationId: row.reservation_id,
    kind: row.kind,
    bookId: row.book_id,
    bookName: row.book_name,
    libraryName: row.library_name,
    deadline: row.deadline ? new Date(row.deadline) : null,
    createdAt: new Date(row.created_at),
    readAt: row.read_at ? new Date(row.read_at) : null,
  };
}

function factsRow(facts: ReservationFacts) {
  return {
    customer_id: facts.customerId,
    book_id: facts.bookId,
    status: facts.status,
    book_name: facts.bookName,
    library_name: facts.libraryName,
    pickup_by: facts.pickupBy,
    due_at: facts.dueAt,
  };
}

/** The notification service's unit of work, on the consumer's (or the sweep's) transaction. */
export function notificationUnitOfWork(trx: Transaction<NotificationTables>): NotificationUnitOfWork {
  const select = (reservationId: number) => trx.selectFrom('reservation_facts').selectAll().where('reservation_id', '=', reservationId);
  return {
    async lockFacts(first) {
      // The first event of a reservation stores its facts; another first event at the same moment
      // waits on the key, does nothing, and then reads (and locks) what the first one committed.
      const stored = await trx
        .insertInto('reservation_facts')
        .values({ reservation_id: first.reservationId, ...factsRow(first) })
        .onConflict((oc) => oc.column('reservation_id').doNothing())
        .returning('reservation_id')
        .executeTakeFirst();
      if (stored) return undefined;
      const row = await select(first.reservationId).forUpdate().executeTakeFirstOrThrow();
      return factsOf(row);
    },
    async findFacts(reservationId) {
      const row = await select(reservationId).executeTakeFirst();
      return row ? factsOf(row) : undefined;
    },
    async saveFacts(facts) {
      await trx
        .updateTable('reservation_facts')
        .set({ ...factsRow(facts), updated_at: sql`now()` })
        .where('reservation_id', '=', facts.reservationId)
        .execute();
    },
    async addNotice(notice: NoticeContent) {
      const added = await trx
        .insertInto('notices')
        .values({
          customer_id: notice.customerId,
          reservation_id: notice.reservationId,
          kind: notice.kind,
          book_id: notice.bookId,
          book_name: notice.bookName,
          library_name: notice.libraryName,
          deadline: notice.deadline,
        })
        .onConflict((oc) => oc.columns(['reservation_id', 'kind']).doNothing())
        .returning('notice_id')
        .executeTakeFirst();
      return added !== undefined;
    },
    async scheduleReminders(reservationId, wanted) {
      const kinds = wanted.map((w) => w.kind);
      let drop = trx.deleteFrom('reminders').where('reservation_id', '=', reservationId);
      if (kinds.length > 0) drop = drop.where('kind', 'not in', kinds);
      await drop.execute();
      for (const reminder of wanted) {
        await trx
          .insertInto('reminders')
          .values({ reservation_id: reservationId, kind: reminder.kind, due_at: reminder.dueAt })
          .onConflict((oc) => oc.columns(['reservation_id', 'kind']).doUpdateSet({ due_at: reminder.dueAt }))
          .execute();
      }
    },
    async claimDueReminders(now, limit) {
      const rows = await sql<{ reservation_id: number; kind: ReminderKind }>`
        DELETE FROM reminders WHERE (reservation_id, kind) IN (
          SELECT reservation_id, kind FROM reminders WHERE due_at <= ${now} ORDER BY due_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING reservation_id, kind`.execute(trx);
      return rows.rows.map((r) => ({ reservationId: r.reservation_id, kind: r.kind }));
    },
  };
}

/** The patrons' notices in SQL. */
export class KyselyNoticeStore implements NoticeStore {
  readonly #db: Kysely<NotificationTables>;

  constructor(db: Kysely<NotificationTables>) {
    this.#db = db;
  }

  async list(query: NoticeQuery): Promise<{ items: Notice[]; total: number; unread: number }> {
    let base = this.#db.selectFrom('notices');
    if (query.customerId !== undefined) base = base.where('customer_id', '=', query.customerId);
    const counts = await base
      .select((eb) => [eb.fn.countAll<number>().as('total'), eb.fn.count<number>('notice_id').filterWhere('read_at', 'is', null).as('unread')])
      .executeTakeFirstOrThrow();
    let rows = base.selectAll();
    if (query.unreadOnly) rows = rows.where('read_at', 'is', null);
    const items = await rows.orderBy('notice_id', 'desc').limit(query.limit).offset(query.offset).execute();
    const total = query.unreadOnly ? Number(counts.unread) : Number(counts.total);
    return { items: items.map(noticeOf), total, unread: Number(counts.unread) };
  }

  async get(noticeId: number): Promise<Notice | undefined> {
    const row = await this.#db.selectFrom('notices').selectAll().where('notice_id', '=', noticeId).executeTakeFirst();
    return row ? noticeOf(row) : undefined;
  }

  async markRead(noticeId: number, at: Date): Promise<Notice | undefined> {
    await this.#db.updateTable('notices').set({ read_at: at }).where('notice_id', '=', noticeId).where('read_at', 'is', null).execute();
    return this.get(noticeId);
  }

  async markAllRead(customerId: string, at: Date): Promise<number> {
    const result = await this.#db.updateTable('notices').set({ read_at: at }).where('customer_id', '=', customerId).where('read_at', 'is', null).executeTakeFirst();
    return Number(result.numUpdatedRows);
  }
}
