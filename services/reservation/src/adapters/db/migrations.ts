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
};
