import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createEnvelope, sourceOf, subjectOf, type EventEnvelope } from '@bstore/contracts';
import { createHttpApp, type EmbeddedBus, type HttpApp } from '@bstore/platform';
import {
  createCustomerCenterService,
  ReadModelKeys,
  RedisReservationPageStore,
  type CustomerCenterDeps,
  type CustomerCenterService,
  type CustomerCenterTables,
  type ReservationPageStore,
} from '@bstore/customercenter';
import { KyselyReservationPageStore } from '../src/adapters/db/reservation-page.store.ts';
import { customercenterRoutes } from '../src/adapters/http/customercenter.routes.ts';
import { InProcessPageUpdates } from '../src/adapters/live/in-process.page-updates.ts';
import { ViewReservationPages } from '../src/application/view-reservation-pages/view-reservation-pages.service.ts';
import { WatchReservationPages } from '../src/application/watch-reservation-pages/watch-reservation-pages.service.ts';
import { eventually, memoryBus, testLogger } from '../../../test/support/harness.ts';
import { BusDriver } from '../../../test/support/bus-driver.ts';
import { memoryDatabase, postgresDatabase, type TestDatabase } from '../../../test/support/postgres.ts';
import { startPrivateRedis, type PrivateRedis } from '../../../test/support/redis.ts';
import { as, asStaff as asStaffToken, testAuth } from '../../../test/support/auth.ts';

const auth = await testAuth();

let redis: PrivateRedis;

beforeAll(async () => {
  redis = await startPrivateRedis();
});

afterAll(async () => {
  await redis?.stop();
});

/** A read model opened for a test: what the service is given, and the test's own way into it. */
interface OpenedReadModel {
  deps: Pick<CustomerCenterDeps, 'database' | 'redis'>;
  /**
   * A store of the test's own on the same read model, through its own connection (an operator's
   * view of the data): to read what the service stored, or to build an app of the test's on it.
   */
  store: ReservationPageStore;
  /** The errors of the dead letters parked for `eventId`, read where an operator finds them. */
  deadLetterErrors(service: CustomerCenterService, eventId: string): Promise<string[]>;
  /** Closes the test's connections and removes the read model; after the service stopped. */
  cleanup(): Promise<void>;
}

/** A home for the read model: how to open it, and the readiness check that stands for it. */
interface ReadModelUnderTest {
  open(): Promise<OpenedReadModel>;
  readinessCheck: string;
}

/** A SQL read model: the dead letters are rows of its database, read through the test's own connection. */
async function sqlReadModel(made: TestDatabase): Promise<OpenedReadModel> {
  const db = await made.connect<CustomerCenterTables>();
  return {
    deps: { database: made.config },
    store: new KyselyReservationPageStore(db),
    deadLetterErrors: async (_service, eventId) => (await db.selectFrom('dead_letters').select('error').where('event_id', '=', eventId).execute()).map((row) => row.error),
    cleanup: () => made.cleanup(),
  };
}

/** The errors of the dead letters of `eventId`, as an operator lists them: GET /admin/dead-letters (staff). */
async function listedDeadLetterErrors(service: CustomerCenterService, eventId: string): Promise<string[]> {
  const res = await service.app.inject({ method: 'GET', url: '/admin/dead-letters?limit=100', headers: await asStaffToken() });
  expect(res.statusCode).toBe(200);
  const page = res.json<{ items: { eventId: string; error: string }[]; total: number }>();
  expect(page.total).toBeLessThanOrEqual(100);
  return page.items.filter((l) => l.eventId === eventId).map((l) => l.error);
}

const freshPrefix = () => `test-${randomBytes(4).toString('hex')}:`;

const readModels: [string, ReadModelUnderTest][] = [
  ['PGlite', { open: async () => sqlReadModel(await memoryDatabase()), readinessCheck: 'database' }],
  ['PostgreSQL', { open: async () => sqlReadModel(await postgresDatabase('customercenter')), readinessCheck: 'database' }],
  [
    'Redis',
    {
      open: async () => {
        const keyPrefix = freshPrefix();
        const connection = new Redis(redis.url);
        return {
          deps: { redis: { url: redis.url, keyPrefix } },
          store: new RedisReservationPageStore(connection, new ReadModelKeys(keyPrefix)),
          // Parked beside the pages in Redis: listed through the service's dead-letter route.
          deadLetterErrors: listedDeadLetterErrors,
          cleanup: async () => {
            await connection.quit();
          },
        };
      },
      readinessCheck: 'redis',
    },
  ],
];

describe('createCustomerCenterService', () => {
  it('refuses deps with both a database and redis, or with neither, naming what is wrong', async () => {
    const bus = await memoryBus();
    try {
      const logger = testLogger();
      await expect(createCustomerCenterService({ bus, logger, auth, database: { kind: 'pglite' }, redis: { url: redis.url } })).rejects.toThrow(/either a database or redis, not both/);
      await expect(createCustomerCenterService({ bus, logger, auth })).rejects.toThrow(/a database \(SQL\) or redis/);
    } finally {
      await bus.close();
    }
  });

  it('fails at start, naming Redis, when Redis cannot be reached', async () => {
    const bus = await memoryBus();
    try {
      await expect(createCustomerCenterService({ bus, logger: testLogger(), auth, redis: { url: 'redis://127.0.0.1:1' } })).rejects.toThrow(/cannot connect to Redis at redis:\/\/127.0.0.1:1/);
    } finally {
      await bus.close();
    }
  });
});

interface TimelineJson {
  eventId: string;
  eventType: string;
  status: string;
  service: string;
  occurredAt: string;
  traceId: string | null;
}
interface PageJson {
  reservationId: number;
  bookId: number;
  bookName: string | null;
  customerId: string;
  status: string;
  libraryId: number | null;
  libraryName: string | null;
  pickupBy: string | null;
  dueAt: string | null;
  queuePosition: number | null;
  createdAt: string;
  updatedAt: string;
  timeline: TimelineJson[];
}

let nextReservationId = 1000;
const t0 = Date.parse('2025-06-01T08:00:00.000Z');

/** The four events of one reservation's life, one second apart, starting `start` seconds after t0. */
function lifecycle(customerId = 'alice', start = 0, reservationId = nextReservationId++) {
  const time = (s: number) => new Date(t0 + (start + s) * 1000);
  const subject = String(reservationId);
  const base = { reservationId, bookId: 5, customerId };
  return {
    reservationId,
    requested: createEnvelope({
      type: 'ReservationRequested',
      source: sourceOf('reservation'),
      subject,
      time: time(0),
      data: { ...base, bookName: 'The Left Hand of Darkness', preferredLibraryId: null, status: 'bookReserveReq' as const },
    }),
    accepted: createEnvelope({
      type: 'ReservationAccepted',
      source: sourceOf('assignment'),
      subject,
      time: time(1),
      data: { ...base, assignmentId: 9, libraryId: 2, libraryName: 'Riverside', status: 'bookReserved' as const },
    }),
    cancelRequested: createEnvelope({
      type: 'ReservationCancelRequested',
      source: sourceOf('reservation'),
      subject,
      time: time(2),
      data: { ...base, status: 'bookCancel' as const },
    }),
    canceled: createEnvelope({
      type: 'ReservationCanceled',
      source: sourceOf('assignment'),
      subject,
      time: time(3),
      data: { ...base, status: 'bookCanceled' as const },
    }),
  };
}

let nextBookId = 100;
let nextTicket = 1;
const day = 86_400;

/**
 * The events a reservation in a book's waiting line may go through (ADR 0022), `start` seconds
 * after t0: it joins the line with a ticket, is granted a copy, accepted with a pickup deadline,
 * checked out, returned; or cancelled while it waits; or it expires after acceptance.
 */
function waitingLife(customerId: string, start: number, options: { bookId: number; queueTicket?: number; reservationId?: number }) {
  const { bookId, queueTicket = nextTicket++, reservationId = nextReservationId++ } = options;
  const time = (s: number) => new Date(t0 + (start + s) * 1000);
  const subject = String(reservationId);
  const base = { reservationId, bookId, customerId };
  const pickupBy = time(10 + 7 * day).toISOString();
  const dueAt = time(100 + 21 * day).toISOString();
  return {
    reservationId,
    queueTicket,
    pickupBy,
    dueAt,
    waitlisted: createEnvelope({
      type: 'ReservationWaitlisted',
      source: sourceOf('reservation'),
      subject,
      time: time(0),
      data: { ...base, bookName: 'Kindred', queueTicket, status: 'bookWaiting' as const },
    }),
    granted: createEnvelope({
      type: 'CopyGranted',
      source: sourceOf('book'),
      subject,
      time: time(10),
      data: { ...base, bookName: 'Kindred', queueTicket, cause: 'returned' as const, status: 'bookReserveReq' as const },
    }),
    accepted: createEnvelope({
      type: 'ReservationAccepted',
      source: sourceOf('assignment'),
      subject,
      time: time(11),
      data: { ...base, assignmentId: 9, libraryId: 2, libraryName: 'Riverside', status: 'bookReserved' as const, pickupBy },
    }),
    checkedOut: createEnvelope({
      type: 'ReservationCheckedOut',
      source: sourceOf('reservation'),
      subject,
      time: time(100),
      data: { ...base, libraryId: 2, dueAt, status: 'bookLoaned' as const },
    }),
    returned: createEnvelope({
      type: 'ReservationReturned',
      source: sourceOf('reservation'),
      subject,
      time: time(200),
      data: { ...base, libraryId: 2, status: 'bookReturned' as const },
    }),
    cancelRequested: createEnvelope({
      type: 'ReservationCancelRequested',
      source: sourceOf('reservation'),
      subject,
      time: time(5),
      data: { ...base, status: 'bookCancel' as const },
    }),
    canceled: createEnvelope({
      type: 'ReservationCanceled',
      source: sourceOf('assignment'),
      subject,
      time: time(6),
      data: { ...base, status: 'bookCanceled' as const },
    }),
    expired: createEnvelope({
      type: 'ReservationExpired',
      source: sourceOf('reservation'),
      subject,
      time: time(11 + 7 * day + 1),
      data: { ...base, libraryId: 2, pickupBy, status: 'bookExpired' as const },
    }),
  };
}

const asStaff = await asStaffToken();

/** A page as it would be for any reservation: without the ids that differ between two of them. */
function withoutIds(page: PageJson) {
  const { reservationId: _r, timeline, ...rest } = page;
  return { ...rest, timeline: timeline.map(({ eventId: _e, ...entry }) => entry) };
}

/** A minimal SSE reader over fetch: yields whole messages (the text between blank lines). */
async function openStream(url: string, headers: Record<string, string>) {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  if (!res.body) throw new Error('no body');
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    res,
    /** The next message `match` accepts; messages before it are skipped. */
    async next(match: (message: string) => boolean, timeoutMs = 10_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (match(message)) return message;
        }
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('no matching SSE message in time')), Math.max(0, deadline - Date.now()));
        });
        const chunk = await Promise.race([reader.read(), timeout]).finally(() => clearTimeout(timer));
        if (chunk.done) throw new Error('the stream ended');
        buffer += decoder.decode(chunk.value, { stream: true });
      }
    },
    close: () => controller.abort(),
  };
}

const dataOf = (message: string) => JSON.parse(message.split('\n').find((l) => l.startsWith('data: '))!.slice('data: '.length)) as PageJson;
const pageMessage = (reservationId?: number) => (message: string) =>
  message.startsWith('event: reservationPage\n') && (reservationId === undefined || dataOf(message).reservationId === reservationId);

describe.each(readModels)('customercenter with its read model on %s', (_name, readModel) => {
  let bus: EmbeddedBus;
  let service: CustomerCenterService;
  /** Delivers events to the service on its bus, as the services that publish them do. */
  let driver: BusDriver;
  let opened: OpenedReadModel;
  let cleanup: () => Promise<void> = async () => {};

  beforeAll(async () => {
    const logger = testLogger();
    bus = await memoryBus(logger);
    opened = await readModel.open();
    cleanup = opened.cleanup;
    service = await createCustomerCenterService({ ...opened.deps, bus, logger, auth });
    driver = await BusDriver.start(bus, service);
  });

  afterAll(async () => {
    await service?.stop().catch(() => service.database?.close());
    await bus?.close();
    await cleanup();
  });

  it('is ready when its read model answers', async () => {
    const res = await service.app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'up', checks: { [readModel.readinessCheck]: 'up' } });
  });

  const handle = (envelope: EventEnvelope) => driver.deliver(envelope);

  async function handleAll(envelopes: EventEnvelope[]): Promise<void> {
    for (const e of envelopes) expect(await handle(e), e.type).toBe('handled');
  }

  async function getPage(reservationId: number, headers?: Record<string, string>): Promise<PageJson> {
    const res = await service.app.inject({ method: 'GET', url: `/reservationPages/${reservationId}`, headers: headers ?? (await as('alice')) });
    expect(res.statusCode).toBe(200);
    return res.json<PageJson>();
  }

  describe('projection', () => {
    it('the happy path ends bookCanceled with four timeline entries in order', async () => {
      const r = lifecycle();
      await handleAll([r.requested, r.accepted, r.cancelRequested, r.canceled]);
      const page = await getPage(r.reservationId);
      expect(page).toMatchObject({
        reservationId: r.reservationId,
        bookId: 5,
        bookName: 'The Left Hand of Darkness',
        customerId: 'alice',
        status: 'bookCanceled',
        libraryId: 2,
        libraryName: 'Riverside',
        createdAt: r.requested.time,
        updatedAt: r.canceled.time,
      });
      expect(page.timeline).toEqual([
        { eventId: r.requested.id, eventType: 'ReservationRequested', status: 'bookReserveReq', service: 'reservation', occurredAt: r.requested.time, traceId: null },
        { eventId: r.accepted.id, eventType: 'ReservationAccepted', status: 'bookReserved', service: 'assignment', occurredAt: r.accepted.time, traceId: null },
        { eventId: r.cancelRequested.id, eventType: 'ReservationCancelRequested', status: 'bookCancel', service: 'reservation', occurredAt: r.cancelRequested.time, traceId: null },
        { eventId: r.canceled.id, eventType: 'ReservationCanceled', status: 'bookCanceled', service: 'assignment', occurredAt: r.canceled.time, traceId: null },
      ]);
    });

    it("each timeline entry shows the trace id of its event's traceparent, and null without a valid one", async () => {
      const r = lifecycle();
      const traced = (envelope: EventEnvelope, traceId: string, flags = '01'): EventEnvelope => ({
        ...envelope,
        traceparent: `00-${traceId}-00f067aa0ba902b7-${flags}`,
      });
      const requestTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
      const acceptTrace = '0af7651916cd43dd8448eb211c80319c';
      await handleAll([
        traced(r.requested, requestTrace),
        traced(r.accepted, acceptTrace, '00'),
        traced(r.cancelRequested, '0'.repeat(32)),
        { ...r.canceled, traceparent: 'not a traceparent' },
      ]);
      const page = await getPage(r.reservationId);
      expect(page.timeline.map((e) => [e.eventType, e.traceId])).toEqual([
        ['ReservationRequested', requestTrace],
        ['ReservationAccepted', acceptTrace],
        ['ReservationCancelRequested', null],
        ['ReservationCanceled', null],
      ]);
      const listed = await service.app.inject({ method: 'GET', url: '/reservationPages?customerId=alice&limit=100', headers: await as('alice') });
      const inList = listed.json<{ items: PageJson[] }>().items.find((p) => p.reservationId === r.reservationId);
      expect(inList?.timeline).toEqual(page.timeline);
    });

    it('the same event twice is a duplicate and leaves page and timeline unchanged', async () => {
      const r = lifecycle();
      await handleAll([r.requested, r.accepted]);
      const before = await getPage(r.reservationId);
      expect(await handle(r.accepted)).toBe('duplicate');
      expect(await handle(r.requested)).toBe('duplicate');
      const after = await getPage(r.reservationId);
      expect(after).toEqual(before);
      expect(after.timeline).toHaveLength(2);
      // And as stored: the timeline read through the test's own connection to the read model.
      expect(await opened.store.timeline(r.reservationId)).toHaveLength(2);
    });

    it('out-of-order delivery converges to the page of in-order delivery', async () => {
      const inOrder = lifecycle('carol', 100);
      const reversed = lifecycle('carol', 100);
      await handleAll([inOrder.requested, inOrder.accepted, inOrder.cancelRequested, inOrder.canceled]);
      await handleAll([reversed.canceled, reversed.accepted, reversed.cancelRequested, reversed.requested]);
      const expected = await getPage(inOrder.reservationId, await as('carol'));
      const actual = await getPage(reversed.reservationId, await as('carol'));
      expect(withoutIds(actual)).toEqual(withoutIds(expected));
      expect(actual.status).toBe('bookCanceled');
    });

    it('an acceptance that arrives after the cancel request keeps bookCancel but records the library', async () => {
      const r = lifecycle();
      await handleAll([r.requested, r.cancelRequested, r.accepted]);
      expect(await getPage(r.reservationId)).toMatchObject({ status: 'bookCancel', libraryId: 2, libraryName: 'Riverside' });
    });

    it('a rejected reservation shows bookOutOfStock, with the name of the book', async () => {
      const reservationId = nextReservationId++;
      const rejected = createEnvelope({
        type: 'ReservationRejected',
        source: sourceOf('reservation'),
        subject: String(reservationId),
        data: { reservationId, bookId: 5, customerId: 'alice', bookName: 'Almond', status: 'bookOutOfStock' as const, reason: 'no copy available' },
      });
      expect(await handle(rejected)).toBe('handled');
      const page = await getPage(reservationId);
      expect(page).toMatchObject({ status: 'bookOutOfStock', bookId: 5, bookName: 'Almond', libraryName: null });
      expect(page.timeline).toEqual([
        { eventId: rejected.id, eventType: 'ReservationRejected', status: 'bookOutOfStock', service: 'reservation', occurredAt: rejected.time, traceId: null },
      ]);
    });

    it('ignores events it does not read and parks malformed ones without a page', async () => {
      const quantity = createEnvelope({
        type: 'QuantityChanged',
        source: sourceOf('book'),
        subject: '5',
        data: { bookId: 5, quantity: 1, copies: 2, reason: 'held' as const },
      });
      // A consumer may receive types it does not read (on nats-server 2.9 it reads the whole stream):
      // here the event arrives on a subject the service takes.
      expect(await driver.deliver(quantity, subjectOf('ReservationRequested'))).toBe('ignored');
      const bad = createEnvelope({ type: 'ReservationAccepted', source: sourceOf('assignment'), subject: '1', data: { reservationId: 424242 } });
      expect(await handle(bad)).toBe('dead-lettered');
      const parked = await opened.deadLetterErrors(service, bad.id);
      expect(parked).toEqual([expect.stringMatching(/ReservationAccepted data is invalid/)]);
      // No page: not even staff, who see every page, find one.
      const page = await service.app.inject({ method: 'GET', url: '/reservationPages/424242', headers: asStaff });
      expect(page.statusCode).toBe(404);
      expect(page.json()).toMatchObject({ code: 'RESERVATION_PAGE_NOT_FOUND' });
    });
  });

  describe('the waiting line, the loan and the pickup deadline', () => {
    it('waiting -> granted -> accepted -> checked out -> returned: every event in the timeline, the deadlines on the page, no ticket', async () => {
      const w = waitingLife('alice', 3000, { bookId: nextBookId++ });
      await handleAll([w.waitlisted]);
      expect(await getPage(w.reservationId)).toMatchObject({ status: 'bookWaiting', bookName: 'Kindred', queuePosition: 1, pickupBy: null, dueAt: null });
      await handleAll([w.granted]);
      expect(await getPage(w.reservationId)).toMatchObject({ status: 'bookReserveReq', queuePosition: null });
      await handleAll([w.accepted]);
      expect(await getPage(w.reservationId)).toMatchObject({ status: 'bookReserved', libraryName: 'Riverside', pickupBy: w.pickupBy, dueAt: null });
      await handleAll([w.checkedOut]);
      expect(await getPage(w.reservationId)).toMatchObject({ status: 'bookLoaned', pickupBy: w.pickupBy, dueAt: w.dueAt });
      await handleAll([w.returned]);
      const page = await getPage(w.reservationId);
      expect(page).toMatchObject({
        status: 'bookReturned',
        bookName: 'Kindred',
        libraryId: 2,
        libraryName: 'Riverside',
        pickupBy: w.pickupBy,
        dueAt: w.dueAt,
        queuePosition: null,
        createdAt: w.waitlisted.time,
        updatedAt: w.returned.time,
      });
      expect(page).not.toHaveProperty('queueTicket');
      expect(page.timeline).toEqual([
        { eventId: w.waitlisted.id, eventType: 'ReservationWaitlisted', status: 'bookWaiting', service: 'reservation', occurredAt: w.waitlisted.time, traceId: null },
        { eventId: w.granted.id, eventType: 'CopyGranted', status: 'bookReserveReq', service: 'book', occurredAt: w.granted.time, traceId: null },
        { eventId: w.accepted.id, eventType: 'ReservationAccepted', status: 'bookReserved', service: 'assignment', occurredAt: w.accepted.time, traceId: null },
        { eventId: w.checkedOut.id, eventType: 'ReservationCheckedOut', status: 'bookLoaned', service: 'reservation', occurredAt: w.checkedOut.time, traceId: null },
        { eventId: w.returned.id, eventType: 'ReservationReturned', status: 'bookReturned', service: 'reservation', occurredAt: w.returned.time, traceId: null },
      ]);
    });

    it('the same history delivered backwards, and twice, gives the same page', async () => {
      const bookId = nextBookId++;
      const inOrder = waitingLife('carol', 3100, { bookId, queueTicket: 1 });
      const reversed = waitingLife('carol', 3100, { bookId, queueTicket: 2 });
      await handleAll([inOrder.waitlisted, inOrder.granted, inOrder.accepted, inOrder.checkedOut, inOrder.returned]);
      await handleAll([reversed.returned, reversed.checkedOut, reversed.accepted, reversed.granted, reversed.waitlisted]);
      for (const e of [reversed.granted, reversed.waitlisted, reversed.checkedOut]) expect(await handle(e)).toBe('duplicate');
      const expected = await getPage(inOrder.reservationId, await as('carol'));
      expect(withoutIds(await getPage(reversed.reservationId, await as('carol')))).toEqual(withoutIds(expected));
      expect(expected).toMatchObject({ status: 'bookReturned', dueAt: inOrder.dueAt, pickupBy: inOrder.pickupBy, queuePosition: null });
    });

    it('waiting -> cancelled, and accepted -> expired', async () => {
      const bookId = nextBookId++;
      const cancelled = waitingLife('alice', 3200, { bookId });
      await handleAll([cancelled.waitlisted, cancelled.cancelRequested, cancelled.canceled]);
      const page = await getPage(cancelled.reservationId);
      expect(page).toMatchObject({ status: 'bookCanceled', bookName: 'Kindred', queuePosition: null, pickupBy: null, dueAt: null });
      expect(page.timeline.map((e) => e.eventType)).toEqual(['ReservationWaitlisted', 'ReservationCancelRequested', 'ReservationCanceled']);

      const lapsed = waitingLife('alice', 3300, { bookId });
      // The expiry first: it knows the deadline that passed already.
      await handleAll([lapsed.expired]);
      expect(await getPage(lapsed.reservationId)).toMatchObject({ status: 'bookExpired', pickupBy: lapsed.pickupBy, libraryName: null });
      await handleAll([lapsed.accepted]);
      const expiredPage = await getPage(lapsed.reservationId);
      expect(expiredPage).toMatchObject({ status: 'bookExpired', pickupBy: lapsed.pickupBy, libraryName: 'Riverside', queuePosition: null });
      expect(expiredPage.timeline.map((e) => [e.eventType, e.status])).toEqual([
        ['ReservationAccepted', 'bookReserved'],
        ['ReservationExpired', 'bookExpired'],
      ]);
    });

    it('places in line: three waiting are 1, 2, 3; the first granted makes the others 1, 2; another book keeps its own line', async () => {
      const bookId = nextBookId++;
      const otherBookId = nextBookId++;
      const [first, second, third] = [0, 1, 2].map((i) => waitingLife('alice', 3400 + i, { bookId, queueTicket: 10 + i }));
      const other = waitingLife('alice', 3403, { bookId: otherBookId, queueTicket: 1 });
      await handleAll([third!.waitlisted, first!.waitlisted, other.waitlisted, second!.waitlisted]);
      const positions = async () => Promise.all([first!, second!, third!, other].map(async (w) => (await getPage(w.reservationId)).queuePosition));
      expect(await positions()).toEqual([1, 2, 3, 1]);

      const listed = await service.app.inject({ method: 'GET', url: '/reservationPages?status=bookWaiting&limit=100', headers: await as('alice') });
      expect(listed.statusCode).toBe(200);
      const items = listed.json<{ items: PageJson[] }>().items;
      expect(items.every((p) => p.status === 'bookWaiting')).toBe(true);
      expect(Object.fromEntries(items.filter((p) => p.bookId === bookId).map((p) => [p.reservationId, p.queuePosition]))).toEqual({
        [first!.reservationId]: 1,
        [second!.reservationId]: 2,
        [third!.reservationId]: 3,
      });

      await handleAll([first!.granted]);
      expect(await positions()).toEqual([null, 1, 2, 1]);
      expect(await handle(first!.granted)).toBe('duplicate');
      expect(await handle(first!.waitlisted)).toBe('duplicate');
      expect(await positions()).toEqual([null, 1, 2, 1]);
    });

    it.each(['bookWaiting', 'bookLoaned', 'bookReturned', 'bookExpired'])('the status filter takes %s', async (status) => {
      const res = await service.app.inject({ method: 'GET', url: `/reservationPages?status=${status}&limit=100`, headers: asStaff });
      expect(res.statusCode).toBe(200);
      expect(res.json<{ items: PageJson[] }>().items.every((p) => p.status === status)).toBe(true);
    });
  });

  describe('HTTP', () => {
    let alicePage: number;
    let bobPage: number;

    beforeAll(async () => {
      const alice = lifecycle('alice', 500);
      const bob = lifecycle('bob', 510);
      await handleAll([alice.requested, bob.requested, bob.accepted]);
      alicePage = alice.reservationId;
      bobPage = bob.reservationId;
    });

    it("a customer cannot see another customer's page: 404 problem, as if it did not exist", async () => {
      const res = await service.app.inject({ method: 'GET', url: `/reservationPages/${alicePage}`, headers: await as('bob') });
      expect(res.statusCode).toBe(404);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json()).toMatchObject({ status: 404, code: 'RESERVATION_PAGE_NOT_FOUND' });
      const missing = await service.app.inject({ method: 'GET', url: '/reservationPages/2000000000', headers: await as('bob') });
      expect(missing.statusCode).toBe(404);
      expect(missing.json<{ code: string }>().code).toBe(res.json<{ code: string }>().code);
      expect((await getPage(bobPage, await as('bob'))).customerId).toBe('bob');
    });

    it("a customer's list holds only their own pages, newest first", async () => {
      const res = await service.app.inject({ method: 'GET', url: '/reservationPages', headers: await as('alice') });
      expect(res.statusCode).toBe(200);
      const page = res.json<{ items: PageJson[]; total: number; limit: number; offset: number }>();
      expect(page.limit).toBe(20);
      expect(page.offset).toBe(0);
      expect(page.items.length).toBeGreaterThan(0);
      expect(page.items.every((p) => p.customerId === 'alice')).toBe(true);
      expect(page.items.map((p) => p.reservationId)).toContain(alicePage);
      expect(page.items.map((p) => p.reservationId)).not.toContain(bobPage);
      const updated = page.items.map((p) => Date.parse(p.updatedAt));
      expect(updated).toEqual([...updated].sort((a, b) => b - a));

      const sneaky = await service.app.inject({ method: 'GET', url: '/reservationPages?customerId=bob', headers: await as('alice') });
      expect(sneaky.json()).toMatchObject({ items: [], total: 0 });
    });

    it('staff see every page, and may filter by customer and status', async () => {
      expect((await getPage(alicePage, asStaff)).customerId).toBe('alice');
      const all = await service.app.inject({ method: 'GET', url: '/reservationPages?limit=100', headers: asStaff });
      const customers = new Set(all.json<{ items: PageJson[] }>().items.map((p) => p.customerId));
      expect(customers.has('alice') && customers.has('bob')).toBe(true);

      const bobs = await service.app.inject({ method: 'GET', url: '/reservationPages?customerId=bob&status=bookReserved', headers: asStaff });
      const body = bobs.json<{ items: PageJson[]; total: number }>();
      expect(body.total).toBe(1);
      expect(body.items[0]).toMatchObject({ reservationId: bobPage, status: 'bookReserved', libraryName: 'Riverside' });
      expect(body.items[0]?.timeline).toHaveLength(2);
    });

    it('pages with limit and offset', async () => {
      const first = await service.app.inject({ method: 'GET', url: '/reservationPages?limit=2', headers: asStaff });
      const second = await service.app.inject({ method: 'GET', url: '/reservationPages?limit=2&offset=2', headers: asStaff });
      const a = first.json<{ items: PageJson[]; total: number; limit: number }>();
      const b = second.json<{ items: PageJson[]; total: number; offset: number }>();
      expect(a.items).toHaveLength(2);
      expect(a.limit).toBe(2);
      expect(b.offset).toBe(2);
      expect(b.total).toBe(a.total);
      const ids = [...a.items, ...b.items].map((p) => p.reservationId);
      expect(new Set(ids).size).toBe(ids.length);
    });

    it.each([
      ['a limit above 100', '/reservationPages?limit=1000'],
      ['a limit that is not a number', '/reservationPages?limit=abc'],
      ['a limit of 0', '/reservationPages?limit=0'],
      ['a negative offset', '/reservationPages?offset=-1'],
      ['an unknown status', '/reservationPages?status=bookLost'],
      ['an unknown query parameter', '/reservationPages?sort=asc'],
      ['a malformed customer filter', '/reservationPages?customerId=a%20b'],
      ['a non-numeric id', '/reservationPages/abc'],
      ['an id of 0', '/reservationPages/0'],
      ['an id beyond integer range', '/reservationPages/99999999999'],
    ])('rejects %s with a 400 problem', async (_name, url) => {
      const res = await service.app.inject({ method: 'GET', url, headers: asStaff });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json()).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    });

    it('refuses a caller without a token (401 UNAUTHENTICATED) or with a bad one (401 INVALID_TOKEN), before reading the query', async () => {
      for (const url of ['/reservationPages', '/reservationPages?customerId=bob', '/reservationPages?limit=0', `/reservationPages/1`]) {
        const anonymous = await service.app.inject({ method: 'GET', url });
        expect(anonymous.statusCode, url).toBe(401);
        expect(anonymous.headers['content-type']).toContain('application/problem+json');
        expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer realm="bstore"/);
        expect(anonymous.json()).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
        const garbage = await service.app.inject({ method: 'GET', url, headers: { authorization: 'Bearer garbage' } });
        expect(garbage.statusCode, url).toBe(401);
        expect(garbage.headers['www-authenticate']).toMatch(/error="invalid_token"/);
        expect(garbage.json()).toMatchObject({ status: 401, code: 'INVALID_TOKEN' });
      }
      // A customer's token rewritten to claim staff: the signature no longer matches.
      const [header, claims, signature] = (await as('alice')).authorization.slice('Bearer '.length).split('.') as [string, string, string];
      const promoted = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(claims, 'base64url').toString()), role: 'staff' })).toString('base64url');
      const tampered = await service.app.inject({ method: 'GET', url: '/reservationPages?customerId=bob', headers: { authorization: `Bearer ${header}.${promoted}.${signature}` } });
      expect(tampered.statusCode).toBe(401);
      expect(tampered.json()).toMatchObject({ code: 'INVALID_TOKEN' });
    });
  });

  describe('live stream (SSE)', () => {
    it("streams the caller's page after each committed change, and not other customers' pages", async () => {
      await service.start({ port: 0 });
      const stream = await openStream(`${service.url}/reservationPages/stream`, await as('alice'));
      try {
        expect(stream.res.status).toBe(200);
        expect(stream.res.headers.get('content-type')).toContain('text/event-stream');
        const bobs = lifecycle('bob', 700);
        const alices = lifecycle('alice', 710);
        await handleAll([bobs.requested, alices.requested]);

        // Bob's change was published first: had the filter let it through, it would come first.
        const first = dataOf(await stream.next(pageMessage()));
        expect(first).toMatchObject({ reservationId: alices.reservationId, customerId: 'alice', status: 'bookReserveReq' });
        expect(first.timeline).toHaveLength(1);

        const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
        const accepted: EventEnvelope = { ...alices.accepted, traceparent: `00-${traceId}-00f067aa0ba902b7-01` };
        await handleAll([accepted]);
        const second = dataOf(await stream.next(pageMessage(alices.reservationId)));
        expect(second).toMatchObject({ status: 'bookReserved', libraryName: 'Riverside' });
        expect(second.timeline.map((e) => [e.eventType, e.traceId])).toEqual([
          ['ReservationRequested', null],
          ['ReservationAccepted', traceId],
        ]);

        // A duplicate commits nothing and announces nothing: the next message is the cancel.
        expect(await handle(accepted)).toBe('duplicate');
        await handleAll([alices.cancelRequested]);
        expect(dataOf(await stream.next(pageMessage(alices.reservationId))).status).toBe('bookCancel');
      } finally {
        stream.close();
      }
    });

    it('staff receive every page', async () => {
      const stream = await openStream(`${service.url}/reservationPages/stream`, asStaff);
      try {
        const dave = lifecycle('dave', 800);
        await handleAll([dave.requested]);
        expect(dataOf(await stream.next(pageMessage(dave.reservationId)))).toMatchObject({ customerId: 'dave' });
      } finally {
        stream.close();
      }
    });

    it('a patron watching a waiting card sees its place move when a reservation ahead leaves the line or joins ahead of it', async () => {
      const bookId = nextBookId++;
      const ahead = waitingLife('wes', 4000, { bookId, queueTicket: 10 });
      const mine = waitingLife('wanda', 4001, { bookId, queueTicket: 20 });
      const behind = waitingLife('walt', 4002, { bookId, queueTicket: 30 });
      const elsewhere = waitingLife('wanda', 4003, { bookId: nextBookId++, queueTicket: 1 });
      await handleAll([ahead.waitlisted, mine.waitlisted, behind.waitlisted, elsewhere.waitlisted]);
      const wanda = await openStream(`${service.url}/reservationPages/stream`, await as('wanda'));
      const staff = await openStream(`${service.url}/reservationPages/stream`, asStaff);
      try {
        // The page ahead of Wanda's is granted a copy: Wanda's moves up to 1, Walt's to 2.
        await handleAll([ahead.granted]);
        expect(dataOf(await wanda.next(pageMessage(mine.reservationId)))).toMatchObject({ status: 'bookWaiting', queuePosition: 1 });
        const seenByStaff = new Map<number, PageJson>();
        while (seenByStaff.size < 3) {
          const page = dataOf(await staff.next(pageMessage()));
          seenByStaff.set(page.reservationId, page);
        }
        expect([...seenByStaff.keys()].sort()).toEqual([ahead.reservationId, mine.reservationId, behind.reservationId].sort());
        expect(seenByStaff.get(ahead.reservationId)).toMatchObject({ status: 'bookReserveReq', queuePosition: null });
        expect(seenByStaff.get(behind.reservationId)).toMatchObject({ customerId: 'walt', queuePosition: 2 });

        // A reservation joins ahead of Wanda's (its event arrived late): Wanda's moves back to 2.
        const late = waitingLife('wes', 4004, { bookId, queueTicket: 15 });
        await handleAll([late.waitlisted]);
        expect(dataOf(await wanda.next(pageMessage(mine.reservationId)))).toMatchObject({ queuePosition: 2 });

        // One joining behind moves nobody ahead of it and a duplicate announces nothing, so the next
        // page Wanda receives is her own, cancelled: out of the line, which moves Walt's pages up.
        const last = waitingLife('walt', 4005, { bookId, queueTicket: 40 });
        await handleAll([last.waitlisted]);
        expect(await handle(ahead.granted)).toBe('duplicate');
        await handleAll([mine.cancelRequested]);
        expect(dataOf(await wanda.next(pageMessage()))).toMatchObject({ reservationId: mine.reservationId, status: 'bookCancel', queuePosition: null });
        expect((await getPage(behind.reservationId, await as('walt'))).queuePosition).toBe(2);
        expect((await getPage(last.reservationId, await as('walt'))).queuePosition).toBe(3);
        expect((await getPage(elsewhere.reservationId, await as('wanda'))).queuePosition).toBe(1);
      } finally {
        wanda.close();
        staff.close();
      }
    });

    it('no identity or a bad token is a 401 problem, not a stream', async () => {
      for (const [headers, code] of [
        [{}, 'UNAUTHENTICATED'],
        [{ authorization: 'Bearer not.a.token' }, 'INVALID_TOKEN'],
      ] as [Record<string, string>, string][]) {
        const res = await fetch(`${service.url}/reservationPages/stream`, { headers });
        expect(res.status).toBe(401);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="bstore"/);
        expect(await res.json()).toMatchObject({ code });
      }
    });
  });

  describe('live stream adapter', () => {
    let app: HttpApp;
    let updates: InProcessPageUpdates;
    let watch: WatchReservationPages;
    let url: string;

    beforeAll(async () => {
      updates = new InProcessPageUpdates(testLogger());
      // On the test's own store of the read model the service projects into.
      watch = new WatchReservationPages(opened.store, updates);
      app = createHttpApp({ service: 'customercenter-sse-test', logger: testLogger(), auth });
      await app.register(customercenterRoutes, { pages: new ViewReservationPages(opened.store), watch, heartbeatMs: 50 });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const address = app.server.address();
      url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/reservationPages/stream`;
    });

    afterAll(async () => {
      await app.close();
    });

    it('sends heartbeat comments and removes its listener when the client disconnects', async () => {
      const stream = await openStream(url, await as('alice'));
      expect(updates.listenerCount).toBe(1);
      expect(await stream.next((m) => m === ': heartbeat')).toBe(': heartbeat');
      stream.close();
      await eventually('the listener to be removed', async () => (updates.listenerCount === 0 ? true : undefined));
    });

    it('closing the server ends open streams instead of waiting for them', async () => {
      const stream = await openStream(url, await as('alice'));
      const r = lifecycle('alice', 900);
      await handleAll([r.requested]);
      expect((await watch.announce(r.reservationId))?.reservationId).toBe(r.reservationId);
      expect(dataOf(await stream.next(pageMessage(r.reservationId))).status).toBe('bookReserveReq');
      await app.close();
      await expect(stream.next(() => false)).rejects.toThrow(/ended|terminated|aborted/i);
      expect(updates.listenerCount).toBe(0);
    });
  });

});
describe('two replicas on one Redis', () => {
  it('an SSE client of one replica sees the change another replica projected; the other replica finds the event handled', async () => {
    const logger = testLogger();
    // Each replica receives its deliveries on a bus of its own, so that the event reaches the one
    // the test chooses: as when the shared bus hands one delivery to one replica and a redelivery
    // to the other.
    const projectingBus = await memoryBus(logger);
    const servingBus = await memoryBus(logger);
    const readModel = { redis: { url: redis.url, keyPrefix: freshPrefix() }, logger, auth };
    const projecting = await createCustomerCenterService({ ...readModel, bus: projectingBus });
    const serving = await createCustomerCenterService({ ...readModel, bus: servingBus }, { heartbeatMs: 50 });
    try {
      const toProjecting = await BusDriver.start(projectingBus, projecting);
      await serving.start({ port: 0, consumers: false });
      const stream = await openStream(`${serving.url}/reservationPages/stream`, await as('erin'));
      try {
        expect(await stream.next((m) => m === ': heartbeat')).toBe(': heartbeat');
        const r = lifecycle('erin', 1000);
        expect(await toProjecting.deliver(r.requested)).toBe('handled');
        const seen = dataOf(await stream.next(pageMessage(r.reservationId)));
        expect(seen).toMatchObject({ customerId: 'erin', status: 'bookReserveReq', timeline: [{ eventId: r.requested.id }] });
        const toServing = await BusDriver.start(servingBus, serving);
        expect(await toServing.deliver(r.requested)).toBe('duplicate');
        // Both replicas serve the same page.
        const read = async (replica: CustomerCenterService) => {
          const res = await replica.app.inject({ method: 'GET', url: `/reservationPages/${r.reservationId}`, headers: await asStaffToken() });
          expect(res.statusCode).toBe(200);
          return res.json<PageJson>();
        };
        expect(await read(serving)).toEqual(await read(projecting));
      } finally {
        stream.close();
      }
    } finally {
      await serving.stop();
      await projecting.stop();
      await projectingBus.close();
      await servingBus.close();
    }
  });
});
