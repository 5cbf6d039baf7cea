import type { Kysely, Transaction } from 'kysely';
import {
  EventConsumer,
  KyselyDeadLetterStore,
  KyselyInbox,
  KyselyTransactionRunner,
  OutboxRelay,
  ServiceRuntime,
  createHttpApp,
  deadLetterRoutes,
  openServiceDatabase,
  type ServiceDeps,
  tracingOf,
} from '@bstore/platform';
import { AdjustCopies } from './application/adjust-copies/adjust-copies.service.ts';
import { BrowseCatalogue } from './application/browse-catalogue/browse-catalogue.service.ts';
import { CreateBook } from './application/create-book/create-book.service.ts';
import { HoldCopy } from './application/hold-copy/hold-copy.service.ts';
import { SeedCatalogue } from './application/create-book/seed-catalogue.service.ts';
import { LendCopy } from './application/lend-copy/lend-copy.service.ts';
import { ReleaseHold } from './application/release-hold/release-hold.service.ts';
import { TakeBackCopy } from './application/take-back-copy/take-back-copy.service.ts';
import { KyselyBookRepository } from './adapters/db/book.repository.ts';
import { bookMigrations } from './adapters/db/migrations.ts';
import type { BookTables } from './adapters/db/schema.ts';
import { bookUnitOfWork } from './adapters/db/unit-of-work.ts';
import { bookErrorStatus, bookRoutes } from './adapters/http/book.routes.ts';
import { bookEventHandlers } from './adapters/messaging/book.handlers.ts';

/** Composition root of the book service: catalogue, stock and holds. */
export interface BookInternals {
  db: Kysely<BookTables>;
  consumer: EventConsumer<Transaction<BookTables>>;
  seedCatalogue: SeedCatalogue;
}

export type BookService = ServiceRuntime<BookInternals>;

export interface BookConfig {
  /**
   * Copies one patron may hold at once; default 5. The launchers set it from
   * BSTORE_MAX_ACTIVE_RESERVATIONS, reservation's limit of active reservations (ADR 0021).
   */
  maxHeldCopiesPerCustomer?: number;
}

export async function createBookService(deps: ServiceDeps, config: BookConfig = {}): Promise<BookService> {
  const logger = deps.logger.child({ service: 'book' });
  const tracing = tracingOf(deps, 'book');
  const database = await openServiceDatabase<BookTables>(deps.database, bookMigrations, logger);
  const relay = new OutboxRelay({ db: database.db, bus: deps.bus, logger, tracer: tracing.tracer });
  const tx = new KyselyTransactionRunner(database.db, bookUnitOfWork, () => relay.kick());

  const consumer = new EventConsumer({
    name: 'book',
    tracer: tracing.tracer,
    inbox: new KyselyInbox(database.db, { afterOutboxCommit: () => relay.kick() }),
    bus: deps.bus,
    logger,
    handlers: bookEventHandlers({ releaseHold: new ReleaseHold(), lendCopy: new LendCopy(), takeBackCopy: new TakeBackCopy() }),
  });

  const app = createHttpApp({
    service: 'book',
    tracing,
    auth: deps.auth,
    logger,
    errorStatus: bookErrorStatus,
    readiness: { database: async () => void (await database.db.selectFrom('books').select('book_id').limit(1).execute()) },
  });
  await app.register(bookRoutes, {
    createBook: new CreateBook(tx),
    adjustCopies: new AdjustCopies(tx),
    holdCopy: new HoldCopy(tx, { maxHeldPerCustomer: config.maxHeldCopiesPerCustomer ?? 5 }),
    catalogue: new BrowseCatalogue(new KyselyBookRepository(database.db)),
  });
  await app.register(deadLetterRoutes, { service: 'book', store: new KyselyDeadLetterStore(database.db), consumer });

  return new ServiceRuntime({ name: 'book', logger, tracing, app, database, relay, consumers: [consumer], internals: { db: database.db, consumer, seedCatalogue: new SeedCatalogue(tx) } });
}
