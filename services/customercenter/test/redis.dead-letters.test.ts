import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisInbox } from '../src/adapters/redis/inbox.ts';
import { ReadModelKeys } from '../src/adapters/redis/keys.ts';
import { RedisReservationPageStore } from '../src/adapters/redis/reservation-page.store.ts';
import { describeDeadLetterStoreContract } from '../../../test/support/dead-letter-store.contract.ts';
import { startPrivateRedis, type PrivateRedis } from '../../../test/support/redis.ts';

let server: PrivateRedis;

beforeAll(async () => {
  server = await startPrivateRedis();
});

afterAll(async () => {
  await server?.stop();
});

/** A RedisInbox under a prefix of its own, on the private server. */
function redisInbox(prefix = `test-${randomBytes(4).toString('hex')}:`) {
  const redis = new Redis(server.url);
  const keys = new ReadModelKeys(prefix);
  const inbox = new RedisInbox(redis, new RedisReservationPageStore(redis, keys));
  return { redis, keys, inbox };
}

describe('RedisInbox as a DeadLetterStore', () => {
  describeDeadLetterStoreContract('Redis', async () => {
    const { redis, inbox } = redisInbox();
    return { store: inbox, park: (letter) => inbox.park(letter), close: async () => void (await redis.quit()) };
  });

  it('keeps its letters under its own prefix: another prefix on the same server sees none of them', async () => {
    const a = redisInbox();
    const b = redisInbox();
    try {
      await a.inbox.park({ consumer: 'customercenter', eventId: 'e-1', eventType: 'ReservationRequested', subject: 's', envelope: {}, error: 'x', deliveries: 1 });
      expect((await a.inbox.list({ limit: 10, offset: 0 })).total).toBe(1);
      expect(await b.inbox.list({ limit: 10, offset: 0, pending: true })).toEqual({ items: [], total: 0 });
      expect(await b.inbox.markReplayed(1, new Date())).toBe(false);
      expect((await a.inbox.get(1))?.replayedAt).toBeNull();
    } finally {
      await a.redis.quit();
      await b.redis.quit();
    }
  });

  it('the pending filter walks past more replayed letters than one batch of its script', async () => {
    const { redis, inbox } = redisInbox();
    try {
      for (let n = 1; n <= 250; n++) {
        await inbox.park({ consumer: 'customercenter', eventId: `e-${n}`, eventType: 'ReservationRequested', subject: 's', envelope: { n }, error: 'x', deliveries: 1 });
      }
      // The newest 230 are replayed: the pending ones are 20 .. 1, behind two full batches.
      for (let n = 21; n <= 250; n++) expect(await inbox.markReplayed(n, new Date())).toBe(true);
      const page = await inbox.list({ limit: 5, offset: 3, pending: true });
      expect(page.total).toBe(20);
      expect(page.items.map((l) => l.eventId)).toEqual(['e-17', 'e-16', 'e-15', 'e-14', 'e-13']);
      const tail = await inbox.list({ limit: 100, offset: 0, pending: true });
      expect(tail.items).toHaveLength(20);
      // listDeadLetters (oldest first, for the rebuild and the tests that use it) is unchanged.
      expect((await inbox.listDeadLetters({ limit: 2, offset: 0 })).items.map((l) => l.eventId)).toEqual(['e-1', 'e-2']);
    } finally {
      await redis.quit();
    }
  });
});
