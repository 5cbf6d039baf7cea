import { sql, type Kysely } from 'kysely';
import type { Migrations } from '@bstore/platform';

export const assignmentMigrations: Migrations = {
  '0001_libraries_and_assignments': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('libraries')
        .addColumn('library_id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('address', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();

      await db.schema
        .createTable('assignments')
        .addColumn('assignment_id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
        // One row per reservation, whatever its status: the database refuses a second assignment (I5).
        .addColumn('reservation_id', 'integer', (c) => c.notNull().unique())
        .addColumn('book_id', 'integer', (c) => c.notNull())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('library_id', 'integer', (c) => c.references('libraries.library_id'))
        .addColumn('library_name', 'text')
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('assigned', 'released', 'voided')`))
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        // Only a tombstone lacks a library.
        .addCheckConstraint('assignments_library_unless_voided', sql`status = 'voided' OR (library_id IS NOT NULL AND library_name IS NOT NULL)`)
        .execute();
      // Serves the per-branch count of active assignments that the policy reads on every request.
      await db.schema.createIndex('assignments_by_library').on('assignments').columns(['library_id', 'status']).execute();
    },
  },
  '0002_failed_assignments': {
    async up(db: Kysely<unknown>) {
      // `failed`: no branch could serve the reservation (ADR 0021); like a tombstone it has no library.
      await sql`ALTER TABLE assignments
        DROP CONSTRAINT assignments_status_check,
        ADD CONSTRAINT assignments_status_check CHECK (status IN ('assigned', 'released', 'voided', 'failed')),
        DROP CONSTRAINT assignments_library_unless_voided,
        ADD CONSTRAINT assignments_library_unless_voided CHECK (status IN ('voided', 'failed') OR (library_id IS NOT NULL AND library_name IS NOT NULL))`.execute(db);
    },
  },
  '0003_closed_assignments': {
    async up(db: Kysely<unknown>) {
      // `closed`: the copy left the hold shelf, checked out or expired (ADR 0022); it keeps its library.
      await sql`ALTER TABLE assignments
        DROP CONSTRAINT assignments_status_check,
        ADD CONSTRAINT assignments_status_check CHECK (status IN ('assigned', 'released', 'voided', 'failed', 'closed'))`.execute(db);
    },
  },
};
