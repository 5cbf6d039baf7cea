import { sql, type Kysely } from 'kysely';
import type { Migrations } from '@bstore/platform';

export const reservationMigrations: Migrations = {
  '0001_reservations': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('reservations')
        .addColumn('reservation_id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
        .addColumn('book_id', 'integer', (c) => c.notNull())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('preferred_library_id', 'integer')
        .addColumn('status', 'text', (c) =>
          c.notNull().check(sql`status IN ('pending', 'bookReserveReq', 'bookOutOfStock', 'rejected', 'bookReserved', 'bookCancel', 'bookCanceled')`),
        )
        .addColumn('book_name', 'text')
        .addColumn('library_id', 'integer')
        .addColumn('library_name', 'text')
        .addColumn('reject_reason', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('reservations_by_customer').on('reservations').columns(['customer_id', 'reservation_id']).execute();
      // The recovery sweep looks only at pending rows.
      await sql`CREATE INDEX reservations_pending ON reservations (updated_at) WHERE status = 'pending'`.execute(db);
      await db.schema.createIndex('reservations_by_status').on('reservations').columns(['status', 'reservation_id']).execute();
    },
  },
  '0002_idempotency_keys': {
    async up(db: Kysely<unknown>) {
      // The first answer to a POST /reservations sent with an Idempotency-Key, per customer and key.
      await db.schema
        .createTable('idempotency_keys')
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull().check(sql`state IN ('running', 'done')`))
        .addColumn('response_status', 'integer')
        .addColumn('response_type', 'text')
        .addColumn('response_body', 'text')
        .addColumn('locked_until', 'timestamptz', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['customer_id', 'idempotency_key'])
        .execute();
      await db.schema.createIndex('idempotency_keys_expiry').on('idempotency_keys').column('expires_at').execute();
    },
  },
};
