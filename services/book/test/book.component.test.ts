import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, sourceOf } from '@bstore/contracts';
import type { EmbeddedBus } from '@bstore/platform';
import type { Kysely } from 'kysely';
import { createBookService, type BookService, type BookTables } from '@bstore/book';
import { memoryBus, testLogger } from '../../../test/support/harness.ts';
import { BusDriver } from '../../../test/support/bus-driver.ts';
import { databaseKinds } from '../../../test/support/postgres.ts';
import { as, asStaff, testAuth } from '../../../test/support/auth.ts';

const staff = await asStaff();
/** Book's hold route takes only a service-to-service token, as reservation sends it. */
const internal = { authorization: `Bearer ${await (await testAuth()).internalFor('reservation').token()}` };

let bus: EmbeddedBus;
let book: BookService;
/** The test's own connection to book's database (an operator's view of it). */
let db: Kysely<BookTables>;
/** Delivers events to book on its bus, as reservation and assignment publish them. */
let books: BusDriver;

/**
 * The same suite on both databases. PGlite has one connection, so its transactions never overlap;
 * on PostgreSQL with a pool they do, which is where a read-modify-write oversell would show.
 */
const DATABASES = databaseKinds(20);

async function createBook(quantity: number, bookName = `Book ${quantity}`) {
  const res = await book.app.inject({ method: 'POST', url: '/books', payload: { bookName, quantity }, headers: staff });
  expect(res.statusCode).toBe(201);
  return res.json<{ bookId: number; quantity: number; copies: number }>();
}

async function getBook(bookId: number) {
  const res = await book.app.inject({ method: 'GET', url: `/books/${bookId}` });
  expect(res.statusCode).toBe(200);
  return res.json<{ bookId: number; quantity: number; copies: number }>();
}

const hold = (bookId: number, reservationId: number, customerId = 'alice') =>
  book.app.inject({ method: 'PUT', url: `/books/${bookId}/holds/${reservationId}`, payload: { customerId }, headers: internal });

/** Copies the patron holds by book's count (customer_copies), checked against the holds themselves. */
async function heldBy(customerId: string): Promise<number> {
  const counted = await db.selectFrom('customer_copies').select('held').where('customer_id', '=', customerId).executeTakeFirst();
  const row = await db
    .selectFrom('holds')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('customer_id', '=', customerId)
    .where('status', 'in', ['held', 'waiting'])
    .executeTakeFirstOrThrow();
  expect(counted?.held ?? 0).toBe(Number(row.n));
  return Number(row.n);
}

async function activeHolds(bookId: number): Promise<number> {
  const row = await db
    .selectFrom('holds')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('book_id', '=', bookId)
    .where('status', '=', 'held')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function event<T extends 'ReservationCanceled' | 'ReservationRejected'>(type: T, data: object) {
  return createEnvelope({ type, source: sourceOf(type === 'ReservationCanceled' ? 'assignment' : 'reservation'), subject: '0', data });
}

describe.each(DATABASES)('book on %s', (_name, makeDatabase) => {
  let cleanup: () => Promise<void> = async () => undefined;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    const logger = testLogger();
    const database = await makeDatabase('book');
    cleanup = database.cleanup;
    bus = await memoryBus(logger);
    book = await createBookService({ database: database.config, bus, logger, auth: await testAuth() }, { maxHeldCopiesPerCustomer: 1000 });
    books = await BusDriver.start(bus, book);
    db = await database.connect<BookTables>();
  });

  afterAll(async () => {
    for (const more of cleanups.splice(0)) await more();
    await book.stop();
    await bus.close();
    await cleanup();
  });

  describe('book holds', () => {
    it('50 parallel holds on a book with 5 copies: exactly 5 succeed and the quantity never goes below 0', async () => {
      const { bookId } = await createBook(5);
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => hold(bookId, 1000 + i)));
      const statuses = answers.map((a) => a.statusCode);
      expect(statuses.filter((s) => s === 201)).toHaveLength(5);
      expect(statuses.filter((s) => s === 409)).toHaveLength(45);
      for (const a of answers.filter((x) => x.statusCode === 409)) {
        expect(a.headers['content-type']).toContain('application/problem+json');
        expect(a.json()).toMatchObject({ status: 409, code: 'BOOK_OUT_OF_STOCK' });
      }
      const after = await getBook(bookId);
      expect(after.quantity).toBe(0);
      expect(after.copies).toBe(5);
      expect(await activeHolds(bookId)).toBe(5);
    });

    it('the same reservationId twice takes one copy and answers the same hold', async () => {
      const { bookId } = await createBook(3);
      const first = await hold(bookId, 2001);
      const second = await hold(bookId, 2001);
      expect(first.statusCode).toBe(201);
      expect(second.statusCode).toBe(200);
      expect(second.json()).toMatchObject({ reservationId: 2001, bookId, status: 'held', quantity: 2 });
      expect((await getBook(bookId)).quantity).toBe(2);
      expect(await activeHolds(bookId)).toBe(1);
    });

    it('taking the last copy succeeds (the seed took it and called it out of stock)', async () => {
      const { bookId } = await createBook(1);
      const res = await hold(bookId, 2101);
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ quantity: 0, status: 'held' });
      expect((await hold(bookId, 2102)).statusCode).toBe(409);
    });

    it("the hold route takes only a service's token: a user's token or none is 401 and takes nothing", async () => {
      const { bookId } = await createBook(1);
      const url = `/books/${bookId}/holds/2151`;
      for (const headers of [{}, await as('alice'), staff] as Record<string, string>[]) {
        const refused = await book.app.inject({ method: 'PUT', url, payload: { customerId: 'alice' }, headers });
        expect(refused.statusCode, JSON.stringify(headers)).toBe(401);
        expect(refused.headers['content-type']).toContain('application/problem+json');
        expect(refused.headers['www-authenticate']).toMatch(/^Bearer/);
      }
      expect(await activeHolds(bookId)).toBe(0);
      const accepted = await book.app.inject({ method: 'PUT', url, payload: { customerId: 'alice' }, headers: internal });
      expect(accepted.statusCode).toBe(201);
      expect(await getBook(bookId)).toMatchObject({ quantity: 0 });
    });

    it('an unknown book answers 404, takes nothing, and voids the hold: an attempt still queued takes no copy once a book with that id exists', async () => {
      // Ids are sequential: the next book will have the id after this one's.
      const { bookId: last } = await createBook(1, `Before the unknown one ${Math.random()}`);
      const unknown = last + 1;
      const res = await hold(unknown, 2201, 'dora');
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ code: 'BOOK_NOT_FOUND' });
      const holds = await db.selectFrom('holds').selectAll().where('reservation_id', '=', 2201).execute();
      expect(holds.map((h) => h.status)).toEqual(['voided']);
      // A retry while the book still does not exist is the same 404.
      expect((await hold(unknown, 2201, 'dora')).json()).toMatchObject({ code: 'BOOK_NOT_FOUND' });

      // The book is created; the reservation was forgotten by reservation, but an earlier attempt is still queued here.
      const created = await createBook(3, `Created after the 404 ${Math.random()}`);
      expect(created.bookId).toBe(unknown);
      const late = await hold(unknown, 2201, 'dora');
      expect(late.statusCode).toBe(409);
      expect(late.json()).toMatchObject({ code: 'HOLD_RELEASED' });
      expect(await getBook(unknown)).toMatchObject({ quantity: 3, copies: 3 });
      expect(await heldBy('dora')).toBe(0);
    });

    it("each hold and release moves the patron's count of held copies, in the same transaction", async () => {
      const { bookId } = await createBook(3);
      expect((await hold(bookId, 2301, 'erin')).statusCode).toBe(201);
      expect((await hold(bookId, 2302, 'erin')).statusCode).toBe(201);
      expect((await hold(bookId, 2302, 'erin')).statusCode).toBe(200);
      expect(await heldBy('erin')).toBe(2);
      // Out of stock rolls the count back with the hold.
      await hold(bookId, 2303, 'frank');
      expect((await hold(bookId, 2304, 'frank')).json()).toMatchObject({ code: 'BOOK_OUT_OF_STOCK' });
      expect(await heldBy('frank')).toBe(1);
      await books.deliver(event('ReservationCanceled', { reservationId: 2301, bookId, customerId: 'erin', status: 'bookCanceled' }));
      expect(await heldBy('erin')).toBe(1);
    });
  });

  describe('copies held per patron (ADR 0021)', () => {
    let limited: BookService;
    /** The test's own connection to the limited book's database. */
    let limitedDb: Kysely<BookTables>;
    let limitedBooks: BusDriver;
    beforeAll(async () => {
      const logger = testLogger();
      const database = await makeDatabase('book_limited');
      const ownBus = await memoryBus(logger);
      limited = await createBookService({ database: database.config, bus: ownBus, logger, auth: await testAuth() }, { maxHeldCopiesPerCustomer: 2 });
      await limited.start({ port: 0 });
      limitedBooks = await BusDriver.start(ownBus, limited);
      limitedDb = await database.connect<BookTables>();
      cleanups.push(async () => {
        await limited.stop();
        await ownBus.close();
        await database.cleanup();
      });
    });
    const holdAt = (bookId: number, reservationId: number, customerId: string) =>
      limited.app.inject({ method: 'PUT', url: `/books/${bookId}/holds/${reservationId}`, payload: { customerId }, headers: internal });
    const newLimitedBook = async (quantity: number) =>
      (await limited.app.inject({ method: 'POST', url: '/books', payload: { bookName: `Limited ${Math.random()}`, quantity }, headers: staff })).json<{ bookId: number }>().bookId;
    const quantityAt = async (bookId: number) => (await limited.app.inject({ method: 'GET', url: `/books/${bookId}` })).json<{ quantity: number }>().quantity;

    it('refuses a hold past the limit with 409 TOO_MANY_HELD_COPIES, takes nothing, and voids the hold so a later attempt takes nothing either', async () => {
      const bookId = await newLimitedBook(10);
      expect((await holdAt(bookId, 5001, 'gina')).statusCode).toBe(201);
      expect((await holdAt(bookId, 5002, 'gina')).statusCode).toBe(201);
      const refused = await holdAt(bookId, 5003, 'gina');
      expect(refused.statusCode).toBe(409);
      expect(refused.headers['content-type']).toContain('application/problem+json');
      expect(refused.json()).toMatchObject({ code: 'TOO_MANY_HELD_COPIES', limit: 2, held: 2 });
      expect(await quantityAt(bookId)).toBe(8);
      // Another patron is not limited by gina's copies.
      expect((await holdAt(bookId, 5004, 'hugo')).statusCode).toBe(201);

      // gina cancels one: the copy comes back on ReservationCancelRequested, without waiting for assignment.
      const cancelRequested = createEnvelope({
        type: 'ReservationCancelRequested',
        source: sourceOf('reservation'),
        subject: '5001',
        data: { reservationId: 5001, bookId, customerId: 'gina', status: 'bookCancel' as const },
      });
      expect(await limitedBooks.deliver(cancelRequested)).toBe('handled');
      expect(await quantityAt(bookId)).toBe(8);
      // The refused reservation's late attempt still takes nothing; a new reservation may hold again.
      expect((await holdAt(bookId, 5003, 'gina')).json()).toMatchObject({ code: 'HOLD_RELEASED' });
      expect((await holdAt(bookId, 5005, 'gina')).statusCode).toBe(201);
      expect(await quantityAt(bookId)).toBe(7);
      // Assignment's confirmation of the same cancellation gives nothing back twice.
      const canceled = event('ReservationCanceled', { reservationId: 5001, bookId, customerId: 'gina', status: 'bookCanceled' });
      expect(await limitedBooks.deliver(canceled)).toBe('handled');
      expect(await quantityAt(bookId)).toBe(7);
    });

    it('a count that drifted (an older book beside this one in a rolling upgrade) corrects itself: a refusal counts again, a release never goes below zero', async () => {
      const bookId = await newLimitedBook(10);
      const count = () => limitedDb.selectFrom('customer_copies').select('held').where('customer_id', '=', 'jade').executeTakeFirst();
      // Too high: the patron holds nothing, yet the count says the limit.
      await limitedDb.insertInto('customer_copies').values({ customer_id: 'jade', held: 2 }).execute();
      expect((await holdAt(bookId, 5201, 'jade')).statusCode).toBe(201);
      expect(await count()).toEqual({ held: 1 });
      // Too low: a hold taken without being counted is released all the same.
      await limitedDb.updateTable('customer_copies').set({ held: 0 }).where('customer_id', '=', 'jade').execute();
      const canceled = event('ReservationCanceled', { reservationId: 5201, bookId, customerId: 'jade', status: 'bookCanceled' });
      expect(await limitedBooks.deliver(canceled)).toBe('handled');
      expect(await count()).toEqual({ held: 0 });
      expect(await quantityAt(bookId)).toBe(10);
    });

    it('holds at once by one patron never pass the limit', async () => {
      const bookId = await newLimitedBook(20);
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => holdAt(bookId, 5100 + i, 'ivan')));
      expect(answers.filter((a) => a.statusCode === 201)).toHaveLength(2);
      for (const a of answers.filter((x) => x.statusCode !== 201)) expect(a.json()).toMatchObject({ code: 'TOO_MANY_HELD_COPIES' });
      expect(await quantityAt(bookId)).toBe(18);
      const counted = await limitedDb.selectFrom('customer_copies').select('held').where('customer_id', '=', 'ivan').executeTakeFirstOrThrow();
      expect(counted.held).toBe(2);
    });
  });

  describe('book releases', () => {
    it('a cancellation delivered twice restores the copy once', async () => {
      const { bookId } = await createBook(2);
      expect((await hold(bookId, 3001)).statusCode).toBe(201);
      const canceled = event('ReservationCanceled', { reservationId: 3001, bookId, customerId: 'alice', status: 'bookCanceled' });
      expect(await books.deliver(canceled)).toBe('handled');
      expect(await books.deliver(canceled)).toBe('duplicate');
      expect((await getBook(bookId)).quantity).toBe(2);
    });

    it('a rejection after a cancellation of the same reservation restores nothing more', async () => {
      const { bookId } = await createBook(2);
      expect((await hold(bookId, 3101)).statusCode).toBe(201);
      await books.deliver(event('ReservationCanceled', { reservationId: 3101, bookId, customerId: 'alice', status: 'bookCanceled' }));
      await books.deliver(
        event('ReservationRejected', { reservationId: 3101, bookId, customerId: 'alice', bookName: null, status: 'rejected', reason: 'test' }),
      );
      const after = await getBook(bookId);
      expect(after).toMatchObject({ quantity: 2, copies: 2 });
    });

    it('a rejection that overtakes its hold voids it: the late hold takes no copy', async () => {
      const { bookId } = await createBook(2);
      const rejected = event('ReservationRejected', { reservationId: 3201, bookId, customerId: 'alice', bookName: null, status: 'rejected', reason: 'book timed out' });
      expect(await books.deliver(rejected)).toBe('handled');
      const late = await hold(bookId, 3201);
      expect(late.statusCode).toBe(409);
      expect(late.json()).toMatchObject({ code: 'HOLD_RELEASED' });
      expect((await getBook(bookId)).quantity).toBe(2);
    });

    it('the same rejection delivered twice restores the copy once', async () => {
      const { bookId } = await createBook(2);
      expect((await hold(bookId, 3301)).statusCode).toBe(201);
      const rejected = event('ReservationRejected', { reservationId: 3301, bookId, customerId: 'alice', bookName: null, status: 'rejected', reason: 'timeout' });
      expect(await books.deliver(rejected)).toBe('handled');
      expect(await books.deliver(rejected)).toBe('duplicate');
      // A different event for the same reservation (a redriven rejection) restores nothing more either.
      const again = event('ReservationRejected', { reservationId: 3301, bookId, customerId: 'alice', bookName: null, status: 'rejected', reason: 'timeout' });
      expect(await books.deliver(again)).toBe('handled');
      expect(await getBook(bookId)).toMatchObject({ quantity: 2, copies: 2 });
    });

    it("a release naming another book does not touch this reservation's hold", async () => {
      const { bookId } = await createBook(1);
      expect((await hold(bookId, 3401)).statusCode).toBe(201);
      await books.deliver(event('ReservationRejected', { reservationId: 3401, bookId: bookId + 1000, customerId: 'alice', bookName: null, status: 'rejected', reason: 'x' }));
      expect(await getBook(bookId)).toMatchObject({ quantity: 0 });
      expect(await activeHolds(bookId)).toBe(1);
    });

    it('a malformed event is parked as a dead letter at once', async () => {
      const bad = createEnvelope({ type: 'ReservationCanceled', source: 'x', subject: '1', data: { reservationId: 'seven' } });
      expect(await books.deliver(bad)).toBe('dead-lettered');
      const parked = await db.selectFrom('dead_letters').selectAll().where('event_id', '=', bad.id).execute();
      expect(parked).toHaveLength(1);
      expect(parked[0]?.error).toMatch(/ReservationCanceled data is invalid/);
    });
  });

  describe('demo catalogue', () => {
    it('seeding twice, even at the same moment, adds each book once', async () => {
      const demo = Array.from({ length: 6 }, (_, i) => ({ bookName: `Seeded Once ${i}`, quantity: i }));
      // Eight seeders at once, as eight replicas starting together would.
      const added = await Promise.all(Array.from({ length: 8 }, () => book.operations.seedCatalogue.execute(demo)));
      expect(added.reduce((a, b) => a + b, 0)).toBe(6);
      expect(await book.operations.seedCatalogue.execute(demo)).toBe(0);
      const rows = await db.selectFrom('books').select('book_name').where('book_name', 'like', 'Seeded Once %').execute();
      expect(rows).toHaveLength(6);
    });
  });

  describe('catalogue and copies', () => {
    it('withdrawing more copies than are available answers 409 and changes nothing', async () => {
      const { bookId } = await createBook(3);
      await hold(bookId, 4001);
      const res = await book.app.inject({ method: 'POST', url: `/books/${bookId}/copies`, payload: { delta: -3 }, headers: staff });
      expect(res.statusCode).toBe(409);
      expect(res.json()).toMatchObject({ code: 'NOT_ENOUGH_AVAILABLE_COPIES', available: 2 });
      expect(await getBook(bookId)).toMatchObject({ quantity: 2, copies: 3 });
      const ok = await book.app.inject({ method: 'POST', url: `/books/${bookId}/copies`, payload: { delta: 4 }, headers: staff });
      expect(ok.json()).toMatchObject({ quantity: 6, copies: 7 });
    });

    it('searches by name and pages', async () => {
      await createBook(1, '채식주의자 The Vegetarian');
      const res = await book.app.inject({ method: 'GET', url: '/books?q=vegetarian&limit=5' });
      expect(res.statusCode).toBe(200);
      const page = res.json<{ items: { bookName: string }[]; total: number; limit: number }>();
      expect(page.total).toBe(1);
      expect(page.items[0]?.bookName).toContain('Vegetarian');
      expect(page.limit).toBe(5);
    });

    it.each([
      ['malformed JSON', '{"bookName": ', 'application/json', 400],
      ['a wrong type', JSON.stringify({ bookName: 'X', quantity: '3' }), 'application/json', 400],
      ['a missing field', JSON.stringify({ bookName: 'X' }), 'application/json', 400],
      ['a negative quantity', JSON.stringify({ bookName: 'X', quantity: -1 }), 'application/json', 400],
      ['an unknown property', JSON.stringify({ bookName: 'X', quantity: 1, copies: 99 }), 'application/json', 400],
      ['a non-JSON body', 'bookName=X', 'application/x-www-form-urlencoded', 415],
    ])('rejects %s with problem+json and stores nothing', async (_name, payload, contentType, status) => {
      const before = await book.app.inject({ method: 'GET', url: '/books?limit=1' });
      const res = await book.app.inject({ method: 'POST', url: '/books', payload, headers: { ...staff, 'content-type': contentType } });
      expect(res.statusCode).toBe(status);
      expect(res.headers['content-type']).toContain('application/problem+json');
      const body = res.json<{ status: number; detail: string; type: string; title: string }>();
      expect(body.status).toBe(status);
      expect(body.detail.length).toBeGreaterThan(0);
      const after = await book.app.inject({ method: 'GET', url: '/books?limit=1' });
      expect(after.json<{ total: number }>().total).toBe(before.json<{ total: number }>().total);
    });

    it('rejects non-integer and negative ids in the path', async () => {
      for (const url of ['/books/abc', '/books/-1', '/books/1.5', '/books/0']) {
        const res = await book.app.inject({ method: 'GET', url });
        expect(res.statusCode, url).toBe(400);
        expect(res.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
      }
    });

    it('only staff add books or copies: a customer is 403, an anonymous caller 401', async () => {
      const before = (await book.app.inject({ method: 'GET', url: '/books?limit=1' })).json<{ total: number }>().total;
      const customer = await as('alice');
      const res = await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: 'Nope', quantity: 1 }, headers: customer });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({ code: 'FORBIDDEN' });
      const copies = await book.app.inject({ method: 'POST', url: '/books/1/copies', payload: { delta: 1 }, headers: customer });
      expect(copies.statusCode).toBe(403);
      const anonymous = await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: 'Nope', quantity: 1 } });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
      // The customer's own token with its role claim rewritten to staff: the signature no longer matches.
      const [header, claims, signature] = customer.authorization.slice('Bearer '.length).split('.') as [string, string, string];
      const promoted = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(claims, 'base64url').toString()), role: 'staff' })).toString('base64url');
      const tampered = await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: 'Nope', quantity: 1 }, headers: { authorization: `Bearer ${header}.${promoted}.${signature}` } });
      expect(tampered.statusCode).toBe(401);
      expect(tampered.json()).toMatchObject({ code: 'INVALID_TOKEN' });
      expect((await book.app.inject({ method: 'GET', url: '/books?limit=1' })).json<{ total: number }>().total).toBe(before);
    });

    it('an unknown route is a 404 problem', async () => {
      const res = await book.app.inject({ method: 'GET', url: '/nowhere' });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND', status: 404 });
    });
  });
});
