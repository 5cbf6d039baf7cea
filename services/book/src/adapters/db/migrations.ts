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
  '0002_customer_copies': {
    async up(db: Kysely<unknown>) {
      // How many copies each patron holds now, so that a hold past the limit is refused in one
      // statement (ADR 0021). Filled from the holds already held.
      await db.schema
        .createTable('customer_copies')
        .addColumn('customer_id', 'text', (c) => c.primaryKey())
        .addColumn('held', 'integer', (c) => c.notNull().check(sql`held >= 0`))
        .execute();
      await sql`INSERT INTO customer_copies (customer_id, held)
        SELECT customer_id, count(*) FROM holds WHERE status = 'held' GROUP BY customer_id`.execute(db);
    },
  },
  '0003_waiting_line_and_loans': {
    async up(db: Kysely<unknown>) {
      // The whole life of a hold (ADR 0022): a reservation may wait in its book's line for a copy
      // (`waiting`, FIFO by queue_ticket), and a held copy may be checked out (`loaned`).
      await sql`ALTER TABLE holds DROP CONSTRAINT IF EXISTS holds_status_check`.execute(db);
      await sql`ALTER TABLE holds ADD CONSTRAINT holds_status_check CHECK (status IN ('held', 'waiting', 'loaned', 'released', 'voided'))`.execute(db);
      await sql`ALTER TABLE holds ADD COLUMN queue_ticket bigint`.execute(db);
      await sql`CREATE SEQUENCE hold_queue_tickets`.execute(db);
      // A waiting hold has its place in line; nothing else has one it could be served by.
      await sql`ALTER TABLE holds ADD CONSTRAINT holds_waiting_has_ticket CHECK (status <> 'waiting' OR queue_ticket IS NOT NULL)`.execute(db);
      // The line of each book, oldest first: what every freed copy looks at.
      await sql`CREATE INDEX holds_waiting_line ON holds (book_id, queue_ticket) WHERE status = 'waiting'`.execute(db);
    },
  },
};
