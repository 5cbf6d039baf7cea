import { sql, type Kysely, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from './db/database.ts';
import type { Migrations } from './db/migrations.ts';
import { KyselyTransactionRunner } from './db/transactions.ts';
import { createHttpApp, type HttpApp, type HttpAppOptions } from './http/app.ts';
import { deadLetterRoutes } from './http/dead-letter.routes.ts';
import { EventConsumer, type ContextEventHandlers, type EventConsumerOptions } from './messaging/consumer.ts';
import { KyselyDeadLetterStore } from './messaging/dead-letters.ts';
import { KyselyInbox } from './messaging/inbox.ts';
import { OutboxRelay } from './messaging/outbox.ts';
import type { MessagingTables } from './messaging/schema.ts';
import type { PeriodicTask } from './periodic-task.ts';
import { ServiceRuntime } from './service-runtime.ts';
import { openServiceDatabase, type ServiceDeps } from './service-deps.ts';
import { tracingOf, type ServiceTracing } from './tracing.ts';

/**
 * The standard wiring of a service that keeps its data in SQL and publishes through an outbox,
 * written once: its database (migrated, or checked), the outbox relay, a transaction runner and an
 * inbox that kick the relay after every commit that wrote outbox rows, its event consumer with
 * dead letters, an HTTP app whose readiness queries the database, and the runtime that starts and
 * stops it all in order (metrics and housekeeping come with the runtime). A service's composition
 * root then says only what is its own: its use cases, routes and handlers.
 */
export class SqlServiceKit<DB> {
  readonly name: string;
  readonly logger: Logger;
  readonly tracing: ServiceTracing;
  readonly database: Database<DB>;
  readonly relay: OutboxRelay;
  readonly #deps: ServiceDeps;
  #consumer: EventConsumer<Transaction<DB>> | undefined;
  #appMade = false;

  private constructor(name: string, deps: ServiceDeps, logger: Logger, tracing: ServiceTracing, database: Database<DB>) {
    this.name = name;
    this.#deps = deps;
    this.logger = logger;
    this.tracing = tracing;
    this.database = database;
    this.relay = new OutboxRelay({ db: database.db as unknown as Kysely<MessagingTables>, bus: deps.bus, logger, tracer: tracing.tracer });
  }

  /** Opens (and migrates, or checks) the service's database. Close it with `close` if building fails later. */
  static async open<DB>(name: string, deps: ServiceDeps, migrations: Migrations): Promise<SqlServiceKit<DB>> {
    const logger = deps.logger.child({ service: name });
    const tracing = tracingOf(deps, name);
    const database = await openServiceDatabase<DB>(deps.database, migrations, logger);
    return new SqlServiceKit<DB>(name, deps, logger, tracing, database);
  }

  get db(): Kysely<DB> {
    return this.database.db;
  }

  /** Runs the service's units of work; every commit kicks the relay, so what it wrote is published at once. */
  transactions<TUnitOfWork>(unitOfWork: (trx: Transaction<DB>) => TUnitOfWork): KyselyTransactionRunner<DB, TUnitOfWork> {
    return new KyselyTransactionRunner(this.database.db, unitOfWork, () => this.relay.kick());
  }

  /**
   * The service's durable consumer (one per service): its inbox commits each event with its change
   * and kicks the relay. Made before `app`, which serves its dead letters.
   */
  consumer(handlers: ContextEventHandlers<Transaction<DB>>, options: Pick<EventConsumerOptions<Transaction<DB>>, 'maxDeliver' | 'backoffMs' | 'afterCommit'> = {}): EventConsumer<Transaction<DB>> {
    if (this.#consumer) throw new Error(`${this.name} has one event consumer`);
    if (this.#appMade) throw new Error(`${this.name}: make the consumer before the app, so that its dead letters are served`);
    this.#consumer = new EventConsumer({
      name: this.name,
      tracer: this.tracing.tracer,
      inbox: new KyselyInbox(this.database.db, { afterOutboxCommit: () => this.relay.kick() }),
      bus: this.#deps.bus,
      logger: this.logger,
      handlers,
      ...this.#deps.delivery,
      ...options,
    });
    return this.#consumer;
  }

  /**
   * The HTTP app, authenticated with the service's identity; ready when a query of `readinessTable`
   * answers. With a consumer, its dead letters are served (GET/POST /dead-letters).
   */
  async app(options: { errorStatus?: HttpAppOptions['errorStatus']; readinessTable: keyof DB & string }): Promise<HttpApp> {
    const { db } = this.database;
    const table = options.readinessTable;
    this.#appMade = true;
    const app = createHttpApp({
      service: this.name,
      tracing: this.tracing,
      auth: this.#deps.auth,
      logger: this.logger,
      ...(options.errorStatus ? { errorStatus: options.errorStatus } : {}),
      readiness: { database: async () => void (await sql`select 1 from ${sql.table(table)} limit 1`.execute(db)) },
    });
    if (this.#consumer) {
      await app.register(deadLetterRoutes, { service: this.name, store: new KyselyDeadLetterStore(this.database.db), consumer: this.#consumer });
    }
    return app;
  }

  /** The runtime of the service: HTTP, the relay, the consumer and `tasks`, started and stopped in order. */
  runtime<TOperations>(parts: { app: HttpApp; tasks?: PeriodicTask[]; operations: TOperations }): ServiceRuntime<TOperations> {
    return new ServiceRuntime({
      name: this.name,
      logger: this.logger,
      tracing: this.tracing,
      app: parts.app,
      database: this.database,
      relay: this.relay,
      consumers: this.#consumer ? [this.#consumer] : [],
      ...(parts.tasks ? { tasks: parts.tasks } : {}),
      operations: parts.operations,
    });
  }

  /** Closes the database (when building the service failed after `open`). */
  async close(): Promise<void> {
    await this.database.close();
  }
}

/**
 * Opens the kit, builds the service with it, and closes the database again if building fails.
 *
 * @example
 * return buildSqlService<BookTables, BookOperations>('book', deps, bookMigrations, async (kit) => { ... return kit.runtime({ app, operations }); });
 */
export async function buildSqlService<DB, TOperations>(
  name: string,
  deps: ServiceDeps,
  migrations: Migrations,
  build: (kit: SqlServiceKit<DB>) => Promise<ServiceRuntime<TOperations>>,
): Promise<ServiceRuntime<TOperations>> {
  const kit = await SqlServiceKit.open<DB>(name, deps, migrations);
  try {
    return await build(kit);
  } catch (err) {
    await kit.close();
    throw err;
  }
}
