import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, sourceOf, type EventEnvelope } from '@bstore/contracts';
import type { EmbeddedBus } from '@bstore/platform';
import type { Kysely } from 'kysely';
import { createBookService, type BookService, type BookTables } from '@bstore/book';
import { createReservationService, type BookClient, type HoldOutcome, type ReservationConfig, type ReservationService, type ReservationTables } from '@bstore/reservation';
import { HttpBookClient } from '../src/adapters/clients/book.http-client.ts';
import { eventually, memoryBus, testLogger } from '../../../test/support/harness.ts';
import { BusDriver } from '../../../test/support/bus-driver.ts';
import { databaseKinds, type TestDatabase } from '../../../test/support/postgres.ts';
import { as, asStaff, testAuth } from '../../../test/support/auth.ts';

const staff = await asStaff();
const auth = await testAuth();
let bus: EmbeddedBus;
let book: BookService;
let reservation: ReservationService;
/** The test's own connection to book's database (an operator's view of it). */
let bookDb: Kysely<BookTables>;
/** The bus, on the side of the main reservation service and of book: how events reach them. */
let reservations: BusDriver;
let books: BusDriver;
const logger = testLogger();

/**
 * The same suite on both databases. PGlite has one connection, so its transactions never overlap;
 * on PostgreSQL every service has a pool of 10, so concurrent requests, event deliveries and
 * sweeps really run in overlapping transactions (the `concurrency` tests below).
 */
const DATABASES = databaseKinds();

/** A new database for one service of this file, on the database of the current run (set by describe.each). */
let database: (prefix: string) => Promise<TestDatabase> = () => Promise.reject(new Error('no database kind chosen yet'));

/** The database of each reservation service of this file, and the test's own connection to it. */
const reservationDbs = new Map<ReservationService, { database: TestDatabase; db: Kysely<ReservationTables> }>();

function ownDatabaseOf(svc: ReservationService): { database: TestDatabase; db: Kysely<ReservationTables> } {
  const own = reservationDbs.get(svc);
  if (!own) throw new Error('not a reservation service of this file');
  return own;
}

/** The test's connection to `svc`'s database (an operator's view of it). */
const dbOf = (svc: ReservationService) => ownDatabaseOf(svc).db;

/** A reservation service on a new database of its own (`prefix`), consuming from `on` once its consumer is started. */
async function newReservation(prefix: string, config: ReservationConfig, on: EmbeddedBus = bus): Promise<ReservationService> {
  const made = await database(prefix);
  const svc = await createReservationService({ database: made.config, bus: on, logger, auth }, config);
  reservationDbs.set(svc, { database: made, db: await made.connect<ReservationTables>() });
  return svc;
}

async function newBook(quantity: number): Promise<number> {
  const res = await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: `Title ${quantity}-${Math.random()}`, quantity }, headers: staff });
  return res.json<{ bookId: number }>().bookId;
}

const reserve = async (svc: ReservationService, bookId: number, customerId = 'alice', extra: object = {}) =>
  svc.app.inject({ method: 'POST', url: '/reservations', payload: { bookId, ...extra }, headers: await as(customerId) });

const cancel = async (id: number, customerId = 'alice', status = 'bookCancel') =>
  reservation.app.inject({ method: 'PATCH', url: `/reservations/${id}`, payload: { status }, headers: await as(customerId) });

async function outboxOf(reservationId: number, svc = reservation) {
  return dbOf(svc).selectFrom('outbox').select(['type', 'envelope']).where('envelope', '@>', JSON.stringify({ subject: String(reservationId) }) as never).orderBy('created_at').execute();
}

async function quantity(bookId: number): Promise<number> {
  return (await book.app.inject({ method: 'GET', url: `/books/${bookId}` })).json<{ quantity: number }>().quantity;
}

const accepted = (reservationId: number, bookId: number, libraryId = 1) =>
  createEnvelope({
    type: 'ReservationAccepted',
    source: sourceOf('assignment'),
    subject: String(reservationId),
    data: { reservationId, bookId, customerId: 'alice', assignmentId: reservationId, libraryId, libraryName: `Library ${libraryId}`, status: 'bookReserved' as const },
  });
const canceled = (reservationId: number, bookId: number) =>
  createEnvelope({ type: 'ReservationCanceled', source: sourceOf('assignment'), subject: String(reservationId), data: { reservationId, bookId, customerId: 'alice', status: 'bookCanceled' as const } });

const assignmentFailed = (reservationId: number, bookId: number) =>
  createEnvelope({
    type: 'ReservationAssignmentFailed',
    source: sourceOf('assignment'),
    subject: String(reservationId),
    data: { reservationId, bookId, customerId: 'alice', reason: 'no library branch exists to serve the reservation', status: 'rejected' as const },
  });

const byNumber = (a: number, b: number) => a - b;

/** The real HTTP client to book, counting the hold requests per reservation: how often the saga drove each. */
class CountingBookClient implements BookClient {
  readonly calls = new Map<number, number>();
  readonly #inner: BookClient;

  constructor(inner: BookClient) {
    this.#inner = inner;
  }

  hold(request: { bookId: number; reservationId: number; customerId: string }): Promise<HoldOutcome> {
    this.calls.set(request.reservationId, (this.calls.get(request.reservationId) ?? 0) + 1);
    return this.#inner.hold(request);
  }
}

/** The main reservation service's settings (and its replica's), once book listens. */
const MAIN_CONFIG = (): ReservationConfig => ({ bookUrl: book.url, staleAfterMs: 0, maxHoldAttempts: 3, maxActiveReservationsPerCustomer: 1000 });

describe.each(DATABASES)('reservation on %s', (_name, makeDatabase) => {
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    database = async (prefix) => {
      const made = await makeDatabase(prefix);
      cleanups.push(made.cleanup);
      return made;
    };
    bus = await memoryBus(logger);
    const bookDatabase = await database('reservation_book');
    book = await createBookService({ database: bookDatabase.config, bus, logger, auth }, { maxHeldCopiesPerCustomer: 1000 });
    bookDb = await bookDatabase.connect<BookTables>();
    await book.start({ port: 0 });
    books = new BusDriver(bus, book);
    reservation = await newReservation('reservation', MAIN_CONFIG());
    // Reservation consumes assignment's events from the bus; it is not started otherwise (its relay
    // does not run), so book hears of its events only when a test delivers them.
    reservations = await BusDriver.start(bus, reservation);
  });

  afterAll(async () => {
    await reservation.stop();
    await book.stop();
    await bus.close();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  /**
   * Delivers one of assignment's events to reservation through the bus, and waits until book, which
   * consumes some of them too (ReservationCanceled), has taken it as well: what reservation's
   * consumer answered.
   */
  const fromAssignment = async (event: EventEnvelope) => {
    const result = await reservations.deliver(event);
    await books.settled();
    return result;
  };

  const statusOf = async (id: number) => (await reservation.app.inject({ method: 'GET', url: `/reservations/${id}`, headers: await as('alice') })).json<{ status: string; libraryName: string | null }>();

  describe('placing a reservation', () => {
    it('holds a copy, answers 201 bookReserveReq and writes ReservationRequested to the outbox', async () => {
      const bookId = await newBook(2);
      const res = await reserve(reservation, bookId, 'alice', { preferredLibraryId: 2 });
      expect(res.statusCode).toBe(201);
      const body = res.json<{ reservationId: number; status: string; bookName: string; customerId: string; preferredLibraryId: number }>();
      expect(body).toMatchObject({ status: 'bookReserveReq', customerId: 'alice', preferredLibraryId: 2 });
      expect(body.bookName).toMatch(/^Title 2/);
      expect(res.headers.location).toBe(`/reservations/${body.reservationId}`);
      expect(await quantity(bookId)).toBe(1);
      const events = await outboxOf(body.reservationId);
      expect(events.map((e) => e.type)).toEqual(['ReservationRequested']);
      expect(events[0]?.envelope).toMatchObject({ specversion: '1.0', source: 'bstore/reservation', data: { reservationId: body.reservationId, bookId, preferredLibraryId: 2 } });
    });

    it('out of stock: 409 problem with the reservation id, stored as bookOutOfStock, with its compensation event', async () => {
      const bookId = await newBook(0);
      const res = await reserve(reservation, bookId);
      expect(res.statusCode).toBe(409);
      expect(res.headers['content-type']).toContain('application/problem+json');
      const problem = res.json<{ reservationId: number; code: string; reservationStatus: string; status: number }>();
      expect(problem).toMatchObject({ status: 409, code: 'BOOK_OUT_OF_STOCK', reservationStatus: 'bookOutOfStock' });
      const stored = await reservation.app.inject({ method: 'GET', url: `/reservations/${problem.reservationId}`, headers: await as('alice') });
      expect(stored.json()).toMatchObject({ status: 'bookOutOfStock' });
      expect((await outboxOf(problem.reservationId)).map((e) => e.type)).toEqual(['ReservationRejected']);
    });

    it('an unknown book: 404 and no reservation left behind', async () => {
      const before = await dbOf(reservation).selectFrom('reservations').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      const res = await reserve(reservation, 987_654);
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ code: 'BOOK_NOT_FOUND', bookId: 987_654 });
      const after = await dbOf(reservation).selectFrom('reservations').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      expect(Number(after.n)).toBe(Number(before.n));
    });

    it.each([
      ['malformed JSON', '{"bookId":', 400],
      ['a string id', JSON.stringify({ bookId: '1' }), 400],
      ['a negative id', JSON.stringify({ bookId: -3 }), 400],
      ['a fractional id', JSON.stringify({ bookId: 1.5 }), 400],
      ['a missing bookId', JSON.stringify({}), 400],
      ['a status in the body', JSON.stringify({ bookId: 1, status: 'bookReserved' }), 400],
    ])('rejects %s with a problem and stores nothing', async (_name, payload, status) => {
      const count = async () => Number((await dbOf(reservation).selectFrom('reservations').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      const before = await count();
      const res = await reservation.app.inject({ method: 'POST', url: '/reservations', payload, headers: { ...(await as('alice')), 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(status);
      expect(res.json<{ detail: string }>().detail.length).toBeGreaterThan(3);
      expect(await count()).toBe(before);
    });
  });

  describe('when book does not answer', () => {
    let hanging: Server;
    let slowReservation: ReservationService;
    let downReservation: ReservationService;

    beforeAll(async () => {
      hanging = createServer(() => {}); // accepts and never answers
      await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
      const port = (hanging.address() as AddressInfo).port;
      slowReservation = await newReservation('reservation_slow', { bookUrl: `http://127.0.0.1:${port}`, bookTimeoutMs: 300 });
      // A port nothing listens on: connection refused.
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const closedPort = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      downReservation = await newReservation('reservation_down', { bookUrl: `http://127.0.0.1:${closedPort}` });
    });

    afterAll(async () => {
      await slowReservation.stop();
      await downReservation.stop();
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    });

    it.each([
      ['slow', () => slowReservation],
      ['down', () => downReservation],
    ])('book %s: 503 with Retry-After, the reservation rejected, and a ReservationRejected to release any hold', async (_name, svc) => {
      const res = await reserve(svc(), 1);
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      const problem = res.json<{ reservationId: number; service: string; code: string }>();
      expect(problem).toMatchObject({ code: 'BOOK_SERVICE_UNAVAILABLE', service: 'book' });
      const row = await dbOf(svc()).selectFrom('reservations').selectAll().where('reservation_id', '=', problem.reservationId).executeTakeFirstOrThrow();
      expect(row.status).toBe('rejected');
      const events = await dbOf(svc()).selectFrom('outbox').select('type').execute();
      expect(events.map((e) => e.type)).toContain('ReservationRejected');
    });
  });

  describe('when the answer to a hold is lost after the copy was taken', () => {
    let lossy: Server;
    let lossyReservation: ReservationService;
    // Its own book: reservation ids start at 1 in every reservation database, and must not meet
    // the holds of the other reservation services of this file. On a bus of its own, where the
    // test delivers it reservation's compensation (the book above consumes from the other bus).
    let ownBook: BookService;
    let ownBookDb: Kysely<BookTables>;
    let ownBus: EmbeddedBus;
    let ownBooks: BusDriver;

    beforeAll(async () => {
      ownBus = await memoryBus(logger);
      const ownBookDatabase = await database('reservation_ownbook');
      ownBook = await createBookService({ database: ownBookDatabase.config, bus: ownBus, logger, auth }, { maxHeldCopiesPerCustomer: 1000 });
      ownBookDb = await ownBookDatabase.connect<BookTables>();
      await ownBook.start({ port: 0, consumers: false });
      ownBooks = await BusDriver.start(ownBus, ownBook);
      // A real proxy in front of book that passes the request on, lets book take the copy, and
      // never passes the answer back: the lost answer the compensation exists for.
      lossy = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          void fetch(`${ownBook.url}${req.url}`, { method: req.method, headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' }, body });
          res.on('close', () => undefined);
        });
      });
      await new Promise<void>((resolve) => lossy.listen(0, '127.0.0.1', resolve));
      const port = (lossy.address() as AddressInfo).port;
      lossyReservation = await newReservation('reservation_lossy', { bookUrl: `http://127.0.0.1:${port}`, bookTimeoutMs: 500 });
    });

    afterAll(async () => {
      await lossyReservation.stop();
      lossy.closeAllConnections();
      await new Promise<void>((resolve) => lossy.close(() => resolve()));
      await ownBook.stop();
      await ownBus.close();
    });

    it('the reservation is rejected and its ReservationRejected gives the copy back at book', async () => {
      const created = await ownBook.app.inject({ method: 'POST', url: '/books', payload: { bookName: 'Lost Answer', quantity: 1 }, headers: staff });
      const { bookId } = created.json<{ bookId: number }>();
      const quantity = async (id: number) => (await ownBook.app.inject({ method: 'GET', url: `/books/${id}` })).json<{ quantity: number }>().quantity;
      const res = await reserve(lossyReservation, bookId);
      expect(res.statusCode).toBe(503);
      const { reservationId } = res.json<{ reservationId: number }>();
      // The copy was taken although nobody heard the answer.
      const holdsBefore = await eventually('book to have taken the copy', async () => {
        const rows = await ownBookDb.selectFrom('holds').selectAll().where('reservation_id', '=', reservationId).execute();
        return rows.length > 0 ? rows : undefined;
      });
      expect(holdsBefore.map((h) => h.status)).toEqual(['held']);
      expect(await quantity(bookId)).toBe(0);
      // The compensation event, as the relay would publish it, reaches book through the bus.
      const outbox = await dbOf(lossyReservation).selectFrom('outbox').select(['type', 'envelope']).where('type', '=', 'ReservationRejected').execute();
      const rejected = outbox.map((o) => o.envelope).find((e) => (e.data as { reservationId: number }).reservationId === reservationId);
      expect(rejected).toBeDefined();
      expect(await ownBooks.deliver(rejected as NonNullable<typeof rejected>)).toBe('handled');
      expect(await quantity(bookId)).toBe(1);
      const holdsAfter = await ownBookDb.selectFrom('holds').select('status').where('reservation_id', '=', reservationId).execute();
      expect(holdsAfter.map((h) => h.status)).toEqual(['released']);
    });
  });

  describe('cancelling', () => {
    it('moves bookReserveReq to bookCancel (202) with ReservationCancelRequested; a second cancel is 409', async () => {
      const bookId = await newBook(1);
      const { reservationId } = (await reserve(reservation, bookId)).json<{ reservationId: number }>();
      const res = await cancel(reservationId);
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ reservationId, status: 'bookCancel' });
      expect((await outboxOf(reservationId)).map((e) => e.type)).toEqual(['ReservationRequested', 'ReservationCancelRequested']);
      const again = await cancel(reservationId);
      expect(again.statusCode).toBe(409);
      expect(again.json()).toMatchObject({ code: 'RESERVATION_NOT_CANCELLABLE', reservationStatus: 'bookCancel' });
    });

    it('refuses any status other than bookCancel, and changes nothing', async () => {
      const bookId = await newBook(1);
      const { reservationId } = (await reserve(reservation, bookId)).json<{ reservationId: number }>();
      for (const status of ['bookReserved', 'bookCanceled', 'pending', '']) {
        const res = await cancel(reservationId, 'alice', status);
        expect(res.statusCode, status).toBe(400);
        expect(res.json()).toMatchObject({ code: 'STATUS_CHANGE_NOT_ALLOWED' });
      }
      const extra = await reservation.app.inject({ method: 'PATCH', url: `/reservations/${reservationId}`, payload: { status: 'bookCancel', bookId: 9 }, headers: await as('alice') });
      expect(extra.statusCode).toBe(400);
      expect(await statusOf(reservationId)).toMatchObject({ status: 'bookReserveReq' });
    });

    it('a bookOutOfStock reservation cannot be cancelled', async () => {
      const bookId = await newBook(0);
      const { reservationId } = (await reserve(reservation, bookId)).json<{ reservationId: number }>();
      expect((await cancel(reservationId)).statusCode).toBe(409);
    });

    it("another customer's reservation is not found: neither readable nor cancellable", async () => {
      const bookId = await newBook(1);
      const { reservationId } = (await reserve(reservation, bookId, 'alice')).json<{ reservationId: number }>();
      expect((await reservation.app.inject({ method: 'GET', url: `/reservations/${reservationId}`, headers: await as('bob') })).statusCode).toBe(404);
      expect((await cancel(reservationId, 'bob')).statusCode).toBe(404);
      const list = await reservation.app.inject({ method: 'GET', url: '/reservations', headers: await as('bob') });
      expect(list.json<{ items: { customerId: string }[] }>().items.every((r) => r.customerId === 'bob')).toBe(true);
      const staffView = await reservation.app.inject({ method: 'GET', url: `/reservations/${reservationId}`, headers: staff });
      expect(staffView.statusCode).toBe(200);
    });
  });

  describe('assignment outcomes', () => {
    it('ReservationAccepted -> bookReserved; the same event twice changes nothing the second time', async () => {
      const bookId = await newBook(1);
      const { reservationId } = (await reserve(reservation, bookId)).json<{ reservationId: number }>();
      const event = accepted(reservationId, bookId);
      expect(await fromAssignment(event)).toBe('handled');
      const first = await statusOf(reservationId);
      expect(first).toMatchObject({ status: 'bookReserved', libraryName: 'Library 1' });
      // Delivered again (a redelivery): reservation's inbox recognises it.
      expect(await fromAssignment(event)).toBe('duplicate');
      expect(await statusOf(reservationId)).toEqual(first);
    });

    it('ReservationCanceled -> bookCanceled, twice is harmless', async () => {
      const bookId = await newBook(1);
      const { reservationId } = (await reserve(reservation, bookId)).json<{ reservationId: number }>();
      await cancel(reservationId);
      const event = canceled(reservationId, bookId);
      expect(await fromAssignment(event)).toBe('handled');
      expect(await fromAssignment(event)).toBe('duplicate');
      expect(await statusOf(reservationId)).toMatchObject({ status: 'bookCanceled' });
    });

    it('ReservationAssignmentFailed -> rejected, with ReservationRejected so book gives the copy back; twice is harmless', async () => {
      const bookId = await newBook(1);
      const { reservationId } = (await reserve(reservation, bookId)).json<{ reservationId: number }>();
      const event = assignmentFailed(reservationId, bookId);
      expect(await fromAssignment(event)).toBe('handled');
      expect(await fromAssignment(event)).toBe('duplicate');
      expect(await statusOf(reservationId)).toMatchObject({ status: 'rejected', libraryName: null });
      const events = await outboxOf(reservationId);
      expect(events.map((e) => e.type)).toEqual(['ReservationRequested', 'ReservationRejected']);
      expect(events[1]?.envelope).toMatchObject({ data: { reservationId, bookId, status: 'rejected', reason: expect.stringMatching(/no library/) } });
      // The compensation reaches book through the bus: the copy is back.
      expect(await books.deliver(events[1]!.envelope)).toBe('handled');
      expect(await quantity(bookId)).toBe(1);
      // Rejected, it can no longer be cancelled.
      expect((await cancel(reservationId)).statusCode).toBe(409);
    });

    it('a cancel that overtook the assignment failure is left to complete: the failure changes nothing, assignment\'s ReservationCanceled ends it', async () => {
      const bookId = await newBook(1);
      const { reservationId } = (await reserve(reservation, bookId)).json<{ reservationId: number }>();
      await cancel(reservationId);
      expect(await fromAssignment(assignmentFailed(reservationId, bookId))).toBe('handled');
      expect(await statusOf(reservationId)).toMatchObject({ status: 'bookCancel' });
      expect((await outboxOf(reservationId)).map((e) => e.type)).toEqual(['ReservationRequested', 'ReservationCancelRequested']);
      expect(await fromAssignment(canceled(reservationId, bookId))).toBe('handled');
      expect(await statusOf(reservationId)).toMatchObject({ status: 'bookCanceled' });
    });

    it('out of order: a cancel, then its cancellation, then the late acceptance ends bookCanceled', async () => {
      const bookId = await newBook(1);
      const { reservationId } = (await reserve(reservation, bookId)).json<{ reservationId: number }>();
      await cancel(reservationId);
      expect(await fromAssignment(canceled(reservationId, bookId))).toBe('handled');
      expect(await fromAssignment(accepted(reservationId, bookId, 3))).toBe('handled');
      expect(await statusOf(reservationId)).toMatchObject({ status: 'bookCanceled', libraryName: 'Library 3' });
    });
  });

  describe('recovery sweep', () => {
    it('re-drives a reservation a crash left pending: the copy is held once and it moves on', async () => {
      const bookId = await newBook(2);
      // The state a crash between "store pending" and "call book" leaves behind.
      const row = await dbOf(reservation)
        .insertInto('reservations')
        .values({ book_id: bookId, customer_id: 'alice', preferred_library_id: null, status: 'pending', book_name: null, library_id: null, library_name: null, reject_reason: null, attempts: 1, created_at: new Date(0), updated_at: new Date(0) })
        .returning('reservation_id')
        .executeTakeFirstOrThrow();
      await reservation.operations.recoverPending.execute();
      const after = await reservation.app.inject({ method: 'GET', url: `/reservations/${row.reservation_id}`, headers: await as('alice') });
      expect(after.json()).toMatchObject({ status: 'bookReserveReq' });
      expect(await quantity(bookId)).toBe(1);
      // A second sweep finds nothing to do.
      await reservation.operations.recoverPending.execute();
      expect(await quantity(bookId)).toBe(1);
    });

    it('gives up after the last attempt: rejected, with ReservationRejected to release a hold', async () => {
      const row = await dbOf(reservation)
        .insertInto('reservations')
        .values({ book_id: 1, customer_id: 'alice', preferred_library_id: null, status: 'pending', book_name: null, library_id: null, library_name: null, reject_reason: null, attempts: 3, created_at: new Date(0), updated_at: new Date(0) })
        .returning('reservation_id')
        .executeTakeFirstOrThrow();
      await reservation.operations.recoverPending.execute();
      const stored = await dbOf(reservation).selectFrom('reservations').selectAll().where('reservation_id', '=', row.reservation_id).executeTakeFirstOrThrow();
      expect(stored.status).toBe('rejected');
      expect((await outboxOf(row.reservation_id)).map((e) => e.type)).toEqual(['ReservationRejected']);
    });
  });

  describe('concurrency (overlapping transactions on PostgreSQL)', () => {
    // A replica of the main reservation service: the same database, its own bus.
    let replicaBus: EmbeddedBus;
    let replica: ReservationService;
    let replicas: BusDriver;

    beforeAll(async () => {
      replicaBus = await memoryBus(logger);
      replica = await createReservationService({ database: ownDatabaseOf(reservation).database.config, bus: replicaBus, logger, auth }, MAIN_CONFIG());
      replicas = await BusDriver.start(replicaBus, replica);
    });

    afterAll(async () => {
      await replica.stop();
      await replicaBus.close();
    });

    it('20 patrons reserve a book with 4 copies at once: 4 get a copy, 16 are out of stock, each reservation has exactly one outcome', async () => {
      const bookId = await newBook(4);
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => reserve(reservation, bookId, `patron-${i}`)));
      const won = answers.filter((a) => a.statusCode === 201).map((a) => a.json<{ reservationId: number; status: string }>());
      const lost = answers.filter((a) => a.statusCode === 409).map((a) => a.json<{ reservationId: number; code: string; reservationStatus: string }>());
      expect(won).toHaveLength(4);
      expect(lost).toHaveLength(16);
      for (const w of won) expect(w.status).toBe('bookReserveReq');
      for (const l of lost) expect(l).toMatchObject({ code: 'BOOK_OUT_OF_STOCK', reservationStatus: 'bookOutOfStock' });
      const wonIds = won.map((w) => w.reservationId).sort(byNumber);
      const lostIds = lost.map((l) => l.reservationId);
      expect(new Set([...wonIds, ...lostIds]).size).toBe(20);

      // Each reservation was decided once: one stored outcome, one event, one drive of the hold step.
      const rows = await dbOf(reservation).selectFrom('reservations').select(['reservation_id', 'status', 'attempts']).where('book_id', '=', bookId).execute();
      expect(rows).toHaveLength(20);
      for (const row of rows) {
        expect(row.status).toBe(wonIds.includes(row.reservation_id) ? 'bookReserveReq' : 'bookOutOfStock');
        expect(row.attempts).toBe(1);
        const events = (await outboxOf(row.reservation_id)).map((e) => e.type);
        expect(events, `reservation ${row.reservation_id}`).toEqual([wonIds.includes(row.reservation_id) ? 'ReservationRequested' : 'ReservationRejected']);
      }
      // The copies went exactly to the reservations that were told so.
      expect(await quantity(bookId)).toBe(0);
      const held = await bookDb.selectFrom('holds').select('reservation_id').where('book_id', '=', bookId).where('status', '=', 'held').execute();
      expect(held.map((h) => h.reservation_id).sort(byNumber)).toEqual(wonIds);
    });

    it('8 reservations placed at once, each cancelled 4 times at once: exactly one cancel of each wins, the others are 409', async () => {
      const bookId = await newBook(8);
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const customerId = `canceller-${i}`;
          const res = await reserve(reservation, bookId, customerId);
          expect(res.statusCode).toBe(201);
          const { reservationId } = res.json<{ reservationId: number }>();
          const cancels = await Promise.all(Array.from({ length: 4 }, () => cancel(reservationId, customerId)));
          return { reservationId, cancels };
        }),
      );
      expect(new Set(outcomes.map((o) => o.reservationId)).size).toBe(8);
      for (const { reservationId, cancels } of outcomes) {
        expect(cancels.map((c) => c.statusCode).sort(byNumber), `reservation ${reservationId}`).toEqual([202, 409, 409, 409]);
        expect(cancels.find((c) => c.statusCode === 202)?.json()).toEqual({ reservationId, status: 'bookCancel' });
        for (const refused of cancels.filter((c) => c.statusCode === 409)) {
          expect(refused.json()).toMatchObject({ code: 'RESERVATION_NOT_CANCELLABLE', reservationStatus: 'bookCancel' });
        }
        expect((await outboxOf(reservationId)).map((e) => e.type)).toEqual(['ReservationRequested', 'ReservationCancelRequested']);
        const stored = await dbOf(reservation).selectFrom('reservations').select('status').where('reservation_id', '=', reservationId).executeTakeFirstOrThrow();
        expect(stored.status).toBe('bookCancel');
      }
      // Each reservation holds its copy until assignment confirms the cancellation.
      expect(await quantity(bookId)).toBe(0);
    });

    it('the same ReservationAccepted delivered twice at once is applied once', async () => {
      const bookId = await newBook(5);
      const ids = await Promise.all(Array.from({ length: 5 }, async () => (await reserve(reservation, bookId)).json<{ reservationId: number }>().reservationId));
      const events = ids.map((id) => accepted(id, bookId, 2));
      // What two replicas receiving the same event at the same time look like: the main service and
      // its replica (the same database, each consuming from its own bus) each get every event at once.
      const results: string[][] = [];
      for (const e of events) results.push(await Promise.all([reservations.deliver(e), replicas.deliver(e)]));
      for (const [i, pair] of results.entries()) {
        expect([...pair].sort(), `reservation ${ids[i]}`).toEqual(['duplicate', 'handled']);
      }
      for (const [i, id] of ids.entries()) {
        expect(await statusOf(id)).toMatchObject({ status: 'bookReserved', libraryName: 'Library 2' });
        const recorded = await dbOf(reservation).selectFrom('inbox').select('event_id').where('event_id', '=', events[i]!.id).execute();
        expect(recorded).toHaveLength(1);
        expect((await outboxOf(id)).map((e) => e.type)).toEqual(['ReservationRequested']);
      }
    });

    it('an acceptance and a cancellation of the same reservation at once both apply: bookCancel, with the library recorded', async () => {
      // Six books: one patron has one active reservation per book.
      const placed = await Promise.all(
        Array.from({ length: 6 }, async () => {
          const bookId = await newBook(1);
          return { bookId, id: (await reserve(reservation, bookId)).json<{ reservationId: number }>().reservationId };
        }),
      );
      const ids = placed.map((p) => p.id);
      // Each reservation's acceptance arrives on the bus while its patron's cancel is in flight.
      const results: [string, Awaited<ReturnType<typeof cancel>>][] = [];
      for (const [i, { id, bookId }] of placed.entries()) results.push(await Promise.all([reservations.deliver(accepted(id, bookId, i + 1)), cancel(id)]));
      for (const [handled, cancelled] of results) {
        expect(handled).toBe('handled');
        expect(cancelled.statusCode).toBe(202);
      }
      for (const [i, id] of ids.entries()) {
        // Whichever ran first, the cancel stands and the library is known.
        expect(await statusOf(id)).toMatchObject({ status: 'bookCancel', libraryName: `Library ${i + 1}` });
        expect((await outboxOf(id)).map((e) => e.type)).toEqual(['ReservationRequested', 'ReservationCancelRequested']);
      }
    });
  });

  describe('concurrent recovery sweeps', () => {
    let counting: CountingBookClient;
    let swept: ReservationService;

    beforeAll(async () => {
      counting = new CountingBookClient(new HttpBookClient({ baseUrl: book.url, timeoutMs: 1500, credentials: () => auth.internalFor('reservation').token() }));
      swept = await newReservation('reservation_sweep', { bookUrl: book.url, bookClient: counting, staleAfterMs: 0, maxHoldAttempts: 3 });
    });

    afterAll(async () => {
      await swept.stop();
    });

    /** A row as a crash leaves it, long stale. Explicit ids far above the main service's, whose holds live in the same book service. */
    const insertPending = (reservationId: number, bookId: number, attempts: number) =>
      dbOf(swept)
        .insertInto('reservations')
        .values({ reservation_id: reservationId, book_id: bookId, customer_id: 'alice', preferred_library_id: null, status: 'pending', book_name: null, library_id: null, library_name: null, reject_reason: null, attempts, created_at: new Date(0), updated_at: new Date(0) })
        .execute();

    const rowOf = (reservationId: number) => dbOf(swept).selectFrom('reservations').selectAll().where('reservation_id', '=', reservationId).executeTakeFirstOrThrow();

    it('three sweeps at once drive each stale pending reservation exactly once, and give up on each exhausted one exactly once', async () => {
      const bookId = await newBook(10);
      const drivable = [900_001, 900_002, 900_003, 900_004, 900_005, 900_006];
      const exhausted = [900_101, 900_102];
      for (const id of drivable) await insertPending(id, bookId, 1);
      for (const id of exhausted) await insertPending(id, bookId, 3);

      await Promise.all([swept.operations.recoverPending.execute(), swept.operations.recoverPending.execute(), swept.operations.recoverPending.execute()]);

      for (const id of drivable) {
        expect(counting.calls.get(id), `hold requests of ${id}`).toBe(1);
        expect(await rowOf(id)).toMatchObject({ status: 'bookReserveReq', attempts: 2 });
        expect((await outboxOf(id, swept)).map((e) => e.type)).toEqual(['ReservationRequested']);
      }
      for (const id of exhausted) {
        expect(counting.calls.get(id), `hold requests of ${id}`).toBeUndefined();
        expect(await rowOf(id)).toMatchObject({ status: 'rejected', attempts: 3 });
        expect((await outboxOf(id, swept)).map((e) => e.type)).toEqual(['ReservationRejected']);
      }
      expect(await quantity(bookId)).toBe(4);
      const held = await bookDb.selectFrom('holds').select('reservation_id').where('book_id', '=', bookId).where('status', '=', 'held').execute();
      expect(held.map((h) => h.reservation_id).sort(byNumber)).toEqual(drivable);

      // Nothing is left for later sweeps.
      await Promise.all([swept.operations.recoverPending.execute(), swept.operations.recoverPending.execute()]);
      expect([...counting.calls.values()].reduce((a, b) => a + b, 0)).toBe(drivable.length);
    });
  });
});
