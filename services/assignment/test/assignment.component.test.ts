import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, sourceOf, type EventData, type EventEnvelope } from '@bstore/contracts';
import type { EmbeddedBus } from '@bstore/platform';
import { DEMO_LIBRARIES, createAssignmentService, seedLibraries, type AssignmentService } from '@bstore/assignment';
import { memoryBus, testLogger } from '../../../test/support/harness.ts';

const staff = { 'x-role': 'staff' };

let bus: EmbeddedBus;
let assignment: AssignmentService;

beforeAll(async () => {
  const logger = testLogger();
  bus = await memoryBus(logger);
  assignment = await createAssignmentService({ database: { kind: 'pglite' }, bus, logger });
  await seedLibraries(assignment);
});

afterAll(async () => {
  await assignment.stop();
  await bus.close();
});

async function freshService(): Promise<AssignmentService> {
  return createAssignmentService({ database: { kind: 'pglite' }, bus, logger: testLogger() });
}

function requested(reservationId: number, preferredLibraryId: number | null = null, bookId = 1) {
  return createEnvelope({
    type: 'ReservationRequested',
    source: sourceOf('reservation'),
    subject: String(reservationId),
    data: { reservationId, bookId, bookName: 'Pachinko', customerId: 'alice', preferredLibraryId, status: 'bookReserveReq' as const },
  });
}

function cancelRequested(reservationId: number, bookId = 1) {
  return createEnvelope({
    type: 'ReservationCancelRequested',
    source: sourceOf('reservation'),
    subject: String(reservationId),
    data: { reservationId, bookId, customerId: 'alice', status: 'bookCancel' as const },
  });
}

async function assignmentsOf(service: AssignmentService, reservationId: number) {
  return service.internals.db.selectFrom('assignments').selectAll().where('reservation_id', '=', reservationId).execute();
}

/** The outbox rows of one event type for one reservation, oldest first. */
async function outboxOf<T extends 'ReservationAccepted' | 'ReservationCanceled'>(service: AssignmentService, type: T, reservationId: number) {
  const rows = await service.internals.db.selectFrom('outbox').selectAll().where('type', '=', type).orderBy('created_at').execute();
  return rows
    .map((r) => r.envelope as EventEnvelope<T, EventData<T>>)
    .filter((e) => e.data.reservationId === reservationId);
}

interface LibraryJson {
  libraryId: number;
  name: string;
  address: string | null;
  activeAssignments: number;
}

async function listLibraries(service = assignment): Promise<LibraryJson[]> {
  const res = await service.app.inject({ method: 'GET', url: '/libraries' });
  expect(res.statusCode).toBe(200);
  return res.json<{ items: LibraryJson[] }>().items;
}

describe('assigning a library to a requested reservation', () => {
  it('assigns a library and puts ReservationAccepted with that library in the outbox', async () => {
    expect(await assignment.internals.consumer.handle(requested(5001, null, 42))).toBe('handled');
    const rows = await assignmentsOf(assignment, 5001);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row).toMatchObject({ book_id: 42, customer_id: 'alice', status: 'assigned' });
    const library = (await listLibraries()).find((l) => l.libraryId === row.library_id);
    expect(library?.name).toBe(row.library_name);

    const accepted = await outboxOf(assignment, 'ReservationAccepted', 5001);
    expect(accepted).toHaveLength(1);
    expect(accepted[0]).toMatchObject({ source: 'bstore/assignment', subject: '5001', type: 'ReservationAccepted' });
    expect(accepted[0]?.data).toEqual({
      reservationId: 5001,
      bookId: 42,
      customerId: 'alice',
      assignmentId: row.assignment_id,
      libraryId: row.library_id,
      libraryName: row.library_name,
      status: 'bookReserved',
    });
  });

  it('the same event delivered twice is a duplicate: one assignment, one ReservationAccepted', async () => {
    const event = requested(5101);
    expect(await assignment.internals.consumer.handle(event)).toBe('handled');
    expect(await assignment.internals.consumer.handle(event, 2)).toBe('duplicate');
    expect(await assignmentsOf(assignment, 5101)).toHaveLength(1);
    expect(await outboxOf(assignment, 'ReservationAccepted', 5101)).toHaveLength(1);
  });

  it('a second request for an assigned reservation (a new event id) assigns nothing more', async () => {
    expect(await assignment.internals.consumer.handle(requested(5151))).toBe('handled');
    const [first] = await assignmentsOf(assignment, 5151);
    expect(await assignment.internals.consumer.handle(requested(5151))).toBe('handled');
    expect(await assignmentsOf(assignment, 5151)).toEqual([first]);
    expect(await outboxOf(assignment, 'ReservationAccepted', 5151)).toHaveLength(1);
  });

  it('honours the preferred library even when it is the busiest', async () => {
    const before = await listLibraries();
    const busiest = before.reduce((a, b) => (b.activeAssignments > a.activeAssignments ? b : a));
    expect(await assignment.internals.consumer.handle(requested(5201, busiest.libraryId))).toBe('handled');
    const [accepted] = await outboxOf(assignment, 'ReservationAccepted', 5201);
    expect(accepted?.data).toMatchObject({ libraryId: busiest.libraryId, libraryName: busiest.name });
    const after = (await listLibraries()).find((l) => l.libraryId === busiest.libraryId);
    expect(after?.activeAssignments).toBe(busiest.activeAssignments + 1);
  });

  it('an unknown preferred library falls back to the least busy one', async () => {
    const before = await listLibraries();
    const least = before.reduce((a, b) => (b.activeAssignments < a.activeAssignments ? b : a));
    expect(await assignment.internals.consumer.handle(requested(5251, 999_999))).toBe('handled');
    const [row] = await assignmentsOf(assignment, 5251);
    expect(row).toMatchObject({ library_id: least.libraryId, status: 'assigned' });
  });

  it('a malformed event is parked as a dead letter at once and assigns nothing', async () => {
    const bad = createEnvelope({ type: 'ReservationRequested', source: 'x', subject: '5301', data: { reservationId: 5301, bookId: 'one' } });
    expect(await assignment.internals.consumer.handle(bad)).toBe('dead-lettered');
    const parked = await assignment.internals.db.selectFrom('dead_letters').selectAll().where('event_id', '=', bad.id).execute();
    expect(parked).toHaveLength(1);
    expect(parked[0]?.error).toMatch(/ReservationRequested data is invalid/);
    expect(await assignmentsOf(assignment, 5301)).toHaveLength(0);
  });
});

describe('balancing across libraries', () => {
  it('spreads requests without a preference to the least busy library, ties to the lowest id', async () => {
    const service = await freshService();
    try {
      const created = [];
      for (const name of ['A', 'B', 'C']) {
        const res = await service.app.inject({ method: 'POST', url: '/libraries', payload: { name }, headers: staff });
        expect(res.statusCode).toBe(201);
        created.push(res.json<{ libraryId: number }>().libraryId);
      }
      const [a, b, c] = created as [number, number, number];
      for (let i = 1; i <= 6; i++) expect(await service.internals.consumer.handle(requested(6000 + i))).toBe('handled');
      const chosen = [];
      for (let i = 1; i <= 6; i++) chosen.push((await assignmentsOf(service, 6000 + i))[0]?.library_id);
      expect(chosen).toEqual([a, b, c, a, b, c]);
      expect((await listLibraries(service)).map((l) => l.activeAssignments)).toEqual([2, 2, 2]);

      // A release frees a place: B is now the least busy.
      expect(await service.internals.consumer.handle(cancelRequested(6002))).toBe('handled');
      expect(await service.internals.consumer.handle(requested(6007))).toBe('handled');
      expect((await assignmentsOf(service, 6007))[0]?.library_id).toBe(b);
    } finally {
      await service.stop();
    }
  });

  it('with no library at all the request is retried, then parked; it is assigned once a library exists', async () => {
    const service = await freshService();
    try {
      const event = requested(6101);
      expect(await service.internals.consumer.handle(event, 1)).toBe('retry');
      expect(await assignmentsOf(service, 6101)).toHaveLength(0);
      expect(await outboxOf(service, 'ReservationAccepted', 6101)).toHaveLength(0);

      await seedLibraries(service, [DEMO_LIBRARIES[0]!]);
      expect(await service.internals.consumer.handle(event, 2)).toBe('handled');
      expect((await outboxOf(service, 'ReservationAccepted', 6101))[0]?.data.libraryName).toBe(DEMO_LIBRARIES[0]?.name);

      const empty = await freshService();
      try {
        expect(await empty.internals.consumer.handle(requested(6102), 20)).toBe('dead-lettered');
        const parked = await empty.internals.db.selectFrom('dead_letters').selectAll().execute();
        expect(parked[0]?.error).toMatch(/no library/);
      } finally {
        await empty.stop();
      }
    } finally {
      await service.stop();
    }
  });
});

describe('cancelling', () => {
  it('a cancel after the assignment releases it and emits ReservationCanceled', async () => {
    expect(await assignment.internals.consumer.handle(requested(7001, null, 9))).toBe('handled');
    const [before] = await assignmentsOf(assignment, 7001);
    const libraryBefore = (await listLibraries()).find((l) => l.libraryId === before?.library_id);

    expect(await assignment.internals.consumer.handle(cancelRequested(7001, 9))).toBe('handled');
    const [after] = await assignmentsOf(assignment, 7001);
    expect(after).toMatchObject({ status: 'released', library_id: before?.library_id });
    const canceled = await outboxOf(assignment, 'ReservationCanceled', 7001);
    expect(canceled).toHaveLength(1);
    expect(canceled[0]?.data).toEqual({ reservationId: 7001, bookId: 9, customerId: 'alice', status: 'bookCanceled' });
    const libraryAfter = (await listLibraries()).find((l) => l.libraryId === before?.library_id);
    expect(libraryAfter?.activeAssignments).toBe((libraryBefore?.activeAssignments ?? 0) - 1);
  });

  it('two cancels (distinct events) emit one ReservationCanceled', async () => {
    expect(await assignment.internals.consumer.handle(requested(7101))).toBe('handled');
    const cancel = cancelRequested(7101);
    expect(await assignment.internals.consumer.handle(cancel)).toBe('handled');
    expect(await assignment.internals.consumer.handle(cancel, 2)).toBe('duplicate');
    expect(await assignment.internals.consumer.handle(cancelRequested(7101))).toBe('handled');
    expect(await outboxOf(assignment, 'ReservationCanceled', 7101)).toHaveLength(1);
    expect((await assignmentsOf(assignment, 7101))[0]?.status).toBe('released');
  });

  it('a cancel that overtakes its request leaves a tombstone: canceled at once, the late request is not assigned', async () => {
    expect(await assignment.internals.consumer.handle(cancelRequested(7201))).toBe('handled');
    expect(await assignmentsOf(assignment, 7201)).toEqual([expect.objectContaining({ status: 'voided', library_id: null, library_name: null })]);
    expect(await outboxOf(assignment, 'ReservationCanceled', 7201)).toHaveLength(1);

    expect(await assignment.internals.consumer.handle(requested(7201))).toBe('handled');
    expect(await assignmentsOf(assignment, 7201)).toEqual([expect.objectContaining({ status: 'voided', library_id: null })]);
    expect(await outboxOf(assignment, 'ReservationAccepted', 7201)).toHaveLength(0);

    // A second cancel of the tombstone announces nothing more.
    expect(await assignment.internals.consumer.handle(cancelRequested(7201))).toBe('handled');
    expect(await outboxOf(assignment, 'ReservationCanceled', 7201)).toHaveLength(1);
  });
});

describe('libraries over HTTP', () => {
  it('lists the demo branches, and seeding again inserts nothing', async () => {
    const names = (await listLibraries()).map((l) => l.name);
    for (const demo of DEMO_LIBRARIES) expect(names).toContain(demo.name);
    const mapo = (await listLibraries()).find((l) => l.name === '마포도서관 (Mapo Library)');
    expect(mapo?.address).toContain('Seoul');
    expect(await seedLibraries(assignment)).toEqual([]);
    expect((await listLibraries()).filter((l) => DEMO_LIBRARIES.some((d) => d.name === l.name))).toHaveLength(4);
  });

  it('creates a library (201), lists it with no active assignment, and refuses the same name again (409)', async () => {
    const res = await assignment.app.inject({ method: 'POST', url: '/libraries', payload: { name: '  서대문도서관 (Seodaemun Library) ', address: 'Seoul' }, headers: staff });
    expect(res.statusCode).toBe(201);
    const created = res.json<{ libraryId: number; name: string; address: string | null }>();
    expect(created).toEqual({ libraryId: expect.any(Number), name: '서대문도서관 (Seodaemun Library)', address: 'Seoul' });
    expect((await listLibraries()).find((l) => l.libraryId === created.libraryId)).toEqual({ ...created, activeAssignments: 0 });

    const count = (await listLibraries()).length;
    const again = await assignment.app.inject({ method: 'POST', url: '/libraries', payload: { name: '서대문도서관 (Seodaemun Library)' }, headers: staff });
    expect(again.statusCode).toBe(409);
    expect(again.headers['content-type']).toContain('application/problem+json');
    expect(again.json()).toMatchObject({ status: 409, code: 'LIBRARY_EXISTS' });
    expect(await listLibraries()).toHaveLength(count);
  });

  it.each([
    ['malformed JSON', '{"name": ', 'MALFORMED_REQUEST'],
    ['an unknown property', JSON.stringify({ name: 'X Library', city: 'Seoul' }), 'VALIDATION_FAILED'],
    ['a blank name', JSON.stringify({ name: '   ' }), 'INVALID_LIBRARY'],
    ['an empty name', JSON.stringify({ name: '' }), 'VALIDATION_FAILED'],
    ['a wrong type', JSON.stringify({ name: 7 }), 'VALIDATION_FAILED'],
    ['a missing name', JSON.stringify({ address: 'Seoul' }), 'VALIDATION_FAILED'],
    ['an overlong name', JSON.stringify({ name: 'x'.repeat(201) }), 'VALIDATION_FAILED'],
  ])('rejects %s with a 400 problem and stores nothing', async (_name, payload, code) => {
    const before = await listLibraries();
    const res = await assignment.app.inject({ method: 'POST', url: '/libraries', payload, headers: { ...staff, 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    const body = res.json<{ status: number; code: string; detail: string }>();
    expect(body.status).toBe(400);
    expect(body.code).toBe(code);
    expect(body.detail.length).toBeGreaterThan(0);
    expect(await listLibraries()).toEqual(before);
  });
});

describe('assignments over HTTP', () => {
  it('finds the assignment of a reservation', async () => {
    expect(await assignment.internals.consumer.handle(requested(8001, null, 77))).toBe('handled');
    const [row] = await assignmentsOf(assignment, 8001);
    const res = await assignment.app.inject({ method: 'GET', url: '/assignments?reservationId=8001', headers: staff });
    expect(res.statusCode).toBe(200);
    const page = res.json<{ items: Record<string, unknown>[]; total: number; limit: number; offset: number }>();
    expect(page).toMatchObject({ total: 1, limit: 20, offset: 0 });
    expect(page.items).toEqual([
      {
        assignmentId: row?.assignment_id,
        reservationId: 8001,
        bookId: 77,
        customerId: 'alice',
        libraryId: row?.library_id,
        libraryName: row?.library_name,
        status: 'assigned',
        createdAt: row?.created_at.toISOString(),
      },
    ]);
  });

  it('pages all assignments and answers an empty page for an unknown reservation', async () => {
    const all = await assignment.app.inject({ method: 'GET', url: '/assignments?limit=2&offset=1', headers: staff });
    expect(all.statusCode).toBe(200);
    const page = all.json<{ items: unknown[]; total: number; limit: number; offset: number }>();
    expect(page.items).toHaveLength(2);
    expect(page.total).toBeGreaterThan(2);
    expect(page).toMatchObject({ limit: 2, offset: 1 });

    const none = await assignment.app.inject({ method: 'GET', url: '/assignments?reservationId=999999', headers: staff });
    expect(none.json()).toEqual({ items: [], total: 0, limit: 20, offset: 0 });
  });

  it('rejects a bad query with a 400 problem', async () => {
    for (const url of ['/assignments?reservationId=abc', '/assignments?reservationId=0', '/assignments?limit=1000', '/assignments?status=assigned']) {
      const res = await assignment.app.inject({ method: 'GET', url, headers: staff });
      expect(res.statusCode, url).toBe(400);
      expect(res.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    }
  });
});

describe('authorization', () => {
  it('only staff create libraries or read assignments', async () => {
    const create = await assignment.app.inject({ method: 'POST', url: '/libraries', payload: { name: 'Nope' } });
    expect(create.statusCode).toBe(403);
    expect(create.json()).toMatchObject({ code: 'FORBIDDEN' });
    const list = await assignment.app.inject({ method: 'GET', url: '/assignments' });
    expect(list.statusCode).toBe(403);
  });
});
