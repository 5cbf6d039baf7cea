import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createEnvelope, sourceOf, subjectOf, type EventEnvelope } from '@bstore/contracts';
import type { DeadLetterJson } from '@bstore/platform';
import { createAssignmentService } from '@bstore/assignment';
import { createGatewayService, type GatewayService } from '@bstore/gateway';
import { testAuth } from './support/auth.ts';
import { BusDriver } from './support/bus-driver.ts';
import { eventually, memoryBus, testLogger } from './support/harness.ts';
import { memoryDatabase, type TestDatabase } from './support/postgres.ts';
import { freePort } from './support/process.ts';
import { client, startTestSystem, type TestSystem } from './support/system.ts';

/**
 * The operator's dead letters through the gateway, on the whole embedded system: one list of the
 * five services' letters, replays routed by the id's prefix, and a partial answer when a service
 * does not answer.
 */
let system: TestSystem;
/** Assignment's database in the system: given to it (and to a replica of it) by the test, which owns it. */
let assignmentDatabase: TestDatabase;
let staff: ReturnType<typeof client>;
let alice: ReturnType<typeof client>;

interface Aggregate {
  items: DeadLetterJson[];
  total: number;
  limit: number;
  offset: number;
  partial: boolean;
  failures: { service: string; status: number; code: string; detail: string }[];
}

beforeAll(async () => {
  // No demo data: the fix-and-replay test creates the one library it expects.
  assignmentDatabase = await memoryDatabase();
  system = await startTestSystem({ seedDemoData: false, databases: { assignment: assignmentDatabase.config } });
  staff = client(system.urls.gateway, 'librarian', 'staff');
  alice = client(system.urls.gateway, 'alice');
});

afterAll(async () => {
  await system?.stop();
  await assignmentDatabase?.cleanup();
});

const list = async (query = '') => {
  const res = await staff.call<Aggregate>('GET', `/admin/dead-letters${query}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
};

describe('dead letters through the gateway', () => {
  // Malformed events read by every consuming service: ReservationCanceled by book, reservation,
  // customercenter and notification; ReservationRequested by assignment, customercenter and notification.
  const canceled = createEnvelope({ type: 'ReservationCanceled', source: sourceOf('assignment'), subject: '1', data: { reservationId: 1, bookId: 'x' } });
  const requested = createEnvelope({ type: 'ReservationRequested', source: sourceOf('reservation'), subject: '1', data: { reservationId: 1 } });
  const ours = (page: Aggregate) => page.items.filter((l) => l.eventId === canceled.id || l.eventId === requested.id);

  it('lists the letters of all five consuming services in one list, newest first, each with its service', async () => {
    await system.bus.publish(subjectOf('ReservationCanceled'), canceled);
    await system.bus.publish(subjectOf('ReservationRequested'), requested);
    const page = await eventually('the seven letters', async () => {
      const p = await list();
      return ours(p).length === 7 ? p : undefined;
    });
    expect(page).toMatchObject({ total: 7, limit: 20, offset: 0, partial: false, failures: [] });
    const byService = (service: string) => page.items.filter((l) => l.service === service).map((l) => l.eventId).sort();
    expect(byService('book')).toEqual([canceled.id]);
    expect(byService('reservation')).toEqual([canceled.id]);
    expect(byService('assignment')).toEqual([requested.id]);
    expect(byService('customercenter')).toEqual([canceled.id, requested.id].sort());
    expect(byService('notification')).toEqual([canceled.id, requested.id].sort());
    for (const letter of page.items) {
      expect(letter.id.startsWith(`${letter.service}-`)).toBe(true);
      expect(letter.consumer).toBe(letter.service);
      expect(letter.error).toMatch(/data is invalid/);
    }
    const times = page.items.map((l) => Date.parse(l.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(new Set(page.items.map((l) => l.id)).size).toBe(7);
  });

  it('pages the merged list, filters by service and by pending', async () => {
    const all = await list();
    const window = await list('?limit=2&offset=1');
    expect(window).toMatchObject({ total: all.total, limit: 2, offset: 1 });
    expect(window.items.map((l) => l.id)).toEqual(all.items.slice(1, 3).map((l) => l.id));

    const cc = await list('?service=customercenter');
    expect(cc.total).toBe(2);
    expect(cc.items.every((l) => l.service === 'customercenter')).toBe(true);
    expect((await list('?service=customercenter&limit=1&offset=1')).items.map((l) => l.id)).toEqual([cc.items[1]!.id]);
    expect((await list('?pending=true')).total).toBe(all.total);

    for (const query of ['?limit=101', '?service=gateway', '?offset=990&limit=20', '?unknown=1']) {
      const res = await staff.call<{ code: string }>('GET', `/admin/dead-letters${query}`);
      expect(res.status, query).toBe(400);
    }
  });

  it('looks at one letter and replays it by its id; the service answers as it is (422 for a malformed event)', async () => {
    const [letter] = (await list('?service=book')).items;
    const one = await staff.call<DeadLetterJson>('GET', `/admin/dead-letters/${letter!.id}`);
    expect(one).toMatchObject({ status: 200, body: { id: letter!.id, envelope: canceled } });
    const replay = await staff.call<{ code: string; service: string }>('POST', `/admin/dead-letters/${letter!.id}/replay`);
    expect(replay.status).toBe(422);
    expect(replay.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(replay.body).toMatchObject({ code: 'DEAD_LETTER_MALFORMED', service: 'book' });
    // A body, even a JSON one, is not passed on and does not matter.
    const withBody = await staff.call('POST', `/admin/dead-letters/${letter!.id}/replay`, { please: true });
    expect(withBody.status).toBe(422);

    for (const id of ['book-99999', 'nosuch-1']) {
      const res = await staff.call<{ code: string }>('POST', `/admin/dead-letters/${id}/replay`);
      expect(res.status, id).toBe(404);
      expect(res.body.code).toBe('DEAD_LETTER_NOT_FOUND');
    }
    expect((await staff.call('POST', '/admin/dead-letters/book:1/replay')).status).toBe(400);
    expect((await staff.call('POST', '/admin/dead-letters/book-x/replay')).status).toBe(400);
  });

  it('is for staff only: a customer gets 403 problem+json from the gateway', async () => {
    const [letter] = (await list()).items;
    for (const [method, path] of [
      ['GET', '/admin/dead-letters'],
      ['GET', `/admin/dead-letters/${letter!.id}`],
      ['POST', `/admin/dead-letters/${letter!.id}/replay`],
    ] as const) {
      const res = await alice.call<{ code: string }>(method, path);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(res.body.code).toBe('FORBIDDEN');
    }
  });

  it('fix and replay: a request parked by a database fault completes once the fault is fixed, exactly once', async () => {
    const book = await staff.createBook('Replayed Book', 2);
    expect(book.status).toBe(201);
    expect((await staff.call('POST', '/libraries', { name: 'Replay Branch' })).status).toBe(201);
    // Assignment is not consuming: the request waits on the bus.
    await system.assignment.stopConsumers();
    const reserved = await alice.reserve(book.body.bookId);
    expect(reserved.body.status).toBe('bookReserveReq');
    const reservationId = reserved.body.reservationId;
    const event = await eventually('the ReservationRequested in reservation’s outbox', async () => {
      const rows = await system.databases.reservation.selectFrom('outbox').select('envelope').where('type', '=', 'ReservationRequested').execute();
      return rows.map((r) => r.envelope as EventEnvelope<'ReservationRequested', { reservationId: number }>).find((e) => e.data.reservationId === reservationId);
    });
    // A fault an operator can meet and fix: a constraint that makes assignment's insert fail for this reservation.
    const assignmentDb = system.databases.assignment;
    await sql`ALTER TABLE assignments ADD CONSTRAINT assignments_blocked_for_replay CHECK (reservation_id <> ${sql.lit(reservationId)})`.execute(assignmentDb);
    // The request reaches a replica of assignment on the same database, with a short retry policy
    // (the system's own retries for minutes before it parks): it fails at its first delivery, and
    // the replica's bus redelivers it until its last delivery parks it, where the system's
    // assignment lists its dead letters.
    const replicaBus = await memoryBus();
    const replica = await createAssignmentService({ database: assignmentDatabase.config, bus: replicaBus, logger: testLogger(), auth: await testAuth(), delivery: { maxDeliver: 3, backoffMs: () => 500 } });
    let letter: DeadLetterJson;
    try {
      const replicaDriver = await BusDriver.start(replicaBus, replica);
      expect(await replicaDriver.deliver(event)).toBe('retry');
      letter = await eventually('the request parked by its last delivery', async () =>
        (await list('?pending=true&service=assignment')).items.find((l) => l.eventId === event.id),
      );
      await replicaDriver.settled();
    } finally {
      await replica.stop();
      await replicaBus.close();
    }
    expect(letter).toMatchObject({ service: 'assignment', consumer: 'assignment', subject: subjectOf('ReservationRequested'), deliveries: 3, replayedAt: null });
    expect(letter.error).toMatch(/assignments_blocked_for_replay/);

    // Not fixed yet: it fails again, 409 with the new error; the letter stays, once.
    const early = await staff.call<{ code: string; error: string }>('POST', `/admin/dead-letters/${letter.id}/replay`);
    expect(early.status).toBe(409);
    expect(early.body.code).toBe('REPLAY_FAILED');
    expect(early.body.error).toMatch(/assignments_blocked_for_replay/);
    expect((await list('?service=assignment')).items.filter((l) => l.eventId === event.id)).toHaveLength(1);

    // Fixed: the constraint is gone. The replay handles it and the saga completes.
    await sql`ALTER TABLE assignments DROP CONSTRAINT assignments_blocked_for_replay`.execute(assignmentDb);
    const replay = await staff.call<{ outcome: string; deadLetter: DeadLetterJson }>('POST', `/admin/dead-letters/${letter.id}/replay`);
    expect(replay.status).toBe(200);
    expect(replay.body.outcome).toBe('handled');
    expect(replay.body.deadLetter.replayedAt).not.toBeNull();
    await eventually('the reservation to be bookReserved', async () => {
      const r = await alice.reservation(reservationId);
      return r.body.status === 'bookReserved' ? r.body : undefined;
    });
    expect((await alice.reservation(reservationId)).body.libraryName).toBe('Replay Branch');

    const twice = await staff.call<{ code: string }>('POST', `/admin/dead-letters/${letter.id}/replay`);
    expect(twice.status).toBe(409);
    expect(twice.body.code).toBe('DEAD_LETTER_ALREADY_REPLAYED');
    expect((await list('?pending=true')).items.some((l) => l.id === letter.id)).toBe(false);

    // Assignment consumes again: the bus delivers the original request, which the inbox finds
    // handled. A reservation made after it completes, so the first has been delivered by then.
    await system.assignment.startConsumers();
    const later = await alice.reserve(book.body.bookId);
    await eventually('the later reservation to be bookReserved', async () => {
      const r = await alice.reservation(later.body.reservationId);
      return r.body.status === 'bookReserved' ? r.body : undefined;
    });
    const db = system.databases.assignment;
    expect(await db.selectFrom('assignments').selectAll().where('reservation_id', '=', reservationId).execute()).toHaveLength(1);
    const accepted = await db.selectFrom('outbox').select('envelope').where('type', '=', 'ReservationAccepted').execute();
    expect(accepted.filter((r) => (r.envelope as { data: { reservationId: number } }).data.reservationId === reservationId)).toHaveLength(1);
  });
});

describe('the merged list when services do not answer', () => {
  let silent: Server;
  const gateways: GatewayService[] = [];

  beforeAll(async () => {
    // Accepts connections and never answers.
    silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    for (const g of gateways) await g.stop();
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
  });

  async function gatewayWith(upstreams: Partial<TestSystem['urls']>) {
    const gateway = await createGatewayService(
      { logger: testLogger(), auth: await testAuth() },
      {
        upstreams: { book: system.urls.book, reservation: system.urls.reservation, assignment: system.urls.assignment, customercenter: system.urls.customercenter, notification: system.urls.notification, ...upstreams },
        timeoutMs: 500,
      },
    );
    gateways.push(gateway);
    return client(await gateway.start({ port: 0 }), 'librarian', 'staff');
  }

  it('answers 200 with the letters of those that did, and names the others in failures', async () => {
    const address = silent.address() as { port: number };
    const gw = await gatewayWith({ customercenter: `http://127.0.0.1:${await freePort()}`, reservation: `http://127.0.0.1:${address.port}` });
    const res = await gw.call<Aggregate>('GET', '/admin/dead-letters?limit=100');
    expect(res.status).toBe(200);
    expect(res.body.partial).toBe(true);
    const failures = Object.fromEntries(res.body.failures.map((f) => [f.service, f]));
    expect(Object.keys(failures).sort()).toEqual(['customercenter', 'reservation']);
    expect(failures.customercenter).toMatchObject({ status: 503, code: 'UPSTREAM_UNAVAILABLE' });
    expect(failures.reservation).toMatchObject({ status: 504, code: 'UPSTREAM_TIMEOUT' });
    expect(new Set(res.body.items.map((l) => l.service))).toEqual(new Set(['book', 'assignment', 'notification']));
    const full = await list('?limit=100');
    expect(res.body.total).toBe(full.items.filter((l) => l.service === 'book' || l.service === 'assignment' || l.service === 'notification').length);

    // A replay routed to a service that is down: 503 naming it, as for any proxied route.
    const replay = await gw.call<{ code: string; service: string }>('POST', '/admin/dead-letters/customercenter-1/replay');
    expect(replay.status).toBe(503);
    expect(replay.body).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', service: 'customercenter' });
  });

  it('answers 503 problem+json when no service answered', async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const gw = await gatewayWith({ book: down, reservation: down, assignment: down, customercenter: down, notification: down });
    const res = await gw.call<{ code: string; failures: unknown[] }>('GET', '/admin/dead-letters');
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(res.body.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(res.body.failures).toHaveLength(5);
  });
});
