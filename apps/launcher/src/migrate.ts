import { createLogger, migrateToLatest, newerMigrations, openDatabase, pendingMigrations } from '@bstore/platform';
import { ConfigError } from './env.ts';
import { moduleNamed } from './registry.ts';
import { SQL_CAPABLE_SERVICES, readDatabaseConfig } from './service-config.ts';

/**
 * Brings one service's PostgreSQL database to the latest schema, then exits: the migration job of
 * a deployment (deploy/k8s, compose.yaml), run before the services start with DATABASE_MIGRATE=false.
 *
 *   node apps/launcher/dist/migrate.js <book|reservation|assignment|customercenter> [--check]
 *
 * It reads the service's own variables (DATABASE_URL, DATABASE_SCHEMA, DATABASE_CREATE; for
 * customercenter BSTORE_READ_MODEL=postgres). `--check` changes nothing: it lists the migrations not
 * run yet and exits 1 when there are any. Exit codes: 0 done (or current), 1 failed (or, with
 * --check, behind), 2 bad arguments or configuration. Running it twice, or in two places at once,
 * is safe: Kysely's migrator takes a lock and skips what has run.
 */
const args = process.argv.slice(2);
const check = args.includes('--check');
const service = args.find((a) => !a.startsWith('--')) ?? process.env.BSTORE_SERVICE ?? '';
const logger = createLogger({ level: process.env.LOG_LEVEL || 'info', pretty: process.env.LOG_FORMAT === 'pretty' }).child({ service, component: 'migrate' });

function fail(code: number, message: string): never {
  process.stderr.write(`bstore migrate ${service || '(no service named)'}: ${message}\n`);
  process.exit(code);
}

const unknownFlag = args.find((a) => a.startsWith('--') && a !== '--check');
if (unknownFlag) fail(2, `unknown option ${unknownFlag} (only --check)`);
const migrations = moduleNamed(service)?.migrations;
if (!migrations) fail(2, `name a service with a database: ${SQL_CAPABLE_SERVICES.join(', ')}`);

let database;
try {
  database = readDatabaseConfig(process.env, service);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  fail(2, `configuration error: ${err.message}`);
}
if (!database) fail(2, `${service} keeps no SQL database in this configuration (customercenter needs BSTORE_READ_MODEL=postgres)`);
const config = database;

// --check changes nothing: it neither creates the database nor the schema (`verify` opens without).
const opened = await openDatabase<unknown>(check ? { ...config, migrations: 'verify' } : config).catch((err: unknown) => fail(1, `cannot open the database: ${err instanceof Error ? err.message : String(err)}`));
try {
  if (check) {
    const pending = await pendingMigrations(opened.db, migrations, config.schema);
    logger.info({ pending }, pending.length === 0 ? 'the schema is current' : 'migrations not run yet');
    process.exitCode = pending.length === 0 ? 0 : 1;
  } else {
    const applied = await migrateToLatest(opened.db, migrations, config.schema);
    logger.info({ applied }, applied.length === 0 ? 'the schema was already current' : 'database migrated');
    const unknown = await newerMigrations(opened.db, migrations, config.schema);
    // A rollback: the database is ahead of this release, which is fine while migrations only add.
    if (unknown.length > 0) logger.warn({ unknown }, 'the database has migrations this release does not know (a newer release ran them)');
  }
} catch (err) {
  logger.error({ err }, 'migrating failed');
  process.exitCode = 1;
} finally {
  await opened.close();
}
