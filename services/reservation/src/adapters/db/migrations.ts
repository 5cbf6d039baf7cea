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
  '0003_active_by_customer': {
    async up(db: Kysely<unknown>) {
      // Every placement counts the patron's active reservations (countActiveAndLock). Through
      // reservations_by_customer that reads every reservation the patron ever made, so it slowed as
      // history grew (the benchmark's growth step); this index holds only the active ones. The
      // planner uses it because the query's status list implies its predicate (ACTIVE_STATUSES).
      await sql`CREATE INDEX reservations_active_by_customer ON reservations (customer_id) WHERE status IN ('pending', 'bookReserveReq', 'bookReserved')`.execute(db);
    },
  },
  '0004_idempotency_key_names_its_reservation': {
    async up(db: Kysely<unknown>) {
      // A key names the reservation it created (in the transaction that stores it `pending`), so a
      // retry after a crash, a 5xx or a takeover answers from that reservation instead of placing
      // another; and only the request that claimed a key may complete or release it (ADR 0015).
      await sql`ALTER TABLE idempotency_keys ADD COLUMN claim_id text, ADD COLUMN reservation_id integer`.execute(db);
      // The key a reservation was placed with, for support and for the checks of one reservation per key.
      await sql`ALTER TABLE reservations ADD COLUMN idempotency_key text`.execute(db);
    },
  },
  '0005_waiting_line_and_deadlines': {
    async up(db: Kysely<unknown>) {
      // The whole life of a reservation (ADR 0022): the waiting line, the pickup deadline, loans.
      await sql`ALTER TABLE reservations DROP CONSTRAINT IF EXISTS reservations_status_check`.execute(db);
      await sql`ALTER TABLE reservations ADD CONSTRAINT reservations_status_check CHECK (status IN ('pending', 'bookWaiting', 'bookReserveReq', 'bookOutOfStock', 'rejected', 'bookReserved', 'bookCancel', 'bookCanceled', 'bookLoaned', 'bookReturned', 'bookExpired'))`.execute(
        db,
      );
      await sql`ALTER TABLE reservations
        ADD COLUMN waitlist boolean NOT NULL DEFAULT false,
        ADD COLUMN queue_ticket bigint,
        ADD COLUMN pickup_by timestamptz,
        ADD COLUMN due_at timestamptz`.execute(db);
      // The active list now includes waiting reservations (ACTIVE_STATUSES).
      await sql`DROP INDEX IF EXISTS reservations_active_by_customer`.execute(db);
      await sql`CREATE INDEX reservations_active_by_customer ON reservations (customer_id) WHERE status IN ('pending', 'bookWaiting', 'bookReserveReq', 'bookReserved')`.execute(db);
      // One active reservation per patron per book needs no index of its own: a patron has at most
      // the limit of active rows, found through reservations_active_by_customer.
      // The deadline sweep reads only the copies waiting for pickup, by deadline.
      await sql`CREATE INDEX reservations_pickup_deadline ON reservations (pickup_by) WHERE status = 'bookReserved'`.execute(db);
      // Places in line, per book.
      await sql`CREATE INDEX reservations_waiting_line ON reservations (book_id, queue_ticket) WHERE status = 'bookWaiting'`.execute(db);
      // The librarian's desk: a library's reservations by status.
      await db.schema.createIndex('reservations_by_library').on('reservations').columns(['library_id', 'status', 'reservation_id']).execute();
    },
  },
};
