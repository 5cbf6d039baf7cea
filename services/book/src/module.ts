import { defineService, sqlServiceDeps } from '@bstore/platform';
import { bookMigrations } from './adapters/db/migrations.ts';
import { DEMO_BOOKS } from './demo-catalogue.ts';
import { createBookService } from './main.ts';
import { bookSettings } from './settings.ts';

export { bookSettings };

/** The book service as every host runs it: catalogue, stock and holds (the seed's port 8083). */
export const bookService = defineService({
  name: 'book',
  defaultPort: 8083,
  settings: bookSettings,
  migrations: bookMigrations,
  usesBus: true,
  internalCalls: 'takes',
  build: (deps, config) => createBookService(sqlServiceDeps('book', deps), config),
  seedDemoData: async (book) => ({ books: await book.operations.seedCatalogue.execute(DEMO_BOOKS) }),
});
