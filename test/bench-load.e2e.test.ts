import type { EmbeddedSystem } from '@bstore/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { percentiles, runLoad, type LoadMode, type LoadResult } from '../bench/load.ts';
import { as, asStaff } from './support/auth.ts';
import { client, databasesOf, startTestSystem } from './support/system.ts';

/**
 * The benchmark's load driver (bench/load.ts) counts what happened: on the whole embedded system,
 * every reservation it saw answered 201 was seen reaching bookReserved on the staff stream, the
 * database agrees with its counts, and an open loop sends exactly its arrivals. No rate or latency
 * is asserted: this machine is shared (no timing thresholds in tests).
 */
let system: EmbeddedSystem;
let bookId: number;
let customers: { authorization: string }[];

beforeAll(async () => {
  system = await startTestSystem();
  const created = await client(system.gateway.url).createBook('Bench load book', 10_000);
  expect(created.status).toBe(201);
  bookId = created.body.bookId;
  customers = await Promise.all(Array.from({ length: 8 }, (_, i) => as(`bench-${i}`)));
});

afterAll(async () => {
  await system?.stop();
});

async function completedInDatabase(): Promise<number> {
  const row = await databasesOf(system)
    .reservation.selectFrom('reservations')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    // A cancel answered 202 may still be on its way (bookCancel): its saga completed all the same.
    .where('status', 'in', ['bookReserved', 'bookCancel', 'bookCanceled'])
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** 1.5 s of load on the test book, a fifth of the operations cancelling. */
async function load(mode: LoadMode): Promise<LoadResult> {
  return runLoad({ gateway: system.gateway.url, customers, staff: await asStaff(), pickBook: () => bookId, cancelShare: 0.2, mode, durationMs: 1500, settleTimeoutMs: 30_000 });
}

function expectConsistent(result: LoadResult) {
  // Every answer was an answer (no lost request), and each has a latency.
  expect(result.reserve.byStatus.lost).toBeUndefined();
  expect(result.reserve.latencyMs.count).toBe(result.reserve.sent);
  // Every 201 was watched to bookReserved.
  expect(result.sagas.acknowledged).toBe(result.reserve.byStatus['201'] ?? 0);
  expect(result.sagas.completed).toBe(result.sagas.acknowledged);
  expect(result.sagas.latencyMs.count).toBe(result.sagas.completed);
  // Cancels only of completed sagas: each accepted.
  expect(Object.keys(result.cancel.byStatus).filter((s) => s !== '202')).toEqual([]);
  for (const p of [result.reserve.latencyMs, result.sagas.latencyMs]) {
    expect(p.p50).toBeLessThanOrEqual(p.p95);
    expect(p.p95).toBeLessThanOrEqual(p.p99);
    expect(p.p99).toBeLessThanOrEqual(p.max);
  }
}

describe('the benchmark load driver', () => {
  it('nearest-rank percentiles', () => {
    expect(percentiles(Array.from({ length: 100 }, (_, i) => 100 - i))).toEqual({ count: 100, p50: 50, p95: 95, p99: 99, max: 100 });
    expect(percentiles([7])).toEqual({ count: 1, p50: 7, p95: 7, p99: 7, max: 7 });
    expect(percentiles([])).toEqual({ count: 0, p50: 0, p95: 0, p99: 0, max: 0 });
  });

  it('closed loop: every 201 is watched to bookReserved, and the database holds exactly those sagas', async () => {
    const before = await completedInDatabase();
    const result = await load({ kind: 'closed', workers: 4 });
    expect(result.sagas.acknowledged).toBeGreaterThan(0);
    expectConsistent(result);
    expect((await completedInDatabase()) - before).toBe(result.sagas.acknowledged);
  });

  it('open loop: sends exactly its arrivals (20 a second for 1.5 s) and watches every 201 to bookReserved', async () => {
    const result = await load({ kind: 'open', perSecond: 20 });
    expect(result.reserve.sent + result.cancel.sent + result.skipped).toBe(30);
    expect(result.skipped).toBe(0);
    expectConsistent(result);
  });
});
