import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DatabaseConfig } from '@bstore/platform';

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

/** A database for one test file, and how to remove it. */
export type MakeDatabase = (prefix: string) => Promise<{ config: DatabaseConfig; cleanup: () => Promise<void> }>;

/**
 * The two databases every repository suite runs on, for `describe.each`: in-memory PGlite (one
 * connection, so transactions never overlap) and a fresh PostgreSQL database with a pool of
 * `poolSize` (where concurrent transactions really overlap), dropped by its `cleanup`.
 */
export function databaseKinds(poolSize = 10): [string, MakeDatabase][] {
  return [
    ['PGlite', async () => ({ config: { kind: 'pglite' }, cleanup: async () => undefined })],
    [
      'PostgreSQL',
      async (prefix) => {
        const fresh = await freshDatabase(prefix);
        return { config: { kind: 'postgres', url: fresh.url, poolSize }, cleanup: fresh.drop };
      },
    ],
  ];
}
