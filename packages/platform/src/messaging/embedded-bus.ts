import { sql, type Generated, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { EventEnvelope } from '@bstore/contracts';
import { openDatabase, type DatabaseConfig, type Database } from '../db/database.ts';
import type { ConsumerSpec, Delivery, DeliveryOutcome, MessageBus, Subscription } from './bus.ts';
import { Wakeup } from './wakeup.ts';

interface BusTables {
  bus_messages: { seq: Generated<number>; id: string; subject: string; envelope: EventEnvelope; stored_at: Generated<Date> };
  bus_consumers: { name: string; subjects: string[]; created_at: Generated<Date> };
  bus_deliveries: { consumer: string; seq: number; deliveries: Generated<number>; next_attempt_at: Date };
}

export interface EmbeddedBusOptions {
  database: DatabaseConfig;
  logger: Logger;
  /** How long an idle consumer sleeps before looking again without being woken. */
  idlePollMs?: number;
  /** Messages fetched per round by one consumer. */
  batchSize?: number;
  /**
   * How long a message every consumer has acknowledged stays in the log; it also bounds the
   * deduplication window (a republished id older than this is accepted again). Default 15 minutes.
   */
  retentionMs?: number;
}

/**
 * The bus of embedded mode: a small durable log in its own PGlite database (./data/bus), with the
 * semantics the JetStream adapter has in cluster mode — a stream deduplicated by message id,
 * durable consumers that keep receiving while their service is stopped, explicit acks, and
 * redelivery after a delay. A message is kept for a consumer until that consumer acks it, so
 * stopping a service, or the whole process, loses nothing. See docs/adr/0004-embedded-bus.md.
 */
export class EmbeddedBus implements MessageBus {
  readonly #database: Database<BusTables>;
  readonly #db: Kysely<BusTables>;
  readonly #logger: Logger;
  readonly #idlePollMs: number;
  readonly #batchSize: number;
  readonly #wakeups = new Map<string, Wakeup>();
  readonly #workers = new Set<Promise<void>>();
  readonly #retentionMs: number;
  readonly #pruneTimer: NodeJS.Timeout;
  #closed = false;

  private constructor(database: Database<BusTables>, options: EmbeddedBusOptions) {
    this.#database = database;
    this.#db = database.db;
    this.#logger = options.logger;
    this.#idlePollMs = options.idlePollMs ?? 1000;
    this.#batchSize = options.batchSize ?? 32;
    this.#retentionMs = options.retentionMs ?? 15 * 60_000;
    this.#pruneTimer = setInterval(() => {
      this.prune().catch((err: unknown) => this.#logger.warn({ err }, 'bus prune failed'));
    }, Math.max(1000, Math.min(this.#retentionMs, 60_000)));
    this.#pruneTimer.unref();
  }

  /**
   * Deletes the messages that every consumer has acknowledged and that are older than the
   * retention. Returns how many were deleted.
   */
  async prune(retentionMs = this.#retentionMs): Promise<number> {
    if (this.#closed) return 0;
    const result = await this.#db
      .deleteFrom('bus_messages')
      .where('stored_at', '<', new Date(Date.now() - retentionMs))
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('bus_deliveries').select('seq').whereRef('bus_deliveries.seq', '=', 'bus_messages.seq'))))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  static async open(options: EmbeddedBusOptions): Promise<EmbeddedBus> {
    const database = await openDatabase<BusTables>(options.database);
    const { db } = database;
    await sql`CREATE TABLE IF NOT EXISTS bus_messages (
      seq integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      id text NOT NULL UNIQUE,
      subject text NOT NULL,
      envelope jsonb NOT NULL,
      stored_at timestamptz NOT NULL DEFAULT now())`.execute(db);
    await sql`CREATE TABLE IF NOT EXISTS bus_consumers (
      name text PRIMARY KEY,
      subjects text[] NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now())`.execute(db);
    await sql`CREATE TABLE IF NOT EXISTS bus_deliveries (
      consumer text NOT NULL REFERENCES bus_consumers (name),
      seq integer NOT NULL REFERENCES bus_messages (seq),
      deliveries integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL,
      PRIMARY KEY (consumer, seq))`.execute(db);
    await sql`CREATE INDEX IF NOT EXISTS bus_deliveries_due ON bus_deliveries (consumer, next_attempt_at, seq)`.execute(db);
    await sql`CREATE INDEX IF NOT EXISTS bus_deliveries_seq ON bus_deliveries (seq)`.execute(db);
    await sql`CREATE INDEX IF NOT EXISTS bus_messages_stored ON bus_messages (stored_at)`.execute(db);
    return new EmbeddedBus(database, options);
  }

  async publish(subject: string, envelope: EventEnvelope): Promise<void> {
    if (this.#closed) throw new Error('bus is closed');
    const interested = await this.#db.transaction().execute(async (trx) => {
      const stored = await trx
        .insertInto('bus_messages')
        .values({ id: envelope.id, subject, envelope })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('seq')
        .executeTakeFirst();
      if (!stored) return []; // a duplicate of a message already in the log
      const consumers = await trx
        .insertInto('bus_deliveries')
        .columns(['consumer', 'seq', 'next_attempt_at'])
        .expression((eb) =>
          eb
            .selectFrom('bus_consumers')
            .select((s) => [s.ref('name').as('consumer'), s.val(stored.seq).as('seq'), s.val(new Date()).as('next_attempt_at')])
            .where(sql<boolean>`${subject} = ANY(subjects)`),
        )
        .returning('consumer')
        .execute();
      return consumers.map((c) => c.consumer);
    });
    for (const name of interested) this.#wakeups.get(name)?.kick();
  }

  async subscribe(spec: ConsumerSpec, handler: (delivery: Delivery) => Promise<DeliveryOutcome>): Promise<Subscription> {
    if (this.#wakeups.has(spec.durableName)) throw new Error(`consumer ${spec.durableName} is already subscribed`);
    await this.#ensureConsumer(spec);
    const wakeup = new Wakeup();
    this.#wakeups.set(spec.durableName, wakeup);
    let running = true;
    const worker = this.#consume(spec.durableName, handler, wakeup, () => running);
    this.#workers.add(worker);
    void worker.finally(() => this.#workers.delete(worker));
    return {
      stop: async () => {
        running = false;
        wakeup.kick();
        await worker;
        this.#wakeups.delete(spec.durableName);
      },
    };
  }

  /**
   * The consumer's rows in `bus_deliveries`: one per message stored for it and not acknowledged
   * yet (a row goes when the consumer acks), whether it is due, in delivery or waiting for a retry.
   */
  async lag(durableName: string): Promise<number | undefined> {
    if (this.#closed) return undefined;
    const known = await this.#db.selectFrom('bus_consumers').select('name').where('name', '=', durableName).executeTakeFirst();
    if (!known) return undefined;
    const row = await this.#db
      .selectFrom('bus_deliveries')
      .select((eb) => eb.fn.countAll<number>().as('waiting'))
      .where('consumer', '=', durableName)
      .executeTakeFirstOrThrow();
    return Number(row.waiting);
  }

  async healthy(): Promise<boolean> {
    if (this.#closed) return false;
    await sql`SELECT 1`.execute(this.#db);
    return true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pruneTimer);
    for (const w of this.#wakeups.values()) w.kick();
    await Promise.allSettled([...this.#workers]);
    await this.#database.close();
  }

  async declareConsumer(spec: ConsumerSpec): Promise<void> {
    await this.#ensureConsumer(spec);
  }

  /**
   * Reads the log in `seq` order, a batch at a time, up to the last message stored when the replay
   * began. Only what the log still holds is replayed: acknowledged messages are pruned after the
   * retention (see `prune`).
   */
  async replay(subjects: readonly string[], handler: (delivery: Delivery) => Promise<void>): Promise<number> {
    if (this.#closed) throw new Error('bus is closed');
    if (subjects.length === 0) return 0;
    const end = await this.#db.selectFrom('bus_messages').select((eb) => eb.fn.max('seq').as('last')).executeTakeFirst();
    const last = end?.last ?? 0;
    let after = 0;
    let delivered = 0;
    while (after < last) {
      const batch = await this.#db
        .selectFrom('bus_messages')
        .select(['seq', 'subject', 'envelope'])
        .where('seq', '>', after)
        .where('seq', '<=', last)
        .where('subject', 'in', [...subjects])
        .orderBy('seq')
        .limit(this.#batchSize)
        .execute();
      if (batch.length === 0) break;
      for (const row of batch) {
        await handler({ subject: row.subject, envelope: row.envelope, deliveryCount: 1 });
        delivered++;
        after = row.seq;
      }
    }
    return delivered;
  }

  /** Creates the durable consumer the first time; like JetStream's deliver-all, it then receives the whole log. */
  async #ensureConsumer(spec: ConsumerSpec): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      const created = await trx
        .insertInto('bus_consumers')
        .values({ name: spec.durableName, subjects: [...spec.subjects] })
        .onConflict((oc) => oc.column('name').doNothing())
        .returning('name')
        .executeTakeFirst();
      if (!created) {
        await trx.updateTable('bus_consumers').set({ subjects: [...spec.subjects] }).where('name', '=', spec.durableName).execute();
        return;
      }
      await trx
        .insertInto('bus_deliveries')
        .columns(['consumer', 'seq', 'next_attempt_at'])
        .expression((eb) =>
          eb
            .selectFrom('bus_messages')
            .select((s) => [s.val(spec.durableName).as('consumer'), 'seq', s.val(new Date()).as('next_attempt_at')])
            .where('subject', 'in', [...spec.subjects]),
        )
        .execute();
    });
  }

  async #consume(
    consumer: string,
    handler: (delivery: Delivery) => Promise<DeliveryOutcome>,
    wakeup: Wakeup,
    running: () => boolean,
  ): Promise<void> {
    while (running() && !this.#closed) {
      let handled = 0;
      try {
        const due = await this.#db
          .selectFrom('bus_deliveries as d')
          .innerJoin('bus_messages as m', 'm.seq', 'd.seq')
          .select(['d.seq', 'd.deliveries', 'm.subject', 'm.envelope'])
          .where('d.consumer', '=', consumer)
          .where('d.next_attempt_at', '<=', new Date())
          .orderBy('d.seq')
          .limit(this.#batchSize)
          .execute();
        for (const row of due) {
          if (!running() || this.#closed) break;
          const deliveryCount = row.deliveries + 1;
          await this.#db
            .updateTable('bus_deliveries')
            .set({ deliveries: deliveryCount })
            .where('consumer', '=', consumer)
            .where('seq', '=', row.seq)
            .execute();
          let outcome: DeliveryOutcome;
          try {
            outcome = await handler({ subject: row.subject, envelope: row.envelope, deliveryCount });
          } catch (err) {
            // A handler should answer nak itself; one that throws is retried after a second.
            this.#logger.error({ err, consumer, eventId: row.envelope.id }, 'handler threw; redelivering');
            outcome = { kind: 'nak', delayMs: 1000 };
          }
          if (outcome.kind === 'ack') {
            await this.#db.deleteFrom('bus_deliveries').where('consumer', '=', consumer).where('seq', '=', row.seq).execute();
          } else {
            await this.#db
              .updateTable('bus_deliveries')
              .set({ next_attempt_at: new Date(Date.now() + outcome.delayMs) })
              .where('consumer', '=', consumer)
              .where('seq', '=', row.seq)
              .execute();
          }
          handled++;
        }
      } catch (err) {
        if (this.#closed) break;
        this.#logger.error({ err, consumer }, 'embedded bus consumer failed; retrying');
      }
      if (handled === 0) await wakeup.wait(await this.#sleepFor(consumer));
    }
  }

  /** Sleeps until the next delayed redelivery is due, or the idle poll, whichever is sooner. */
  async #sleepFor(consumer: string): Promise<number> {
    if (this.#closed) return 0;
    try {
      const next = await this.#db
        .selectFrom('bus_deliveries')
        .select((eb) => eb.fn.min('next_attempt_at').as('next'))
        .where('consumer', '=', consumer)
        .executeTakeFirst();
      if (!next?.next) return this.#idlePollMs;
      const ms = new Date(next.next).getTime() - Date.now();
      return Math.max(5, Math.min(this.#idlePollMs, ms));
    } catch {
      return this.#idlePollMs;
    }
  }
}
