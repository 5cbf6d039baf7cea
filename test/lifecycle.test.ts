import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, sourceOf } from '@bstore/contracts';
import type { Kysely } from 'kysely';
import type { EmbeddedBus } from '@bstore/platform';
import { createAssignmentService, seedLibraries, type AssignmentService } from '@bstore/assignment';
import { createBookService, type BookService, type BookTables } from '@bstore/book';
import { createReservationService, type ReservationService, type ReservationTables } from '@bstore/reservation';
import { BusDriver } from './support/bus-driver.ts';
import { MovableClock, eventually, memoryBus, testLogger } from './support/harness.ts';
import { databaseKinds } from './support/postgres.ts';
import { as, asStaff, testAuth } from './support/auth.ts';

/**
 * The whole life of a reservation (issue 18, ADR 0022) across book, reservation and assignment on
 * one bus, on PGlite and PostgreSQL: waiting line, pickup deadline, check-out, check-in, expiry,
 * and the races between them. The deadline sweep runs on a clock the test moves (no sleeping).
 */
const logger = testLogger();
const auth = await testAuth();
const staff = await asStaff();


interface ReservationJson {
  reservationId: number;
  status: string;
  pickupBy: string | null;
  dueAt: string | null;
  queuePosition: number | null;
  libraryId: number | null;
  libraryName: string | null;
}

const PICKUP_MS = 60_000;
const LOAN_MS = 14 * 86_400_000;

describe.each(databaseKinds(20))('the life of a reservation on %s', (_name, makeDatabase) => {
  let bus: EmbeddedBus;
  let book: BookService;
  let assignment: AssignmentService;
  let reservation: ReservationService;
  /** The test's own connections to book's and reservation's databases (an operator's view of them). */
  let bookDb: Kysely<BookTables>;
  let reservationDb: Kysely<ReservationTables>;
  /** Delivers events to reservation on the bus, as book does. */
  let reservations: BusDriver;
  const clock = new MovableClock();
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    const database = async (prefix: string) => {
      const made = await makeDatabase(prefix);
      cleanups.push(made.cleanup);
      return made;
    };
    bus = await memoryBus(logger);
    const bookDatabase = await database('life_book');
    book = await createBookService({ database: bookDatabase.config, bus, logger, auth }, { maxHeldCopiesPerCustomer: 2 });
    await book.start({ port: 0 });
    bookDb = await bookDatabase.connect<BookTables>();
    assignment = await createAssignmentService({ database: (await database('life_assignment')).config, bus, logger, auth }, { pickupPeriodMs: PICKUP_MS });
    await seedLibraries(assignment);
    await assignment.start({ port: 0 });
    const reservationDatabase = await database('life_reservation');
    reservation = await createReservationService(
      { database: reservationDatabase.config, bus, logger, auth },
      { bookUrl: book.url, clock, maxActiveReservationsPerCustomer: 2, pickupPeriodMs: PICKUP_MS, loanPeriodMs: LOAN_MS, deadlineSweepIntervalMs: 3_600_000 },
    );
    await reservation.start({ port: 0 });
    reservationDb = await reservationDatabase.connect<ReservationTables>();
    reservations = new BusDriver(bus, reservation);
  });

  afterAll(async () => {
    await reservation.stop();
    await assignment.stop();
    await book.stop();
    await bus.close();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  const newBook = async (quantity: number) =>
    (await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: `Life ${Math.random()}`, quantity }, headers: staff })).json<{ bookId: number }>().bookId;
  const stock = async (bookId: number) => (await book.app.inject({ method: 'GET', url: `/books/${bookId}` })).json<{ quantity: number; copies: number }>();
  const reserve = async (customerId: string, bookId: number, waitlist?: boolean) =>
    reservation.app.inject({ method: 'POST', url: '/reservations', payload: { bookId, ...(waitlist ? { waitlist } : {}) }, headers: await as(customerId) });
  const patch = async (reservationId: number, status: string, headers: Record<string, string>) =>
    reservation.app.inject({ method: 'PATCH', url: `/reservations/${reservationId}`, payload: { status }, headers });
  const get = async (reservationId: number): Promise<ReservationJson> =>
    (await reservation.app.inject({ method: 'GET', url: `/reservations/${reservationId}`, headers: staff })).json<ReservationJson>();
  const reaches = (reservationId: number, status: string) =>
    eventually(`reservation ${reservationId} to be ${status}`, async () => {
      const r = await get(reservationId);
      return r.status === status ? r : undefined;
    });
  const idOf = (res: { json: <T>() => T }) => res.json<ReservationJson>().reservationId;
  const outboxTypes = async (reservationId: number) =>
    (await reservationDb.selectFrom('outbox').select(['type', 'envelope']).orderBy('created_at').execute())
      .filter((r) => r.envelope.subject === String(reservationId))
      .map((r) => r.type);
  /** Book's count of each kind of copy, and the rule that ties them. */
  const copiesOf = async (bookId: number) => {
    const rows = await bookDb.selectFrom('holds').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).where('book_id', '=', bookId).groupBy('status').execute();
    const n = (s: string) => Number(rows.find((r) => r.status === s)?.n ?? 0);
    const { quantity, copies } = await stock(bookId);
    expect(quantity + n('held') + n('loaned')).toBe(copies);
    return { quantity, held: n('held'), loaned: n('loaned'), waiting: n('waiting') };
  };

  it('reserve, wait in line, pick up, return: the returned copy goes to the first in line, who gets a fresh deadline', async () => {
    const bookId = await newBook(1);
    const first = await reserve('ana', bookId);
    expect(first.statusCode).toBe(201);
    const ana = idOf(first);
    const reserved = await reaches(ana, 'bookReserved');
    expect(reserved.libraryName).not.toBeNull();
    expect(Date.parse(reserved.pickupBy!)).toBeGreaterThan(Date.now());

    // No copy: without waitlist the seed's 409; with it, a place in line.
    const refused = await reserve('ben', bookId);
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'BOOK_OUT_OF_STOCK' });
    const benRes = await reserve('ben', bookId, true);
    expect(benRes.statusCode).toBe(201);
    expect(benRes.json()).toMatchObject({ status: 'bookWaiting', queuePosition: 1, pickupBy: null });
    const ben = idOf(benRes);
    const cid = idOf(await reserve('cid', bookId, true));
    expect((await get(cid)).queuePosition).toBe(2);
    // One active reservation per patron per book.
    const again = await reserve('cid', bookId, true);
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'ACTIVE_RESERVATION_EXISTS', reservationId: cid });

    // The desk: only staff check out and in, and only from the right state.
    expect((await patch(ana, 'bookLoaned', await as('ana'))).statusCode).toBe(403);
    const wrong = await patch(ana, 'bookReturned', staff);
    expect(wrong.statusCode).toBe(409);
    expect(wrong.json()).toMatchObject({ code: 'RESERVATION_NOT_ON_LOAN' });
    const before = clock.now().getTime();
    const out = await patch(ana, 'bookLoaned', staff);
    const after = clock.now().getTime();
    expect(out.statusCode).toBe(200);
    // Due the loan period after the check-out.
    const dueAt = Date.parse(out.json<ReservationJson>().dueAt!);
    expect(dueAt).toBeGreaterThanOrEqual(before + LOAN_MS);
    expect(dueAt).toBeLessThanOrEqual(after + LOAN_MS);
    expect(out.json()).toMatchObject({ status: 'bookLoaned' });
    expect((await patch(ana, 'bookLoaned', staff)).json()).toMatchObject({ code: 'RESERVATION_NOT_AWAITING_PICKUP' });
    await eventually('the copy to be on loan at book', async () => ((await copiesOf(bookId)).loaned === 1 ? true : undefined));

    const back = await patch(ana, 'bookReturned', staff);
    expect(back.statusCode).toBe(200);
    expect(back.json()).toMatchObject({ status: 'bookReturned' });
    // Ben was first in line: granted, assigned, awaiting pickup with his own deadline; Cid moves up.
    const benReserved = await reaches(ben, 'bookReserved');
    expect(Date.parse(benReserved.pickupBy!)).toBeGreaterThan(Date.parse(reserved.pickupBy!));
    expect((await get(cid)).queuePosition).toBe(1);
    expect(await outboxTypes(ben)).toEqual(['ReservationWaitlisted', 'ReservationRequested']);
    expect(await copiesOf(bookId)).toEqual({ quantity: 0, held: 1, loaned: 0, waiting: 1 });
  });

  it('not picked up by the deadline: the sweep expires it once, whatever the number of sweeps, and the copy goes to the next in line', async () => {
    const bookId = await newBook(1);
    const ivy = idOf(await reserve('ivy', bookId));
    const { pickupBy } = await reaches(ivy, 'bookReserved');
    const jay = idOf(await reserve('jay', bookId, true));
    // Before the deadline nothing expires.
    expect(await reservation.operations.expireUncollected.execute()).toBe(0);
    clock.offsetMs = Date.parse(pickupBy!) - Date.now() + 1000;
    try {
      // Two replicas' sweeps at once: one expiry.
      const [a, b] = await Promise.all([reservation.operations.expireUncollected.execute(), reservation.operations.expireUncollected.execute()]);
      expect(a + b).toBeGreaterThanOrEqual(1);
      expect((await get(ivy)).status).toBe('bookExpired');
      expect((await outboxTypes(ivy)).filter((t) => t === 'ReservationExpired')).toHaveLength(1);
      await reaches(jay, 'bookReserved');
      expect(await copiesOf(bookId)).toEqual({ quantity: 0, held: 1, loaned: 0, waiting: 0 });
      // A late check-out of the expired reservation changes nothing.
      expect((await patch(ivy, 'bookLoaned', staff)).statusCode).toBe(409);
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('a copy awaiting pickup from before deadlines existed gets one (its last change + the pickup period) and expires', async () => {
    const bookId = await newBook(1);
    const id = idOf(await reserve('old', bookId));
    await reaches(id, 'bookReserved');
    // As a version before the deadlines left it: no pickupBy, accepted two pickup periods ago.
    await reservationDb.updateTable('reservations').set({ pickup_by: null, updated_at: new Date(Date.now() - 2 * PICKUP_MS) }).where('reservation_id', '=', id).execute();
    expect(await reservation.operations.expireUncollected.execute()).toBeGreaterThanOrEqual(1);
    const expired = await get(id);
    expect(expired.status).toBe('bookExpired');
    expect(Date.parse(expired.pickupBy!)).toBeLessThan(Date.now());
    await eventually('the copy back in stock', async () => ((await stock(bookId)).quantity === 1 ? true : undefined));
  });

  it('check-out and expiry at the same moment: exactly one wins', async () => {
    for (let round = 0; round < 3; round++) {
      const bookId = await newBook(1);
      const id = idOf(await reserve(`race${round}`, bookId));
      const { pickupBy } = await reaches(id, 'bookReserved');
      clock.offsetMs = Date.parse(pickupBy!) - Date.now() + 1000;
      try {
        const [out, expired] = await Promise.all([patch(id, 'bookLoaned', staff), reservation.operations.expireUncollected.execute()]);
        const status = (await get(id)).status;
        const types = await outboxTypes(id);
        if (out.statusCode === 200) {
          expect(status).toBe('bookLoaned');
          expect(types).not.toContain('ReservationExpired');
        } else {
          expect(out.json()).toMatchObject({ code: 'RESERVATION_NOT_AWAITING_PICKUP' });
          expect(expired).toBeGreaterThanOrEqual(1);
          expect(status).toBe('bookExpired');
          expect(types).not.toContain('ReservationCheckedOut');
        }
        expect(types.filter((t) => t === 'ReservationExpired' || t === 'ReservationCheckedOut')).toHaveLength(1);
      } finally {
        clock.offsetMs = 0;
      }
    }
  });

  it('a waiting reservation can be cancelled: it ends bookCanceled holding nothing, and the line moves up', async () => {
    const bookId = await newBook(1);
    const holder = idOf(await reserve('kim', bookId));
    const lee = idOf(await reserve('lee', bookId, true));
    const max = idOf(await reserve('max', bookId, true));
    expect((await patch(lee, 'bookCancel', await as('lee'))).statusCode).toBe(202);
    await reaches(lee, 'bookCanceled');
    await eventually('max to move up', async () => ((await get(max)).queuePosition === 1 ? true : undefined));
    expect((await patch(holder, 'bookCancel', await as('kim'))).statusCode).toBe(202);
    await reaches(max, 'bookReserved');
    expect(await copiesOf(bookId)).toEqual({ quantity: 0, held: 1, loaned: 0, waiting: 0 });
  });

  it('loans do not count against the limit of active reservations; waiting ones do', async () => {
    const books = await Promise.all([newBook(1), newBook(1), newBook(1), newBook(0)]);
    const [a, b] = [idOf(await reserve('nia', books[0])), idOf(await reserve('nia', books[1]))];
    const full = await reserve('nia', books[2]);
    expect(full.statusCode).toBe(409);
    expect(full.json()).toMatchObject({ code: 'TOO_MANY_ACTIVE_RESERVATIONS' });
    for (const id of [a, b]) {
      await reaches(id, 'bookReserved');
      expect((await patch(id, 'bookLoaned', staff)).statusCode).toBe(200);
    }
    // Book gives the copies back to the count when it hears of the check-outs.
    const third = await eventually('a place to be free again', async () => {
      const res = await reserve('nia', books[2]);
      return res.statusCode === 201 ? res : undefined;
    });
    expect(third.json()).toMatchObject({ status: 'bookReserveReq' });
    expect((await reserve('nia', books[3], true)).json()).toMatchObject({ status: 'bookWaiting', queuePosition: 1 });
    expect((await reserve('nia', books[0], true)).json()).toMatchObject({ code: 'TOO_MANY_ACTIVE_RESERVATIONS' });
  });

  it('a duplicated CopyGranted moves a waiting reservation once; one for a reservation cancelled meanwhile is ignored', async () => {
    const bookId = await newBook(0);
    const id = idOf(await reserve('ola', bookId, true));
    const granted = createEnvelope({
      type: 'CopyGranted',
      source: sourceOf('book'),
      subject: String(id),
      data: { reservationId: id, bookId, bookName: 'Life', customerId: 'ola', queueTicket: 1, cause: 'copiesAdded' as const, status: 'bookReserveReq' as const },
    });
    expect(await reservations.deliver(granted)).toBe('handled');
    // The saga goes on from the grant (assignment answers the ReservationRequested it wrote): let it
    // end, so that what reservation's consumer does next is the redelivery's alone.
    await reaches(id, 'bookReserved');
    await reservations.settled();
    expect(await reservations.deliver(granted)).toBe('duplicate');
    const redriven = { ...granted, id: createEnvelope({ type: 'CopyGranted', source: 'x', subject: 'x', data: granted.data }).id };
    expect(await reservations.deliver(redriven)).toBe('handled');
    expect((await outboxTypes(id)).filter((t) => t === 'ReservationRequested')).toHaveLength(1);
    // A grant to a reservation cancelled meanwhile is ignored: book passes the copy on when the cancel reaches it.
    const other = idOf(await reserve('ole', bookId, true));
    expect((await patch(other, 'bookCancel', await as('ole'))).statusCode).toBe(202);
    const late = createEnvelope({
      type: 'CopyGranted',
      source: sourceOf('book'),
      subject: String(other),
      data: { reservationId: other, bookId, bookName: 'Life', customerId: 'ole', queueTicket: 2, cause: 'returned' as const, status: 'bookReserveReq' as const },
    });
    // Assignment's ReservationCanceled may reach reservation meanwhile (handled too): the driver
    // returns once reservation acknowledged everything, the grant included.
    expect(await reservations.deliver(late)).toBe('handled');
    expect(['bookCancel', 'bookCanceled']).toContain((await get(other)).status);
    expect(await outboxTypes(other)).toEqual(['ReservationWaitlisted', 'ReservationCancelRequested']);
  });

  it('staff list a library’s desk: reservations by library and status, with their deadlines', async () => {
    const bookId = await newBook(2);
    const id = idOf(await reserve('pia', bookId));
    const { libraryId } = await reaches(id, 'bookReserved');
    const res = await reservation.app.inject({ method: 'GET', url: `/reservations?status=bookReserved&libraryId=${libraryId}&limit=100`, headers: staff });
    expect(res.statusCode).toBe(200);
    const items = res.json<{ items: ReservationJson[] }>().items;
    expect(items.every((r) => r.libraryId === libraryId && r.status === 'bookReserved' && r.pickupBy !== null)).toBe(true);
    expect(items.map((r) => r.reservationId)).toContain(id);
    const bad = await reservation.app.inject({ method: 'PATCH', url: `/reservations/${id}`, payload: { status: 'bookExpired' }, headers: staff });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'STATUS_CHANGE_NOT_ALLOWED' });
    expect((await get(id)).status).toBe('bookReserved');
  });
});
