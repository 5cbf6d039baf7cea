import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, sourceOf, type EventData, type EventEnvelope, type EventType } from '@bstore/contracts';
import type { EmbeddedBus } from '@bstore/platform';
import type { Kysely } from 'kysely';
import { createBookService, type BookService, type BookTables } from '@bstore/book';
import { memoryBus, testLogger } from '../../../test/support/harness.ts';
import { BusDriver } from '../../../test/support/bus-driver.ts';
import { databaseKinds } from '../../../test/support/postgres.ts';
import { asStaff, testAuth } from '../../../test/support/auth.ts';

/**
 * Book's waiting line, check-out and return (ADR 0022), on PGlite and PostgreSQL: a freed copy
 * goes to the oldest waiting reservation in the transaction that frees it, every copy is counted
 * once (available + held + on loan = copies), and every event may arrive twice.
 */
const staff = await asStaff();
const internal = { authorization: `Bearer ${await (await testAuth()).internalFor('reservation').token()}` };

let bus: EmbeddedBus;
let book: BookService;
/** The test's own connection to book's database (an operator's view of it). */
let db: Kysely<BookTables>;
let books: BusDriver;
/**
 * Replicas of book on the same database, each consuming from a bus of its own: events that race
 * each other go to different replicas, as replicas receive different deliveries from JetStream
 * (one consumer takes its events one at a time).
 */
let replicas: BusDriver[] = [];
let nextReservation = 50_000;

interface HoldJson {
  reservationId: number;
  status: 'held' | 'waiting';
  quantity: number;
  queuePosition: number | null;
  queueTicket: number | null;
}

async function createBook(quantity: number) {
  const res = await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: `Line ${quantity}`, quantity }, headers: staff });
  expect(res.statusCode).toBe(201);
  return res.json<{ bookId: number }>().bookId;
}

async function stock(bookId: number) {
  const res = await book.app.inject({ method: 'GET', url: `/books/${bookId}` });
  expect(res.statusCode).toBe(200);
  return res.json<{ quantity: number; copies: number }>();
}

const hold = (bookId: number, reservationId: number, customerId: string, waitlist = true) =>
  book.app.inject({ method: 'PUT', url: `/books/${bookId}/holds/${reservationId}`, payload: { customerId, ...(waitlist ? { waitlist } : {}) }, headers: internal });

async function waitFor(bookId: number, customerId: string): Promise<HoldJson> {
  const res = await hold(bookId, ++nextReservation, customerId);
  expect(res.statusCode).toBe(201);
  return res.json<HoldJson>();
}

function deliver<T extends EventType>(type: T, data: EventData<T>, driver: BusDriver = books) {
  return driver.deliver(createEnvelope({ type, source: sourceOf(type === 'ReservationCanceled' ? 'assignment' : 'reservation'), subject: String((data as { reservationId: number }).reservationId), data }));
}

const ids = (reservationId: number, bookId: number, customerId: string) => ({ reservationId, bookId, customerId });

/** Every copy of the book counted once, no waiting reservation while a copy is on the shelf, and the patrons' counts right. */
async function assertConserved(bookId: number): Promise<{ held: number; loaned: number; waiting: number; quantity: number }> {
  const rows = await db.selectFrom('holds').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).where('book_id', '=', bookId).groupBy('status').execute();
  const count = (status: string) => Number(rows.find((r) => r.status === status)?.n ?? 0);
  const { quantity, copies } = await stock(bookId);
  const held = count('held');
  const loaned = count('loaned');
  const waiting = count('waiting');
  expect(quantity + held + loaned, 'available + held + on loan = copies').toBe(copies);
  if (quantity > 0) expect(waiting, 'nobody waits while a copy is available').toBe(0);
  const drift = await db
    .selectFrom('customer_copies as c')
    .select(['c.customer_id', 'c.held'])
    .where((eb) =>
      eb(
        'c.held',
        '<>',
        eb.selectFrom('holds as h').select((e) => e.fn.countAll<number>().as('n')).whereRef('h.customer_id', '=', 'c.customer_id').where('h.status', 'in', ['held', 'waiting']),
      ),
    )
    .execute();
  expect(drift, 'each patron counts their held and waiting holds').toEqual([]);
  return { held, loaned, waiting, quantity };
}

async function granted(bookId: number): Promise<number[]> {
  const rows = await db.selectFrom('outbox').select('envelope').where('type', '=', 'CopyGranted').orderBy('created_at').execute();
  return rows.map((r) => r.envelope as EventEnvelope<'CopyGranted', EventData<'CopyGranted'>>).filter((e) => e.data.bookId === bookId).map((e) => e.data.reservationId);
}

async function statusOf(reservationId: number) {
  return (await db.selectFrom('holds').select('status').where('reservation_id', '=', reservationId).executeTakeFirst())?.status;
}

describe.each(databaseKinds(20))('book waiting line on %s', (_name, makeDatabase) => {
  let cleanup: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const logger = testLogger();
    const database = await makeDatabase('book');
    cleanup = database.cleanup;
    bus = await memoryBus(logger);
    book = await createBookService({ database: database.config, bus, logger, auth: await testAuth() }, { maxHeldCopiesPerCustomer: 1000 });
    books = await BusDriver.start(bus, book);
    replicas = [books];
    for (let i = 1; i <= 2; i++) {
      const replicaBus = await memoryBus(logger);
      const replica = await createBookService({ database: database.config, bus: replicaBus, logger, auth: await testAuth() }, { maxHeldCopiesPerCustomer: 1000 });
      replicas.push(await BusDriver.start(replicaBus, replica));
    }
    db = await database.connect<BookTables>();
  });

  afterAll(async () => {
    for (const replica of replicas.slice(1)) {
      await replica.service.stop();
      await replica.bus.close();
    }
    await book.stop();
    await bus.close();
    await cleanup();
  });

  it('with no copy, a hold that asks to wait joins the line (positions 1, 2, 3); one that does not is refused and leaves nothing', async () => {
    const bookId = await createBook(1);
    const first = await hold(bookId, ++nextReservation, 'ann');
    expect(first.json()).toMatchObject({ status: 'held', queuePosition: null });
    const line = [await waitFor(bookId, 'bea'), await waitFor(bookId, 'cid'), await waitFor(bookId, 'dan')];
    expect(line.map((h) => [h.status, h.queuePosition])).toEqual([
      ['waiting', 1],
      ['waiting', 2],
      ['waiting', 3],
    ]);
    const refused = await hold(bookId, ++nextReservation, 'eve', false);
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'BOOK_OUT_OF_STOCK' });
    expect(await statusOf(nextReservation)).toBeUndefined();
    // A retried request answers its place again, taking nothing.
    const again = await hold(bookId, line[1]!.reservationId, 'cid');
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ status: 'waiting', queuePosition: 2 });
    expect(await assertConserved(bookId)).toMatchObject({ held: 1, waiting: 3, quantity: 0 });
  });

  it('a cancelled copy goes to the oldest waiting reservation in the same transaction; the stock never shows it', async () => {
    const bookId = await createBook(1);
    const owner = ++nextReservation;
    await hold(bookId, owner, 'ann');
    const [a, b] = [await waitFor(bookId, 'bea'), await waitFor(bookId, 'cid')];
    expect(await deliver('ReservationCancelRequested', { ...ids(owner, bookId, 'ann'), status: 'bookCancel' })).toBe('handled');
    expect(await statusOf(a.reservationId)).toBe('held');
    expect(await granted(bookId)).toEqual([a.reservationId]);
    expect((await stock(bookId)).quantity).toBe(0);
    // The line moved up.
    expect((await hold(bookId, b.reservationId, 'cid')).json()).toMatchObject({ status: 'waiting', queuePosition: 1 });
    // The duplicate and the confirmation free nothing more.
    expect(await deliver('ReservationCancelRequested', { ...ids(owner, bookId, 'ann'), status: 'bookCancel' })).toBe('handled');
    expect(await deliver('ReservationCanceled', { ...ids(owner, bookId, 'ann'), status: 'bookCanceled' })).toBe('handled');
    expect(await granted(bookId)).toEqual([a.reservationId]);
    expect(await assertConserved(bookId)).toMatchObject({ held: 1, waiting: 1, quantity: 0 });
  });

  it('a waiting reservation that is cancelled leaves the line: the next copy skips it; one granted and then cancelled passes its copy on', async () => {
    const bookId = await createBook(1);
    const owner = ++nextReservation;
    await hold(bookId, owner, 'ann');
    const [a, b, c] = [await waitFor(bookId, 'bea'), await waitFor(bookId, 'cid'), await waitFor(bookId, 'dan')];
    await deliver('ReservationCancelRequested', { ...ids(a.reservationId, bookId, 'bea'), status: 'bookCancel' });
    expect(await statusOf(a.reservationId)).toBe('released');
    expect((await stock(bookId)).quantity).toBe(0);
    await deliver('ReservationExpired', { ...ids(owner, bookId, 'ann'), libraryId: null, pickupBy: new Date().toISOString(), status: 'bookExpired' });
    expect(await granted(bookId)).toEqual([b.reservationId]);
    // The copy was granted to b while b's cancel was on its way: the cancel passes it to c.
    await deliver('ReservationCancelRequested', { ...ids(b.reservationId, bookId, 'cid'), status: 'bookCancel' });
    expect(await granted(bookId)).toEqual([b.reservationId, c.reservationId]);
    expect(await assertConserved(bookId)).toMatchObject({ held: 1, waiting: 0, quantity: 0 });
    // c gives it up too: nobody waits, so it goes back to stock.
    await deliver('ReservationRejected', { ...ids(c.reservationId, bookId, 'dan'), bookName: null, status: 'rejected', reason: 'no library' });
    expect(await assertConserved(bookId)).toMatchObject({ held: 0, waiting: 0, quantity: 1 });
  });

  it('check-out lends the held copy (the patron no longer counts it); check-in gives it to the line, or to stock; duplicates change nothing', async () => {
    const bookId = await createBook(1);
    const owner = ++nextReservation;
    await hold(bookId, owner, 'gil');
    const waiting = await waitFor(bookId, 'hal');
    const checkedOut = { ...ids(owner, bookId, 'gil'), libraryId: 1, dueAt: new Date().toISOString(), status: 'bookLoaned' as const };
    await deliver('ReservationCheckedOut', checkedOut);
    await deliver('ReservationCheckedOut', checkedOut);
    expect(await statusOf(owner)).toBe('loaned');
    expect(await assertConserved(bookId)).toMatchObject({ held: 0, loaned: 1, waiting: 1, quantity: 0 });
    // A lent copy is not released by a late cancel or expiry: only its return frees it.
    await deliver('ReservationExpired', { ...ids(owner, bookId, 'gil'), libraryId: 1, pickupBy: new Date().toISOString(), status: 'bookExpired' });
    expect(await statusOf(owner)).toBe('loaned');
    const returned = { ...ids(owner, bookId, 'gil'), libraryId: 1, status: 'bookReturned' as const };
    await deliver('ReservationReturned', returned);
    await deliver('ReservationReturned', returned);
    expect(await granted(bookId)).toEqual([waiting.reservationId]);
    expect(await assertConserved(bookId)).toMatchObject({ held: 1, loaned: 0, waiting: 0, quantity: 0 });
    // The next loan comes back to an empty line: stock.
    await deliver('ReservationCheckedOut', { ...checkedOut, ...ids(waiting.reservationId, bookId, 'hal') });
    await deliver('ReservationReturned', { ...returned, ...ids(waiting.reservationId, bookId, 'hal') });
    expect(await assertConserved(bookId)).toMatchObject({ held: 0, loaned: 0, waiting: 0, quantity: 1 });
  });

  it('copies that staff add go to the line first, oldest first; lent and held copies cannot be withdrawn', async () => {
    const bookId = await createBook(1);
    const owner = ++nextReservation;
    await hold(bookId, owner, 'ivy');
    const line = [await waitFor(bookId, 'jon'), await waitFor(bookId, 'kim'), await waitFor(bookId, 'lee')];
    const added = await book.app.inject({ method: 'POST', url: `/books/${bookId}/copies`, payload: { delta: 2 }, headers: staff });
    expect(added.statusCode).toBe(200);
    expect(added.json()).toMatchObject({ quantity: 0, copies: 3 });
    expect(await granted(bookId)).toEqual([line[0]!.reservationId, line[1]!.reservationId]);
    const more = await book.app.inject({ method: 'POST', url: `/books/${bookId}/copies`, payload: { delta: 3 }, headers: staff });
    expect(more.json()).toMatchObject({ quantity: 2, copies: 6 });
    expect(await granted(bookId)).toEqual(line.map((h) => h.reservationId));
    await deliver('ReservationCheckedOut', { ...ids(owner, bookId, 'ivy'), libraryId: 1, dueAt: new Date().toISOString(), status: 'bookLoaned' });
    const withdraw = await book.app.inject({ method: 'POST', url: `/books/${bookId}/copies`, payload: { delta: -3 }, headers: staff });
    expect(withdraw.statusCode).toBe(409);
    expect(withdraw.json()).toMatchObject({ code: 'NOT_ENOUGH_AVAILABLE_COPIES' });
    expect(await assertConserved(bookId)).toMatchObject({ held: 3, loaned: 1, waiting: 0, quantity: 2 });
  });

  it('a return and a withdrawal at once: the returned copy is either withdrawn or in stock, never both, never lost', async () => {
    const bookId = await createBook(2);
    const owner = ++nextReservation;
    await hold(bookId, owner, 'mia');
    await deliver('ReservationCheckedOut', { ...ids(owner, bookId, 'mia'), libraryId: 1, dueAt: new Date().toISOString(), status: 'bookLoaned' });
    const [withdrawn] = await Promise.all([
      book.app.inject({ method: 'POST', url: `/books/${bookId}/copies`, payload: { delta: -2 }, headers: staff }),
      deliver('ReservationReturned', { ...ids(owner, bookId, 'mia'), libraryId: 1, status: 'bookReturned' }),
    ]);
    const after = await assertConserved(bookId);
    const { copies } = await stock(bookId);
    if (withdrawn.statusCode === 200) expect([after.quantity, copies]).toEqual([0, 0]);
    else {
      expect(withdrawn.statusCode).toBe(409);
      expect([after.quantity, copies]).toEqual([2, 2]);
    }
  });

  it('many patrons joining the line while copies are freed and added at once: FIFO, each copy granted once, every copy counted', async () => {
    const bookId = await createBook(3);
    const holders = [++nextReservation, ++nextReservation, ++nextReservation];
    for (const [i, r] of holders.entries()) await hold(bookId, r, `holder${i}`);
    const joiners = Array.from({ length: 12 }, () => ++nextReservation);
    await Promise.all([
      ...joiners.map((r, i) => hold(bookId, r, `patron${i}`)),
      ...holders.map((r, i) => deliver('ReservationCancelRequested', { ...ids(r, bookId, `holder${i}`), status: 'bookCancel' }, replicas[i % replicas.length])),
      book.app.inject({ method: 'POST', url: `/books/${bookId}/copies`, payload: { delta: 2 }, headers: staff }),
    ]);
    const after = await assertConserved(bookId);
    expect(after.held + after.quantity).toBe(5);
    const grants = await granted(bookId);
    expect(new Set(grants).size).toBe(grants.length);
    // FIFO: nobody still waits with a ticket older than one that was granted.
    const rows = await db.selectFrom('holds').select(['reservation_id', 'status', 'queue_ticket']).where('book_id', '=', bookId).where('queue_ticket', 'is not', null).execute();
    const grantedTickets = rows.filter((r) => grants.includes(r.reservation_id)).map((r) => Number(r.queue_ticket));
    const waitingTickets = rows.filter((r) => r.status === 'waiting').map((r) => Number(r.queue_ticket));
    if (grantedTickets.length > 0 && waitingTickets.length > 0) expect(Math.min(...waitingTickets)).toBeGreaterThan(Math.max(...grantedTickets));
  });

  it("one patron's held and waiting holds released while the copy is granted, and the patron holding again at once: no deadlock, no failed request", async () => {
    for (let round = 0; round < 20; round++) {
      const bookId = await createBook(1);
      const patron = `knot${round}`;
      const held = ++nextReservation;
      await hold(bookId, held, patron);
      // The patron's waiting hold is first in line: the copy their cancel frees is granted to it.
      const waiting = await waitFor(bookId, patron);
      const other = await waitFor(bookId, `other${round}`);
      const results = await Promise.all([
        deliver('ReservationCancelRequested', { ...ids(held, bookId, patron), status: 'bookCancel' }, replicas[0]),
        deliver('ReservationCancelRequested', { ...ids(waiting.reservationId, bookId, patron), status: 'bookCancel' }, replicas[1]),
        hold(bookId, ++nextReservation, patron).then((r) => r.statusCode),
      ]);
      // Every event handled at its first delivery, and the hold answered (a place in line, or the copy).
      expect(results.slice(0, 2)).toEqual(['handled', 'handled']);
      expect([201]).toContain(results[2]);
      expect(await statusOf(other.reservationId)).toBe('held');
      await assertConserved(bookId);
    }
  });
});
