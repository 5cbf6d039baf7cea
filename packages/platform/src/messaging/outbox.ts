import { setImmediate as nextTurn } from 'node:timers/promises';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Tracer } from '@opentelemetry/api';
import { parseEvent, subjectOf, type EventEnvelope } from '@bstore/contracts';
import { SpanKind, untracedTracer, contextOfTraceparent, inSpan, tagEventCorrelation, traceparentOf } from '../tracing.ts';
import type { Outbox } from '../kernel/ports.ts';
import type { EventPublisher } from './bus.ts';
import { OutboxPruner, type PruningOptions } from './housekeeping.ts';
import type { MessagingTables } from './schema.ts';
import { Wakeup } from './wakeup.ts';

/** The transactions an outbox row was added in (an entry goes with its transaction object). */
const WROTE_ROWS = new WeakSet<object>();

/**
 * Whether a KyselyOutbox added a row in this transaction: after its commit, only such a
 * transaction gives the relay something to publish (the others would wake it for an empty pass:
 * BEGIN, SELECT, COMMIT).
 */
export function outboxRowsAdded(trx: object): boolean {
  return WROTE_ROWS.has(trx);
}

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
    // The event carries the context it was written in (the request's span, or the span of the
    // event being handled), so its consumers' spans join the same trace.
    const traceparent = event.traceparent ?? traceparentOf();
    const envelope = traceparent ? { ...event, traceparent } : event;
    await this.#trx
      .insertInto('outbox')
      .values({ id: event.id, type: event.type, subject: subjectOf(valid.type), envelope, published_at: null, last_error: null })
      .execute();
    this.#written++;
    WROTE_ROWS.add(this.#trx);
  }
}

export interface OutboxRelayOptions {
  db: Kysely<MessagingTables>;
  bus: EventPublisher;
  logger: Logger;
  /**
   * Rows published per transaction (default 100, at most MAX_RELAY_BATCH_SIZE). The relay holds
   * the batch's row locks, and its transaction open, while it publishes the batch.
   */
  batchSize?: number;
  /** How often to look for rows when nobody signalled new ones (they may come from another replica). */
  pollMs?: number;
  /**
   * Deleting sent rows after their retention (ADR 0014): by default an hour after they were sent,
   * 1000 rows a statement, every minute. `false` keeps them forever.
   */
  pruning?: Partial<PruningOptions> | false;
  /** The service's tracer (ServiceTracing): each publish is a PRODUCER span in the event's trace. */
  tracer?: Tracer;
}

/** The largest batch a relay accepts: its locks and its open transaction last as long as publishing it. */
export const MAX_RELAY_BATCH_SIZE = 1000;

/** A scrape must not hang on a database that does not answer: the gauges keep their last values. */
const SAMPLE_TIMEOUT_MS = 2000;

interface BacklogSample {
  backlog: number;
  oldestAgeSeconds: number;
}

/**
 * Publishes outbox rows to the bus and marks them sent. It reads every unsent row rather than
 * "rows after the last id seen", so a row committed late by a slow transaction is never skipped,
 * and it locks the rows it works on with FOR UPDATE SKIP LOCKED, so relays in several replicas
 * share the work without publishing a row twice at the same time. The bus deduplicates by event
 * id, which covers the crash between publish and the mark.
 *
 * A backlog drains in successive batches of at most `batchSize` rows, one transaction each, back
 * to back, yielding to the event loop between them so that the service goes on serving meanwhile.
 * The relay also prunes sent rows after their retention (`pruning`) and exports metrics once
 * `registerMetrics` is given the service's registry (`ServiceRuntime` does it).
 */
export class OutboxRelay {
  readonly #db: Kysely<MessagingTables>;
  readonly #bus: EventPublisher;
  readonly #logger: Logger;
  readonly #batchSize: number;
  readonly #pollMs: number;
  readonly #wakeup = new Wakeup();
  readonly #pruner: OutboxPruner | undefined;
  readonly #tracer: Tracer;
  readonly #published: Counter;
  readonly #backlog: Gauge;
  readonly #oldestAge: Gauge;
  #lastSample: BacklogSample = { backlog: 0, oldestAgeSeconds: 0 };
  #sampling: Promise<BacklogSample> | undefined;
  #loop: Promise<void> | undefined;
  #running = false;

  constructor(options: OutboxRelayOptions) {
    this.#db = options.db;
    this.#bus = options.bus;
    this.#logger = options.logger;
    this.#batchSize = options.batchSize ?? 100;
    if (!Number.isInteger(this.#batchSize) || this.#batchSize < 1 || this.#batchSize > MAX_RELAY_BATCH_SIZE) {
      throw new RangeError(`outbox relay batchSize must be an integer from 1 to ${MAX_RELAY_BATCH_SIZE}, not ${options.batchSize}`);
    }
    this.#pollMs = options.pollMs ?? 500;
    this.#tracer = options.tracer ?? untracedTracer();
    this.#pruner = options.pruning === false ? undefined : new OutboxPruner({ db: options.db, logger: options.logger, ...options.pruning });
    this.#published = new Counter({ name: 'bstore_outbox_published_total', help: 'Outbox rows published to the bus and marked sent', registers: [] });
    // Both gauges are collected on the same scrape, and share one query (#sample).
    this.#backlog = new Gauge({
      name: 'bstore_outbox_backlog',
      help: 'Outbox rows not published yet',
      registers: [],
      collect: async () => this.#backlog.set((await this.#sample()).backlog),
    });
    this.#oldestAge = new Gauge({
      name: 'bstore_outbox_oldest_unsent_age_seconds',
      help: 'Age of the oldest outbox row not published yet (0 when there is none)',
      registers: [],
      collect: async () => this.#oldestAge.set((await this.#sample()).oldestAgeSeconds),
    });
  }

  get batchSize(): number {
    return this.#batchSize;
  }

  /** The pruner of sent rows, started and stopped with the relay (undefined with `pruning: false`). */
  get pruner(): OutboxPruner | undefined {
    return this.#pruner;
  }

  /** Signals that rows were committed: the relay publishes them now instead of at its next poll. */
  kick(): void {
    this.#wakeup.kick();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
    this.#pruner?.start();
  }

  /** Stops the loop and the pruning, then publishes what is left once (rows committed by the last requests). */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#wakeup.kick();
    await this.#pruner?.stop();
    await this.#loop;
    this.#loop = undefined;
    await this.publishBatch().catch((err: unknown) => this.#logger.warn({ err }, 'final outbox drain failed; rows wait for the next start'));
  }

  /** Publishes one batch; returns how many rows were sent. Exposed for tests and for draining. */
  async publishBatch(): Promise<number> {
    const sent = await this.#db.transaction().execute((trx) => this.#publishInto(trx));
    // Counted once committed: a batch whose mark rolled back is published again, and counted then.
    if (sent > 0) this.#published.inc(sent);
    return sent;
  }

  /** Deletes sent rows older than the retention now, in batches; returns how many (0 with `pruning: false`). */
  async prune(): Promise<number> {
    return (await this.#pruner?.prune()) ?? 0;
  }

  /**
   * Adds the relay's metrics to a service's registry: `bstore_outbox_backlog`,
   * `bstore_outbox_oldest_unsent_age_seconds` (both read by one query on the partial index of
   * unsent rows at each scrape), `bstore_outbox_published_total` and `bstore_outbox_pruned_total`.
   * A second call on the same registry does nothing.
   */
  registerMetrics(registry: Registry): void {
    const metrics: [string, Counter | Gauge][] = [
      ['bstore_outbox_backlog', this.#backlog],
      ['bstore_outbox_oldest_unsent_age_seconds', this.#oldestAge],
      ['bstore_outbox_published_total', this.#published],
    ];
    for (const [name, metric] of metrics) {
      if (!registry.getSingleMetric(name)) registry.registerMetric(metric);
    }
    this.#pruner?.registerMetrics(registry);
  }

  async #publishInto(trx: Transaction<MessagingTables>): Promise<number> {
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
        await this.#publishTraced(row.subject, row.envelope);
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
    // The database's clock, like the pruning cutoff compared with it.
    if (sent.length > 0) {
      await trx.updateTable('outbox').set({ published_at: sql<Date>`now()` }).where('id', 'in', sent).execute();
    }
    return sent.length;
  }

  /**
   * Publishes one event in a PRODUCER span, the child of the span that wrote it: the trace shows
   * how long the event waited in the outbox and how long the bus took to accept it.
   */
  #publishTraced(subject: string, envelope: EventEnvelope): Promise<void> {
    const attributes = {
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
      'messaging.destination.name': subject,
      'messaging.message.id': envelope.id,
    };
    return inSpan(this.#tracer, `publish ${envelope.type}`, { kind: SpanKind.PRODUCER, attributes, parent: contextOfTraceparent(envelope.traceparent) }, async () => {
      tagEventCorrelation(envelope.data);
      await this.#bus.publish(subject, envelope);
    });
  }

  /**
   * The backlog and the age of its oldest row, from one query that the partial index
   * `outbox_unsent` answers. Calls made while one is running share it. A failure (a database
   * closed or down) or a slow answer gives the last values, so a scrape never fails on it.
   */
  #sample(): Promise<BacklogSample> {
    this.#sampling ??= this.#queryBacklog()
      .then(
        (sample) => (this.#lastSample = sample),
        (err: unknown) => {
          this.#logger.debug({ err }, 'outbox metrics not refreshed; keeping the last values');
          return this.#lastSample;
        },
      )
      .finally(() => {
        this.#sampling = undefined;
      });
    return this.#sampling;
  }

  async #queryBacklog(): Promise<BacklogSample> {
    let timer: NodeJS.Timeout | undefined;
    const query = this.#db
      .selectFrom('outbox')
      .select([sql<number>`count(*)::float8`.as('backlog'), sql<number | null>`extract(epoch FROM now() - min(created_at))::float8`.as('age')])
      .where('published_at', 'is', null)
      .executeTakeFirstOrThrow();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${SAMPLE_TIMEOUT_MS} ms`)), SAMPLE_TIMEOUT_MS);
      timer.unref();
    });
    try {
      const row = await Promise.race([query, timeout]);
      return { backlog: Number(row.backlog), oldestAgeSeconds: Math.max(0, Number(row.age ?? 0)) };
    } finally {
      clearTimeout(timer);
      query.catch(() => undefined); // a query that lost the race must not become an unhandled rejection
    }
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
      if (sent === this.#batchSize) {
        // More may be waiting: next batch at once, after letting other work in.
        await nextTurn();
        continue;
      }
      const backoff = failures > 0 ? Math.min(this.#pollMs * 2 ** failures, 10_000) : this.#pollMs;
      await this.#wakeup.wait(backoff);
    }
  }
}
