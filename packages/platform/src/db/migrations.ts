import type { Kysely } from 'kysely';
import { Migrator, type Migration } from 'kysely/migration';
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
 * inbox, dead letters) first, then the service's own migrations, in name order. Idempotent.
 * `schema`: the service's schema, when services share a database (one schema each).
 */
export async function migrateToLatest(db: Kysely<unknown>, migrations: Migrations, schema?: string): Promise<string[]> {
  const all: Migrations = { ...messagingMigrations, ...migrations };
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => all },
    // The platform's messaging migrations and the service's own are two independent sequences, so
    // a new one of either may sort before one the database already ran.
    allowUnorderedMigrations: true,
    // With a schema per service, Kysely must look for its own tables in this service's schema,
    // not find another service's and skip creating them.
    ...(schema !== undefined ? { migrationTableSchema: schema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const reason = error instanceof Error ? error.message : String(error);
    throw new MigrationError(failed ? `migration ${failed} failed: ${reason}` : `migrating failed: ${reason}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
