import { buildSqlService, type ServiceDeps, type ServiceRuntime, withDefaults } from '@bstore/platform';
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
import { bookSettings } from './settings.ts';

/** Composition root of the book service: catalogue, stock and holds. */
export interface BookOperations {
  /** Adds the books of a catalogue that are missing (the demo's). */
  seedCatalogue: SeedCatalogue;
}

export type BookService = ServiceRuntime<BookOperations>;

export interface BookConfig {
  /**
   * Copies one patron may hold at once; default the schema's (settings.ts). The hosts read it from
   * BSTORE_MAX_ACTIVE_RESERVATIONS, reservation's limit of active reservations (ADR 0021).
   */
  maxHeldCopiesPerCustomer?: number;
}

export async function createBookService(deps: ServiceDeps, config: BookConfig = {}): Promise<BookService> {
  return buildSqlService<BookTables, BookOperations>('book', deps, bookMigrations, async (kit) => {
    const tx = kit.transactions(bookUnitOfWork);
    kit.consumer(bookEventHandlers({ releaseHold: new ReleaseHold(), lendCopy: new LendCopy(), takeBackCopy: new TakeBackCopy() }));
    const app = await kit.app({ errorStatus: bookErrorStatus, readinessTable: 'books' });
    await app.register(bookRoutes, {
      createBook: new CreateBook(tx),
      adjustCopies: new AdjustCopies(tx),
      holdCopy: new HoldCopy(tx, { maxHeldPerCustomer: withDefaults(bookSettings, config).maxHeldCopiesPerCustomer }),
      catalogue: new BrowseCatalogue(new KyselyBookRepository(kit.db)),
    });
    return kit.runtime({ app, operations: { seedCatalogue: new SeedCatalogue(tx) } });
  });
}
