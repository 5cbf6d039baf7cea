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
 */
export async function migrateToLatest(db: Kysely<unknown>, migrations: Migrations): Promise<string[]> {
  const all: Migrations = { ...messagingMigrations, ...migrations };
  const migrator = new Migrator({ db, provider: { getMigrations: async () => all } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new MigrationError(`migration ${failed} failed`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
