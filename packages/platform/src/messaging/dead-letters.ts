import type { Kysely, Selectable } from 'kysely';
import type { DeadLetterInput } from './inbox.ts';
import type { MessagingTables } from './schema.ts';

/** A parked event as stored: what the consumer gave up on, when, and whether it was replayed since. */
export interface DeadLetter extends DeadLetterInput {
  /** The store's own number for the letter, unique within one service (SQL identity, Redis counter). */
  readonly id: number;
  readonly createdAt: Date;
  /** When a replay handled it (or found it already handled); null while it waits for one. */
  readonly replayedAt: Date | null;
}

export interface DeadLetterQuery {
  limit: number;
  offset: number;
  /** Only the letters not replayed yet. */
  pending?: boolean;
}

/**
 * Where a service's dead letters can be looked at and marked replayed: the storage-neutral port
 * behind the operator's `/admin/dead-letters` routes. `KyselyDeadLetterStore` reads the
 * `dead_letters` table every SQL service has; customercenter's `RedisInbox` keeps its own in Redis.
 *
 * @example
 * const { items, total } = await store.list({ limit: 20, offset: 0, pending: true });
 */
export interface DeadLetterStore {
  /** Newest first (highest id first), with the total that matches the filter. */
  list(query: DeadLetterQuery): Promise<{ items: DeadLetter[]; total: number }>;
  get(id: number): Promise<DeadLetter | null>;
  /**
   * Records that a replay dealt with the letter, unless one already did: true when this call
   * marked it, false when it was marked before (or does not exist). Atomic, so of two replays
   * racing on one letter exactly one marks it.
   */
  markReplayed(id: number, at: Date): Promise<boolean>;
  /** How many letters wait for a replay and how many were replayed (for `bstore_dead_letters`, at scrape time). */
  counts(): Promise<{ pending: number; replayed: number }>;
}

/** The dead letters of a service with a SQL database (PGlite or PostgreSQL): its `dead_letters` table. */
export class KyselyDeadLetterStore<DB> implements DeadLetterStore {
  readonly #db: Kysely<MessagingTables>;

  constructor(db: Kysely<DB>) {
    this.#db = db as unknown as Kysely<MessagingTables>;
  }

  async list(query: DeadLetterQuery): Promise<{ items: DeadLetter[]; total: number }> {
    const base = query.pending ? this.#db.selectFrom('dead_letters').where('replayed_at', 'is', null) : this.#db.selectFrom('dead_letters');
    const [rows, count] = await Promise.all([
      base.selectAll().orderBy('id', 'desc').limit(query.limit).offset(query.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(letterOf), total: Number(count.total) };
  }

  async get(id: number): Promise<DeadLetter | null> {
    const row = await this.#db.selectFrom('dead_letters').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? letterOf(row) : null;
  }

  async markReplayed(id: number, at: Date): Promise<boolean> {
    const marked = await this.#db
      .updateTable('dead_letters')
      .set({ replayed_at: at })
      .where('id', '=', id)
      .where('replayed_at', 'is', null)
      .returning('id')
      .executeTakeFirst();
    return marked !== undefined;
  }

  /** One COUNT over the table (dead letters are few: each is a fault that needs a person). */
  async counts(): Promise<{ pending: number; replayed: number }> {
    const row = await this.#db
      .selectFrom('dead_letters')
      .select((eb) => [eb.fn.countAll<number>().as('total'), eb.fn.count<number>('replayed_at').as('replayed')])
      .executeTakeFirstOrThrow();
    const replayed = Number(row.replayed);
    return { pending: Number(row.total) - replayed, replayed };
  }
}

type Row = Selectable<MessagingTables['dead_letters']>;

function letterOf(row: Row): DeadLetter {
  return {
    id: Number(row.id),
    consumer: row.consumer,
    eventId: row.event_id,
    eventType: row.event_type,
    subject: row.subject,
    envelope: row.envelope,
    error: row.error,
    deliveries: Number(row.deliveries),
    createdAt: new Date(row.created_at),
    replayedAt: row.replayed_at === null ? null : new Date(row.replayed_at),
  };
}
