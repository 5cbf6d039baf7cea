import { sql, type Kysely } from 'kysely';
import type { Migrations } from '@bstore/platform';

export const bookMigrations: Migrations = {
  '0001_books_and_holds': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('books')
        .addColumn('book_id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
        .addColumn('book_name', 'text', (c) => c.notNull())
        .addColumn('author', 'text')
        .addColumn('isbn', 'text')
        // The database itself refuses an oversell, whatever the code above it does.
        .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity >= 0`))
        .addColumn('copies', 'integer', (c) => c.notNull().check(sql`copies >= 0`))
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addCheckConstraint('books_quantity_within_copies', sql`quantity <= copies`)
        .execute();
      await sql`CREATE INDEX books_name_search ON books (lower(book_name) text_pattern_ops)`.execute(db);

      await db.schema
        .createTable('holds')
        .addColumn('reservation_id', 'integer', (c) => c.primaryKey())
        .addColumn('book_id', 'integer', (c) => c.notNull())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('held', 'released', 'voided')`))
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      await db.schema.createIndex('holds_by_book').on('holds').columns(['book_id', 'status']).execute();
    },
  },
};
