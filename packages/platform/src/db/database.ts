import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import pg from 'pg';

import type { DatabaseConfig } from './config.ts';
export type { DatabaseConfig };

/** The connections of a PostgreSQL pool: open ones, idle ones, and requests waiting for one. */
import type { PoolStats } from '../metrics.ts';
export type { PoolStats };

export interface Database<DB> {
  readonly db: Kysely<DB>;
  readonly kind: DatabaseConfig['kind'];
  /**
   * The pool's connections right now (`pg.Pool`'s totalCount, idleCount, waitingCount), for the
   * `bstore_db_pool_connections` metric. PostgreSQL only: PGlite is one embedded connection.
   */
  poolStats?(): PoolStats;
  close(): Promise<void>;
}

/**
 * Opens a database and returns a Kysely instance on it.
 *
 * @example
 * const { db, close } = await openDatabase<BookTables>({ kind: 'pglite', dataDir: './data/book' });
 */
export async function openDatabase<DB>(config: DatabaseConfig): Promise<Database<DB>> {
  if (config.kind === 'postgres') return openPostgres<DB>(config);
  if (config.instance) {
    // Its owner closes it. Kysely's PGlite dialect runs each transaction in PGlite's exclusive
    // mode, so the owner's own queries never land inside one of the service's transactions.
    return { db: new Kysely<DB>({ dialect: new PGliteDialect({ pglite: config.instance as PGlite }) }), kind: 'pglite', close: async () => undefined };
  }
  if (config.dataDir) await mkdir(config.dataDir, { recursive: true });
  const pglite = await PGlite.create(config.dataDir);
  const db = new Kysely<DB>({ dialect: new PGliteDialect({ pglite }) });
  return {
    db,
    kind: 'pglite',
    async close() {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}

// COUNT(*) and other int8 values arrive as strings from pg; our counts fit a JS number.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

async function openPostgres<DB>(config: Extract<DatabaseConfig, { kind: 'postgres' }>): Promise<Database<DB>> {
  // With `verify` the schema is the migration job's: nothing is created here (a least-privilege role may not).
  const creates = config.migrations !== 'verify';
  if (creates && config.createIfMissing) await createDatabaseIfMissing(config.url);
  if (creates && config.schema !== undefined) await createSchemaIfMissing(config.url, config.schema);
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize ?? 10,
    // Unqualified names (every table, and Kysely's migration tables) resolve to the service's schema.
    ...(config.schema !== undefined ? { options: `-c search_path=${config.schema}` } : {}),
  });
  // An idle client's error (the server restarted) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: 'postgres',
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      await db.destroy();
    },
  };
}

const PLAIN_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** CREATE SCHEMA IF NOT EXISTS. Lower case only: search_path folds an unquoted name to lower case. */
async function createSchemaIfMissing(url: string, schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`schema name ${JSON.stringify(schema)} must be a lower-case identifier`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`).catch((err: unknown) => {
      // Another replica created it at the same moment.
      if ((err as { code?: string }).code !== '23505' && (err as { code?: string }).code !== '42P06') throw err;
    });
  } finally {
    await client.end();
  }
}

/** CREATE DATABASE when missing, through the server's `postgres` maintenance database. */
export async function createDatabaseIfMissing(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!PLAIN_IDENTIFIER.test(name)) throw new Error(`database name ${JSON.stringify(name)} is not a plain identifier`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name}"`).catch((err: unknown) => {
        // Another replica created it at the same moment.
        const code = (err as { code?: string }).code;
        if (code !== '42P04' && code !== '23505') throw err;
      });
    }
  } finally {
    await client.end();
  }
}
