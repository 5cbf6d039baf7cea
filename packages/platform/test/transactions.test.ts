import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KyselyTransactionRunner, isTransientConflict } from '../src/db/transactions.ts';
import { freshDatabase } from '../../../test/support/postgres.ts';

/**
 * The transaction runner on a real PostgreSQL: a transaction aborted as a deadlock victim is run
 * again (the work reads what it decides on inside the transaction), and other errors are not.
 */
interface Tables {
  counters: { id: number; n: number };
}

let db: Kysely<Tables>;
let drop: () => Promise<void>;

beforeAll(async () => {
  const fresh = await freshDatabase('txretry');
  drop = fresh.drop;
  const pool = new pg.Pool({ connectionString: fresh.url, max: 4 });
  // The database is dropped WITH (FORCE) at the end: an idle client's termination is expected.
  pool.on('error', () => undefined);
  db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  await sql`CREATE TABLE counters (id integer PRIMARY KEY, n integer NOT NULL)`.execute(db);
  await sql`INSERT INTO counters VALUES (1, 0), (2, 0)`.execute(db);
});

afterAll(async () => {
  await db?.destroy();
  await drop?.();
});

/** Resolves once both sides reached it. */
function barrier(): () => Promise<void> {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((r) => (release = r));
  return async () => {
    if (++arrived === 2) release();
    await all;
  };
}

describe('KyselyTransactionRunner', () => {
  it('runs a deadlock victim again: both transactions commit, each increment once', async () => {
    const runner = new KyselyTransactionRunner(db, (trx) => trx);
    const meet = barrier();
    let attempts = 0;
    /** Locks `first` then `second`; on its first attempt, waits for the other side between the two. */
    const crosswise = (first: number, second: number) =>
      runner.run(async (trx) => {
        const attempt = ++attempts;
        await trx.updateTable('counters').set({ n: sql`n + 1` }).where('id', '=', first).execute();
        if (attempt <= 2) await meet();
        await trx.updateTable('counters').set({ n: sql`n + 1` }).where('id', '=', second).execute();
      });
    await Promise.all([crosswise(1, 2), crosswise(2, 1)]);
    // Two first attempts, one of them aborted by PostgreSQL's deadlock detector, and its second run.
    expect(attempts).toBe(3);
    const rows = await db.selectFrom('counters').select(['id', 'n']).orderBy('id').execute();
    expect(rows).toEqual([
      { id: 1, n: 2 },
      { id: 2, n: 2 },
    ]);
  });

  it('does not run other failures again', async () => {
    const runner = new KyselyTransactionRunner(db, (trx) => trx);
    let attempts = 0;
    await expect(
      runner.run(async (trx) => {
        attempts++;
        await sql`SELECT 1 / 0`.execute(trx);
      }),
    ).rejects.toThrow(/division by zero/);
    expect(attempts).toBe(1);
  });

  it('knows the transient conflicts by SQLSTATE', () => {
    expect(isTransientConflict({ code: '40P01' })).toBe(true);
    expect(isTransientConflict({ code: '40001' })).toBe(true);
    expect(isTransientConflict({ code: '23505' })).toBe(false);
    expect(isTransientConflict(new Error('x'))).toBe(false);
    expect(isTransientConflict(null)).toBe(false);
  });
});
