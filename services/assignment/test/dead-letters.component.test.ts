import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql, type Kysely } from 'kysely';
import { createEnvelope, sourceOf, type EventData, type EventEnvelope } from '@bstore/contracts';
import { KyselyInbox, type DeadLetterJson, type EmbeddedBus } from '@bstore/platform';
import { createAssignmentService, type AssignmentService, type AssignmentTables } from '@bstore/assignment';
import { eventually, memoryBus, testLogger } from '../../../test/support/harness.ts';
import { BusDriver } from '../../../test/support/bus-driver.ts';
import { samplesOf, scrape } from '../../../test/support/metrics.ts';
import { databaseKinds } from '../../../test/support/postgres.ts';
import { as, asStaff, testAuth } from '../../../test/support/auth.ts';

/**
 * The operator's dead-letter routes on a real service (assignment), over PGlite and PostgreSQL:
 * list, look at one, fix the cause, replay.
 *
 * A library exists, so a request is normally assigned at once (with none, it is answered with
 * ReservationAssignmentFailed, not retried). What makes the handler fail here is a cause an
 * operator can meet and fix: a CHECK constraint on `assignments` — as a hand-made or half-applied
 * schema change might leave — that refuses the insert for the reservations it names. Every
 * delivery then fails with "violates check constraint", the bus redelivers it until the consumer's
 * last delivery parks it, and the fix is to drop the constraint before replaying. The service is
 * given a short retry policy (`DELIVERY`), so that the real redeliveries end in a moment.
 */
const staff = await asStaff();

const DATABASES = databaseKinds();

/**
 * Three deliveries before an event is parked (the hosts keep the default: 20 over minutes). The
 * redeliveries are half a second apart so that the driver, which polls the service's metrics, sees
 * the first delivery end on its own (`retry`) before the bus redelivers it; a few milliseconds
 * apart, all three can end between two of its looks.
 */
const DELIVERY = { maxDeliver: 3, backoffMs: () => 500 };

function requested(reservationId: number) {
  return createEnvelope({
    type: 'ReservationRequested',
    source: sourceOf('reservation'),
    subject: String(reservationId),
    data: { reservationId, bookId: 7, bookName: 'Pachinko', customerId: 'alice', preferredLibraryId: null, status: 'bookReserveReq' as const },
  });
}

interface ListJson {
  service: string;
  items: DeadLetterJson[];
  total: number;
  limit: number;
  offset: number;
}

describe.each(DATABASES)('dead letters of assignment on %s', (_name, makeDatabase) => {
  let bus: EmbeddedBus;
  let service: AssignmentService;
  /** Delivers events to the service on its bus, as reservation publishes them. */
  let driver: BusDriver;
  /** The test's own connection to the service's database (an operator's, as with psql). */
  let db: Kysely<AssignmentTables>;
  let cleanup: () => Promise<void> = async () => {};

  beforeAll(async () => {
    bus = await memoryBus();
  });

  afterAll(async () => {
    await bus.close();
  });

  // Each test starts with a service of its own on an empty database: one library, no letter, no blocking constraint.
  beforeEach(async () => {
    const made = await makeDatabase('assignment_dead_letters');
    cleanup = made.cleanup;
    service = await createAssignmentService({ database: made.config, bus, logger: testLogger(), auth: await testAuth(), delivery: DELIVERY });
    driver = await BusDriver.start(bus, service);
    db = await made.connect<AssignmentTables>();
    const res = await service.app.inject({ method: 'POST', url: '/libraries', payload: { name: 'Branch' }, headers: staff });
    expect(res.statusCode).toBe(201);
  });

  afterEach(async () => {
    await service.stop();
    await cleanup();
  });

  const call = async (method: 'GET' | 'POST', url: string, headers: Record<string, string> = staff) => {
    const res = await service.app.inject({ method, url, headers });
    return { status: res.statusCode, type: res.headers['content-type'], body: res.json() };
  };
  const list = async (query = '') => (await call('GET', `/admin/dead-letters${query}`)).body as ListJson;
  const rows = () => db.selectFrom('dead_letters').selectAll().execute();
  const accepted = async (reservationId: number) =>
    (await db.selectFrom('outbox').selectAll().where('type', '=', 'ReservationAccepted').execute())
      .map((r) => r.envelope as EventEnvelope<'ReservationAccepted', EventData<'ReservationAccepted'>>)
      .filter((e) => e.data.reservationId === reservationId);
  const assignmentsOf = (reservationId: number) => db.selectFrom('assignments').selectAll().where('reservation_id', '=', reservationId).execute();
  /** The cause: a constraint that makes the assignment insert fail for these reservations. */
  const BLOCKER = 'assignments_blocked_reservations';
  const blockAssignments = async (...reservationIds: number[]) => {
    await sql`ALTER TABLE assignments ADD CONSTRAINT ${sql.id(BLOCKER)} CHECK (reservation_id NOT IN (${sql.join(reservationIds.map((id) => sql.lit(id)))}))`.execute(db);
  };
  /** The fix. */
  const dropBlocker = async () => {
    await sql`ALTER TABLE assignments DROP CONSTRAINT ${sql.id(BLOCKER)}`.execute(db);
  };
  const blockedError = new RegExp(`violates check constraint "${BLOCKER}"`);
  /** Deliveries of assignment's consumer so far that ended in `result`, as GET /metrics counts them. */
  const deliveriesEnded = async (result: string) =>
    samplesOf(await scrape(service.app), 'bstore_consumer_events_total', { consumer: 'assignment', result }).reduce((sum, s) => sum + s.value, 0);
  /**
   * Publishes an event whose handling fails and lets the bus redeliver it until the consumer's
   * last delivery (DELIVERY.maxDeliver) parks it: the first delivery is retried, not parked.
   * Returns the letter, the newest, once GET /admin/dead-letters lists it.
   */
  const exhaust = async (envelope: EventEnvelope) => {
    const retriesBefore = await deliveriesEnded('retry');
    expect(await driver.deliver(envelope)).toBe('retry');
    const newest = await eventually(`${envelope.id} parked`, async () => {
      const [first] = (await list()).items;
      return first?.eventId === envelope.id ? first : undefined;
    });
    // Parked and acknowledged: nothing is left on the bus to end a later delivery.
    await driver.settled();
    // Every delivery but the last was retried; only the last parked it, once.
    expect(await deliveriesEnded('retry')).toBe(retriesBefore + DELIVERY.maxDeliver - 1);
    expect(newest.deliveries).toBe(DELIVERY.maxDeliver);
    expect((await list()).items.filter((l) => l.eventId === envelope.id)).toHaveLength(1);
    return newest;
  };

  it('fix and replay: a request parked by a blocking constraint is assigned once the constraint is dropped, and only once', async () => {
    await blockAssignments(9001);
    // The constraint is aimed: another reservation is still assigned.
    expect(await driver.deliver(requested(9002))).toBe('handled');
    expect(await accepted(9002)).toHaveLength(1);
    const event = requested(9001);
    const letter = await exhaust(event);
    expect(letter).toMatchObject({
      service: 'assignment',
      consumer: 'assignment',
      eventId: event.id,
      eventType: 'ReservationRequested',
      subject: 'bstore.reservation.ReservationRequested',
      deliveries: DELIVERY.maxDeliver,
      replayedAt: null,
      envelope: event,
    });
    expect(letter.id).toMatch(/^assignment-[1-9][0-9]*$/);
    expect(letter.error).toMatch(blockedError);
    expect(new Date(letter.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect((await call('GET', `/admin/dead-letters/${letter.id}`)).body).toEqual(letter);

    // Replayed before the cause is fixed: it fails again, answered with the new error, and the
    // letter stays as it was — no second letter.
    const again = await call('POST', `/admin/dead-letters/${letter.id}/replay`);
    expect(again.status).toBe(409);
    expect(again.type).toMatch(/application\/problem\+json/);
    expect(again.body).toMatchObject({ code: 'REPLAY_FAILED', service: 'assignment', deadLetterId: letter.id, eventId: event.id });
    expect(again.body.error).toMatch(blockedError);
    expect(await rows()).toHaveLength(1);
    expect((await rows())[0]?.replayed_at).toBeNull();
    expect(await accepted(9001)).toHaveLength(0);
    expect(await assignmentsOf(9001)).toHaveLength(0);

    // Fixed: the constraint is dropped. The replay assigns it, and ReservationAccepted is in the outbox.
    await dropBlocker();
    const replay = await call('POST', `/admin/dead-letters/${letter.id}/replay`);
    expect(replay.status).toBe(200);
    expect(replay.body.outcome).toBe('handled');
    expect(replay.body.deadLetter).toMatchObject({ id: letter.id, eventId: event.id });
    expect(Date.parse(replay.body.deadLetter.replayedAt)).toBeGreaterThan(Date.now() - 60_000);
    const [acceptedEvent, ...more] = await accepted(9001);
    expect(more).toHaveLength(0);
    expect(acceptedEvent?.data).toMatchObject({ reservationId: 9001, libraryName: 'Branch', status: 'bookReserved' });

    // Replayed already: 409, and nothing more happens.
    const twice = await call('POST', `/admin/dead-letters/${letter.id}/replay`);
    expect(twice.status).toBe(409);
    expect(twice.body).toMatchObject({ code: 'DEAD_LETTER_ALREADY_REPLAYED', deadLetterId: letter.id });
    expect(await accepted(9001)).toHaveLength(1);

    // The bus delivering the original event again now finds it handled: still one assignment.
    expect(await driver.deliver(event)).toBe('duplicate');
    expect(await assignmentsOf(9001)).toEqual([expect.objectContaining({ status: 'assigned', library_name: 'Branch' })]);

    expect(await list('?pending=true')).toMatchObject({ items: [], total: 0 });
    expect((await list()).items.map((l) => [l.id, l.replayedAt !== null])).toEqual([[letter.id, true]]);
    expect(await rows()).toHaveLength(1);
  });

  it('a letter whose effect is already in place replays as a duplicate, and is marked replayed', async () => {
    const event = requested(9101);
    await blockAssignments(9101);
    const letter = await exhaust(event);
    await dropBlocker();
    // The publisher sends the event again once the cause is gone (or a slow first delivery committed
    // after the bus had given up on it): its effect is in place while its letter is still pending.
    expect(await driver.deliver(event)).toBe('handled');
    expect(await accepted(9101)).toHaveLength(1);
    expect((await list('?pending=true')).items.map((l) => l.id)).toEqual([letter.id]);
    const replay = await call('POST', `/admin/dead-letters/${letter.id}/replay`);
    expect(replay).toMatchObject({ status: 200, body: { outcome: 'duplicate', deadLetter: { id: letter.id } } });
    expect(replay.body.deadLetter.replayedAt).not.toBeNull();
    expect(await accepted(9101)).toHaveLength(1);
  });

  it('a letter of a type this consumer does not read is answered `ignored` and stays pending', async () => {
    const other = createEnvelope({ type: 'QuantityChanged', source: sourceOf('book'), subject: '3', data: { bookId: 3, quantity: 1, copies: 2, reason: 'held' as const } });
    // No delivery of this service parks such a letter (it never receives the type): one is left in
    // its database, as by an older version that read the type, through the test's own connection.
    await new KyselyInbox(db).park({ consumer: 'assignment', eventId: other.id, eventType: other.type, subject: '', envelope: other, error: 'x', deliveries: 1 });
    const [letter] = (await list()).items;
    const replay = await call('POST', `/admin/dead-letters/${letter!.id}/replay`);
    expect(replay).toMatchObject({ status: 200, body: { outcome: 'ignored', deadLetter: { id: letter!.id, replayedAt: null } } });
    expect((await list('?pending=true')).total).toBe(1);
  });

  it('a malformed event cannot be replayed as it is: 422 with its error, and it stays parked once', async () => {
    const bad = createEnvelope({ type: 'ReservationRequested', source: 'x', subject: '9201', data: { reservationId: 9201, bookId: 'one' } });
    expect(await driver.deliver(bad)).toBe('dead-lettered');
    const [letter] = (await list()).items;
    expect(letter).toMatchObject({ eventId: bad.id, deliveries: 1 });
    expect(letter?.error).toMatch(/ReservationRequested data is invalid/);
    const replay = await call('POST', `/admin/dead-letters/${letter!.id}/replay`);
    expect(replay.status).toBe(422);
    expect(replay.body).toMatchObject({ code: 'DEAD_LETTER_MALFORMED', eventId: bad.id });
    expect(replay.body.error).toMatch(/ReservationRequested data is invalid/);
    expect(await rows()).toHaveLength(1);
  });

  it('lists newest first, pages, filters pending, and validates its query', async () => {
    const events = [requested(9301), requested(9302), requested(9303)];
    await blockAssignments(9301, 9302, 9303);
    // Parked one after the other, each by its last delivery.
    for (const event of events) await exhaust(event);
    // The cause is fixed before the replay of events[1] below, which must succeed.
    await dropBlocker();
    const all = await list();
    expect(all).toMatchObject({ service: 'assignment', total: 3, limit: 20, offset: 0 });
    expect(all.items.map((l) => l.eventId)).toEqual([events[2]!.id, events[1]!.id, events[0]!.id]);

    const page = await list('?limit=1&offset=1');
    expect(page).toMatchObject({ total: 3, limit: 1, offset: 1 });
    expect(page.items.map((l) => l.eventId)).toEqual([events[1]!.id]);

    expect((await call('POST', `/admin/dead-letters/${all.items[1]!.id}/replay`)).status).toBe(200);
    const pending = await list('?pending=true');
    expect(pending.total).toBe(2);
    expect(pending.items.map((l) => l.eventId)).toEqual([events[2]!.id, events[0]!.id]);
    expect((await list('?pending=false')).total).toBe(3);

    for (const query of ['?limit=0', '?limit=101', '?offset=-1', '?pending=maybe', '?status=x']) {
      const res = await call('GET', `/admin/dead-letters${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.code, query).toBe('VALIDATION_FAILED');
    }
  });

  it('answers 404 for an unknown id or another service’s, 400 for an id that is not one', async () => {
    await blockAssignments(9401);
    await exhaust(requested(9401));
    for (const id of ['assignment-999', 'book-1', 'reservation-1']) {
      for (const [method, url] of [['GET', `/admin/dead-letters/${id}`], ['POST', `/admin/dead-letters/${id}/replay`]] as const) {
        const res = await call(method, url);
        expect(res.status, `${method} ${url}`).toBe(404);
        expect(res.body.code).toBe('DEAD_LETTER_NOT_FOUND');
      }
    }
    for (const id of ['1', 'assignment-0', 'assignment-x', 'Assignment-1', 'assignment-99999999999']) {
      const res = await call('POST', `/admin/dead-letters/${id}/replay`);
      expect([400, 404], id).toContain(res.status);
    }
    expect((await call('POST', '/admin/dead-letters/assignment-x/replay')).status).toBe(400);
  });

  it('is for staff only: a customer gets 403 and an anonymous caller 401 problem+json, and nothing is replayed', async () => {
    await blockAssignments(9501);
    const letter = await exhaust(requested(9501));
    // Fixed: a replay would now assign it, were it allowed.
    await dropBlocker();
    for (const [method, url] of [
      ['GET', '/admin/dead-letters'],
      ['GET', `/admin/dead-letters/${letter.id}`],
      ['POST', `/admin/dead-letters/${letter.id}/replay`],
    ] as const) {
      for (const [headers, status, code] of [
        [{}, 401, 'UNAUTHENTICATED'],
        [await as('bob'), 403, 'FORBIDDEN'],
      ] as [Record<string, string>, number, string][]) {
        const res = await call(method, url, headers);
        expect(res.status, `${method} ${url}`).toBe(status);
        expect(res.type).toMatch(/application\/problem\+json/);
        expect(res.body.code).toBe(code);
      }
    }
    expect(await accepted(9501)).toHaveLength(0);
    expect(await assignmentsOf(9501)).toHaveLength(0);
    expect((await list('?pending=true')).total).toBe(1);
  });

  it('two replays racing on one letter assign once; at most one of them answers `handled`', async () => {
    await blockAssignments(9601);
    const event = requested(9601);
    const letter = await exhaust(event);
    await dropBlocker();
    const answers = await Promise.all([1, 2, 3].map(() => call('POST', `/admin/dead-letters/${letter.id}/replay`)));
    const outcomes = answers.map((a) => (a.status === 200 ? a.body.outcome : a.body.code)).sort();
    expect(outcomes.filter((o) => o === 'handled')).toHaveLength(1);
    for (const o of outcomes) expect(['handled', 'duplicate', 'DEAD_LETTER_ALREADY_REPLAYED']).toContain(o);
    expect(await accepted(9601)).toHaveLength(1);
    expect(await assignmentsOf(9601)).toEqual([expect.objectContaining({ status: 'assigned' })]);
  });
});
