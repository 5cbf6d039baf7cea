import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { createEnvelope, sourceOf, subjectOf } from '@bstore/contracts';
import { NatsJetStreamBus, type DeadLetterJson, type MessageBus } from '@bstore/platform';
import { createAssignmentService, seedLibraries, type AssignmentService } from '@bstore/assignment';
import { createCustomerCenterService, type CustomerCenterService } from '@bstore/customercenter';
import { asStaff, testAuth } from './support/auth.ts';
import { eventually, memoryBus, testLogger } from './support/harness.ts';
import { startPrivateNats, type PrivateNats } from './support/nats.ts';
import { startPrivateRedis, type PrivateRedis } from './support/redis.ts';

/**
 * "A malformed event never blocks the ones behind it", on the real buses: the embedded one and a
 * NATS JetStream server of the test's own. A malformed ReservationRequested goes first, valid ones
 * after it on the same subject; two consumers read it: assignment (SQL, PGlite) and customercenter
 * with its read model and dead letters in Redis. The valid ones are handled, the bad one is parked
 * by each and shown by its GET /admin/dead-letters.
 */
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

describe.each(BUSES)('dead letters on %s', (_busName, openBus) => {
  let bus: MessageBus;
  let assignment: AssignmentService;
  let customercenter: CustomerCenterService;

  beforeAll(async () => {
    bus = await openBus();
    const logger = testLogger();
    assignment = await createAssignmentService({ database: { kind: 'pglite' }, bus, logger, auth: await testAuth() });
    await seedLibraries(assignment);
    customercenter = await createCustomerCenterService({ bus, logger, auth: await testAuth(), redis: { url: redis.url, keyPrefix: `dl-${randomBytes(4).toString('hex')}:` } });
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
      const rows = await assignment.internals.db.selectFrom('assignments').select('reservation_id').where('reservation_id', 'in', good).execute();
      return rows.length === good.length ? rows : undefined;
    });
    await eventually('every valid request on its page', async () => {
      const pages = await Promise.all(good.map((id) => customercenter.internals.store.get(id)));
      return pages.every((p) => p !== null) ? pages : undefined;
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
    const event = requested(reservationId);
    // Parked as by an exhausted delivery (the read model's handlers do not fail on valid events).
    await customercenter.internals.redisInbox!.park({
      consumer: 'customercenter',
      eventId: event.id,
      eventType: event.type,
      subject: subjectOf('ReservationRequested'),
      envelope: event,
      error: 'Redis connection lost',
      deliveries: 20,
    });
    const letter = (await deadLetters(customercenter, '?pending=true')).items.find((l) => l.eventId === event.id)!;
    expect(letter).toMatchObject({ error: 'Redis connection lost', deliveries: 20, replayedAt: null });
    expect(await customercenter.internals.store.get(reservationId)).toBeNull();

    const replay = await customercenter.app.inject({ method: 'POST', url: `/admin/dead-letters/${letter.id}/replay`, headers: await asStaff() });
    expect(replay.statusCode).toBe(200);
    expect(replay.json()).toMatchObject({ outcome: 'handled', deadLetter: { id: letter.id } });
    expect(await customercenter.internals.store.get(reservationId)).toMatchObject({ reservationId, status: 'bookReserveReq' });

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
      await eventually('the request behind it assigned', async () =>
        assignment.internals.db.selectFrom('assignments').select('reservation_id').where('reservation_id', '=', after).executeTakeFirst(),
      );
      const replay = await assignment.app.inject({ method: 'POST', url: `/admin/dead-letters/${letter.id}/replay`, headers: await asStaff() });
      expect(replay.statusCode).toBe(422);
      expect(replay.json().error).toMatch(/unknown event type "unparseable"/);
    } finally {
      await nc.close();
    }
  });
});
