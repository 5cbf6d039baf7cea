import { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { HttpApp } from './http/app.ts';
import { registerConsumerMetrics } from './messaging/consumer-metrics.ts';
import { InboxPruner, type PruningOptions } from './messaging/housekeeping.ts';
import type { OutboxRelay } from './messaging/outbox.ts';
import type { MessagingTables } from './messaging/schema.ts';
import { registerDbPoolMetrics } from './metrics.ts';
import type { PeriodicTask } from './periodic-task.ts';
import type { ServiceTracing } from './tracing.ts';

/** What the runtime needs of a consumer: to start and stop it. */
export interface ConsumerLifecycle {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Registers the consumer with the bus without consuming (a paused start). */
  declare(): Promise<void>;
  /** Deliveries so far by result (handled, duplicate, ...): exported as `bstore_consumer_events_total` when present. */
  eventCounts?(): Readonly<Record<string, number>>;
  /** Deliveries whose delivery count was above 1: exported as `bstore_consumer_redeliveries_total` when present. */
  redeliveries?(): number;
  /** Events waiting for the consumer on the bus: exported as `bstore_consumer_lag` when present. */
  lag?(): Promise<number | undefined>;
}

export interface ServiceRuntimeParts<TOperations> {
  name: string;
  logger: Logger;
  app: HttpApp;
  /** Absent for a service without storage (the gateway). */
  database?: { close(): Promise<void> };
  relay?: OutboxRelay;
  consumers?: ConsumerLifecycle[];
  tasks?: PeriodicTask[];
  /**
   * Pruning of the inbox (ADR 0014). On by default when `database` is a SQL database (it has
   * the platform's `inbox` table): rows go seven days after they were received, never sooner than
   * the bus's redelivery horizon. Options override the defaults; `false` turns it off.
   */
  inboxPruning?: Partial<PruningOptions> | false;
  /** The service's tracing: its buffered spans are exported when it stops. */
  tracing?: ServiceTracing;
  /**
   * What its hosts and operators run besides serving requests and events: start-up sweeps, demo
   * data (use cases, never its database handle or consumer: tests reach those through its HTTP
   * API, its bus and its database, as users and operators do).
   */
  operations: TOperations;
}

/**
 * A built service and its moving parts, started and stopped in order: HTTP, the outbox relay, the
 * event consumers and periodic tasks start; on stop they end in reverse and the database closes
 * last, so nothing in flight loses its connection.
 *
 * Housekeeping comes with it (ADR 0014): the relay prunes sent outbox rows, the runtime prunes the
 * inbox of a SQL database, and the metrics of the relay, the pruning, the consumers (events by
 * result, redeliveries, lag) and the PostgreSQL pool join the service's registry (`app.metrics`,
 * served at GET /metrics).
 */
export class ServiceRuntime<TOperations = unknown> {
  readonly name: string;
  readonly app: HttpApp;
  readonly database: { close(): Promise<void> } | undefined;
  readonly relay: OutboxRelay | undefined;
  readonly consumers: ConsumerLifecycle[];
  readonly tasks: PeriodicTask[];
  /** Prunes the inbox of a service with a SQL database; started and stopped with the periodic tasks. */
  readonly inboxPruner: InboxPruner | undefined;
  readonly logger: Logger;
  readonly operations: TOperations;
  readonly tracing: ServiceTracing | undefined;
  #url: string | undefined;

  constructor(parts: ServiceRuntimeParts<TOperations>) {
    this.operations = parts.operations;
    this.tracing = parts.tracing;
    this.name = parts.name;
    this.logger = parts.logger;
    this.app = parts.app;
    this.database = parts.database;
    this.relay = parts.relay;
    this.consumers = parts.consumers ?? [];
    this.tasks = parts.tasks ?? [];
    const db = sqlDatabaseOf(parts.database);
    this.inboxPruner = db && parts.inboxPruning !== false ? new InboxPruner({ db, logger: parts.logger, ...parts.inboxPruning }) : undefined;
    // The relay and the consumers are made before the HTTP app (and its registry) exist, so their
    // metrics join the service's registry here.
    this.relay?.registerMetrics(this.app.metrics);
    this.inboxPruner?.registerMetrics(this.app.metrics);
    registerConsumerMetrics(this.app.metrics, this.consumers, parts.logger);
    registerDbPoolMetrics(this.app.metrics, parts.database);
  }

  /** The base URL once listening. */
  get url(): string {
    if (!this.#url) throw new Error(`${this.name} is not listening`);
    return this.#url;
  }

  /** Listens and starts everything; `consumers: false` leaves the event consumers stopped (fault drills). */
  async start(listen: { port: number; host?: string; consumers?: boolean }): Promise<string> {
    const host = listen.host ?? '127.0.0.1';
    await this.app.listen({ port: listen.port, host });
    const address = this.app.server.address();
    const port = typeof address === 'object' && address ? address.port : listen.port;
    this.#url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.relay?.start();
    for (const c of this.consumers) await (listen.consumers === false ? c.declare() : c.start());
    for (const t of this.tasks) t.start();
    this.inboxPruner?.start();
    return this.#url;
  }

  /** Stops consuming events without stopping HTTP: what a crashed consumer looks like from outside. */
  async stopConsumers(): Promise<void> {
    for (const c of this.consumers) await c.stop();
  }

  async startConsumers(): Promise<void> {
    for (const c of this.consumers) await c.start();
  }

  /**
   * Stops in order: readiness fails first (and, with `drainDelayMs`, stays failing that long while
   * requests still arrive, so load balancers notice); then periodic tasks and consumers stop (a
   * consumer acknowledges what it committed), HTTP closes once in-flight requests finished, the
   * relay publishes what those committed, and the database closes last.
   */
  async stop(options: { drainDelayMs?: number } = {}): Promise<void> {
    this.app.markDraining();
    if (options.drainDelayMs) await new Promise((r) => setTimeout(r, options.drainDelayMs));
    for (const t of this.tasks) await t.stop();
    await this.inboxPruner?.stop();
    await this.stopConsumers();
    await this.app.close();
    await this.relay?.stop();
    await this.database?.close();
    await this.tracing?.shutdown().catch((err: unknown) => this.logger.warn({ err }, 'spans could not be exported at shutdown'));
  }
}

/**
 * The Kysely handle of a SQL database (what `openServiceDatabase` returns: its migrations gave it
 * the `inbox` table), or undefined for another store or none.
 */
function sqlDatabaseOf(database: object | undefined): Kysely<MessagingTables> | undefined {
  const db = (database as { db?: unknown } | undefined)?.db;
  return db instanceof Kysely ? (db as Kysely<MessagingTables>) : undefined;
}
