export { createBookService, type BookConfig, type BookService, type BookOperations } from './main.ts';
export { DEMO_BOOKS } from './demo-catalogue.ts';
export { bookMigrations } from './adapters/db/migrations.ts';
export type { BookTables } from './adapters/db/schema.ts';
export { bookService, bookSettings } from './module.ts';
