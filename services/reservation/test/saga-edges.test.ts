import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql, type Kysely } from 'kysely';
import type { EmbeddedBus } from '@bstore/platform';
import { createBookService, type BookService, type BookTables } from '@bstore/book';
import { createReservationService, type BookAvailability, type BookClient, type HoldOutcome, type ReservationService, type ReservationTables } from '@bstore/reservation';
import { HttpBookClient } from '../src/adapters/clients/book.http-client.ts';
import { MovableClock, eventually, memoryBus, testLogger } from '../../../test/support/harness.ts';
import { BusDriver } from '../../../test/support/bus-driver.ts';
import { databaseKinds } from '../../../test/support/postgres.ts';
import { as, asStaff, testAuth } from '../../../test/support/auth.ts';

/**
 * The saga's edges (issue 17, ADR 0015 and 0021), each fault injected at the exact step, on PGlite
 * and on PostgreSQL:
 * - one reservation per Idempotency-Key: a crash between book's commit and the answer's record, a
 *   failing record transaction, a takeover racing the original request;
 * - copies come back without assignment, and a copy not yet back counts against its patron.
 *
 * Book is real and reached over HTTP; the fault is a step of the real client that stops (a process
 * frozen or killed after book answered) or a database constraint that makes the record fail.
 */
const DATABASES = databaseKinds();
const logger = testLogger();
const staff = await asStaff();
const auth = await testAuth();


/**
 * The real HTTP client, with a step the test can stop: for a reservation it is told about, the
 * next call reaches book (which commits the hold) and then does not return until the test lets it,
 * as a replica frozen or killed just after book answered; or runs a hook after book's answer.
 */
/** A point a call stops at until the test lets it go. */
interface Gate {
  reached: () => void;
  release: Promise<void>;
}

/** A gate, with what the test waits on (the call got there) and what it calls (let it go). */
function newGate(): { gate: Gate; reached: Promise<void>; thaw: () => void } {
  let thaw!: () => void;
  let reached!: () => void;
  const reachedPromise = new Promise<void>((r) => (reached = r));
  const release = new Promise<void>((r) => (thaw = r));
  return { gate: { reached, release }, reached: reachedPromise, thaw };
}

/** Stops at the gate set for this reservation, once. */
async function pass(gates: Map<number, Gate>, reservationId: number): Promise<void> {
  const gate = gates.get(reservationId);
  if (!gate) return;
  gates.delete(reservationId);
  gate.reached();
  await gate.release;
}

class SteppedBookClient implements BookClient {
  readonly #inner: BookClient;
  readonly #afterBook = new Map<number, Gate>();
  readonly #afterAnswer = new Map<number, () => Promise<void>>();
  readonly #beforeBook = new Map<number, Gate>();
  /** While set, the client says book's circuit is open (ADR 0013). */
  circuitOpen = false;

  constructor(inner: BookClient) {
    this.#inner = inner;
  }

  /** The next call for `reservationId` freezes after book answered; returns when it got there and how to let it go. */
  freezeAfterBook(reservationId: number): { reached: Promise<void>; thaw: () => void } {
    const { gate, reached, thaw } = newGate();
    this.#afterBook.set(reservationId, gate);
    return { reached, thaw };
  }

  /** The next call for `reservationId` freezes before it reaches book (a replica paused after storing `pending`). */
  freezeBeforeBook(reservationId: number): { reached: Promise<void>; thaw: () => void } {
    const { gate, reached, thaw } = newGate();
    this.#beforeBook.set(reservationId, gate);
    return { reached, thaw };
  }

  availability(): BookAvailability {
    return this.circuitOpen ? { callable: false, retryAfterMs: 3000 } : { callable: true };
  }

  /** Runs `hook` once, after book answered the next call for `reservationId` and before the answer is recorded. */
  afterBook(reservationId: number, hook: () => Promise<void>): void {
    this.#afterAnswer.set(reservationId, hook);
  }

  async hold(request: { bookId: number; reservationId: number; customerId: string }): Promise<HoldOutcome> {
    await pass(this.#beforeBook, request.reservationId);
    const outcome = await this.#inner.hold(request);
    await pass(this.#afterBook, request.reservationId);
    const hook = this.#afterAnswer.get(request.reservationId);
    if (hook) {
      this.#afterAnswer.delete(request.reservationId);
      await hook();
    }
    return outcome;
  }
}

describe.each(DATABASES)('saga edges on %s', (_name, makeDatabase) => {
  let bus: EmbeddedBus;
  let book: BookService;
  let reservation: ReservationService;
  /** The test's own connections to reservation's and book's databases (an operator's view of them). */
  let reservationDb: Kysely<ReservationTables>;
  let bookDb: Kysely<BookTables>;
  /** Book's side of the bus: how reservation's events reach it. */
  let books: BusDriver;
  let stepped: SteppedBookClient;
  const clock = new MovableClock();
  const cleanups: (() => Promise<void>)[] = [];
  const LIMIT = 3;

  beforeAll(async () => {
    const database = async (prefix: string) => {
      const made = await makeDatabase(prefix);
      cleanups.push(made.cleanup);
      return made;
    };
    bus = await memoryBus(logger);
    const bookDatabase = await database('edges_book');
    book = await createBookService({ database: bookDatabase.config, bus, logger, auth }, { maxHeldCopiesPerCustomer: LIMIT });
    bookDb = await bookDatabase.connect<BookTables>();
    await book.start({ port: 0, consumers: false });
    // Book consumes from the bus; reservation's relay never runs (reservation is not started), so the
    // tests decide when book sees reservation's events (`deliverToBook`).
    books = await BusDriver.start(bus, book);
    stepped = new SteppedBookClient(new HttpBookClient({ baseUrl: book.url, timeoutMs: 2000, credentials: () => auth.internalFor('reservation').token() }));
    const reservationDatabase = await database('edges');
    reservation = await createReservationService(
      { database: reservationDatabase.config, bus, logger, auth },
      { bookUrl: book.url, bookClient: stepped, clock, staleAfterMs: 0, maxHoldAttempts: 5, maxActiveReservationsPerCustomer: LIMIT },
    );
    reservationDb = await reservationDatabase.connect<ReservationTables>();
    // No assignment service at all: assignment is down for the whole file.
  });

  afterAll(async () => {
    await reservation.stop();
    await book.stop();
    await bus.close();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  const newBook = async (quantity: number) =>
    (await book.app.inject({ method: 'POST', url: '/books', payload: { bookName: `Edge ${Math.random()}`, quantity }, headers: staff })).json<{ bookId: number }>().bookId;
  const quantity = async (bookId: number) => (await book.app.inject({ method: 'GET', url: `/books/${bookId}` })).json<{ quantity: number }>().quantity;
  const post = async (customerId: string, bookId: number, key?: string) =>
    reservation.app.inject({ method: 'POST', url: '/reservations', payload: { bookId }, headers: { ...(await as(customerId)), ...(key ? { 'idempotency-key': key } : {}) } });
  const cancel = async (customerId: string, reservationId: number) =>
    reservation.app.inject({ method: 'PATCH', url: `/reservations/${reservationId}`, payload: { status: 'bookCancel' }, headers: await as(customerId) });
  const reservationsOf = (customerId: string) =>
    reservationDb.selectFrom('reservations').select(['reservation_id', 'status', 'idempotency_key']).where('customer_id', '=', customerId).orderBy('reservation_id').execute();
  const keyRow = (customerId: string, key: string) =>
    reservationDb.selectFrom('idempotency_keys').selectAll().where('customer_id', '=', customerId).where('idempotency_key', '=', key).executeTakeFirst();
  const heldCopies = async (customerId: string) =>
    Number(
      (
        await bookDb
          .selectFrom('holds')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('customer_id', '=', customerId)
          .where('status', '=', 'held')
          .executeTakeFirstOrThrow()
      ).n,
    );
  /** The id the next reservation will get (identity columns count up; the tests of one file run one at a time). */
  const nextReservationId = async () => {
    const row = await reservationDb.selectFrom('reservations').select((eb) => eb.fn.max('reservation_id').as('max')).executeTakeFirst();
    return Number(row?.max ?? 0) + 1;
  };
  /**
   * Publishes on the bus, as reservation's relay would, the events reservation has written to its
   * outbox so far and not yet published, and waits until book has taken every one of them.
   */
  const delivered = new Set<string>();
  const deliverToBook = async () => {
    const rows = await reservationDb.selectFrom('outbox').select('envelope').orderBy('created_at').execute();
    const fresh = rows.map((r) => r.envelope).filter((envelope) => !delivered.has(envelope.id));
    for (const envelope of fresh) delivered.add(envelope.id);
    await books.publishAll(fresh);
  };

  describe('one reservation per Idempotency-Key', () => {
    it('a crash between book taking the copy and the answer being recorded: the sweep completes it, and the retry after the lock expired answers that reservation', async () => {
      const bookId = await newBook(5);
      const id = await nextReservationId();
      const frozen = stepped.freezeAfterBook(id);
      // The request reaches book and is never heard of again (its replica is frozen, as if killed).
      const lost = post('crash-1', bookId, 'k-crash');
      await frozen.reached;
      expect(await quantity(bookId)).toBe(4);
      expect(await keyRow('crash-1', 'k-crash')).toMatchObject({ state: 'running', reservation_id: id });

      // The recovery sweep (another replica's, or this one's later) completes it once it is stale.
      clock.offsetMs += 10_000;
      await reservation.operations.recoverPending.execute();
      expect((await reservationsOf('crash-1')).map((r) => r.status)).toEqual(['bookReserveReq']);

      // A retry while the dead request's lock holds is told to wait.
      const early = await post('crash-1', bookId, 'k-crash');
      expect(early.statusCode).toBe(409);
      expect(early.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });

      // After the lock expired the retry takes the key over and answers from the same reservation.
      clock.offsetMs += 51_000;
      const retried = await post('crash-1', bookId, 'k-crash');
      expect(retried.statusCode).toBe(201);
      expect(retried.json()).toMatchObject({ reservationId: id, status: 'bookReserveReq' });
      expect(await reservationsOf('crash-1')).toEqual([{ reservation_id: id, status: 'bookReserveReq', idempotency_key: 'k-crash' }]);
      expect(await quantity(bookId)).toBe(4);
      expect(await heldCopies('crash-1')).toBe(1);

      // The frozen request wakes up: it answers the same reservation and cannot overwrite the key's answer.
      frozen.thaw();
      const late = await lost;
      expect(late.json()).toMatchObject({ reservationId: id });
      const replay = await post('crash-1', bookId, 'k-crash');
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.json()).toEqual(retried.json());
      expect(await reservationsOf('crash-1')).toHaveLength(1);
    });

    it('the transaction recording book’s answer fails (500): the key keeps its reservation, and an immediate retry answers it, even at the limit of active reservations', async () => {
      const bookId = await newBook(5);
      // Two active reservations already (of other books: one active reservation per book): the failed one is the third, the limit.
      for (const key of ['k-a', 'k-b']) expect((await post('fail-1', await newBook(1), key)).statusCode).toBe(201);
      const id = await nextReservationId();
      // Right after book committed the hold, recording its answer becomes impossible (as a dropped connection would make it).
      stepped.afterBook(id, async () => {
        await sql`ALTER TABLE reservations ADD CONSTRAINT edge_block_record CHECK (reservation_id <> ${sql.lit(id)} OR status = 'pending')`.execute(reservationDb);
      });
      const failed = await post('fail-1', bookId, 'k-fail');
      expect(failed.statusCode).toBe(500);
      expect(failed.headers['content-type']).toContain('application/problem+json');
      expect(await quantity(bookId)).toBe(4);
      expect(await keyRow('fail-1', 'k-fail')).toMatchObject({ state: 'running', reservation_id: id, claim_id: null });
      await sql`ALTER TABLE reservations DROP CONSTRAINT edge_block_record`.execute(reservationDb);

      // The retry at once: the same reservation, not a second one and not a TOO_MANY_ACTIVE refusal.
      const retried = await post('fail-1', bookId, 'k-fail');
      expect(retried.statusCode).toBe(201);
      expect(retried.json()).toMatchObject({ reservationId: id, status: 'bookReserveReq' });
      expect((await reservationsOf('fail-1')).map((r) => r.status)).toEqual(['bookReserveReq', 'bookReserveReq', 'bookReserveReq']);
      expect(await quantity(bookId)).toBe(4);
      expect(await heldCopies('fail-1')).toBe(3);
      expect((await post('fail-1', bookId, 'k-fail')).json()).toEqual(retried.json());
    });

    it('a takeover racing the original request: both answer the one reservation, and only the request holding the key stores its answer', async () => {
      const bookId = await newBook(5);
      const id = await nextReservationId();
      const frozen = stepped.freezeAfterBook(id);
      const original = post('race-1', bookId, 'k-race');
      await frozen.reached;
      clock.offsetMs += 61_000;
      // The takeover resumes the pending reservation (book's hold is idempotent: no second copy).
      const takeover = await post('race-1', bookId, 'k-race');
      expect(takeover.statusCode).toBe(201);
      expect(takeover.json()).toMatchObject({ reservationId: id });
      frozen.thaw();
      const first = await original;
      expect(first.statusCode).toBe(201);
      expect(first.json()).toMatchObject({ reservationId: id });
      expect(await reservationsOf('race-1')).toHaveLength(1);
      expect(await quantity(bookId)).toBe(4);
      // The stored answer is the takeover's, not the slow original's.
      const replay = await post('race-1', bookId, 'k-race');
      expect(replay.body).toBe(takeover.body);
    });

    it('a refusal of the moment (the limit) is not the key’s final answer: the same key succeeds once a place is free', async () => {
      const bookId = await newBook(10);
      const ids: number[] = [];
      for (let i = 0; i < LIMIT; i++) ids.push((await post('moment-1', await newBook(1))).json<{ reservationId: number }>().reservationId);
      const refused = await post('moment-1', bookId, 'k-moment');
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toMatchObject({ code: 'TOO_MANY_ACTIVE_RESERVATIONS' });
      expect((await cancel('moment-1', ids[0]!)).statusCode).toBe(202);
      await deliverToBook();
      const placed = await post('moment-1', bookId, 'k-moment');
      expect(placed.statusCode).toBe(201);
      expect(placed.headers['idempotent-replayed']).toBeUndefined();
    });

    it('a key whose reservation was rejected (book unavailable) places a new one on retry, and names it', async () => {
      const bookId = await newBook(5);
      const id = await nextReservationId();
      // Book's answer is lost for good: every attempt of this call fails after book took the copy.
      stepped.afterBook(id, async () => {
        throw new Error('connection reset after book answered');
      });
      const failed = await post('rej-1', bookId, 'k-rej');
      expect(failed.statusCode).toBe(500);
      // The sweep gives up on it after its attempts; here it is rejected at once by marking it exhausted.
      await reservationDb.updateTable('reservations').set({ attempts: 99 }).where('reservation_id', '=', id).execute();
      clock.offsetMs += 10_000;
      await reservation.operations.recoverPending.execute();
      expect((await reservationsOf('rej-1')).map((r) => r.status)).toEqual(['rejected']);
      await deliverToBook();
      expect(await quantity(bookId)).toBe(5);

      const retried = await post('rej-1', bookId, 'k-rej');
      expect(retried.statusCode).toBe(201);
      const second = retried.json<{ reservationId: number }>().reservationId;
      expect(second).not.toBe(id);
      expect(await keyRow('rej-1', 'k-rej')).toMatchObject({ state: 'done', reservation_id: second });
      // Per key, at most one reservation that is not rejected.
      expect((await reservationsOf('rej-1')).map((r) => [r.status, r.idempotency_key])).toEqual([
        ['rejected', 'k-rej'],
        ['bookReserveReq', 'k-rej'],
      ]);
    });

    it('a retry while book’s circuit is open leaves the key’s pending reservation for the sweep instead of rejecting it and giving up its copy', async () => {
      const bookId = await newBook(5);
      const id = await nextReservationId();
      stepped.afterBook(id, async () => {
        throw new Error('connection reset after book answered');
      });
      expect((await post('open-1', bookId, 'k-open')).statusCode).toBe(500);
      stepped.circuitOpen = true;
      try {
        const waiting = await post('open-1', bookId, 'k-open');
        expect(waiting.statusCode).toBe(503);
        expect(waiting.json()).toMatchObject({ code: 'BOOK_CIRCUIT_OPEN', reservationId: id, reservationStatus: 'pending' });
        expect(waiting.headers['retry-after']).toBe('3');
        expect((await reservationsOf('open-1')).map((r) => r.status)).toEqual(['pending']);
        expect(await quantity(bookId)).toBe(4);
      } finally {
        stepped.circuitOpen = false;
      }
      const retried = await post('open-1', bookId, 'k-open');
      expect(retried.statusCode).toBe(201);
      expect(retried.json()).toMatchObject({ reservationId: id, status: 'bookReserveReq' });
      expect(await quantity(bookId)).toBe(4);
    });

    it('a request whose reservation the sweep refused and forgot meanwhile answers "retry", not "no such book", and the key is not spent', async () => {
      const bookId = await newBook(10);
      const customer = 'swept-1';
      for (let i = 0; i < LIMIT; i++) expect((await post(customer, await newBook(1))).statusCode).toBe(201);
      const [first] = await reservationsOf(customer);
      // Cancelled, but book has not heard yet: it still counts the copy.
      expect((await cancel(customer, first!.reservation_id)).statusCode).toBe(202);
      const id = await nextReservationId();
      const frozen = stepped.freezeBeforeBook(id);
      const slow = post(customer, bookId, 'k-swept');
      await frozen.reached;
      // The sweep drives it first: book refuses (too many held), voids the hold, and the reservation is forgotten.
      clock.offsetMs += 10_000;
      await reservation.operations.recoverPending.execute();
      expect((await reservationsOf(customer)).map((r) => r.reservation_id)).not.toContain(id);
      frozen.thaw();
      const answer = await slow;
      expect(answer.statusCode).toBe(409);
      expect(answer.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });
      expect(answer.headers['retry-after']).toBe('1');
      expect(await keyRow(customer, 'k-swept')).toMatchObject({ state: 'running', claim_id: null });
      // Once book has the cancellation, the same key places the reservation.
      await deliverToBook();
      const placed = await post(customer, bookId, 'k-swept');
      expect(placed.statusCode).toBe(201);
      expect(await heldCopies(customer)).toBe(LIMIT);
    });

    it('a key taken over after this request claimed it but before it stored its reservation: the request rolls back and answers 409 retry, storing nothing', async () => {
      const bookId = await newBook(5);
      // The takeover, at the exact step: a retry's claim lands on the key just as this request inserts its pending row.
      await sql`CREATE FUNCTION edge_take_key_over() RETURNS trigger AS $$
        BEGIN
          UPDATE idempotency_keys SET claim_id = 'the-retry' WHERE customer_id = NEW.customer_id AND idempotency_key = 'k-taken';
          RETURN NEW;
        END $$ LANGUAGE plpgsql`.execute(reservationDb);
      await sql`CREATE TRIGGER edge_take_key_over BEFORE INSERT ON reservations FOR EACH ROW EXECUTE FUNCTION edge_take_key_over()`.execute(reservationDb);
      try {
        const answer = await post('taken-1', bookId, 'k-taken');
        expect(answer.statusCode).toBe(409);
        expect(answer.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });
        expect(answer.headers['retry-after']).toBe('1');
      } finally {
        await sql`DROP TRIGGER edge_take_key_over ON reservations`.execute(reservationDb);
        await sql`DROP FUNCTION edge_take_key_over()`.execute(reservationDb);
      }
      // Nothing stored, nothing held, and the key is free for the retry, which places the one reservation.
      expect(await reservationsOf('taken-1')).toEqual([]);
      expect(await quantity(bookId)).toBe(5);
      expect(await keyRow('taken-1', 'k-taken')).toMatchObject({ state: 'running', claim_id: null, reservation_id: null });
      const retried = await post('taken-1', bookId, 'k-taken');
      expect(retried.statusCode).toBe(201);
      expect(await reservationsOf('taken-1')).toHaveLength(1);
    });

    it('many requests with one released key at once: one takes it, the others are told it is in use, none is a 500', async () => {
      const bookId = await newBook(5);
      const id = await nextReservationId();
      stepped.afterBook(id, async () => {
        throw new Error('connection reset after book answered');
      });
      expect((await post('burst-1', bookId, 'k-burst')).statusCode).toBe(500);
      const answers = await Promise.all(Array.from({ length: 8 }, () => post('burst-1', bookId, 'k-burst')));
      const statuses = answers.map((a) => a.statusCode);
      expect(statuses.every((s) => s === 201 || s === 409), statuses.join(',')).toBe(true);
      expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1);
      for (const a of answers) {
        if (a.statusCode === 201) expect(a.json()).toMatchObject({ reservationId: id });
        else expect(a.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });
      }
      expect(await reservationsOf('burst-1')).toHaveLength(1);
      expect(await quantity(bookId)).toBe(4);
    });
  });

  describe('copies come back without assignment (ADR 0021)', () => {
    it('with assignment down, a patron who cancels and reserves again never holds more copies than the limit, and every cancelled copy is back', async () => {
      // One title per place (one active reservation per book), reserved again each round after its cancel.
      const titles = await Promise.all(Array.from({ length: LIMIT + 1 }, () => newBook(5)));
      const customer = 'hoarder-1';
      let maxHeld = 0;
      const placed: number[] = [];
      for (let round = 0; round < 4; round++) {
        // Up to the limit (a refusal is fine: book may still count a copy on its way back).
        for (let i = 0; i < LIMIT; i++) {
          const res = await post(customer, titles[i]!);
          if (res.statusCode === 201) placed.push(res.json<{ reservationId: number }>().reservationId);
          else expect(res.json()).toMatchObject({ code: 'TOO_MANY_ACTIVE_RESERVATIONS' });
          maxHeld = Math.max(maxHeld, await heldCopies(customer));
        }
        // Cancel all of them. Book has not seen the cancellations yet: the copies are still held.
        for (const id of placed.splice(0)) expect((await cancel(customer, id)).statusCode).toBe(202);
        const refused = await post(customer, titles[LIMIT]!);
        expect(refused.statusCode).toBe(409);
        expect(refused.json()).toMatchObject({ code: 'TOO_MANY_ACTIVE_RESERVATIONS', limit: LIMIT, active: LIMIT });
        expect(refused.headers['retry-after']).toBe('1');
        maxHeld = Math.max(maxHeld, await heldCopies(customer));
        // Book handles ReservationCancelRequested: every copy is back, with assignment still down.
        await deliverToBook();
        expect(await heldCopies(customer)).toBe(0);
      }
      expect(maxHeld).toBe(LIMIT);
      for (const title of titles) expect(await quantity(title)).toBe(5);
      // The reservations wait for assignment's confirmation in bookCancel; their copies are already back.
      const statuses = new Set((await reservationsOf(customer)).map((r) => r.status));
      expect([...statuses]).toEqual(['bookCancel']);
    });

    it('a reservation refused by book for too many held copies leaves nothing behind', async () => {
      const bookId = await newBook(10);
      for (let i = 0; i < LIMIT; i++) expect((await post('held-1', await newBook(1))).statusCode).toBe(201);
      const [first] = await reservationsOf('held-1');
      expect((await cancel('held-1', first!.reservation_id)).statusCode).toBe(202);
      const refused = await post('held-1', bookId, 'k-held');
      expect(refused.statusCode).toBe(409);
      // Nothing stored: the reservation is forgotten, and the key is free for a retry.
      expect((await reservationsOf('held-1')).map((r) => r.status)).toEqual(['bookCancel', 'bookReserveReq', 'bookReserveReq']);
      expect(await keyRow('held-1', 'k-held')).toMatchObject({ state: 'running', claim_id: null });
      await deliverToBook();
      const placed = await post('held-1', bookId, 'k-held');
      expect(placed.statusCode).toBe(201);
      await eventually('the held copies to be counted', async () => ((await heldCopies('held-1')) === LIMIT ? true : undefined));
    });
  });
});
