import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '@bstore/platform';
import { reservationMigrations } from '@bstore/reservation';
import type { ReservationTables } from '../src/adapters/db/schema.ts';
import { ACTIVE_STATUSES, ONE_PER_BOOK_STATUSES } from '../src/domain/reservation.ts';
import { freshDatabase } from '../../../test/support/postgres.ts';

/**
 * The count every placement makes (a patron's active reservations) stays an index lookup of the
 * active rows however long the patron's history: on PostgreSQL with 5,000 finished reservations
 * of each patron, the planner takes `reservations_active_by_customer`, whose predicate is exactly
 * ACTIVE_STATUSES. (The benchmark's growth step showed the count slowing with history before.)
 */
let db: Kysely<ReservationTables>;
let drop: () => Promise<void>;

beforeAll(async () => {
  const fresh = await freshDatabase('bstore_residx');
  drop = fresh.drop;
  db = new Kysely<ReservationTables>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: fresh.url, max: 2 }) }) });
  await migrateToLatest(db as Kysely<unknown>, reservationMigrations);
  await sql`
    INSERT INTO reservations (book_id, customer_id, status, created_at, updated_at)
    SELECT 1, 'patron-' || (n % 20), CASE WHEN n % 1000 = 0 THEN 'bookReserved' WHEN n % 10 = 0 THEN 'bookOutOfStock' ELSE 'bookCanceled' END, now(), now()
    FROM generate_series(1, 100000) AS n`.execute(db);
  await sql`ANALYZE reservations`.execute(db);
});

afterAll(async () => {
  await db?.destroy();
  await drop?.();
});

describe('the active-reservations index', () => {
  it('holds exactly the active statuses', async () => {
    const row = await sql<{ indexdef: string }>`SELECT indexdef FROM pg_indexes WHERE indexname = 'reservations_active_by_customer'`.execute(db);
    const statuses = [...(row.rows[0]?.indexdef ?? '').matchAll(/'(\w+)'::text/g)].map((m) => m[1]);
    expect(statuses.sort()).toEqual([...ACTIVE_STATUSES].sort());
  });

  it("serves the placement's count, with the statuses as parameters as the repository sends them", async () => {
    // The repository's query (countActiveAndLock), explained with the same bound parameters.
    const query = db
      .selectFrom('reservations')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('customer_id', '=', 'patron-0')
      .where('status', 'in', ACTIVE_STATUSES)
      .compile();
    const plan = await db.executeQuery<{ 'QUERY PLAN': string }>({ ...query, sql: `EXPLAIN ${query.sql}` });
    const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(text).toContain('reservations_active_by_customer');
    const count = await db.executeQuery<{ n: string }>(query);
    // patron-0's 5,000 reservations are the n divisible by 20; the 100 divisible by 1,000 are active.
    expect(Number(count.rows[0]?.n)).toBe(100);
  });

  it("serves the one-per-book check and the deadline sweep from partial indexes", async () => {
    const explain = async (query: { sql: string; parameters: readonly unknown[] }) => {
      const plan = await db.executeQuery<{ 'QUERY PLAN': string }>({ ...query, sql: `EXPLAIN ${query.sql}` } as never);
      return (plan.rows as { 'QUERY PLAN': string }[]).map((r) => r['QUERY PLAN']).join('\n');
    };
    const perBook = db
      .selectFrom('reservations')
      .select(['reservation_id', 'status'])
      .where('customer_id', '=', 'patron-0')
      .where('book_id', '=', 1)
      .where('status', 'in', ONE_PER_BOOK_STATUSES)
      .compile();
    // One active reservation per book: found among the patron's few active rows.
    expect(await explain(perBook)).toContain('reservations_active_by_customer');
    const due = db.selectFrom('reservations').select('reservation_id').where('status', '=', 'bookReserved').where('pickup_by', '<=', new Date()).orderBy('pickup_by').limit(100).compile();
    expect(await explain(due)).toContain('reservations_pickup_deadline');
  });
});
