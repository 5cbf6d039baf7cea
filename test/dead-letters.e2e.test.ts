import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { connect } from '@nats-io/transport-node';
import { createEnvelope, sourceOf, subjectOf } from '@bstore/contracts';
import { NatsJetStreamBus, type DeadLetterJson, type MessageBus } from '@bstore/platform';
import { createAssignmentService, seedLibraries, type AssignmentService } from '@bstore/assignment';
import { createCustomerCenterService, type CustomerCenterService } from '@bstore/customercenter';
import { asStaff, testAuth } from './support/auth.ts';
import { eventually, memoryBus, testLogger } from './support/harness.ts';
import { samplesOf, scrape } from './support/metrics.ts';
import { startPrivateNats, type PrivateNats } from './support/nats.ts';
import { startPrivateRedis, type PrivateRedis } from './support/redis.ts';

/**
 * "A malformed event never blocks the ones behind it", on the real buses: the embedded one and a
 * NATS JetStream server of the test's own. A malformed ReservationRequested goes first, valid ones
 * after it on the same subject; two consumers read it: assignment (SQL, PGlite) and customercenter
 * with its read model and dead letters in Redis. The valid ones are handled, the bad one is parked
 * by each and shown by its GET /admin/dead-letters.
 */

/**
 * Three deliveries, 20 ms apart, before a failing event is parked (the hosts keep the default: 20
 * over minutes), so that a valid event the customer center cannot apply is parked in a moment.
 */
const DELIVERY = { maxDeliver: 3, backoffMs: () => 20 };
let nats: PrivateNats;
let redis: PrivateRedis;

beforeAll(async () => {
  [nats, redis] = await Promise.all([startPrivateNats(), startPrivateRedis()]);
});

afterAll(async () => {
  await nats?.stop();
  await redis?.stop();
});

const BUSES: [string, () => Promise<MessageBus>][] = [
  ['the embedded bus', () => memoryBus()],
  ['NATS JetStream', () => NatsJetStreamBus.connect({ servers: nats.url, logger: testLogger(), ackWaitMs: 5000 })],
];

let nextReservation = 70_000;

function requested(reservationId: number) {
  return createEnvelope({
    type: 'ReservationRequested',
    source: sourceOf('reservation'),
    subject: String(reservationId),
    data: { reservationId, bookId: 4, bookName: 'Pachinko', customerId: 'alice', preferredLibraryId: null, status: 'bookReserveReq' as const },
  });
}

async function deadLetters(service: AssignmentService | CustomerCenterService, query = ''): Promise<{ items: DeadLetterJson[]; total: number }> {
  const res = await service.app.inject({ method: 'GET', url: `/admin/dead-letters${query}`, headers: await asStaff() });
  expect(res.statusCode).toBe(200);
  return res.json();
}

/** The assignments of a reservation, as staff read them at assignment's GET /assignments. */
async function assignmentsOf(assignment: AssignmentService, reservationId: number): Promise<unknown[]> {
  const res = await assignment.app.inject({ method: 'GET', url: `/assignments?reservationId=${reservationId}`, headers: await asStaff() });
  expect(res.statusCode).toBe(200);
  return res.json<{ items: unknown[] }>().items;
}

/** The reservation's page at the customer center's GET /reservationPages/:id (as staff): its status code and body. */
async function pageOf(customercenter: CustomerCenterService, reservationId: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await customercenter.app.inject({ method: 'GET', url: `/reservationPages/${reservationId}`, headers: await asStaff() });
  return { status: res.statusCode, body: res.json() };
}

/** Deliveries of the customer center's consumer so far that ended in `result`, as its GET /metrics counts them. */
async function deliveriesEnded(customercenter: CustomerCenterService, result: string): Promise<number> {
  return samplesOf(await scrape(customercenter.app), 'bstore_consumer_events_total', { consumer: 'customercenter', result }).reduce((sum, s) => sum + s.value, 0);
}

describe.each(BUSES)('dead letters on %s', (_busName, openBus) => {
  let bus: MessageBus;
  let assignment: AssignmentService;
  let customercenter: CustomerCenterService;
  /** The prefix of the customer center's keys in Redis: its read model and its dead letters. */
  const keyPrefix = `dl-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    bus = await openBus();
    const logger = testLogger();
    assignment = await createAssignmentService({ database: { kind: 'pglite' }, bus, logger, auth: await testAuth() });
    await seedLibraries(assignment);
    customercenter = await createCustomerCenterService({ bus, logger, auth: await testAuth(), redis: { url: redis.url, keyPrefix }, delivery: DELIVERY });
    await assignment.start({ port: 0 });
    await customercenter.start({ port: 0 });
  });

  afterAll(async () => {
    await customercenter?.stop();
    await assignment?.stop();
    await bus?.close();
  });

  it('a malformed event is parked and the valid ones behind it are handled', async () => {
    const bad = createEnvelope({
      type: 'ReservationRequested',
      source: sourceOf('reservation'),
      subject: '69999',
      data: { reservationId: 69_999, bookId: 'not-a-number' },
    });
    const good = [nextReservation++, nextReservation++, nextReservation++];
    await bus.publish(subjectOf('ReservationRequested'), bad);
    for (const id of good) await bus.publish(subjectOf('ReservationRequested'), requested(id));

    await eventually('every valid request assigned', async () => {
      const rows = await Promise.all(good.map((id) => assignmentsOf(assignment, id)));
      return rows.every((r) => r.length === 1) ? rows : undefined;
    });
    await eventually('every valid request on its page', async () => {
      const pages = await Promise.all(good.map((id) => pageOf(customercenter, id)));
      return pages.every((p) => p.status === 200) ? pages : undefined;
    });

    for (const service of [assignment, customercenter]) {
      const name = service.name;
      const list = await eventually(`the bad event listed by ${name}`, async () => {
        const page = await deadLetters(service);
        return page.items.some((l) => l.eventId === bad.id) ? page : undefined;
      });
      const letter = list.items.find((l) => l.eventId === bad.id)!;
      expect(letter).toMatchObject({ service: name, consumer: name, eventType: 'ReservationRequested', deliveries: 1, replayedAt: null, envelope: bad });
      expect(letter.id).toMatch(new RegExp(`^${name}-\\d+$`));
      expect(letter.error).toMatch(/ReservationRequested data is invalid/);
      expect(letter.subject).toBe(subjectOf('ReservationRequested'));
      // None of the valid ones is a dead letter.
      expect(list.items.filter((l) => l.envelope && good.includes((l.envelope as { data: { reservationId: number } }).data.reservationId))).toEqual([]);

      // It cannot be replayed as it is: 422, and it stays parked, once.
      const replay = await service.app.inject({ method: 'POST', url: `/admin/dead-letters/${letter.id}/replay`, headers: await asStaff() });
      expect(replay.statusCode).toBe(422);
      expect(replay.json()).toMatchObject({ code: 'DEAD_LETTER_MALFORMED', deadLetterId: letter.id });
      expect((await deadLetters(service)).items.filter((l) => l.eventId === bad.id)).toHaveLength(1);
    }
  });

  it('on Redis too: a parked valid event replays as handled, then 409', async () => {
    const reservationId = nextReservation++;
    // An event only the customer center reads (assignment publishes it), so nothing else answers it.
    const event = createEnvelope({
      type: 'ReservationAccepted',
      source: sourceOf('assignment'),
      subject: String(reservationId),
      data: { reservationId, bookId: 4, customerId: 'alice', assignmentId: reservationId, libraryId: 1, libraryName: 'Replay Branch', status: 'bookReserved' as const },
    });
    // A fault an operator can meet and fix in Redis: the page's key holds something else (a key set
    // by hand), so that applying the event fails with WRONGTYPE at every delivery, and the bus
    // redelivers it until the customer center's last delivery parks it.
    const operator = new Redis(redis.url);
    let letter: DeadLetterJson;
    try {
      const pageKey = `${keyPrefix}page:${reservationId}`;
      await operator.set(pageKey, 'not a page');
      const retriesBefore = await deliveriesEnded(customercenter, 'retry');
      await bus.publish(subjectOf('ReservationAccepted'), event);
      letter = await eventually('the event parked by the customer center', async () =>
        (await deadLetters(customercenter, '?pending=true')).items.find((l) => l.eventId === event.id),
      );
      expect(letter).toMatchObject({ service: 'customercenter', eventType: 'ReservationAccepted', subject: subjectOf('ReservationAccepted'), deliveries: DELIVERY.maxDeliver, replayedAt: null, envelope: event });
      expect(letter.error).toMatch(/WRONGTYPE/);
      // Every delivery but the last was retried; only the last parked it.
      expect(await deliveriesEnded(customercenter, 'retry')).toBe(retriesBefore + DELIVERY.maxDeliver - 1);

      // Fixed: the stray key is deleted. Nothing of the event is on the page yet.
      await operator.del(pageKey);
    } finally {
      operator.disconnect();
    }
    expect((await pageOf(customercenter, reservationId)).status).toBe(404);

    const replay = await customercenter.app.inject({ method: 'POST', url: `/admin/dead-letters/${letter.id}/replay`, headers: await asStaff() });
    expect(replay.statusCode).toBe(200);
    expect(replay.json()).toMatchObject({ outcome: 'handled', deadLetter: { id: letter.id } });
    expect(await pageOf(customercenter, reservationId)).toMatchObject({ status: 200, body: { reservationId, status: 'bookReserved', libraryName: 'Replay Branch' } });

    const again = await customercenter.app.inject({ method: 'POST', url: `/admin/dead-letters/${letter.id}/replay`, headers: await asStaff() });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('DEAD_LETTER_ALREADY_REPLAYED');
    expect((await deadLetters(customercenter, '?pending=true')).items.some((l) => l.eventId === event.id)).toBe(false);
  });
});

describe('dead letters on NATS JetStream: raw messages', () => {
  let bus: MessageBus;
  let assignment: AssignmentService;

  beforeAll(async () => {
    bus = await NatsJetStreamBus.connect({ servers: nats.url, logger: testLogger(), ackWaitMs: 5000 });
    assignment = await createAssignmentService({ database: { kind: 'pglite' }, bus, logger: testLogger(), auth: await testAuth() });
    await seedLibraries(assignment);
    await assignment.start({ port: 0 });
  });

  afterAll(async () => {
    await assignment?.stop();
    await bus?.close();
  });

  it('a message that is not even JSON is parked with its text and does not block the one behind it', async () => {
    const nc = await connect({ servers: nats.url });
    const after = nextReservation++;
    try {
      const ack = await nc.request(subjectOf('ReservationRequested'), 'this is not an event', { timeout: 5000 });
      const seq = (JSON.parse(ack.string()) as { seq: number }).seq;
      await bus.publish(subjectOf('ReservationRequested'), requested(after));
      const letter = await eventually('the unparseable message listed by assignment', async () =>
        (await deadLetters(assignment)).items.find((l) => l.eventId === `nats-${seq}`),
      );
      expect(letter).toMatchObject({ eventType: 'unparseable', service: 'assignment' });
      expect(JSON.stringify(letter.envelope)).toContain('this is not an event');
      await eventually('the request behind it assigned', async () => ((await assignmentsOf(assignment, after)).length === 1 ? true : undefined));
      const replay = await assignment.app.inject({ method: 'POST', url: `/admin/dead-letters/${letter.id}/replay`, headers: await asStaff() });
      expect(replay.statusCode).toBe(422);
      expect(replay.json().error).toMatch(/unknown event type "unparseable"/);
    } finally {
      await nc.close();
    }
  });
});
