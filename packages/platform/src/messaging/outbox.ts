import { sql, type Kysely, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { parseEvent, subjectOf, type EventEnvelope } from '@bstore/contracts';
import type { Outbox } from '../kernel/ports.ts';
import type { MessageBus } from './bus.ts';
import type { MessagingTables } from './schema.ts';
import { Wakeup } from './wakeup.ts';

/** The Outbox port on a transaction: rows commit, or roll back, with the change that wrote them. */
export class KyselyOutbox implements Outbox {
  readonly #trx: Transaction<MessagingTables>;
  #written = 0;

  constructor(trx: Transaction<MessagingTables>) {
    this.#trx = trx;
  }

  get written(): number {
    return this.#written;
  }

  /** Refuses an event its own schema rejects: a producer bug fails here, not at every consumer. */
  async add(event: EventEnvelope): Promise<void> {
    const valid = parseEvent(event);
    await this.#trx
      .insertInto('outbox')
      .values({ id: event.id, type: event.type, subject: subjectOf(valid.type), envelope: event, published_at: null, last_error: null })
      .execute();
    this.#written++;
  }
}

export interface OutboxRelayOptions {
  db: Kysely<MessagingTables>;
  bus: MessageBus;
  logger: Logger;
  /** Rows published per transaction. */
  batchSize?: number;
  /** How often to look for rows when nobody signalled new ones (they may come from another replica). */
  pollMs?: number;
}

/**
 * Publishes outbox rows to the bus and marks them sent. It reads every unsent row rather than
 * "rows after the last id seen", so a row committed late by a slow transaction is never skipped,
 * and it locks the rows it works on with FOR UPDATE SKIP LOCKED, so relays in several replicas
 * share the work without publishing a row twice at the same time. The bus deduplicates by event
 * id, which covers the crash between publish and the mark.
 */
export class OutboxRelay {
  readonly #db: Kysely<MessagingTables>;
  readonly #bus: MessageBus;
  readonly #logger: Logger;
  readonly #batchSize: number;
  readonly #pollMs: number;
  readonly #wakeup = new Wakeup();
  #loop: Promise<void> | undefined;
  #running = false;

  constructor(options: OutboxRelayOptions) {
    this.#db = options.db;
    this.#bus = options.bus;
    this.#logger = options.logger;
    this.#batchSize = options.batchSize ?? 100;
    this.#pollMs = options.pollMs ?? 500;
  }

  /** Signals that rows were committed: the relay publishes them now instead of at its next poll. */
  kick(): void {
    this.#wakeup.kick();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Stops the loop, then publishes what is left once (rows committed by the last requests). */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#wakeup.kick();
    await this.#loop;
    this.#loop = undefined;
    await this.publishBatch().catch((err: unknown) => this.#logger.warn({ err }, 'final outbox drain failed; rows wait for the next start'));
  }

  /** Publishes one batch; returns how many rows were sent. Exposed for tests and for draining. */
  async publishBatch(): Promise<number> {
    return this.#db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('outbox')
        .select(['id', 'subject', 'envelope'])
        .where('published_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .limit(this.#batchSize)
        .forUpdate()
        .skipLocked()
        .execute();
      const sent: string[] = [];
      for (const row of rows) {
        try {
          await this.#bus.publish(row.subject, row.envelope);
          sent.push(row.id);
        } catch (err) {
          // Keep order: stop at the first failure and retry this row first next time.
          this.#logger.warn({ err, eventId: row.id }, 'outbox publish failed; will retry');
          await trx
            .updateTable('outbox')
            .set({ attempts: sql`attempts + 1`, last_error: String(err instanceof Error ? err.message : err).slice(0, 500) })
            .where('id', '=', row.id)
            .execute();
          break;
        }
      }
      if (sent.length > 0) {
        await trx.updateTable('outbox').set({ published_at: new Date() }).where('id', 'in', sent).execute();
      }
      return sent.length;
    });
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#running) {
      let sent = 0;
      try {
        sent = await this.publishBatch();
        failures = 0;
      } catch (err) {
        failures++;
        this.#logger.error({ err }, 'outbox relay failed');
      }
      if (sent === this.#batchSize) continue; // more may be waiting
      const backoff = failures > 0 ? Math.min(this.#pollMs * 2 ** failures, 10_000) : this.#pollMs;
      await this.#wakeup.wait(backoff);
    }
  }
}
