import { sql, type Kysely } from 'kysely';
import type { Migrations } from '@bstore/platform';

export const customercenterMigrations: Migrations = {
  '0001_reservation_pages': {
    async up(db: Kysely<unknown>) {
      // Statuses are spelled out, not imported: a migration must not change after it ran.
      const statuses = sql`('pending', 'bookReserveReq', 'bookOutOfStock', 'rejected', 'bookReserved', 'bookCancel', 'bookCanceled')`;

      await db.schema
        .createTable('reservation_pages')
        .addColumn('reservation_id', 'integer', (c) => c.primaryKey())
        .addColumn('book_id', 'integer', (c) => c.notNull())
        .addColumn('book_name', 'text')
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ${statuses}`))
        .addColumn('library_id', 'integer')
        .addColumn('library_name', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .execute();
      // A customer's list, newest first; and the staff's list of everything.
      await sql`CREATE INDEX reservation_pages_by_customer ON reservation_pages (customer_id, updated_at DESC, reservation_id DESC)`.execute(db);
      await sql`CREATE INDEX reservation_pages_newest ON reservation_pages (updated_at DESC, reservation_id DESC)`.execute(db);

      await db.schema
        .createTable('reservation_timeline')
        .addColumn('id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
        .addColumn('reservation_id', 'integer', (c) => c.notNull().references('reservation_pages.reservation_id').onDelete('cascade'))
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ${statuses}`))
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
        .addUniqueConstraint('reservation_timeline_event', ['reservation_id', 'event_id'])
        .execute();
    },
  },
  '0002_timeline_trace_id': {
    async up(db: Kysely<unknown>) {
      // Nullable: entries recorded before it have no trace id, and an event may carry none.
      await db.schema.alterTable('reservation_timeline').addColumn('trace_id', 'text').execute();
    },
  },
  '0003_waiting_line_and_deadlines': {
    async up(db: Kysely<unknown>) {
      // The lifecycle grew (ADR 0022): four statuses more, spelled out as in 0001. The checks 0001
      // declared on the columns have PostgreSQL's default names, <table>_<column>_check.
      const statuses = sql`('pending', 'bookWaiting', 'bookReserveReq', 'bookOutOfStock', 'rejected', 'bookReserved', 'bookCancel', 'bookCanceled', 'bookLoaned', 'bookReturned', 'bookExpired')`;
      for (const table of ['reservation_pages', 'reservation_timeline']) {
        const check = sql.id(`${table}_status_check`);
        await sql`ALTER TABLE ${sql.table(table)} DROP CONSTRAINT ${check}, ADD CONSTRAINT ${check} CHECK (status IN ${statuses})`.execute(db);
      }
      // Nullable: a page knows them only once the events that carry them arrived.
      await db.schema
        .alterTable('reservation_pages')
        .addColumn('pickup_by', 'timestamptz')
        .addColumn('due_at', 'timestamptz')
        // bigint like book's tickets; every waiting page has one (it is only set by the events that carry it).
        .addColumn('queue_ticket', 'bigint')
        .execute();
      // The place in line is counted when read: the waiting pages of a book ahead of a ticket.
      await sql`CREATE INDEX reservation_pages_waiting_line ON reservation_pages (book_id, queue_ticket) WHERE status = 'bookWaiting'`.execute(db);
    },
  },
};
