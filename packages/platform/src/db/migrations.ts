import { sql, type Kysely } from 'kysely';
import { DEFAULT_MIGRATION_TABLE, Migrator, type Migration } from 'kysely/migration';
import { messagingMigrations } from '../messaging/schema.ts';

export type Migrations = Record<string, Migration>;

export class MigrationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

/**
 * Brings a service's database to the latest schema: the platform's messaging tables (outbox,
 * inbox, dead letters) first, then the service's own migrations, in name order. Idempotent, and a
 * no-op on a database that a newer release already migrated further (a rollback).
 * `schema`: the service's schema, when services share a database (one schema each).
 */
export async function migrateToLatest(db: Kysely<unknown>, migrations: Migrations, schema?: string): Promise<string[]> {
  // Nothing to run: done, even when the database also has migrations this release does not know
  // (a newer release ran them and this one was rolled back to), which Kysely's migrator refuses.
  if ((await pendingMigrations(db, migrations, schema)).length === 0) return [];
  const { error, results } = await migratorOf(db, migrations, schema).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const reason = messageOf(error);
    throw new MigrationError(failed ? `migration ${failed} failed: ${reason}` : `migrating failed: ${reason}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * The migrations (the platform's and the service's) this database has not run yet, in the order
 * they would run; empty when its schema is current. Changes nothing.
 */
export async function pendingMigrations(db: Kysely<unknown>, migrations: Migrations, schema?: string): Promise<string[]> {
  const known = await migratorOf(db, migrations, schema).getMigrations();
  return known.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

/**
 * Fails with a MigrationError naming what is missing unless every migration has run: what a
 * service started with `migrations: 'verify'` does, so that only a migration job changes the schema.
 */
export async function verifyMigrated(db: Kysely<unknown>, migrations: Migrations, schema?: string): Promise<void> {
  const pending = await pendingMigrations(db, migrations, schema);
  if (pending.length > 0) {
    throw new MigrationError(`the database schema is not current (${pending.length} migration(s) not run: ${pending.join(', ')}); run the migration job (migrate.js) first`);
  }
}

/**
 * Migrations the database has run that these migrations do not include: a newer release ran them
 * (this one is a rollback). Empty on a database never migrated.
 */
export async function newerMigrations(db: Kysely<unknown>, migrations: Migrations, schema?: string): Promise<string[]> {
  const known = new Set(Object.keys({ ...messagingMigrations, ...migrations }));
  const table = schema !== undefined ? sql.table(`${schema}.${DEFAULT_MIGRATION_TABLE}`) : sql.table(DEFAULT_MIGRATION_TABLE);
  try {
    const { rows } = await sql<{ name: string }>`SELECT name FROM ${table} ORDER BY name`.execute(db);
    return rows.map((r) => r.name).filter((name) => !known.has(name));
  } catch (err) {
    if ((err as { code?: unknown }).code === '42P01') return []; // no migration table yet
    throw err;
  }
}

function migratorOf(db: Kysely<unknown>, migrations: Migrations, schema?: string): Migrator {
  const all: Migrations = { ...messagingMigrations, ...migrations };
  return new Migrator({
    db,
    provider: { getMigrations: async () => all },
    // The platform's messaging migrations and the service's own are two independent sequences, so
    // a new one of either may sort before one the database already ran.
    allowUnorderedMigrations: true,
    // With a schema per service, Kysely must look for its own tables in this service's schema,
    // not find another service's and skip creating them.
    ...(schema !== undefined ? { migrationTableSchema: schema } : {}),
  });
}

/** What a failed migration threw, as text: an Error's message, anything else as String() gives it. */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
