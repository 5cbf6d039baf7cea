import type { Logger } from 'pino';
import { Gauge, Histogram, type Registry } from 'prom-client';

/** A connection pool's connections right now (`pg.Pool`'s totalCount, idleCount, waitingCount). */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

/**
 * How long a value read at scrape time (a count in the database, a bus's consumer info) may take:
 * a scrape must not hang on a dependency that does not answer. A read that fails or takes longer
 * is logged and its series left out of that scrape; the others are still served.
 */
export const SCRAPE_READ_TIMEOUT_MS = 1000;

/** `read()`, or a rejection once `ms` have passed without an answer. */
export function withinScrapeTimeout<T>(read: () => Promise<T>, what: string, ms = SCRAPE_READ_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([read(), timeout]).finally(() => clearTimeout(timer));
}

/** A histogram's observer, without the caller depending on prom-client (services that have none). */
export type Observe = (labels: Record<string, string>, value: number) => void;

/**
 * Adds a histogram to a registry (once: a second call with the same name observes into the first)
 * and returns the function that observes into it.
 *
 * @example
 * const observe = registerHistogram(app.metrics, { name: 'bstore_saga_stage_duration_seconds', help: '...', labelNames: ['stage'], buckets: [0.005, 30] });
 * observe({ stage: 'reserve' }, 0.42);
 */
export function registerHistogram(registry: Registry, spec: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[] }): Observe {
  const existing = registry.getSingleMetric(spec.name);
  const histogram =
    existing instanceof Histogram
      ? existing
      : new Histogram({ name: spec.name, help: spec.help, labelNames: [...spec.labelNames], buckets: [...spec.buckets], registers: [registry] });
  return (labels, value) => histogram.observe(labels, value);
}

/** What the dead-letter gauge reads: a `DeadLetterStore`'s counts. */
export interface CountsDeadLetters {
  counts(): Promise<{ pending: number; replayed: number }>;
}

const DEAD_LETTERS = 'bstore_dead_letters';

/**
 * `bstore_dead_letters{service,state}` (`state` = `pending` | `replayed`), counted from the
 * service's dead-letter store at each scrape. A count that fails, or takes longer than
 * SCRAPE_READ_TIMEOUT_MS, is logged and the series left out of that scrape: the scrape still
 * succeeds. A second call on the same registry does nothing.
 */
export function registerDeadLetterMetrics(registry: Registry, options: { service: string; store: CountsDeadLetters; logger: Logger }): void {
  if (registry.getSingleMetric(DEAD_LETTERS)) return;
  const { service, store, logger } = options;
  new Gauge({
    name: DEAD_LETTERS,
    help: 'Dead letters in the service, by state: pending (waiting for a replay) or replayed',
    labelNames: ['service', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      try {
        const counts = await withinScrapeTimeout(() => store.counts(), 'the dead-letter count');
        this.set({ service, state: 'pending' }, counts.pending);
        this.set({ service, state: 'replayed' }, counts.replayed);
      } catch (err) {
        logger.warn({ err, metric: DEAD_LETTERS }, 'could not count the dead letters for a scrape; the series is left out');
      }
    },
  });
}

/** A database that can say how its pool is doing (`Database.poolStats`, PostgreSQL only). */
interface HasPool {
  poolStats(): PoolStats;
}

function hasPool(database: object | undefined): database is HasPool {
  return typeof (database as Partial<HasPool> | undefined)?.poolStats === 'function';
}

const DB_POOL = 'bstore_db_pool_connections';

/**
 * `bstore_db_pool_connections{state}` (`total`, `idle`, `waiting`: clients waiting for a
 * connection), read from a PostgreSQL pool at each scrape. PGlite is one embedded connection with
 * no pool, so a service on PGlite (or without a SQL database) has no such series.
 */
export function registerDbPoolMetrics(registry: Registry, database: object | undefined): void {
  if (!hasPool(database) || registry.getSingleMetric(DB_POOL)) return;
  new Gauge({
    name: DB_POOL,
    help: 'Connections of the PostgreSQL pool, by state: total (open), idle, waiting (requests queued for a connection)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const stats = database.poolStats();
      this.set({ state: 'total' }, stats.total);
      this.set({ state: 'idle' }, stats.idle);
      this.set({ state: 'waiting' }, stats.waiting);
    },
  });
}
