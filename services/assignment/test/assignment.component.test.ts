import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { EVENT_CATALOG, createEnvelope, parseEvent, sourceOf, type EventData, type EventEnvelope } from '@bstore/contracts';
import type { DatabaseConfig, EmbeddedBus, HandleResult } from '@bstore/platform';
import { DEMO_LIBRARIES, createAssignmentService, seedLibraries, type AssignmentService, type AssignmentTables } from '@bstore/assignment';
import { memoryBus, testLogger } from '../../../test/support/harness.ts';
import { BusDriver } from '../../../test/support/bus-driver.ts';
import { databaseKinds, type TestDatabase } from '../../../test/support/postgres.ts';
import { as, asStaff, testAuth } from '../../../test/support/auth.ts';

const staff = await asStaff();

let bus: EmbeddedBus;
let assignment: AssignmentService;
/** The test's own connection to assignment's database (an operator's view of it). */
let db: Kysely<AssignmentTables>;
/** Delivers events to assignment on its bus, as reservation publishes them. */
let assignments: BusDriver;

/**
 * The same suite on both databases. PGlite has one connection, so its transactions never overlap;
 * on PostgreSQL each replica of the service has a pool of 10, so events that several replicas
 * handle at once really run in overlapping transactions, and only the inbox's primary key and the
 * unique reservation_id keep effects single (the `concurrent deliveries` tests below).
 */
const DATABASES = databaseKinds();

/** A new database for one service of this file, on the database of the current run (set by describe.each). */
let database: (prefix: string) => Promise<TestDatabase> = () => Promise.reject(new Error('no database kind chosen yet'));

/** Replicas of a service for the tests of deliveries at once: the most events any of them races. */
const REPLICAS = 4;

/** A replica of assignment consuming from a bus of its own, driven through it. */
interface Replica {
  service: AssignmentService;
  bus: EmbeddedBus;
  driver: BusDriver;
}

/**
 * `count` replicas of assignment on the same database, built one after another (each runs the
 * migrations, which find them applied), each consuming from a bus of its own through its own
 * driver: several replicas receiving different deliveries, as the bus spreads them in production.
 */
async function replicasOn(config: DatabaseConfig, count: number): Promise<Replica[]> {
  const replicas: Replica[] = [];
  for (let i = 0; i < count; i++) {
    const logger = testLogger();
    const ownBus = await memoryBus(logger);
    const service = await createAssignmentService({ database: config, bus: ownBus, logger, auth: await testAuth() });
    replicas.push({ service, bus: ownBus, driver: await BusDriver.start(ownBus, service) });
  }
  return replicas;
}

async function stopReplicas(replicas: readonly Replica[]): Promise<void> {
  for (const r of replicas) {
    await r.service.stop();
    await r.bus.close();
  }
}

/** Replicas of a service of their own on a new database (no library), and the test's connection to that database. */
async function freshReplicas(count: number): Promise<{ replicas: Replica[]; db: Kysely<AssignmentTables> }> {
  const made = await database('assignment_fresh');
  return { replicas: await replicasOn(made.config, count), db: await made.connect<AssignmentTables>() };
}

/** A service of its own on a new database (no library), with its driver and the test's connection to its database. */
async function freshService(): Promise<Replica & { db: Kysely<AssignmentTables> }> {
  const { replicas, db: ownDb } = await freshReplicas(1);
  return { ...replicas[0]!, db: ownDb };
}

/**
 * Delivers `events` at once to several replicas: event i goes to replica i mod n (each replica's
 * consumer takes its share one at a time, the replicas all in parallel), so deliveries received by
 * different replicas run in overlapping transactions on PostgreSQL. The results, in the order of
 * `events`.
 */
async function deliverAcross(replicas: readonly Replica[], events: readonly EventEnvelope[]): Promise<HandleResult[]> {
  const results: HandleResult[] = Array.from({ length: events.length });
  await Promise.all(
    replicas.map(async (replica, r) => {
      for (let i = r; i < events.length; i += replicas.length) results[i] = await replica.driver.deliver(events[i]!);
    }),
  );
  return results;
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

async function assignmentsOf(on: Kysely<AssignmentTables>, reservationId: number) {
  return on.selectFrom('assignments').selectAll().where('reservation_id', '=', reservationId).execute();
}

/** The outbox rows of one event type for one reservation, oldest first. */
async function outboxOf<T extends 'ReservationAccepted' | 'ReservationCanceled' | 'ReservationAssignmentFailed'>(on: Kysely<AssignmentTables>, type: T, reservationId: number) {
  const rows = await on.selectFrom('outbox').selectAll().where('type', '=', type).orderBy('created_at').execute();
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

describe.each(DATABASES)('assignment on %s', (_name, makeDatabase) => {
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    database = async (prefix) => {
      const made = await makeDatabase(prefix);
      cleanups.push(made.cleanup);
      return made;
    };
    const logger = testLogger();
    bus = await memoryBus(logger);
    const made = await database('assignment');
    assignment = await createAssignmentService({ database: made.config, bus, logger, auth: await testAuth() });
    await seedLibraries(assignment);
    assignments = await BusDriver.start(bus, assignment);
    db = await made.connect<AssignmentTables>();
  });

  afterAll(async () => {
    await assignment.stop();
    await bus.close();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  describe('assigning a library to a requested reservation', () => {
    it('assigns a library and puts ReservationAccepted with that library in the outbox', async () => {
      const before = Date.now();
      expect(await assignments.deliver(requested(5001, null, 42))).toBe('handled');
      const after = Date.now();
      const rows = await assignmentsOf(db, 5001);
      expect(rows).toHaveLength(1);
      const row = rows[0]!;
      expect(row).toMatchObject({ book_id: 42, customer_id: 'alice', status: 'assigned' });
      const library = (await listLibraries()).find((l) => l.libraryId === row.library_id);
      expect(library?.name).toBe(row.library_name);

      const accepted = await outboxOf(db, 'ReservationAccepted', 5001);
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
        pickupBy: expect.any(String),
      });
      // The copy waits on the branch's hold shelf for the pickup period (default 7 days) from the assignment.
      const pickupBy = Date.parse(accepted[0]!.data.pickupBy!);
      expect(pickupBy).toBeGreaterThanOrEqual(before + 7 * 86_400_000);
      expect(pickupBy).toBeLessThanOrEqual(after + 7 * 86_400_000);
    });

    it("a copy checked out or not picked up closes its assignment: the branch's load goes down, once", async () => {
      const shelf = (id: number, type: 'ReservationCheckedOut' | 'ReservationExpired') =>
        createEnvelope({
          type,
          source: sourceOf('reservation'),
          subject: String(id),
          data:
            type === 'ReservationCheckedOut'
              ? { reservationId: id, bookId: 1, customerId: 'alice', libraryId: null, dueAt: new Date().toISOString(), status: 'bookLoaned' as const }
              : { reservationId: id, bookId: 1, customerId: 'alice', libraryId: null, pickupBy: new Date().toISOString(), status: 'bookExpired' as const },
        });
      const load = async () => (await listLibraries()).reduce((sum, l) => sum + (l.activeAssignments ?? 0), 0);
      const before = await load();
      for (const [id, type] of [[5701, 'ReservationCheckedOut'], [5702, 'ReservationExpired']] as const) {
        expect(await assignments.deliver(requested(id))).toBe('handled');
        expect(await load()).toBe(before + 1);
        const event = shelf(id, type);
        expect(await assignments.deliver(event)).toBe('handled');
        expect(await assignments.deliver(event)).toBe('duplicate');
        // A redriven copy of the event (another id) changes nothing either.
        expect(await assignments.deliver(shelf(id, type))).toBe('handled');
        expect(await assignmentsOf(db, id)).toEqual([expect.objectContaining({ status: 'closed' })]);
        expect(await load()).toBe(before);
        // Nothing is announced for it: the saga needs no answer.
        expect(await outboxOf(db, 'ReservationCanceled', id)).toEqual([]);
      }
    });

    it('the same event delivered twice is a duplicate: one assignment, one ReservationAccepted', async () => {
      const event = requested(5101);
      expect(await assignments.deliver(event)).toBe('handled');
      expect(await assignments.deliver(event)).toBe('duplicate');
      expect(await assignmentsOf(db, 5101)).toHaveLength(1);
      expect(await outboxOf(db, 'ReservationAccepted', 5101)).toHaveLength(1);
    });

    it('a second request for an assigned reservation (a new event id) assigns nothing more', async () => {
      expect(await assignments.deliver(requested(5151))).toBe('handled');
      const [first] = await assignmentsOf(db, 5151);
      expect(await assignments.deliver(requested(5151))).toBe('handled');
      expect(await assignmentsOf(db, 5151)).toEqual([first]);
      expect(await outboxOf(db, 'ReservationAccepted', 5151)).toHaveLength(1);
    });

    it('honours the preferred library even when it is the busiest', async () => {
      const before = await listLibraries();
      const busiest = before.reduce((a, b) => (b.activeAssignments > a.activeAssignments ? b : a));
      expect(await assignments.deliver(requested(5201, busiest.libraryId))).toBe('handled');
      const [accepted] = await outboxOf(db, 'ReservationAccepted', 5201);
      expect(accepted?.data).toMatchObject({ libraryId: busiest.libraryId, libraryName: busiest.name });
      const after = (await listLibraries()).find((l) => l.libraryId === busiest.libraryId);
      expect(after?.activeAssignments).toBe(busiest.activeAssignments + 1);
    });

    it('an unknown preferred library falls back to the least busy one', async () => {
      const before = await listLibraries();
      const least = before.reduce((a, b) => (b.activeAssignments < a.activeAssignments ? b : a));
      expect(await assignments.deliver(requested(5251, 999_999))).toBe('handled');
      const [row] = await assignmentsOf(db, 5251);
      expect(row).toMatchObject({ library_id: least.libraryId, status: 'assigned' });
    });

    it('a malformed event is parked as a dead letter at once and assigns nothing', async () => {
      const bad = createEnvelope({ type: 'ReservationRequested', source: 'x', subject: '5301', data: { reservationId: 5301, bookId: 'one' } });
      expect(await assignments.deliver(bad)).toBe('dead-lettered');
      const parked = await db.selectFrom('dead_letters').selectAll().where('event_id', '=', bad.id).execute();
      expect(parked).toHaveLength(1);
      expect(parked[0]?.error).toMatch(/ReservationRequested data is invalid/);
      expect(await assignmentsOf(db, 5301)).toHaveLength(0);
    });
  });

  describe('balancing across libraries', () => {
    it('spreads requests without a preference to the least busy library, ties to the lowest id', async () => {
      const fresh = await freshService();
      const { service } = fresh;
      try {
        const created = [];
        for (const name of ['A', 'B', 'C']) {
          const res = await service.app.inject({ method: 'POST', url: '/libraries', payload: { name }, headers: staff });
          expect(res.statusCode).toBe(201);
          created.push(res.json<{ libraryId: number }>().libraryId);
        }
        const [a, b, c] = created as [number, number, number];
        for (let i = 1; i <= 6; i++) expect(await fresh.driver.deliver(requested(6000 + i))).toBe('handled');
        const chosen = [];
        for (let i = 1; i <= 6; i++) chosen.push((await assignmentsOf(fresh.db, 6000 + i))[0]?.library_id);
        expect(chosen).toEqual([a, b, c, a, b, c]);
        expect((await listLibraries(service)).map((l) => l.activeAssignments)).toEqual([2, 2, 2]);

        // A release frees a place: B is now the least busy.
        expect(await fresh.driver.deliver(cancelRequested(6002))).toBe('handled');
        expect(await fresh.driver.deliver(requested(6007))).toBe('handled');
        expect((await assignmentsOf(fresh.db, 6007))[0]?.library_id).toBe(b);
      } finally {
        await stopReplicas([fresh]);
      }
    });
  });

  describe('with no library at all', () => {
    const failedData = (reservationId: number, bookId = 1) => ({
      reservationId,
      bookId,
      customerId: 'alice',
      reason: expect.stringMatching(/no library/),
      status: 'rejected',
    });

    it('the request fails at once: a `failed` row and one ReservationAssignmentFailed; a later library does not assign it; a cancel voids it once', async () => {
      const fresh = await freshService();
      const { service } = fresh;
      try {
        expect(await listLibraries(service)).toEqual([]);

        // Handled at the first delivery: no retry, no dead letter.
        const event = requested(6101, null, 31);
        expect(await fresh.driver.deliver(event)).toBe('handled');
        expect(await assignmentsOf(fresh.db, 6101)).toEqual([
          expect.objectContaining({ reservation_id: 6101, book_id: 31, customer_id: 'alice', library_id: null, library_name: null, status: 'failed' }),
        ]);
        const failed = await outboxOf(fresh.db, 'ReservationAssignmentFailed', 6101);
        expect(failed).toHaveLength(1);
        expect(failed[0]).toMatchObject({ source: 'bstore/assignment', subject: '6101', type: 'ReservationAssignmentFailed' });
        expect(failed[0]?.data).toEqual(failedData(6101, 31));
        // What reservation will receive passes the contract's schema (the data has exactly its fields).
        expect(() => parseEvent(failed[0]!, 'ReservationAssignmentFailed')).not.toThrow();
        expect(Object.keys(failed[0]!.data).sort()).toEqual(Object.keys(EVENT_CATALOG.ReservationAssignmentFailed.schema.properties).sort());
        expect(await outboxOf(fresh.db, 'ReservationAccepted', 6101)).toHaveLength(0);
        expect(await fresh.db.selectFrom('dead_letters').selectAll().execute()).toHaveLength(0);

        // Listed over HTTP as failed, with no library.
        const res = await service.app.inject({ method: 'GET', url: '/assignments?reservationId=6101', headers: staff });
        expect(res.statusCode).toBe(200);
        expect(res.json<{ items: unknown[] }>().items).toEqual([
          expect.objectContaining({ reservationId: 6101, bookId: 31, customerId: 'alice', libraryId: null, libraryName: null, status: 'failed' }),
        ]);

        // The same event again is a duplicate; a new event for the reservation finds the row: still one event.
        expect(await fresh.driver.deliver(event)).toBe('duplicate');
        expect(await fresh.driver.deliver(requested(6101, null, 31))).toBe('handled');
        expect(await outboxOf(fresh.db, 'ReservationAssignmentFailed', 6101)).toHaveLength(1);
        expect(await assignmentsOf(fresh.db, 6101)).toEqual([expect.objectContaining({ status: 'failed' })]);

        // A library created afterwards does not assign the failed reservation, even when asked again...
        const created = await service.app.inject({ method: 'POST', url: '/libraries', payload: { name: 'Late Branch' }, headers: staff });
        expect(created.statusCode).toBe(201);
        const lateBranch = created.json<{ libraryId: number }>().libraryId;
        expect(await fresh.driver.deliver(requested(6101, lateBranch, 31))).toBe('handled');
        expect(await assignmentsOf(fresh.db, 6101)).toEqual([expect.objectContaining({ status: 'failed', library_id: null })]);
        expect(await outboxOf(fresh.db, 'ReservationAccepted', 6101)).toHaveLength(0);
        expect(await outboxOf(fresh.db, 'ReservationAssignmentFailed', 6101)).toHaveLength(1);
        // ...while a new reservation is assigned to it.
        expect(await fresh.driver.deliver(requested(6102))).toBe('handled');
        expect(await assignmentsOf(fresh.db, 6102)).toEqual([expect.objectContaining({ status: 'assigned', library_id: lateBranch })]);
        expect(await listLibraries(service)).toEqual([expect.objectContaining({ libraryId: lateBranch, activeAssignments: 1 })]);

        // A cancel (one that overtook the rejection) voids the failed row and is announced once.
        const cancel = cancelRequested(6101, 31);
        expect(await fresh.driver.deliver(cancel)).toBe('handled');
        expect(await assignmentsOf(fresh.db, 6101)).toEqual([expect.objectContaining({ status: 'voided', library_id: null, library_name: null })]);
        const canceled = await outboxOf(fresh.db, 'ReservationCanceled', 6101);
        expect(canceled).toHaveLength(1);
        expect(canceled[0]?.data).toEqual({ reservationId: 6101, bookId: 31, customerId: 'alice', status: 'bookCanceled' });

        // A second cancel, redelivered or distinct, announces nothing more.
        expect(await fresh.driver.deliver(cancel)).toBe('duplicate');
        expect(await fresh.driver.deliver(cancelRequested(6101, 31))).toBe('handled');
        expect(await outboxOf(fresh.db, 'ReservationCanceled', 6101)).toHaveLength(1);
        expect(await outboxOf(fresh.db, 'ReservationAssignmentFailed', 6101)).toHaveLength(1);
        expect(await assignmentsOf(fresh.db, 6101)).toEqual([expect.objectContaining({ status: 'voided' })]);
        expect(await listLibraries(service)).toEqual([expect.objectContaining({ libraryId: lateBranch, activeAssignments: 1 })]);
      } finally {
        await stopReplicas([fresh]);
      }
    });

    it('a cancel that overtakes the request leaves a tombstone: the late request is a no-op and no ReservationAssignmentFailed is emitted', async () => {
      const fresh = await freshService();
      try {
        expect(await fresh.driver.deliver(cancelRequested(6201))).toBe('handled');
        expect(await assignmentsOf(fresh.db, 6201)).toEqual([expect.objectContaining({ status: 'voided', library_id: null })]);
        expect(await outboxOf(fresh.db, 'ReservationCanceled', 6201)).toHaveLength(1);

        expect(await fresh.driver.deliver(requested(6201))).toBe('handled');
        expect(await assignmentsOf(fresh.db, 6201)).toEqual([expect.objectContaining({ status: 'voided', library_id: null })]);
        expect(await outboxOf(fresh.db, 'ReservationAssignmentFailed', 6201)).toHaveLength(0);
        expect(await outboxOf(fresh.db, 'ReservationAccepted', 6201)).toHaveLength(0);

        expect(await fresh.driver.deliver(cancelRequested(6201))).toBe('handled');
        expect(await outboxOf(fresh.db, 'ReservationCanceled', 6201)).toHaveLength(1);
      } finally {
        await stopReplicas([fresh]);
      }
    });

    it('at once (overlapping on PostgreSQL): distinct requests fail once; a request racing its cancel ends voided with one ReservationCanceled', async () => {
      // Several replicas on one database, each receiving different deliveries at the same moment.
      const { replicas, db: ownDb } = await freshReplicas(REPLICAS);
      try {
        expect(await deliverAcross(replicas, [requested(6301), requested(6301), requested(6301), requested(6301)])).toEqual(['handled', 'handled', 'handled', 'handled']);
        expect(await assignmentsOf(ownDb, 6301)).toEqual([expect.objectContaining({ status: 'failed' })]);
        expect((await outboxOf(ownDb, 'ReservationAssignmentFailed', 6301)).map((e) => e.data)).toEqual([failedData(6301)]);

        // Each request and its cancel go to two replicas at once.
        const ids = Array.from({ length: 8 }, (_, i) => 6401 + i);
        const results = await deliverAcross(replicas, ids.flatMap((id) => [requested(id), cancelRequested(id)]));
        for (const [i, id] of ids.entries()) expect(results.slice(2 * i, 2 * i + 2), `reservation ${id}`).toEqual(['handled', 'handled']);
        for (const id of ids) {
          expect(await assignmentsOf(ownDb, id), `reservation ${id}`).toEqual([expect.objectContaining({ status: 'voided', library_id: null })]);
          expect(await outboxOf(ownDb, 'ReservationCanceled', id)).toHaveLength(1);
          // The request either failed first (then was voided) or found the tombstone: at most one rejection.
          expect((await outboxOf(ownDb, 'ReservationAssignmentFailed', id)).length).toBeLessThanOrEqual(1);
          expect(await outboxOf(ownDb, 'ReservationAccepted', id)).toHaveLength(0);
        }
        expect(await ownDb.selectFrom('dead_letters').selectAll().execute()).toHaveLength(0);
      } finally {
        await stopReplicas(replicas);
      }
    });
  });

  describe('cancelling', () => {
    it('a cancel after the assignment releases it and emits ReservationCanceled', async () => {
      expect(await assignments.deliver(requested(7001, null, 9))).toBe('handled');
      const [before] = await assignmentsOf(db, 7001);
      const libraryBefore = (await listLibraries()).find((l) => l.libraryId === before?.library_id);

      expect(await assignments.deliver(cancelRequested(7001, 9))).toBe('handled');
      const [after] = await assignmentsOf(db, 7001);
      expect(after).toMatchObject({ status: 'released', library_id: before?.library_id });
      const canceled = await outboxOf(db, 'ReservationCanceled', 7001);
      expect(canceled).toHaveLength(1);
      expect(canceled[0]?.data).toEqual({ reservationId: 7001, bookId: 9, customerId: 'alice', status: 'bookCanceled' });
      const libraryAfter = (await listLibraries()).find((l) => l.libraryId === before?.library_id);
      expect(libraryAfter?.activeAssignments).toBe((libraryBefore?.activeAssignments ?? 0) - 1);
    });

    it('two cancels (distinct events) emit one ReservationCanceled', async () => {
      expect(await assignments.deliver(requested(7101))).toBe('handled');
      const cancel = cancelRequested(7101);
      expect(await assignments.deliver(cancel)).toBe('handled');
      expect(await assignments.deliver(cancel)).toBe('duplicate');
      expect(await assignments.deliver(cancelRequested(7101))).toBe('handled');
      expect(await outboxOf(db, 'ReservationCanceled', 7101)).toHaveLength(1);
      expect((await assignmentsOf(db, 7101))[0]?.status).toBe('released');
    });

    it('a cancel that overtakes its request leaves a tombstone: canceled at once, the late request is not assigned', async () => {
      expect(await assignments.deliver(cancelRequested(7201))).toBe('handled');
      expect(await assignmentsOf(db, 7201)).toEqual([expect.objectContaining({ status: 'voided', library_id: null, library_name: null })]);
      expect(await outboxOf(db, 'ReservationCanceled', 7201)).toHaveLength(1);

      expect(await assignments.deliver(requested(7201))).toBe('handled');
      expect(await assignmentsOf(db, 7201)).toEqual([expect.objectContaining({ status: 'voided', library_id: null })]);
      expect(await outboxOf(db, 'ReservationAccepted', 7201)).toHaveLength(0);

      // A second cancel of the tombstone announces nothing more.
      expect(await assignments.deliver(cancelRequested(7201))).toBe('handled');
      expect(await outboxOf(db, 'ReservationCanceled', 7201)).toHaveLength(1);
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
      expect(await assignments.deliver(requested(8001, null, 77))).toBe('handled');
      const [row] = await assignmentsOf(db, 8001);
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
    it('only staff create libraries or read assignments: a customer is 403, an anonymous caller 401', async () => {
      const customer = await as('bob');
      const create = await assignment.app.inject({ method: 'POST', url: '/libraries', payload: { name: 'Nope' }, headers: customer });
      expect(create.statusCode).toBe(403);
      expect(create.json()).toMatchObject({ code: 'FORBIDDEN' });
      const list = await assignment.app.inject({ method: 'GET', url: '/assignments', headers: customer });
      expect(list.statusCode).toBe(403);
      for (const [method, url] of [['POST', '/libraries'], ['GET', '/assignments']] as const) {
        const anonymous = await assignment.app.inject({ method, url, ...(method === 'POST' ? { payload: { name: 'Nope' } } : {}) });
        expect(anonymous.statusCode, `${method} ${url}`).toBe(401);
        expect(anonymous.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
      }
      const libraries = await assignment.app.inject({ method: 'GET', url: '/libraries' });
      expect(libraries.json<{ items: { name: string }[] }>().items.map((l) => l.name)).not.toContain('Nope');
    });
  });

  describe('concurrent deliveries (overlapping transactions on PostgreSQL)', () => {
    /**
     * Replicas of one service on one database: what several replicas receiving different
     * deliveries at the same moment look like. One consumer takes its events one at a time, so the
     * events that race go to different replicas (`deliverAcross`).
     */
    let busy: Replica[];
    /** The test's own connection to their database. */
    let busyDb: Kysely<AssignmentTables>;

    beforeAll(async () => {
      ({ replicas: busy, db: busyDb } = await freshReplicas(REPLICAS));
      await seedLibraries(busy[0]!.service);
    });

    afterAll(async () => {
      await stopReplicas(busy);
    });

    const activeTotal = async () => (await listLibraries(busy[0]!.service)).reduce((sum, l) => sum + l.activeAssignments, 0);

    it('the same ReservationRequested delivered three times at once assigns once (inbox primary key)', async () => {
      const ids = [9001, 9002, 9003, 9004, 9005];
      const events = ids.map((id) => requested(id));
      // Each event received by three replicas at once (one event after the other: a replica's consumer takes one at a time).
      for (const [i, e] of events.entries()) expect((await deliverAcross(busy.slice(0, 3), [e, e, e])).sort(), `reservation ${ids[i]}`).toEqual(['duplicate', 'duplicate', 'handled']);
      for (const [i, id] of ids.entries()) {
        expect(await assignmentsOf(busyDb, id)).toEqual([expect.objectContaining({ status: 'assigned' })]);
        expect(await outboxOf(busyDb, 'ReservationAccepted', id)).toHaveLength(1);
        const inbox = await busyDb.selectFrom('inbox').select('event_id').where('event_id', '=', events[i]!.id).execute();
        expect(inbox).toHaveLength(1);
      }
    });

    it('distinct ReservationRequested events for one reservation at once assign once (unique reservation_id)', async () => {
      const results = await deliverAcross(busy, [requested(9101), requested(9101), requested(9101), requested(9101)]);
      expect(results).toEqual(['handled', 'handled', 'handled', 'handled']);
      const rows = await assignmentsOf(busyDb, 9101);
      expect(rows).toEqual([expect.objectContaining({ status: 'assigned' })]);
      const accepted = await outboxOf(busyDb, 'ReservationAccepted', 9101);
      expect(accepted).toHaveLength(1);
      expect(accepted[0]?.data).toMatchObject({ assignmentId: rows[0]?.assignment_id, libraryId: rows[0]?.library_id });
    });

    it('20 requests for different reservations at once: each gets exactly one assignment and one ReservationAccepted naming it', async () => {
      const before = await activeTotal();
      const libraries = new Map((await listLibraries(busy[0]!.service)).map((l) => [l.libraryId, l.name]));
      const ids = Array.from({ length: 20 }, (_, i) => 9201 + i);
      expect(await deliverAcross(busy, ids.map((id) => requested(id, null, 100 + id)))).toEqual(ids.map(() => 'handled'));
      for (const id of ids) {
        const rows = await assignmentsOf(busyDb, id);
        expect(rows, `reservation ${id}`).toHaveLength(1);
        const row = rows[0]!;
        expect(row).toMatchObject({ status: 'assigned', book_id: 100 + id });
        expect(libraries.get(row.library_id!)).toBe(row.library_name);
        const accepted = await outboxOf(busyDb, 'ReservationAccepted', id);
        expect(accepted.map((e) => e.data)).toEqual([
          { reservationId: id, bookId: 100 + id, customerId: 'alice', assignmentId: row.assignment_id, libraryId: row.library_id, libraryName: row.library_name, status: 'bookReserved', pickupBy: expect.any(String) },
        ]);
      }
      // Which branch each got may skew under concurrency (documented); how many are active may not.
      expect(await activeTotal()).toBe(before + ids.length);
    });

    it('16 requests each with its cancel at once: one ReservationCanceled each, and no active assignment is left', async () => {
      const before = await activeTotal();
      const ids = Array.from({ length: 16 }, (_, i) => 9301 + i);
      // Each request and its cancel go to two replicas at once.
      const results = await deliverAcross(busy, ids.flatMap((id) => [requested(id), cancelRequested(id)]));
      for (const [i, id] of ids.entries()) expect(results.slice(2 * i, 2 * i + 2), `reservation ${id}`).toEqual(['handled', 'handled']);
      for (const id of ids) {
        const rows = await assignmentsOf(busyDb, id);
        expect(rows, `reservation ${id}`).toHaveLength(1);
        const status = rows[0]?.status;
        expect(['released', 'voided']).toContain(status);
        expect(await outboxOf(busyDb, 'ReservationCanceled', id)).toHaveLength(1);
        // Released: the request won and was announced; voided: the cancel won and nothing was assigned.
        expect(await outboxOf(busyDb, 'ReservationAccepted', id)).toHaveLength(status === 'released' ? 1 : 0);
      }
      expect(await activeTotal()).toBe(before);
    });

    it('cancels of one assigned reservation at once (the same event twice, and distinct events) release it once', async () => {
      const before = await activeTotal();
      expect(await busy[0]!.driver.deliver(requested(9401))).toBe('handled');
      expect(await activeTotal()).toBe(before + 1);
      const cancel = cancelRequested(9401);
      const results = await deliverAcross(busy, [cancel, cancel, cancelRequested(9401), cancelRequested(9401)]);
      expect(results.slice(0, 2).sort()).toEqual(['duplicate', 'handled']);
      expect(results.slice(2)).toEqual(['handled', 'handled']);
      expect((await assignmentsOf(busyDb, 9401))[0]?.status).toBe('released');
      expect(await outboxOf(busyDb, 'ReservationCanceled', 9401)).toHaveLength(1);
      expect(await activeTotal()).toBe(before);
    });

    it('cancels of one reservation with no assignment yet, at once, leave one tombstone and one ReservationCanceled', async () => {
      const results = await deliverAcross(busy, [cancelRequested(9501), cancelRequested(9501), cancelRequested(9501)]);
      expect(results).toEqual(['handled', 'handled', 'handled']);
      expect(await assignmentsOf(busyDb, 9501)).toEqual([expect.objectContaining({ status: 'voided', library_id: null })]);
      expect(await outboxOf(busyDb, 'ReservationCanceled', 9501)).toHaveLength(1);
    });

    it('three replicas seeding the demo libraries at once insert each branch exactly once', async () => {
      // Three replicas on one new database, built one after another; seeding needs no consumer, so they share the bus unstarted.
      const made = await database('assignment_seeding');
      const empty: AssignmentService[] = [];
      try {
        for (let i = 0; i < 3; i++) empty.push(await createAssignmentService({ database: made.config, bus, logger: testLogger(), auth: await testAuth() }));
        const inserted = await Promise.all(empty.map((replica) => seedLibraries(replica)));
        expect(inserted.flat().map((l) => l.name).sort()).toEqual(DEMO_LIBRARIES.map((d) => d.name).sort());
        expect((await listLibraries(empty[0])).map((l) => l.name).sort()).toEqual(DEMO_LIBRARIES.map((d) => d.name).sort());
      } finally {
        for (const replica of empty) await replica.stop();
      }
    });

    it('the same library created 6 times at once: one 201, five 409, one row', async () => {
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => busy[0]!.service.app.inject({ method: 'POST', url: '/libraries', payload: { name: '은평도서관 (Eunpyeong Library)' }, headers: staff })),
      );
      expect(answers.map((a) => a.statusCode).sort()).toEqual([201, 409, 409, 409, 409, 409]);
      for (const a of answers.filter((x) => x.statusCode === 409)) expect(a.json()).toMatchObject({ code: 'LIBRARY_EXISTS' });
      expect((await listLibraries(busy[0]!.service)).filter((l) => l.name === '은평도서관 (Eunpyeong Library)')).toHaveLength(1);
    });
  });
});
