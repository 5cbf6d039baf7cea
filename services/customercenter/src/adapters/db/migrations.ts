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
};
