import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureHoldFloor, measurePublishFloor } from '../bench/floor.ts';
import { startPrivateNats, type PrivateNats } from './support/nats.ts';
import { ensurePostgres, POSTGRES_URL } from './support/postgres.ts';

/**
 * The benchmark's floors (bench/floor.ts) measure what they say: every operation they count
 * committed its three writes (one copy taken, one hold, one outbox row) or was stored once by
 * JetStream, nothing failed, and nothing is left behind. Rates are printed, never asserted: this
 * machine is shared (no timing thresholds in tests).
 */
let nats: PrivateNats;

beforeAll(async () => {
  await ensurePostgres();
  nats = await startPrivateNats();
});

afterAll(async () => {
  await nats?.stop();
});

async function floorDatabases(): Promise<string[]> {
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'bstore_bench_floor_%'");
    return rows.map((r) => r.datname);
  } finally {
    await admin.end();
  }
}

describe('the benchmark floors', () => {
  it.each([1, 50])('the book-hold transaction on %i book(s): each counted operation took one copy and wrote one hold and one outbox row', async (books) => {
    const before = await floorDatabases();
    const result = await measureHoldFloor({ postgresUrl: POSTGRES_URL, concurrency: 4, durationMs: 1000, books, copies: 100_000 });
    expect(result.errors).toBe(0);
    expect(result.operations).toBeGreaterThan(0);
    expect(result.check).toEqual({ copiesTaken: result.operations, holds: result.operations, outboxRows: result.operations });
    expect(result.perSecond).toBeCloseTo(result.operations / (result.durationMs / 1000), 6);
    expect(result.name).toBe(books === 1 ? 'hold (1 hot book)' : `hold (${books} books)`);
    // Its database is gone.
    expect(await floorDatabases()).toEqual(before);
  });

  it('JetStream publish with ack: each counted publish is stored once, and the stream is deleted afterwards', async () => {
    const result = await measurePublishFloor({ natsUrl: nats.url, concurrency: 4, durationMs: 1000 });
    expect(result.errors).toBe(0);
    expect(result.operations).toBeGreaterThan(0);
    expect(result.check.stored).toBe(result.operations);
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: nats.url });
    try {
      const names: string[] = [];
      for await (const name of (await jetstreamManager(nc)).streams.names()) names.push(name);
      expect(names.filter((n) => n.startsWith('BENCH_FLOOR_'))).toEqual([]);
    } finally {
      await nc.close();
    }
  });
});
