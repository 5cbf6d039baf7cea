import { sql, type Kysely } from 'kysely';
import type { Migrations } from '@bstore/platform';

export const notificationMigrations: Migrations = {
  '0001_notices': {
    async up(db: Kysely<unknown>) {
      // What the service knows of each reservation, merged from its events in any order: what a
      // notice is checked against before it is made (never a notice about a state already left).
      await db.schema
        .createTable('reservation_facts')
        .addColumn('reservation_id', 'integer', (c) => c.primaryKey())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('book_id', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('book_name', 'text')
        .addColumn('library_name', 'text')
        .addColumn('pickup_by', 'timestamptz')
        .addColumn('due_at', 'timestamptz')
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();

      // Each patron's notices. One of each kind per reservation, whatever the redeliveries,
      // re-driven events or replicas: the primary key says so.
      await db.schema
        .createTable('notices')
        .addColumn('notice_id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('reservation_id', 'integer', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('book_id', 'integer', (c) => c.notNull())
        .addColumn('book_name', 'text')
        .addColumn('library_name', 'text')
        .addColumn('deadline', 'timestamptz')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('read_at', 'timestamptz')
        .addUniqueConstraint('notices_once', ['reservation_id', 'kind'])
        .execute();
      await sql`CREATE INDEX notices_by_customer ON notices (customer_id, notice_id DESC)`.execute(db);
      await sql`CREATE INDEX notices_unread ON notices (customer_id) WHERE read_at IS NULL`.execute(db);

      // Reminders before a deadline: scheduled work that survives restarts. A replica claims a due
      // reminder and makes its notice in one transaction (FOR UPDATE SKIP LOCKED), so there is one
      // reminder whatever the number of replicas.
      await db.schema
        .createTable('reminders')
        .addColumn('reservation_id', 'integer', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('due_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('reminders_pkey', ['reservation_id', 'kind'])
        .execute();
      await db.schema.createIndex('reminders_due').on('reminders').column('due_at').execute();
    },
  },
};
