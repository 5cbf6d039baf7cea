import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { PeriodicTask } from '../periodic-task.ts';
import type { MessagingTables } from './schema.ts';

/**
 * Housekeeping of the messaging tables (ADR 0014): sent outbox rows and old inbox rows are
 * deleted after a retention, oldest first, in bounded batches, by a periodic task in each replica.
 */
export interface PruningOptions {
  /** How long a row is kept once it is done with: sent (outbox), or handled (inbox). */
  retentionMs: number;
  /** Rows deleted per statement; each statement is its own short transaction. */
  batchSize: number;
  /** How often the pruning task runs. */
  intervalMs: number;
}

/** Sent outbox rows are only history once the bus has them: kept an hour, for looking into a recent incident. */
export const OUTBOX_PRUNING_DEFAULTS: Readonly<PruningOptions> = { retentionMs: 60 * 60_000, batchSize: 1000, intervalMs: 60_000 };

/** Inbox rows are what catches a duplicate: kept a week (see INBOX_MIN_RETENTION_MS for the floor). */
export const INBOX_PRUNING_DEFAULTS: Readonly<PruningOptions> = { retentionMs: 7 * 24 * 60 * 60_000, batchSize: 1000, intervalMs: 10 * 60_000 };

/** A larger DELETE holds its locks and grows its transaction for no gain. */
export const MAX_PRUNE_BATCH_SIZE = 10_000;

/** Batches in one run at most; what is left waits for the next run, so a run never goes on for long. */
export const MAX_PRUNE_BATCHES_PER_RUN = 100;

/**
 * How long the bus itself recognises a message id as seen and drops a republished copy: the
 * embedded bus keeps an acknowledged message, and so its id, 15 minutes (`EmbeddedBus`
 * `retentionMs`, ADR 0004); JetStream's duplicate window is 2 minutes (`NatsBus`
 * `duplicateWindowMs`). The longer of the two.
 */
export const BUS_DEDUP_HORIZON_MS = Math.max(15 * 60_000, 2 * 60_000);

/**
 * How long the bus goes on delivering one message: `EventConsumer` retries a failing event up to
 * 20 deliveries with a backoff of 250 ms doubling, capped at 30 s (about 6.5 minutes of waiting,
 * "about eight minutes" with the handlers' own time, ADR 0005), and a delivery whose ack is lost
 * comes again after the ack wait (30 s on JetStream). Ten minutes covers both.
 */
export const BUS_REDELIVERY_SPAN_MS = 10 * 60_000;

/**
 * The shortest inbox retention accepted. The inbox is the only defence against a copy of an
 * event that the bus did not drop itself, and the bus makes copies in normal operation: it
 * redelivers a message whose ack was lost (a crash or a timeout after the handler committed) for
 * as long as it may deliver that message at all, and a relay that published a row but could not
 * mark it sent publishes it again, which the bus drops only within its dedup horizon. So an inbox
 * record must outlive the dedup horizon plus the redelivery span: pruned any sooner, a copy
 * arriving in that gap, with every process healthy, would have its effect applied twice.
 * A configured retention below this is raised to it, with a warning.
 */
export const INBOX_MIN_RETENTION_MS = BUS_DEDUP_HORIZON_MS + BUS_REDELIVERY_SPAN_MS;

/** `now()` minus `ms` in the database's clock, the clock that wrote the timestamps compared with it. */
function cutoff(ms: number): RawBuilder<Date> {
  return sql<Date>`now() - (${ms / 1000}::double precision * interval '1 second')`;
}

/**
 * Deletes at most `limit` outbox rows sent more than `retentionMs` ago, oldest first; returns how
 * many. Unsent rows are never touched, however old. Rows another pruner has locked are skipped
 * (SKIP LOCKED), so pruners in several replicas never wait for or fight each other.
 */
export async function pruneOutboxBatch(db: Kysely<MessagingTables>, retentionMs: number, limit: number): Promise<number> {
  const result = await db
    .deleteFrom('outbox')
    .where('id', 'in', (eb) =>
      eb.selectFrom('outbox').select('id').where('published_at', '<', cutoff(retentionMs)).orderBy('published_at').limit(limit).forUpdate().skipLocked(),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Deletes at most `limit` inbox rows received more than `retentionMs` ago, oldest first; returns how many. */
export async function pruneInboxBatch(db: Kysely<MessagingTables>, retentionMs: number, limit: number): Promise<number> {
  const result = await db
    .deleteFrom('inbox')
    .where((eb) =>
      eb(
        eb.refTuple('consumer', 'event_id'),
        'in',
        eb
          .selectFrom('inbox')
          .select(['consumer', 'event_id'])
          .where('received_at', '<', cutoff(retentionMs))
          .orderBy('received_at')
          .limit(limit)
          .forUpdate()
          .skipLocked()
          .$asTuple('consumer', 'event_id'),
      ),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Checks pruning options, filling in the defaults; throws a RangeError naming a bad value. */
export function pruningOptions(what: string, given: Partial<PruningOptions> | undefined, defaults: Readonly<PruningOptions>): PruningOptions {
  const options = { ...defaults, ...definedOnly(given ?? {}) };
  if (!Number.isFinite(options.retentionMs) || options.retentionMs < 0) {
    throw new RangeError(`${what} retentionMs must be a number of milliseconds >= 0, not ${options.retentionMs}`);
  }
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1 || options.batchSize > MAX_PRUNE_BATCH_SIZE) {
    throw new RangeError(`${what} batchSize must be an integer from 1 to ${MAX_PRUNE_BATCH_SIZE}, not ${options.batchSize}`);
  }
  if (!Number.isFinite(options.intervalMs) || options.intervalMs < 1) {
    throw new RangeError(`${what} intervalMs must be a number of milliseconds >= 1, not ${options.intervalMs}`);
  }
  return options;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

interface PrunerParts {
  /** `outbox` or `inbox`: names the task, the log lines and the metric. */
  table: 'outbox' | 'inbox';
  options: PruningOptions;
  logger: Logger;
  deleteBatch: (retentionMs: number, limit: number) => Promise<number>;
}

/**
 * Deletes old rows of one table on an interval, in batches of `batchSize` (at most
 * MAX_PRUNE_BATCHES_PER_RUN per run), and counts them in `bstore_<table>_pruned_total`. Several
 * replicas may prune the same table at once: each batch skips the rows another has locked.
 */
class TablePruner {
  readonly retentionMs: number;
  readonly batchSize: number;
  readonly intervalMs: number;
  readonly #table: string;
  readonly #deleteBatch: (retentionMs: number, limit: number) => Promise<number>;
  readonly #logger: Logger;
  readonly #task: PeriodicTask;
  readonly #pruned: Counter;
  readonly #metricName: string;
  #prunedTotal = 0;
  #stopping = false;

  constructor(parts: PrunerParts) {
    this.retentionMs = parts.options.retentionMs;
    this.batchSize = parts.options.batchSize;
    this.intervalMs = parts.options.intervalMs;
    this.#table = parts.table;
    this.#deleteBatch = parts.deleteBatch;
    this.#logger = parts.logger;
    this.#task = new PeriodicTask(`prune-${parts.table}`, this.intervalMs, () => this.prune(), parts.logger);
    this.#metricName = `bstore_${parts.table}_pruned_total`;
    this.#pruned = new Counter({
      name: this.#metricName,
      help: parts.table === 'outbox' ? 'Sent outbox rows deleted after their retention' : 'Inbox rows deleted after their retention',
      registers: [],
    });
  }

  /** Rows deleted by this pruner since it was made. */
  get prunedTotal(): number {
    return this.#prunedTotal;
  }

  /** Deletes one batch; returns how many rows went. */
  async pruneBatch(): Promise<number> {
    const deleted = await this.#deleteBatch(this.retentionMs, this.batchSize);
    if (deleted > 0) {
      this.#prunedTotal += deleted;
      this.#pruned.inc(deleted);
    }
    return deleted;
  }

  /**
   * Deletes old rows batch after batch until a batch comes back short, the run's batch limit is
   * reached, or the pruner is stopping; returns how many rows went.
   */
  async prune(): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < MAX_PRUNE_BATCHES_PER_RUN && !this.#stopping; batch++) {
      const deleted = await this.pruneBatch();
      total += deleted;
      if (deleted < this.batchSize) break;
    }
    if (total > 0) this.#logger.debug({ table: this.#table, pruned: total }, 'pruned old messaging rows');
    return total;
  }

  start(): void {
    this.#stopping = false;
    this.#task.start();
  }

  /** Stops the task; a run in progress ends after its current batch. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#task.stop();
  }

  /** Adds this pruner's counter to a service's registry (once; later calls do nothing). */
  registerMetrics(registry: Registry): void {
    if (!registry.getSingleMetric(this.#metricName)) registry.registerMetric(this.#pruned);
  }
}

export interface OutboxPrunerOptions extends Partial<PruningOptions> {
  db: Kysely<MessagingTables>;
  logger: Logger;
}

/** Deletes sent outbox rows after their retention (default one hour). `OutboxRelay` runs one. */
export class OutboxPruner extends TablePruner {
  constructor({ db, logger, ...given }: OutboxPrunerOptions) {
    super({
      table: 'outbox',
      options: pruningOptions('outbox pruning', given, OUTBOX_PRUNING_DEFAULTS),
      logger,
      deleteBatch: (retentionMs, limit) => pruneOutboxBatch(db, retentionMs, limit),
    });
  }
}

export interface InboxPrunerOptions extends Partial<PruningOptions> {
  db: Kysely<MessagingTables>;
  logger: Logger;
}

/**
 * Deletes inbox rows after their retention (default seven days, never less than
 * INBOX_MIN_RETENTION_MS). `ServiceRuntime` runs one for a service with a SQL database.
 */
export class InboxPruner extends TablePruner {
  constructor({ db, logger, ...given }: InboxPrunerOptions) {
    const options = pruningOptions('inbox pruning', given, INBOX_PRUNING_DEFAULTS);
    if (options.retentionMs < INBOX_MIN_RETENTION_MS) {
      logger.warn(
        { configured: options.retentionMs, used: INBOX_MIN_RETENTION_MS },
        'inbox retention raised to the bus redelivery horizon: inbox rows pruned sooner would let a redelivered event take effect twice',
      );
      options.retentionMs = INBOX_MIN_RETENTION_MS;
    }
    super({ table: 'inbox', options, logger, deleteBatch: (retentionMs, limit) => pruneInboxBatch(db, retentionMs, limit) });
  }
}
