export { createBookService, type BookService, type BookInternals } from './main.ts';
export type { BookTables } from './adapters/db/schema.ts';
