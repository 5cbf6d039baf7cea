import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createEnvelope, parseEvent, sourceOf } from '@bstore/contracts';
import type { ReservationPageDetail } from '../src/application/ports.ts';
import { RedisInbox } from '../src/adapters/redis/inbox.ts';
import { ReadModelKeys } from '../src/adapters/redis/keys.ts';
import { RedisPageUpdates } from '../src/adapters/redis/page-updates.ts';
import { RedisReservationPageStore } from '../src/adapters/redis/reservation-page.store.ts';
import { changeOf, type PageEvent } from '../src/application/events.ts';
import { eventually, testLogger } from '../../../test/support/harness.ts';
import { startPrivateRedis, type PrivateRedis } from '../../../test/support/redis.ts';

let server: PrivateRedis;
const connections: Redis[] = [];

/** A connection that the suite closes at the end. */
function connection(): Redis {
  const redis = new Redis(server.url);
  connections.push(redis);
  return redis;
}

const freshKeys = () => new ReadModelKeys(`test-${randomBytes(4).toString('hex')}:`);

beforeAll(async () => {
  server = await startPrivateRedis();
});

afterAll(async () => {
  for (const c of connections) await c.quit();
  await server?.stop();
});

let nextReservationId = 1;

function requested(reservationId = nextReservationId++): PageEvent {
  return parseEvent(
    createEnvelope({
      type: 'ReservationRequested',
      source: sourceOf('reservation'),
      subject: String(reservationId),
      data: { reservationId, bookId: 3, customerId: 'alice', bookName: 'Dune', preferredLibraryId: null, status: 'bookReserveReq' as const },
    }),
  ) as PageEvent;
}

describe('RedisInbox', () => {
  let store: RedisReservationPageStore;
  let inbox: RedisInbox;

  beforeAll(() => {
    const redis = connection();
    store = new RedisReservationPageStore(redis, freshKeys());
    inbox = new RedisInbox(redis, store);
  });

  const project = (event: PageEvent) => inbox.runOnce('customercenter', event, async (s) => void (await s.applyChange(changeOf(event))));

  it('runs an event once: the second time it is reported as handled before, and changes nothing', async () => {
    const event = requested();
    expect(await project(event)).toBe(true);
    const page = await store.get(event.data.reservationId);
    expect(await project(event)).toBe(false);
    expect(await store.get(event.data.reservationId)).toEqual(page);
    expect(page?.timeline).toHaveLength(1);
  });

  it('an event whose change was stored before the process died is found handled on redelivery, with its change kept', async () => {
    const event = requested();
    // The first delivery's change is stored; the process dies before acknowledging it.
    await store.applyChange(changeOf(event));
    expect(await project(event)).toBe(false);
    expect(await store.get(event.data.reservationId)).toMatchObject({ status: 'bookReserveReq', bookName: 'Dune' });
  });

  it('an effect that fails before its change records nothing, so the redelivery applies it', async () => {
    const event = requested();
    await expect(inbox.runOnce('customercenter', event, async () => Promise.reject(new Error('Redis went away')))).rejects.toThrow(/went away/);
    expect(await store.get(event.data.reservationId)).toBeNull();
    expect(await project(event)).toBe(true);
    expect(await store.get(event.data.reservationId)).not.toBeNull();
  });

  it('parks dead letters with everything about them, and lists them oldest first, by page', async () => {
    const before = Date.now();
    const letters = [1, 2, 3].map((n) => ({
      consumer: 'customercenter',
      eventId: `event-${n}`,
      eventType: 'ReservationAccepted',
      subject: 'bstore.assignment.ReservationAccepted',
      envelope: { id: `event-${n}`, data: { n } },
      error: `ReservationAccepted data is invalid (${n})`,
      deliveries: n,
    }));
    for (const letter of letters) await inbox.park(letter);
    const all = await inbox.listDeadLetters({ limit: 10, offset: 0 });
    expect(all.total).toBe(3);
    expect(all.items.map(({ id: _id, createdAt: _at, ...rest }) => rest)).toEqual(letters);
    expect(all.items.map((l) => l.id)).toEqual([1, 2, 3]);
    expect(all.items.every((l) => l.createdAt.getTime() >= before && l.createdAt.getTime() <= Date.now())).toBe(true);

    expect(await inbox.listDeadLetters({ limit: 1, offset: 1 })).toMatchObject({ total: 3, items: [{ id: 2, eventId: 'event-2' }] });
    expect(await inbox.listDeadLetters({ limit: 10, offset: 3 })).toEqual({ items: [], total: 3 });
  });
});

describe('RedisPageUpdates', () => {
  const opened: RedisPageUpdates[] = [];
  afterEach(async () => {
    for (const u of opened.splice(0)) await u.close();
  });

  /** One replica's page updates: its own publishing connection, and the subscriber it opens. */
  async function replica(channel: string): Promise<RedisPageUpdates> {
    const updates = await RedisPageUpdates.start({ redis: connection(), channel, logger: testLogger() });
    opened.push(updates);
    return updates;
  }

  const page = (reservationId: number): ReservationPageDetail => ({
    reservationId,
    bookId: 3,
    bookName: 'Dune',
    customerId: 'alice',
    status: 'bookReserved',
    libraryId: 2,
    libraryName: null,
    pickupBy: new Date('2025-05-08T10:00:01.000Z'),
    dueAt: null,
    queueTicket: 12,
    queuePosition: null,
    createdAt: new Date('2025-05-01T10:00:00.000Z'),
    updatedAt: new Date('2025-05-01T10:00:01.000Z'),
    timeline: [
      {
        eventId: 'e1',
        eventType: 'ReservationRequested',
        status: 'bookReserveReq',
        service: 'reservation',
        occurredAt: new Date('2025-05-01T10:00:00.000Z'),
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      },
      { eventId: 'e2', eventType: 'ReservationAccepted', status: 'bookReserved', service: 'assignment', occurredAt: new Date('2025-05-01T10:00:01.000Z'), traceId: null },
    ],
  });

  it("a listener on one replica receives, intact, the page another replica published, and the publisher's own listener gets it once", async () => {
    const channel = freshKeys().pagesChannel;
    const a = await replica(channel);
    const b = await replica(channel);
    const onA: ReservationPageDetail[] = [];
    const onB: ReservationPageDetail[] = [];
    a.subscribe((p) => onA.push(p));
    b.subscribe((p) => onB.push(p));
    b.publish(page(1));
    b.publish(page(2));
    await eventually('both pages on both replicas', async () => (onA.length === 2 && onB.length === 2 ? true : undefined));
    expect(onA).toEqual([page(1), page(2)]);
    expect(onB).toEqual([page(1), page(2)]);
    await new Promise((r) => setTimeout(r, 100));
    expect(onB).toHaveLength(2);
  });

  it('a page from a replica that does not send trace ids yet arrives with null ones', async () => {
    const channel = freshKeys().pagesChannel;
    const a = await replica(channel);
    const received: ReservationPageDetail[] = [];
    a.subscribe((p) => received.push(p));
    const sent = page(5);
    const older = { ...sent, timeline: sent.timeline.map(({ traceId: _t, ...entry }) => entry) };
    await connection().publish(channel, JSON.stringify(older));
    await eventually('the older page', async () => (received.length === 1 ? true : undefined));
    expect(received[0]?.timeline).toEqual(sent.timeline.map((entry) => ({ ...entry, traceId: null })));
  });

  it('a page from a replica that knows no deadlines or places in line yet arrives with null ones', async () => {
    const channel = freshKeys().pagesChannel;
    const a = await replica(channel);
    const received: ReservationPageDetail[] = [];
    a.subscribe((p) => received.push(p));
    const { pickupBy: _p, dueAt: _d, queueTicket: _q, queuePosition: _qp, ...older } = page(6);
    await connection().publish(channel, JSON.stringify(older));
    await eventually('the older page', async () => (received.length === 1 ? true : undefined));
    expect(received[0]).toEqual({ ...page(6), pickupBy: null, dueAt: null, queueTicket: null, queuePosition: null });
  });

  it('carries the deadlines as dates and the place in line', async () => {
    const channel = freshKeys().pagesChannel;
    const a = await replica(channel);
    const received: ReservationPageDetail[] = [];
    a.subscribe((p) => received.push(p));
    const sent = { ...page(8), status: 'bookLoaned' as const, dueAt: new Date('2025-05-22T10:00:00.000Z') };
    const waiting = { ...page(9), status: 'bookWaiting' as const, pickupBy: null, queuePosition: 3 };
    a.publish(sent);
    a.publish(waiting);
    await eventually('both pages', async () => (received.length === 2 ? true : undefined));
    expect(received).toEqual([sent, waiting]);
  });

  it('a listener that throws does not stop the others, and an ended subscription receives nothing', async () => {
    const channel = freshKeys().pagesChannel;
    const a = await replica(channel);
    const received: number[] = [];
    const stopped: number[] = [];
    a.subscribe(() => {
      throw new Error('a broken SSE client');
    });
    const stop = a.subscribe((p) => stopped.push(p.reservationId));
    a.subscribe((p) => received.push(p.reservationId));
    a.publish(page(1));
    await eventually('the first page', async () => (received.length === 1 ? true : undefined));
    stop();
    a.publish(page(2));
    await eventually('the second page', async () => (received.length === 2 ? true : undefined));
    expect(stopped).toEqual([1]);
    expect(a.listenerCount).toBe(2);
  });

  it('replicas on another channel (another prefix) hear nothing', async () => {
    const mine = await replica(freshKeys().pagesChannel);
    const other = await replica(freshKeys().pagesChannel);
    const heard: number[] = [];
    other.subscribe((p) => heard.push(p.reservationId));
    mine.subscribe((p) => heard.push(-p.reservationId));
    mine.publish(page(7));
    await eventually('the page on its own channel', async () => (heard.length === 1 ? true : undefined));
    await new Promise((r) => setTimeout(r, 100));
    expect(heard).toEqual([-7]);
  });

  it('after close() a replica hears nothing more, and others still publish', async () => {
    const channel = freshKeys().pagesChannel;
    const closing = await replica(channel);
    const staying = await replica(channel);
    const heard: number[] = [];
    closing.subscribe((p) => heard.push(p.reservationId));
    staying.subscribe((p) => heard.push(-p.reservationId));
    await closing.close();
    staying.publish(page(3));
    await eventually('the page on the replica that stays', async () => (heard.includes(-3) ? true : undefined));
    await new Promise((r) => setTimeout(r, 100));
    expect(heard).toEqual([-3]);
  });
});
