import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { EVENT_TYPES, createEnvelope, sourceOf, subjectOf, type EventEnvelope, type EventType } from '@bstore/contracts';
import { NatsJetStreamBus } from '@bstore/platform';
import { createCustomerCenterService, rebuildReadModel, PAGE_EVENT_SUBJECTS, type ReservationPageDetail } from '@bstore/customercenter';
import { RedisReservationPageStore } from '../src/adapters/redis/reservation-page.store.ts';
import { ReadModelKeys } from '../src/adapters/redis/keys.ts';
import { eventually, memoryBus, testLogger } from '../../../test/support/harness.ts';
import { startPrivateNats, type PrivateNats } from '../../../test/support/nats.ts';
import { startPrivateRedis, type PrivateRedis } from '../../../test/support/redis.ts';
import { testAuth } from '../../../test/support/auth.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let nats: PrivateNats;
let redisServer: PrivateRedis;
let bus: NatsJetStreamBus;
let redis: Redis;
const keyPrefix = `test-${randomBytes(4).toString('hex')}:`;
let store: RedisReservationPageStore;

beforeAll(async () => {
  [nats, redisServer] = await Promise.all([startPrivateNats(), startPrivateRedis()]);
  bus = await NatsJetStreamBus.connect({ servers: nats.url, logger: testLogger() });
  redis = new Redis(redisServer.url);
  store = new RedisReservationPageStore(redis, new ReadModelKeys(keyPrefix));
});

afterAll(async () => {
  await redis?.quit();
  await bus?.close();
  await Promise.all([nats?.stop(), redisServer?.stop()]);
});

const t0 = Date.parse('2025-07-01T12:00:00.000Z');

function event(type: EventType, reservationId: number, second: number, data: Record<string, unknown>, customerId = 'alice'): EventEnvelope {
  const producer = type === 'ReservationAccepted' || type === 'ReservationCanceled' ? 'assignment' : type === 'CopyGranted' ? 'book' : 'reservation';
  return createEnvelope({
    type,
    source: sourceOf(producer),
    subject: String(reservationId),
    time: new Date(t0 + (reservationId * 100 + second) * 1000),
    data: { reservationId, bookId: 7, customerId, ...data },
  });
}

function lifecycle(reservationId: number, customerId = 'alice'): EventEnvelope[] {
  return [
    event('ReservationRequested', reservationId, 0, { bookName: 'Pachinko', preferredLibraryId: null, status: 'bookReserveReq' }, customerId),
    event('ReservationAccepted', reservationId, 1, { assignmentId: reservationId, libraryId: 3, libraryName: 'Harbour', status: 'bookReserved' }, customerId),
    event('ReservationCancelRequested', reservationId, 2, { status: 'bookCancel' }, customerId),
    event('ReservationCanceled', reservationId, 3, { status: 'bookCanceled' }, customerId),
  ];
}

/** Reservations in every shape the stream can hold them: in order, out of order, refused, half-way. */
function history(): { pageEvents: EventEnvelope[]; others: EventEnvelope[] } {
  const [requested1, accepted1, cancelRequested1, canceled1] = lifecycle(1);
  const [requested2, accepted2] = lifecycle(2);
  const [requested4, accepted4, cancelRequested4, canceled4] = lifecycle(4);
  const [requested5, accepted5, cancelRequested5] = lifecycle(5);
  const [requested6] = lifecycle(6, 'bob');
  const rejected3 = event('ReservationRejected', 3, 0, { bookName: 'Almond', status: 'bookOutOfStock', reason: 'no copy available' });
  // The waiting line of book 7 (ADR 0022): 10 joined first and was granted a copy, then loaned it;
  // 11 still waits (first in line now); 12 was accepted and expired.
  const pickupBy = new Date(t0 + 7 * 86_400_000).toISOString();
  const waitlisted10 = event('ReservationWaitlisted', 10, 0, { bookName: 'Pachinko', queueTicket: 1, status: 'bookWaiting' });
  const granted10 = event('CopyGranted', 10, 1, { bookName: 'Pachinko', queueTicket: 1, cause: 'returned', status: 'bookReserveReq' });
  const accepted10 = event('ReservationAccepted', 10, 2, { assignmentId: 10, libraryId: 3, libraryName: 'Harbour', status: 'bookReserved', pickupBy });
  const checkedOut10 = event('ReservationCheckedOut', 10, 3, { libraryId: 3, dueAt: new Date(t0 + 21 * 86_400_000).toISOString(), status: 'bookLoaned' });
  const waitlisted11 = event('ReservationWaitlisted', 11, 0, { bookName: 'Pachinko', queueTicket: 2, status: 'bookWaiting' }, 'bob');
  const accepted12 = event('ReservationAccepted', 12, 0, { assignmentId: 12, libraryId: 3, libraryName: 'Harbour', status: 'bookReserved', pickupBy });
  const expired12 = event('ReservationExpired', 12, 1, { libraryId: 3, pickupBy, status: 'bookExpired' });
  const returned13 = event('ReservationReturned', 13, 0, { libraryId: null, status: 'bookReturned' });
  return {
    pageEvents: [
      requested1!,
      accepted1!,
      cancelRequested1!,
      canceled1!,
      requested2!,
      accepted2!,
      rejected3,
      canceled4!,
      accepted4!,
      cancelRequested4!,
      requested4!,
      requested5!,
      cancelRequested5!,
      accepted5!,
      requested6!,
      // Out of order, as a replay may hold them: the grant before the join.
      granted10,
      waitlisted11,
      waitlisted10,
      accepted10,
      checkedOut10,
      expired12,
      accepted12,
      returned13,
    ],
    others: [
      createEnvelope({ type: 'QuantityChanged', source: sourceOf('book'), subject: '7', data: { bookId: 7, quantity: 0, copies: 1, reason: 'held' } }),
      // Malformed: the consumer parks it, the rebuild skips it.
      createEnvelope({ type: 'ReservationAccepted', source: sourceOf('assignment'), subject: '9', data: { reservationId: 9 } }),
    ],
  };
}

/** The whole view through the store: every page, newest first, each with its timeline. */
async function view(): Promise<ReservationPageDetail[]> {
  const { items, total } = await store.list({ limit: 1000, offset: 0 });
  expect(items).toHaveLength(total);
  return items;
}

/** Every key of the view (pages, timelines, indexes) with its content, read raw from Redis. */
async function rawView(): Promise<Record<string, unknown>> {
  const keys = (await redis.keys(`${keyPrefix}*`)).filter((k) => !k.startsWith(`${keyPrefix}deadletter`)).sort();
  const raw: Record<string, unknown> = {};
  for (const key of keys) raw[key] = (await redis.type(key)) === 'hash' ? await redis.hgetall(key) : await redis.zrange(key, '0', '-1', 'WITHSCORES');
  return raw;
}

async function deleteEverything(): Promise<void> {
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
}

/** Runs the rebuild command as an operator would, and resolves with its exit code and output. */
function runCommand(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--conditions=source', 'services/customercenter/src/rebuild.ts'], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

describe('rebuilding the Redis read model from the stream', () => {
  const { pageEvents, others } = history();
  let projected: ReservationPageDetail[];
  let projectedRaw: Record<string, unknown>;

  beforeAll(async () => {
    for (const envelope of [...pageEvents.slice(0, 5), ...others, ...pageEvents.slice(5)]) await bus.publish(subjectOf(envelope.type as EventType), envelope);
    // The same event again is dropped by the stream's deduplication.
    await bus.publish(subjectOf('ReservationRequested'), pageEvents[0]!);

    const service = await createCustomerCenterService({ bus, logger: testLogger(), auth: await testAuth(), redis: { url: redisServer.url, keyPrefix } });
    try {
      await service.start({ port: 0 });
      await eventually(
        'every page event projected',
        async () => ((await view()).reduce((n, page) => n + page.timeline.length, 0) === pageEvents.length ? true : undefined),
        30_000,
      );
    } finally {
      await service.stop();
    }
    projected = await view();
    projectedRaw = await rawView();
  });

  it('replays exactly the subjects the consumer reads', async () => {
    // The subjects the service's consumer declares, read off a bus as an operator would: on an
    // embedded bus of its own (NATS 2.9 keeps one covering filter, not the list), the service
    // declares its consumer without consuming, and an event on each subject of the catalogue is
    // published; the consumer's lag grows for exactly the subjects it reads. Every bus subject is
    // an event type's (`subjectOf`), so the catalogue covers them all.
    const probeBus = await memoryBus();
    const service = await createCustomerCenterService({ bus: probeBus, logger: testLogger(), auth: await testAuth(), redis: { url: redisServer.url, keyPrefix } });
    try {
      await service.start({ port: 0, consumers: false });
      const read: string[] = [];
      for (const type of EVENT_TYPES) {
        const before = await probeBus.lag(service.name);
        expect(before).toBeDefined();
        await probeBus.publish(subjectOf(type), createEnvelope({ type, source: sourceOf('reservation'), subject: 'probe', data: {} }));
        if ((await probeBus.lag(service.name))! > before!) read.push(subjectOf(type));
      }
      expect(read.length).toBeGreaterThan(0);
      expect([...PAGE_EVENT_SUBJECTS].sort()).toEqual(read.sort());
    } finally {
      await service.stop();
      await probeBus.close();
    }
  });

  it('the projected view is the one the events describe', () => {
    expect(projected.map((p) => [p.reservationId, p.status])).toEqual([
      [13, 'bookReturned'],
      [12, 'bookExpired'],
      [11, 'bookWaiting'],
      [10, 'bookLoaned'],
      [6, 'bookReserveReq'],
      [5, 'bookCancel'],
      [4, 'bookCanceled'],
      [3, 'bookOutOfStock'],
      [2, 'bookReserved'],
      [1, 'bookCanceled'],
    ]);
    expect(projected.find((p) => p.reservationId === 5)).toMatchObject({ bookName: 'Pachinko', libraryName: 'Harbour' });
    expect(projected.find((p) => p.reservationId === 10)).toMatchObject({ queueTicket: 1, queuePosition: null, pickupBy: new Date(t0 + 7 * 86_400_000), dueAt: new Date(t0 + 21 * 86_400_000) });
    expect(projected.find((p) => p.reservationId === 11)).toMatchObject({ queueTicket: 2, queuePosition: 1 });
    expect(projected.find((p) => p.reservationId === 12)).toMatchObject({ pickupBy: new Date(t0 + 7 * 86_400_000), queuePosition: null });
    expect(projectedRaw[`${keyPrefix}waiting:7`]).toEqual(['0000000000000011', '2']);
  });

  it('after everything was deleted, rebuildReadModel brings back the same view, key for key', async () => {
    await deleteEverything();
    expect(await view()).toEqual([]);
    const result = await rebuildReadModel({ bus, redis: { url: redisServer.url, keyPrefix }, logger: testLogger() });
    expect(result).toEqual({ deletedKeys: 0, projected: pageEvents.length, skipped: 1 });
    expect(await view()).toEqual(projected);
    expect(await rawView()).toEqual(projectedRaw);
  });

  it('over an existing view, it deletes the old keys first and gives the same view again', async () => {
    // A page the stream knows nothing of: a rebuild must not keep it.
    await store.applyChange({
      reservationId: 999,
      bookId: 7,
      customerId: 'alice',
      status: 'bookReserveReq',
      bookName: null,
      libraryId: null,
      libraryName: null,
      pickupBy: null,
      dueAt: null,
      queueTicket: null,
      eventId: 'stray',
      eventType: 'ReservationRequested',
      source: 'bstore/reservation',
      occurredAt: new Date(t0),
      traceId: null,
    });
    const keysBefore = Object.keys(await rawView()).length;
    const result = await rebuildReadModel({ bus, redis: { url: redisServer.url, keyPrefix }, logger: testLogger() });
    expect(result).toEqual({ deletedKeys: keysBefore, projected: pageEvents.length, skipped: 1 });
    expect(await view()).toEqual(projected);
    expect(await rawView()).toEqual(projectedRaw);
  });

  it('the command rebuilds the view from its environment and exits 0', async () => {
    await deleteEverything();
    const { code, output } = await runCommand({ REDIS_URL: redisServer.url, NATS_URL: nats.url, BSTORE_STREAM: 'BSTORE', BSTORE_REDIS_PREFIX: keyPrefix });
    expect(code, output).toBe(0);
    expect(output).toContain('read model rebuilt');
    expect(await rawView()).toEqual(projectedRaw);
  });

  it('the command refuses a stream that does not exist (a typo), creating nothing and leaving the view as it was', async () => {
    const { code, output } = await runCommand({ REDIS_URL: redisServer.url, NATS_URL: nats.url, BSTORE_STREAM: 'BSTORE_TYPO', BSTORE_REDIS_PREFIX: keyPrefix });
    expect(code).toBe(1);
    expect(output).toContain('stream BSTORE_TYPO does not exist');
    expect(await rawView()).toEqual(projectedRaw);
  });

  it.each([
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['NATS_URL', 'not a url'],
    ['BSTORE_STREAM', 'no spaces'],
    ['BSTORE_REDIS_PREFIX', 'bad prefix*'],
  ])('the command refuses a bad %s, naming it, and exits non-zero without touching the view', async (name, value) => {
    const { code, output } = await runCommand({ REDIS_URL: redisServer.url, NATS_URL: nats.url, BSTORE_REDIS_PREFIX: keyPrefix, [name]: value });
    expect(code).toBe(2);
    expect(output).toContain(name);
    expect(await rawView()).toEqual(projectedRaw);
  });
});
