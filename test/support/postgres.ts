import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import type { Kysely } from 'kysely';
import { openDatabase, type Database, type DatabaseConfig } from '@bstore/platform';

/** The machine's PostgreSQL (trust auth), unless BSTORE_TEST_POSTGRES_URL names another server. */
export const POSTGRES_URL = process.env.BSTORE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function reachable(): Promise<unknown> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Makes sure the PostgreSQL the tests use answers: when it does not and it is this machine's
 * Debian cluster, starts it (as the machine's own start command does); otherwise fails naming
 * what is missing. Never skips.
 */
export async function ensurePostgres(): Promise<void> {
  if ((await reachable()) === null) return;
  let versions: string[] = [];
  try {
    versions = readdirSync('/etc/postgresql');
  } catch {
    // No Debian cluster here to start.
  }
  for (const version of versions) {
    try {
      execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // Already running, or not startable this way: the check below decides.
    }
  }
  for (let i = 0; i < 20; i++) {
    if ((await reachable()) === null) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  const err = await reachable();
  throw new Error(
    `PostgreSQL is required by these tests and is not reachable at ${POSTGRES_URL} (${String(err)}). ` +
      'Start it (on this machine: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), ' +
      'or set BSTORE_TEST_POSTGRES_URL to a server the tests may create databases on.',
  );
}

/** A new, empty database for one test file; `drop()` removes it. */
export async function freshDatabase(prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  await ensurePostgres();
  const name = `bstore_test_${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    },
  };
}

/**
 * A database for one test file: the `config` to give the service, `connect` for the test's own
 * connection to it (to read or arrange its data as an operator would, with psql), and `cleanup`,
 * which closes those connections and removes the database.
 */
export interface TestDatabase {
  config: DatabaseConfig;
  connect<DB>(): Promise<Kysely<DB>>;
  cleanup(): Promise<void>;
}

export type MakeDatabase = (prefix: string) => Promise<TestDatabase>;

/** The test's connections to `config`, closed (before `remove`) by `cleanup`. */
export function testDatabase(config: DatabaseConfig, remove: () => Promise<void>): TestDatabase {
  const opened: Database<unknown>[] = [];
  return {
    config,
    async connect<DB>() {
      // An operator's connection: a small pool of its own (or, on PGlite, the same instance).
      const database = await openDatabase<DB>(config.kind === 'postgres' ? { ...config, poolSize: 2 } : config);
      opened.push(database as Database<unknown>);
      return database.db;
    },
    async cleanup() {
      for (const database of opened.splice(0)) await database.close();
      await remove();
    },
  };
}

/**
 * An in-memory PGlite database the test owns: the service is given the instance (and leaves it
 * open when it stops), the test reads it through `connect`, `cleanup` closes it.
 */
export async function memoryDatabase(): Promise<TestDatabase> {
  const instance = await PGlite.create();
  return testDatabase({ kind: 'pglite', instance }, async () => {
    if (!instance.closed) await instance.close();
  });
}

/** A fresh PostgreSQL database (`freshDatabase`) with a pool of `poolSize` for the service. */
export async function postgresDatabase(prefix: string, poolSize = 10): Promise<TestDatabase> {
  const fresh = await freshDatabase(prefix);
  return testDatabase({ kind: 'postgres', url: fresh.url, poolSize }, fresh.drop);
}

/**
 * The two databases every repository suite runs on, for `describe.each`: in-memory PGlite (one
 * connection, so transactions never overlap) and a fresh PostgreSQL database with a pool of
 * `poolSize` (where concurrent transactions really overlap), dropped by its `cleanup`.
 */
export function databaseKinds(poolSize = 10): [string, MakeDatabase][] {
  return [
    ['PGlite', () => memoryDatabase()],
    ['PostgreSQL', (prefix) => postgresDatabase(prefix, poolSize)],
  ];
}
