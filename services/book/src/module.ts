import { defineService, setting, sqlServiceDeps } from '@bstore/platform';
import { bookMigrations } from './adapters/db/migrations.ts';
import { DEMO_BOOKS } from './demo-catalogue.ts';
import { createBookService } from './main.ts';

/** Book's own settings (README: "Environment of a service process"). */
export const bookSettings = {
  /** Copies one patron may hold or wait for at once: the same variable as reservation's limit of active reservations (ADR 0021). */
  maxHeldCopiesPerCustomer: setting.int('BSTORE_MAX_ACTIVE_RESERVATIONS', 5, { min: 1, max: 10_000 }),
};

/** The book service as every host runs it: catalogue, stock and holds (the seed's port 8083). */
export const bookService = defineService({
  name: 'book',
  defaultPort: 8083,
  settings: bookSettings,
  migrations: bookMigrations,
  usesBus: true,
  internalCalls: 'takes',
  build: (deps, config) => createBookService(sqlServiceDeps('book', deps), config),
  seedDemoData: async (book) => ({ books: await book.internals.seedCatalogue.execute(DEMO_BOOKS) }),
});
