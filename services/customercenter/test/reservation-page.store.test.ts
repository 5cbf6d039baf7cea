import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { migrateToLatest, openServiceDatabase, type DatabaseConfig } from '@bstore/platform';
import { customercenterMigrations } from '../src/adapters/db/migrations.ts';
import { pageOf } from '../src/domain/reservation-page.ts';
import { KyselyReservationPageStore } from '../src/adapters/db/reservation-page.store.ts';
import type { CustomerCenterTables } from '../src/adapters/db/schema.ts';
import { ReadModelKeys } from '../src/adapters/redis/keys.ts';
import { RedisReservationPageStore } from '../src/adapters/redis/reservation-page.store.ts';
import { testLogger } from '../../../test/support/harness.ts';
import { freshDatabase } from '../../../test/support/postgres.ts';
import { startPrivateRedis, type PrivateRedis } from '../../../test/support/redis.ts';
import { describeReservationPageStoreContract, lifecycle, waitingLife, type StoreUnderTest, type StoreWriter } from './reservation-page.store.contract.ts';

let redis: PrivateRedis;

beforeAll(async () => {
  redis = await startPrivateRedis();
});

afterAll(async () => {
  await redis?.stop();
});

/** The SQL store on a database; each write is a transaction, as the consumer's inbox runs it. */
async function openSqlStore(config: DatabaseConfig, onClose: () => Promise<void> = async () => {}): Promise<StoreUnderTest> {
  const open = () => openServiceDatabase<CustomerCenterTables>(config, customercenterMigrations, testLogger());
  const database = await open();
  // PGlite is one connection in this process; a PostgreSQL server gets a second pool, as a second replica has.
  const other = config.kind === 'postgres' ? await open() : database;
  const writerOn =
    (db: typeof database.db): StoreWriter =>
    (work) =>
      db.transaction().execute((trx) => work(new KyselyReservationPageStore(trx)));
  return {
    store: new KyselyReservationPageStore(database.db),
    write: writerOn(database.db),
    writeFromOtherClient: writerOn(other.db),
    close: async () => {
      if (other !== database) await other.close();
      await database.close();
      await onClose();
    },
  };
}

/** A Redis store under a prefix of its own, and a second one on another connection. */
async function openRedisStore(keyPrefix = `test-${randomBytes(4).toString('hex')}:`): Promise<StoreUnderTest & { connections: Redis[] }> {
  const connections = [new Redis(redis.url), new Redis(redis.url)];
  const [first, second] = connections.map((c) => new RedisReservationPageStore(c, new ReadModelKeys(keyPrefix)));
  return {
    connections,
    store: first!,
    write: (work) => work(first!),
    writeFromOtherClient: (work) => work(second!),
    close: async () => {
      for (const c of connections) await c.quit();
    },
  };
}

describeReservationPageStoreContract('PGlite (Kysely)', () => openSqlStore({ kind: 'pglite' }));

describeReservationPageStoreContract('PostgreSQL (Kysely)', async () => {
  const database = await freshDatabase('customercenter_store');
  return openSqlStore({ kind: 'postgres', url: database.url, poolSize: 4 }, database.drop);
});

describeReservationPageStoreContract('Redis', () => openRedisStore());

describe('KyselyReservationPageStore', () => {
  it('a change rolled back with its transaction leaves no trace', async () => {
    const sut = await openSqlStore({ kind: 'pglite' });
    try {
      const [requested] = lifecycle(1);
      await expect(
        sut.write(async (store) => {
          await store.applyChange(requested!);
          throw new Error('handler failed after the upsert');
        }),
      ).rejects.toThrow(/handler failed/);
      expect(await sut.store.get(requested!.reservationId)).toBeNull();
      expect(await sut.store.timeline(requested!.reservationId)).toEqual([]);
    } finally {
      await sut.close();
    }
  });

  it('migration 0002 adds the trace id to a timeline recorded before it: old entries read null, new ones keep theirs', async () => {
    const database = await freshDatabase('customercenter_migration');
    const config: DatabaseConfig = { kind: 'postgres', url: database.url, poolSize: 2 };
    const [requested, accepted] = lifecycle(20);
    try {
      // The schema as it was before 0002, with an entry written by the code of that time.
      const before = await openServiceDatabase<CustomerCenterTables>(config, { '0001_reservation_pages': customercenterMigrations['0001_reservation_pages']! }, testLogger());
      try {
        const page = pageOf(requested!);
        await before.db
          .insertInto('reservation_pages')
          .values({
            reservation_id: page.reservationId,
            book_id: page.bookId,
            book_name: page.bookName,
            customer_id: page.customerId,
            status: page.status,
            library_id: page.libraryId,
            library_name: page.libraryName,
            created_at: page.createdAt,
            updated_at: page.updatedAt,
          })
          .execute();
        await before.db
          .insertInto('reservation_timeline')
          .values({
            reservation_id: requested!.reservationId,
            event_id: requested!.eventId,
            event_type: requested!.eventType,
            status: requested!.status,
            source: requested!.source,
            occurred_at: requested!.occurredAt,
          })
          .execute();
      } finally {
        await before.close();
      }

      const after = await openSqlStore(config);
      try {
        await after.write((store) => store.applyChange(accepted!));
        expect((await after.store.timeline(20)).map((e) => [e.eventId, e.traceId])).toEqual([
          [requested!.eventId, null],
          [accepted!.eventId, accepted!.traceId],
        ]);
      } finally {
        await after.close();
      }
    } finally {
      await database.drop();
    }
  });
});

describe('KyselyReservationPageStore migration 0003', () => {
  it.each([['PGlite'], ['PostgreSQL']])(
    'on %s: pages from before it read no deadlines and no ticket, and both tables take the new statuses, and only known ones',
    async (kind) => {
      const database = kind === 'PostgreSQL' ? await freshDatabase('customercenter_migration3') : null;
      const config: DatabaseConfig = database ? { kind: 'postgres', url: database.url, poolSize: 2 } : { kind: 'pglite' };
      const [requested] = lifecycle(30);
      try {
        const { '0003_waiting_line_and_deadlines': _latest, ...before } = customercenterMigrations;
        // PGlite in memory lives as long as its database: one database, migrated twice.
        const old = await openServiceDatabase<CustomerCenterTables>(config, before, testLogger());
        const page = pageOf(requested!);
        await old.db
          .insertInto('reservation_pages')
          .values({
            reservation_id: page.reservationId,
            book_id: page.bookId,
            book_name: page.bookName,
            customer_id: page.customerId,
            status: page.status,
            library_id: page.libraryId,
            library_name: page.libraryName,
            created_at: page.createdAt,
            updated_at: page.updatedAt,
          })
          .execute();
        await expect(new KyselyReservationPageStore(old.db).applyChange(waitingLife(31, { bookId: 5, queueTicket: 1 }).waitlisted)).rejects.toThrow();
        let current = old;
        if (database) {
          await old.close();
          current = await openServiceDatabase<CustomerCenterTables>(config, customercenterMigrations, testLogger());
        } else {
          await migrateToLatest(old.db as never, customercenterMigrations);
        }
        try {
          const store = new KyselyReservationPageStore(current.db);
          expect(await store.get(30)).toMatchObject({ status: 'bookReserveReq', pickupBy: null, dueAt: null, queueTicket: null, queuePosition: null });
          const life = waitingLife(31, { bookId: 5, queueTicket: 1 });
          for (const change of [life.waitlisted, life.granted, life.accepted, life.checkedOut, life.returned]) await store.applyChange(change);
          expect((await store.timeline(31)).map((e) => e.status)).toEqual(['bookWaiting', 'bookReserveReq', 'bookReserved', 'bookLoaned', 'bookReturned']);
          await store.applyChange(waitingLife(32, { bookId: 5, queueTicket: 2 }).expired);
          expect((await store.get(32))?.status).toBe('bookExpired');
          await expect(store.applyChange({ ...life.returned, reservationId: 33, status: 'bookLost' as never })).rejects.toThrow(/check/i);
          const index = await sql<{ indexdef: string }>`SELECT indexdef FROM pg_indexes WHERE indexname = 'reservation_pages_waiting_line'`.execute(current.db);
          expect(index.rows[0]?.indexdef).toMatch(/\(book_id, queue_ticket\) WHERE \(status = 'bookWaiting'::text\)/);
        } finally {
          await current.close();
        }
      } finally {
        await database?.drop();
      }
    },
  );
});

describe('RedisReservationPageStore', () => {
  let sut: Awaited<ReturnType<typeof openRedisStore>>;
  let store: RedisReservationPageStore;
  let client: Redis;

  beforeAll(async () => {
    sut = await openRedisStore('bstore:cc-test:');
    store = sut.store as RedisReservationPageStore;
    client = sut.connections[0]!;
  });

  afterAll(async () => {
    await sut.close();
  });

  it('reports whether a change was the first of its event', async () => {
    const [requested, accepted] = lifecycle(10);
    expect((await store.record(requested!)).firstTime).toBe(true);
    expect((await store.record(accepted!)).firstTime).toBe(true);
    const again = await store.record(requested!);
    expect(again).toEqual({ page: await store.applyChange(accepted!), firstTime: false });
  });

  it('keeps every key under its prefix, with the documented layout', async () => {
    const layout = await openRedisStore('bstore:cc-layout:');
    try {
      const accepted = lifecycle(11, 'keys')[1]!;
      await layout.store.applyChange(accepted);
      expect((await client.keys('bstore:cc-layout:*')).sort()).toEqual([
        'bstore:cc-layout:index:all',
        'bstore:cc-layout:index:customer:keys',
        'bstore:cc-layout:index:status:bookReserved',
        'bstore:cc-layout:index:status:bookReserved:customer:keys',
        'bstore:cc-layout:page:11',
        'bstore:cc-layout:timeline:11',
      ]);
      const time = String(accepted.occurredAt.getTime());
      expect(await client.hgetall('bstore:cc-layout:page:11')).toEqual({
        reservationId: '11',
        bookId: '11',
        customerId: 'keys',
        status: 'bookReserved',
        libraryId: '4',
        libraryName: 'Harbour',
        createdAt: time,
        updatedAt: time,
      });
      expect(await client.zrange('bstore:cc-layout:index:all', '0', '-1', 'WITHSCORES')).toEqual(['0000000000000011', time]);
      expect(JSON.parse((await client.hget('bstore:cc-layout:timeline:11', accepted.eventId))!)).toEqual({
        eventType: 'ReservationAccepted',
        status: 'bookReserved',
        source: 'bstore/assignment',
        occurredAt: accepted.occurredAt.getTime(),
        traceId: accepted.traceId,
      });
    } finally {
      await layout.close();
    }
  });

  it("keeps a waiting page in its book's line, scored by its ticket, exactly while it waits; and the deadlines as epoch ms", async () => {
    const layout = await openRedisStore('bstore:cc-line:');
    try {
      const life = waitingLife(18, { bookId: 6, queueTicket: 41, customerId: 'keys' });
      await layout.store.applyChange(life.waitlisted);
      expect(await client.zrange('bstore:cc-line:waiting:6', '0', '-1', 'WITHSCORES')).toEqual(['0000000000000018', '41']);
      expect(await client.hget('bstore:cc-line:page:18', 'queueTicket')).toBe('41');
      await layout.store.applyChange(life.waitlisted);
      expect(await client.zcard('bstore:cc-line:waiting:6')).toBe(1);
      await layout.store.applyChange(life.granted);
      expect(await client.exists('bstore:cc-line:waiting:6')).toBe(0);
      // A late repeat of the event that put it in line does not put it back.
      await layout.store.applyChange(life.waitlisted);
      expect(await client.exists('bstore:cc-line:waiting:6')).toBe(0);
      for (const change of [life.accepted, life.checkedOut]) await layout.store.applyChange(change);
      expect(await client.hgetall('bstore:cc-line:page:18')).toMatchObject({
        status: 'bookLoaned',
        pickupBy: String(life.accepted.pickupBy!.getTime()),
        dueAt: String(life.checkedOut.dueAt!.getTime()),
        queueTicket: '41',
      });
      expect((await client.keys('bstore:cc-line:*')).sort()).toEqual([
        'bstore:cc-line:index:all',
        'bstore:cc-line:index:customer:keys',
        'bstore:cc-line:index:status:bookLoaned',
        'bstore:cc-line:index:status:bookLoaned:customer:keys',
        'bstore:cc-line:page:18',
        'bstore:cc-line:timeline:18',
      ]);
    } finally {
      await layout.close();
    }
  });

  it('reads an entry stored before trace ids with a null one', async () => {
    const [requested, accepted] = lifecycle(17);
    await store.applyChange(accepted!);
    // What the code before trace ids wrote: no traceId field at all.
    const legacy = { eventType: requested!.eventType, status: requested!.status, source: requested!.source, occurredAt: requested!.occurredAt.getTime() };
    await client.hset(store.keys.timeline(17), requested!.eventId, JSON.stringify(legacy));
    expect((await store.timeline(17)).map((e) => [e.eventId, e.traceId])).toEqual([
      [requested!.eventId, null],
      [accepted!.eventId, accepted!.traceId],
    ]);
    expect((await store.get(17))?.timeline.map((e) => e.traceId)).toEqual([null, accepted!.traceId]);
  });

  it('refuses a status the rank table does not know, and changes nothing', async () => {
    const [requested] = lifecycle(12);
    await expect(store.applyChange({ ...requested!, status: 'bookLost' as never })).rejects.toThrow(/unknown status bookLost/);
    expect(await store.get(12)).toBeNull();
  });

  it('clear() deletes the pages, timelines, indexes and waiting lines under its prefix only', async () => {
    const neighbour = await openRedisStore('bstore:cc-test-neighbour:');
    try {
      await neighbour.store.applyChange(lifecycle(13)[0]!);
      await client.set('bstore:cc-test:deadletters:next-id', '7');
      await store.applyChange(lifecycle(14)[0]!);
      await store.applyChange(waitingLife(19, { bookId: 8, queueTicket: 1 }).waitlisted);
      expect(await client.exists('bstore:cc-test:waiting:8')).toBe(1);
      const before = await client.keys('bstore:cc-test:*');
      expect(await store.clear()).toBe(before.length - 1);
      expect(await client.keys('bstore:cc-test:*')).toEqual(['bstore:cc-test:deadletters:next-id']);
      expect(await neighbour.store.get(13)).not.toBeNull();
      expect(await store.list({ limit: 10, offset: 0 })).toEqual({ items: [], total: 0 });
    } finally {
      await neighbour.close();
    }
  });

  it('clear() takes glob characters in the prefix literally', async () => {
    const starred = await openRedisStore('bstore:*:');
    try {
      await starred.store.applyChange(lifecycle(15)[0]!);
      await store.applyChange(lifecycle(16)[0]!);
      expect(await (starred.store as RedisReservationPageStore).clear()).toBe(6);
      expect(await store.get(16)).not.toBeNull();
    } finally {
      await starred.close();
    }
  });
});
