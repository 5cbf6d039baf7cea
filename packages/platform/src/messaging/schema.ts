import { sql, type Generated, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import type { EventEnvelope } from '@bstore/contracts';

/** The messaging tables every service has beside its own: outbox, inbox, dead letters. */
export interface MessagingTables {
  outbox: {
    id: string;
    type: string;
    subject: string;
    envelope: EventEnvelope;
    created_at: Generated<Date>;
    published_at: Date | null;
    attempts: Generated<number>;
    last_error: string | null;
  };
  inbox: {
    consumer: string;
    event_id: string;
    event_type: string;
    received_at: Generated<Date>;
  };
  dead_letters: {
    id: Generated<number>;
    consumer: string;
    event_id: string;
    event_type: string;
    subject: string;
    envelope: unknown;
    error: string;
    deliveries: number;
    created_at: Generated<Date>;
    replayed_at: Date | null;
  };
}

export const messagingMigrations: Record<string, Migration> = {
  '0000_messaging': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('outbox')
        .addColumn('id', 'uuid', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('envelope', 'jsonb', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('published_at', 'timestamptz')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .execute();
      // The relay reads only unsent rows, oldest first: a partial index keeps that cheap however
      // many sent rows wait for pruning.
      await sql`CREATE INDEX outbox_unsent ON outbox (created_at, id) WHERE published_at IS NULL`.execute(db);

      await db.schema
        .createTable('inbox')
        .addColumn('consumer', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addPrimaryKeyConstraint('inbox_pk', ['consumer', 'event_id'])
        .execute();

      await db.schema
        .createTable('dead_letters')
        .addColumn('id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
        .addColumn('consumer', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('envelope', 'jsonb', (c) => c.notNull())
        .addColumn('error', 'text', (c) => c.notNull())
        .addColumn('deliveries', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('replayed_at', 'timestamptz')
        .execute();
    },
  },
  // Housekeeping (ADR 0014): pruning deletes sent outbox rows by `published_at` and inbox rows by
  // `received_at`, oldest first, in bounded batches; these indexes keep each batch an index range
  // scan however large the tables are. The partial index leaves out the unsent rows, which
  // `outbox_unsent` already covers.
  //
  // The name sorts after every service's `0001_...` migration (and before any `0002_...`):
  // Kysely refuses a new migration whose name sorts before one a database has already run, and
  // existing databases have run `0000_messaging` and then their service's `0001_...`.
  '0001_zz_messaging_housekeeping': {
    async up(db: Kysely<unknown>) {
      await sql`CREATE INDEX IF NOT EXISTS outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL`.execute(db);
      await sql`CREATE INDEX IF NOT EXISTS inbox_received ON inbox (received_at)`.execute(db);
    },
  },
};
